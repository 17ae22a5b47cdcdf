"""The paper's recipe resized for a CPU: the small cases the lessons' studies train.

The paper trains B0-B5 for 350 epochs on ImageNet with IPU-POD16s. The studies
(:mod:`.norm_investigation`, :mod:`.resolution_study`) train a narrowed EfficientNet
for minutes on the embedded data with the same code, so that the *direction* of each
effect can be seen. Absolute numbers do not transfer to ImageNet (see
``effnet_lib/data/shapes.py`` for what the data is a proxy for).
"""

from __future__ import annotations

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
