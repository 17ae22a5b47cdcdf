"""How training images are transformed and mixed: one value object, validated once.

The paper's training crop (a random box of 5-100% of the image's area), its
validation crop (the centre 224/256 of the short side) and the label-mixing
recipe (label smoothing, Mixup, CutMix) travel together from a case to the
pipeline as an :class:`Augmentation`. Its defaults are the paper's crops with
every mixing option off.
"""

from __future__ import annotations

from dataclasses import dataclass

from .mixing import validate as validate_mixing
from .preprocessing import AREA_RANGE, CROP_RATIO


@dataclass(frozen=True)
class Augmentation:
    """Crops and label mixing of a pipeline (see the module docstring)."""

    crop_area_range: tuple[float, float] = AREA_RANGE  # the training crop's share of the area
    crop_ratio: float = CROP_RATIO  # validation keeps this fraction of the short side
    valid_preprocessing: bool = False  # training order and mixing, validation transform
    valid_resize_first: bool = True  # validation: resize the short side, then crop (reference)
    mixup_alpha: float = 0.0  # 0: off
    cutmix_lambda: float = 1.0  # 1: off
    cutmix_version: int = 1  # 1: a random share per batch (the reference's); 2: fixed
    label_smoothing: float = 0.0

    def __post_init__(self):
        low, high = self.crop_area_range
        object.__setattr__(self, "crop_area_range", (float(low), float(high)))
        if not 0 < low <= high <= 1:
            raise ValueError(f"crop_area_range={self.crop_area_range!r}: expected 0 < low <= high <= 1.")
        if not 0 < self.crop_ratio <= 1:
            raise ValueError(f"crop_ratio={self.crop_ratio!r}: it must be in (0, 1]; the paper's is "
                             f"224/256.")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing={self.label_smoothing!r}: it must be in [0, 1).")
        validate_mixing(self.mixup_alpha, self.cutmix_lambda, self.cutmix_version)

    @property
    def soft_labels(self) -> bool:
        """Whether the labels leave the pipeline as soft ``float32 [B, C]`` vectors."""
        return self.mixup_alpha > 0 or self.cutmix_lambda < 1 or self.label_smoothing > 0

    @property
    def mixing(self) -> dict:
        """The keyword arguments of :func:`effnet_lib.data.mixing.mix_batch`."""
        return dict(mixup_alpha=self.mixup_alpha, cutmix_lambda=self.cutmix_lambda,
                    cutmix_version=self.cutmix_version, label_smoothing=self.label_smoothing)
