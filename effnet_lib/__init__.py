"""effnet-kit: EfficientNet with group convolutions, batch-independent norms and
reduced-resolution training (Masters et al., 2021), on TensorFlow 2 + Keras 3.

The public API, in one place (``import effnet_lib as el``)::

    el.build_model("B0-G16-LN_PN")           # a model, a case or an EfficientNetSpec
    el.profile("B0-G16-LN_PN-Half_16IPU_2x8")  # exact multiply-adds, parameters, memory
    el.load_case(name), el.make_dataset(source, split, size, batch)
    el.train(case), el.validate(run), el.finetune(run, size), el.benchmark(name)

The library is split into rooms by job, each importing only from those before it:
``common`` -> ``models`` -> ``profiling`` -> ``data`` -> ``training`` -> ``bench`` ->
``paper`` -> ``lessons`` -> ``cli`` (see docs/development.md). Keras and
TensorFlow load only when something needs them.
"""

from __future__ import annotations

import functools
import os

# TensorFlow's oneDNN kernels (convolutions, BatchNorm, swish fused by its graph rewrite)
# are on by default only on some x86 CPUs; on the AMD EPYC this kit is measured on they
# were off, and turning them on made B0's training step 2.3x faster (docs/measurements.md).
# Set before TensorFlow loads (it reads the variable once); TF_ENABLE_ONEDNN_OPTS=0 in the
# environment keeps them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from .models.rounding import conv_groups, round_filters, round_repeats
from .models.spec import BlockConfig, EfficientNetSpec
from .training.cases import CaseConfig, case_names, load_case, load_cases, resolve_spec

__version__ = "0.1.0"

__all__ = [
    "BlockConfig", "CaseConfig", "EfficientNetSpec", "Profile", "benchmark", "build_model",
    "case_names", "conv_groups", "finetune", "load_case", "load_cases", "make_dataset", "profile",
    "resolve_spec", "round_filters", "round_repeats", "train", "transfer_keras_applications_weights",
    "validate",
]


def _taking_case_names(function):
    """``function`` with a case name accepted where it takes a spec or a model name."""
    @functools.wraps(function)
    def wrapper(spec_or_name, *args, **kwargs):
        if isinstance(spec_or_name, str):
            spec_or_name = resolve_spec(spec_or_name)
        return function(spec_or_name, *args, **kwargs)

    return wrapper


def __getattr__(name):
    # Keras (and its backend) load only when a model is needed, so that spec and
    # case handling, and `effnet --help`, stay fast.
    if name == "build_model":
        from .models.builder import build_model
        return _taking_case_names(build_model)
    if name == "profile":
        from .profiling import profile
        return _taking_case_names(profile)
    if name == "Profile":
        from .profiling import Profile
        return Profile
    if name == "make_dataset":
        from .data import make_dataset
        return make_dataset
    if name == "transfer_keras_applications_weights":
        from .models.keras_weights import transfer_keras_applications_weights
        return transfer_keras_applications_weights
    if name == "train":
        from .training.train import train
        return train
    if name == "validate":
        from .training.evaluation import validate
        return validate
    if name == "finetune":
        from .training.finetune import finetune
        return finetune
    if name == "benchmark":
        from .bench.throughput import benchmark
        return benchmark
    raise AttributeError(f"module 'effnet_lib' has no attribute {name!r}")
