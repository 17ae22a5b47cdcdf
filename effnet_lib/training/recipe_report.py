"""The resolved recipe of a case, line by line, each said to match the reference or how it differs.

``effnet train --config CASE --dry-run`` prints it. The reference is what produced the
paper's numbers: the case as ``configs.yml`` gives it (graphcore/graphcore-research,
``Making_EfficientNet_More_Efficient``, commit 6c320fd) run by the training code of
graphcore/examples (``applications/tensorflow/cnns/training``, commit b30108f).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..common.precision import precision
from ..data.mixing import cutmix_v1_statistics
from ..data.preprocessing import MAX_ATTEMPTS
from .cases import CaseConfig, case_names, load_case
from .plan import fold_replicas

# The reference's fixed choices (not case fields of configs.yml): the code's behaviour.
REFERENCE = dict(weight_decay_mode="coupled", cutmix_version=1, loss_scaling=128,
                 warmup_epochs=5, lr_drops=146, lr_decay_rate=0.97, weight_avg_exp=0.97,
                 crop_attempts=100, valid_resize_first=True, rmsprop_epsilon=1e-3, momentum=0.9)


@dataclass(frozen=True)
class RecipeLine:
    setting: str
    value: str
    matches: bool
    how: str = ""  # how the reference ran it, when it differs; else a note on the mapping

    def __str__(self) -> str:
        verdict = "matches the reference" if self.matches else f"differs: {self.how}"
        note = f" ({self.how})" if self.matches and self.how else ""
        return f"{self.setting:22s} {self.value}  [{verdict}{note}]"


def describe_recipe(case: CaseConfig, epochs: int | None = None, devices: int = 1) -> list[RecipeLine]:
    """The recipe ``effnet train`` would run for ``case`` on ``devices`` devices."""
    paper = load_case(case.name) if case.name in case_names() else None
    epochs = int(epochs if epochs is not None else round(case.epochs))

    def line(setting, value, ours, theirs, reference, note=""):
        """``reference``: how the reference ran it, said when ``ours != theirs``."""
        if paper is None:
            return RecipeLine(setting, value, False, "not one of the paper's cases")
        if ours == theirs:
            return RecipeLine(setting, value, True, note)
        return RecipeLine(setting, value, False, reference + (f"; {note}" if note else ""))

    ref = paper or case
    layout = fold_replicas(case, devices)
    lines = [
        line("global batch", f"{case.global_batch_size} = {case.micro_batch_size} x "
             f"{case.gradient_accumulation_count} x {case.replicas}",
             case.global_batch_size, ref.global_batch_size, f"the reference: {ref.global_batch_size}"),
        line("batch on this machine", f"{layout.replicas} replica(s) x accumulation "
             f"{layout.accumulation}", case.global_batch_size, ref.global_batch_size,
             f"the reference: {ref.replicas} replicas x {ref.pipeline_stages} pipeline stages",
             note=f"{ref.replicas} IPU replicas x {ref.pipeline_stages} pipeline stages mapped, the "
                  f"global batch kept"),
        line("peak learning rate", f"{case.learning_rate:.6g} = 2^{case.base_learning_rate_exponent:g}"
             f" x {case.global_batch_size}", case.learning_rate, ref.learning_rate,
             f"the reference: {ref.learning_rate:.6g}"),
        line("RMSprop", f"rho {case.rmsprop_rho:.6g}, epsilon {case.rmsprop_epsilon:g} inside the "
             f"square root, momentum {case.momentum:g}, mean squares start at 1",
             (case.rmsprop_rho, case.rmsprop_epsilon, case.momentum),
             (ref.rmsprop_rho, REFERENCE["rmsprop_epsilon"], REFERENCE["momentum"]),
             f"the reference: rho {ref.rmsprop_rho:.6g}, epsilon 1e-3, momentum 0.9"),
        _schedule_line(case, epochs, line),
        line("weight decay", f"{case.weight_decay:g}, {case.weight_decay_mode}; on every weight "
             f"but norm beta/gamma (Proxy Norm's beta', gamma' decayed)",
             (case.weight_decay, case.weight_decay_mode),
             (ref.weight_decay, REFERENCE["weight_decay_mode"]),
             f"the reference: {ref.weight_decay:g}, coupled (added to the gradient before RMSprop)"),
        line("label smoothing", f"{case.label_smoothing:g} (s / (C - 1) on the other classes)",
             case.label_smoothing, ref.label_smoothing, f"the reference: {ref.label_smoothing:g}"),
        line("Mixup", f"alpha {case.mixup_alpha:g}" if case.mixup_alpha else "off",
             case.mixup_alpha, ref.mixup_alpha, f"the reference: alpha {ref.mixup_alpha:g}"),
        _cutmix_line(case, ref, line),
        _precision_line(case, ref, line),
        line("weight averaging", f"exponential {case.weight_avg_exp:g} over epoch checkpoints"
             + (f"; mean of the last {case.weight_avg_n} epochs" if case.weight_avg_n else ""),
             case.weight_avg_exp, REFERENCE["weight_avg_exp"], "the reference: exponential 0.97"),
        line("crops", f"distorted box, area {case.crop_area_range[0]:g}-{case.crop_area_range[1]:g},"
             f" {MAX_ATTEMPTS} attempts; validation: short side to S x 256/224, centre crop",
             (tuple(case.crop_area_range), MAX_ATTEMPTS), ((0.05, 1.0), REFERENCE["crop_attempts"]),
             "the reference: area 0.05-1, 100 attempts"),
        line("epochs", f"{epochs}", epochs, round(ref.epochs), f"the reference: {round(ref.epochs)}"),
    ]
    return lines


def _schedule_line(case: CaseConfig, epochs: int, line) -> RecipeLine:
    if case.lr_schedule == "exponential":
        value = (f"exponential: {case.warmup_epochs:g} warm-up epochs, then x{case.lr_decay_rate:g} "
                 f"every {case.decay_interval(epochs):.4g} epochs")
        if case.lr_decay_epochs is None:
            value += f" (= {epochs} / {case.lr_drops:g} drops)"
    else:
        value = f"{case.lr_schedule}, {case.warmup_epochs:g} warm-up epochs"
    if case.warmup_epochs >= epochs:
        value += "; the warm-up is as long as the run or longer"
    ours = (case.lr_schedule, case.warmup_epochs, case.lr_decay_rate, case.lr_drops,
            case.lr_decay_epochs)
    theirs = ("exponential", REFERENCE["warmup_epochs"], REFERENCE["lr_decay_rate"],
              REFERENCE["lr_drops"], None)
    return line("learning-rate schedule", value, ours, theirs,
                "the reference: exponential, 5 warm-up epochs, x0.97 every epochs / 146")


def _cutmix_line(case: CaseConfig, ref: CaseConfig, line) -> RecipeLine:
    reference = (f"the reference: version 1, lambda {ref.cutmix_lambda:g}" if ref.cutmix_lambda
                 else "the reference: off")
    if not case.cutmix_lambda or case.cutmix_lambda >= 1:
        return line("CutMix", "off", case.cutmix_lambda, ref.cutmix_lambda, reference)
    if case.cutmix_version == 1:
        stats = cutmix_v1_statistics(case.cutmix_lambda)
        value = (f"version 1, lambda {case.cutmix_lambda:g}: no cut {stats['no_cut']:.0%} of "
                 f"micro-batches, else a random share kept (mean {stats['mean_kept_when_cut']:.3f})")
    else:
        value = f"version 2: {case.cutmix_lambda:g} of every image kept"
    return line("CutMix", value, (case.cutmix_lambda, case.cutmix_version),
                (ref.cutmix_lambda, REFERENCE["cutmix_version"]), reference)


def _precision_line(case: CaseConfig, ref: CaseConfig, line) -> RecipeLine:
    entry = precision(case.precision)
    scaling = f", static loss scaling {case.loss_scaling:g}" if entry.loss_scaled else ""
    value = f"{entry.name}: {entry.policy}{scaling}"
    return line("precision", value, (entry.name, case.loss_scaling),
                (ref.precision, REFERENCE["loss_scaling"]),
                f"the reference: {ref.precision}, static loss scaling 128", note=entry.note)
