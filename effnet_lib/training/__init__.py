"""Training: the paper's cases and recipe, run planning, distribution, checkpoints, validation.

* :mod:`.cases` (+ ``configs.yml``): the 30 cases as typed configs; :mod:`.recipe`: RMSprop,
  schedules, weight decay;
* :mod:`.plan` and :mod:`.host_events`: the IPU kit's batch layout and host events on this
  machine; :mod:`.distribution` and :mod:`.multiworker`: replicas across devices and machines;
* :mod:`.train`, :mod:`.callbacks`, :mod:`.checkpoints`: a resumable run;
* :mod:`.evaluation` (validate), :mod:`.finetune` (resolution fine-tuning) and
  :mod:`.bn_statistics` (BN statistics at a new size).

TensorFlow and Keras load only when training runs: cases stay quick to import. The
functions ``train`` and ``finetune`` live in the modules of the same names
(``effnet_lib.train`` and ``effnet_lib.finetune`` at the top level).
"""

from .cases import CaseConfig, case_names, load_case, load_cases, resolve_spec

__all__ = ["CaseConfig", "case_names", "evaluate", "load_case", "load_cases", "resolve_spec",
           "validate"]


def __getattr__(name):
    if name in ("evaluate", "validate"):
        from . import evaluation
        return getattr(evaluation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
