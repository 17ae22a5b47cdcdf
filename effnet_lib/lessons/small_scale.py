"""Small-scale analogues of the paper's experiments, measured on the embedded data.

The paper trains B0-B5 for 350 epochs on ImageNet with IPU-POD16s. Here the same
code trains a narrowed EfficientNet for minutes on a CPU, so that the *direction*
of each effect can be seen: that GN and LN + Proxy Norm train, and that
half-resolution training plus a short fine-tune at the test size beats testing the
half-resolution model at that size directly. Absolute numbers do not transfer to
ImageNet (see ``effnet_lib/data/shapes.py`` for what the data is a proxy for).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from ..common.files import markdown, write_text
from ..profiling import profile
from ..training.cases import CaseConfig, case_names, load_case

SMALL_MODEL = dict(width_coefficient=0.5, depth_coefficient=0.5)
# The paper's crops go down to 5% of the image: on ImageNet the object usually
# survives, on a single small drawn shape it often does not, so short runs here
# keep at least 35% of the image.
SMALL_CROPS = (0.35, 1.0)


def small_case(model: str = "B0-G16-GN", image_size: int = 64, epochs: int = 6,
               micro_batch_size: int = 32, base_learning_rate_exponent: float = -12,
               lr_schedule: str = "cosine", warmup_epochs: float = 1,
               label_smoothing: float = 0.1) -> CaseConfig:
    """The paper's recipe for ``model``, resized for a CPU: one replica, no pipeline, float32.

    The learning rate keeps the recipe's form (``2^exponent`` per sample of the
    batch) with a larger exponent than the paper's -14 (0.0078 at a batch of 32),
    because a few epochs need a faster start than 350; a cosine schedule replaces
    the slow x0.97 decay.
    """
    size, variant = model.split("-", 1)
    base_variant = variant if variant in ("G1-GN", "G16-GN", "G16-LN_PN") else "G16-GN"
    base = next(n for n in case_names() if n.startswith(f"{size}-{base_variant}-Native"))
    return load_case(base).replace(
        model=model, image_size=image_size, epochs=epochs, micro_batch_size=micro_batch_size,
        gradient_accumulation_count=1, replicas=1, pipeline_stages=1, pipeline_splits=(),
        precision="32.32", mixup_alpha=0.0, cutmix_lambda=None, warmup_epochs=warmup_epochs,
        base_learning_rate_exponent=base_learning_rate_exponent, lr_schedule=lr_schedule,
        label_smoothing=label_smoothing, crop_area_range=SMALL_CROPS)


def forward_macs(case: CaseConfig, image_size: int, images: int, **model_overrides) -> float:
    """Multiply-adds of ``images`` forward passes: the training cost measure used here."""
    spec = case.model_spec(**{**SMALL_MODEL, **model_overrides})
    return profile(spec, image_size=image_size).macs * images


def norm_comparison(norms=("GN", "LN_PN"), data: str = "shapes", run_root="runs/small",
                    group: str = "G16", size: str = "B0", say=print, **case_overrides) -> pd.DataFrame:
    """Train the same small model with each norm; top-1/top-5 on the validation split."""
    from ..training.train import train

    rows = []
    for norm in norms:
        case = small_case(f"{size}-{group}-{norm}", **case_overrides)
        say(f"training {case.model} at {case.image_size}px for {int(case.epochs)} epochs")
        start = time.perf_counter()
        result = train(case, data=data, run_dir=Path(run_root) / f"{case.model}-{case.image_size}",
                       model_overrides=SMALL_MODEL, progress=False, say=say)
        rows.append(dict(model=case.model, norm=norm, image_size=case.image_size,
                         epochs=int(case.epochs), batch=case.micro_batch_size,
                         top1_measured=result.validation["top1"],
                         top5_measured=result.validation["top5"],
                         top1_weight_average=result.validation.get("average", {}).get("top1"),
                         train_minutes=_training_seconds(result.run_dir, time.perf_counter() - start) / 60))
    return pd.DataFrame(rows)


def _training_seconds(run_dir, fallback: float) -> float:
    """Training time from the run's log, so that a finished run re-read says what it took."""
    import json

    log = Path(run_dir) / "metrics.jsonl"
    if not log.is_file():
        return fallback
    lines = log.read_text().strip().splitlines()
    return json.loads(lines[-1]).get("seconds", fallback) if lines else fallback


def resolution_finetuning(model: str = "B0-G16-GN", native: int = 96, half: int = 64,
                          data: str = "shapes", run_root="runs/small", epochs: int = 6,
                          finetune_epochs: int = 1, say=print, model_overrides: dict | None = None,
                          **case_overrides) -> pd.DataFrame:
    """Native training against half-resolution training, with and without fine-tuning.

    Rows: the half-resolution model tested at ``half`` and at ``native``, the same
    after fine-tuning its head at ``native``, and a model trained at ``native``.
    Cost: forward multiply-adds over all training images (fine-tuning included).
    ``model_overrides`` change the small model (default :data:`SMALL_MODEL`).
    """
    from ..training import checkpoints
    from ..training.evaluation import evaluate
    from ..training.finetune import finetune
    from ..training.train import train

    overrides = {**SMALL_MODEL, **(model_overrides or {})}
    runs = {}
    for size in (half, native):
        case = small_case(model, image_size=size, epochs=epochs, **case_overrides)
        say(f"training {model} at {size}px for {epochs} epochs")
        runs[size] = (case, train(case, data=data, run_dir=Path(run_root) / f"{model}-{size}",
                                  model_overrides=overrides, progress=False, validation=False,
                                  say=say))
    half_case, half_run = runs[half]
    images = checkpoints.read_meta(checkpoints.latest(half_run.run_dir))["updates_per_epoch"] \
        * half_case.micro_batch_size
    # The final weights, not the 0.97 weight average: built for 350 epochs, over a
    # handful it is dominated by the first, poorly trained ones.
    final = checkpoints.latest(half_run.run_dir)
    half_model, meta = checkpoints.load_model(final)
    rows = []
    for size in (half, native):
        result = evaluate(half_model, data, size, class_names=meta["class_names"])
        rows.append(dict(run=f"trained at {half}px, no fine-tuning", test_size=size,
                         top1_measured=result["top1"], top5_measured=result["top5"],
                         train_forward_gmacs=forward_macs(half_case, half, images * epochs, **overrides) / 1e9))
    tuned = finetune(final, native, data=data, run_dir=Path(run_root) / f"{model}-{half}-ft{native}",
                     epochs=finetune_epochs, batch_size=half_case.micro_batch_size,
                     gradient_accumulation_count=1, warmup_epochs=0, progress=False, say=say)
    rows.append(dict(run=f"trained at {half}px + fine-tuned at {native}px", test_size=native,
                     top1_measured=tuned["top1"], top5_measured=tuned["top5"],
                     train_forward_gmacs=(forward_macs(half_case, half, images * epochs, **overrides)
                                          + forward_macs(half_case, native, images * finetune_epochs, **overrides)) / 1e9))
    native_case, native_run = runs[native]
    native_model, _ = checkpoints.load_model(checkpoints.latest(native_run.run_dir))
    result = evaluate(native_model, data, native, class_names=meta["class_names"])
    rows.append(dict(run=f"trained at {native}px", test_size=native, top1_measured=result["top1"],
                     top5_measured=result["top5"],
                     train_forward_gmacs=forward_macs(native_case, native, images * epochs, **overrides) / 1e9))
    return pd.DataFrame(rows)


def main(output_dir="figures", run_root="runs/small", epochs: int = 6) -> list[Path]:
    """Run both studies on the default shapes data and write their tables."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    norms = norm_comparison(("GN", "LN_PN"), group="G1", run_root=run_root, epochs=epochs)
    resolution = resolution_finetuning("B0-G1-GN", native=96, half=64, run_root=run_root, epochs=epochs)
    for name, table in (("small_scale_norms", norms), ("resolution_finetuning", resolution)):
        rounded = table.round(4)
        written.append(write_text(output_dir / f"{name}.csv", rounded.to_csv(index=False)))
        written.append(write_text(output_dir / f"{name}.md", markdown(rounded)))
    return written


if __name__ == "__main__":
    for path in main():
        print(f"wrote {path}")
