"""The train/test resolution discrepancy (Touvron et al., FixRes), with the kit's crops.

Training takes a random box of the image (a share ``a`` of its area, aspect
0.75-1.33) and resizes it to ``S_train``; testing keeps the centre
``crop_ratio`` (224/256) of the short side and resizes it to ``S_test``. An
object of the image therefore appears, in pixels, magnified by

    train: S_train / sqrt(h * w)        test: S_test / (crop_ratio * side)

(``h, w`` the box, ``side`` the square image's side). Their ratio,
:func:`apparent_size_ratios`, is above 1 when training shows objects larger
than testing does: the reason a model trained at ``S`` does better tested at a
somewhat larger size, and the reason the paper fine-tunes at the test size.
"""

from __future__ import annotations

import numpy as np

from ..data.preprocessing import (AREA_RANGE, ASPECT_RATIO_RANGE, CROP_RATIO, MAX_ATTEMPTS,
                                  MIN_OBJECT_COVERED)


def sample_crops(samples: int = 5000, area_range=AREA_RANGE, side: int = 1000, seed: int = 0) -> np.ndarray:
    """(height, width) of ``samples`` training crops of a ``side`` x ``side`` image,
    drawn by the same TensorFlow op and parameters as the training preprocessing."""
    import tensorflow as tf

    shape = tf.constant([side, side, 3], tf.int32)
    boxes = tf.constant([[[0.0, 0.0, 1.0, 1.0]]])
    sizes = []
    for i in range(samples):
        _, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            shape, bounding_boxes=boxes, seed=[seed, i], min_object_covered=MIN_OBJECT_COVERED,
            aspect_ratio_range=ASPECT_RATIO_RANGE, area_range=area_range, max_attempts=MAX_ATTEMPTS,
            use_image_if_no_bounding_boxes=True)
        sizes.append(size.numpy()[:2])
    return np.array(sizes, dtype=np.float64)


def apparent_size_ratios(train_size: int, test_size: int, crops: np.ndarray, side: int = 1000,
                         crop_ratio: float = CROP_RATIO) -> np.ndarray:
    """Apparent object size in training divided by that in testing, one per crop."""
    train_scale = train_size / np.sqrt(crops[:, 0] * crops[:, 1])
    test_scale = test_size / (crop_ratio * side)
    return train_scale / test_scale


def matching_test_size(train_size: int, crops: np.ndarray, side: int = 1000,
                       crop_ratio: float = CROP_RATIO) -> float:
    """The test size at which the median training crop shows objects at their test size."""
    return float(train_size * np.median(apparent_size_ratios(1, 1, crops, side, crop_ratio)))
