"""Label smoothing, Mixup and CutMix on a batch, with the reference kit's semantics.

* Label smoothing: the true class gets ``1 - s``, every other class ``s / (C - 1)``.
* Mixup: each image gets its own coefficient ``m ~ Beta(alpha, alpha)``, folded
  to ``max(m, 1 - m)`` so that an image stays the larger part of its mix. Its
  partner is the next image in the batch (the batch rolled by one), which avoids
  mixing an image with itself, frequent with random pairing in small batches.
* CutMix: one box for the whole batch, with the image's aspect ratio and ``1 - lambda'``
  of its area, placed uniformly but fully inside, is pasted from the image two places
  along the batch (one when the batch has two images), so that with Mixup too an image
  is never cut with its own mix partner. The labels use the share of pixels the box
  really covers after rounding. ``lambda'`` depends on the version (the reference's
  ``cutmix_version``, ``Datasets/augmentations.py``):

  - version 1 (what the paper's cases ran): drawn per micro-batch. With probability
    ``1.55 * cutmix_lambda - 0.96`` there is no cut at all (``lambda' = 1``); otherwise
    ``lambda' = 1 + ln(u) / 4`` for ``u`` uniform in ``[e^-4, 1)``, a share kept between
    0 and 1 with mean 0.769 (:func:`cutmix_v1_statistics`);
  - version 2: ``lambda' = cutmix_lambda``, fixed.

Labels are mixed exactly as the pixels, so every soft label sums to 1.
Images stay uint8 (mixed values are rounded).
"""

from __future__ import annotations

import math

import tensorflow as tf

CUTMIX_VERSIONS = (1, 2)
# Version 1's law (the reference's cutmix_v1_sample_lambda): P(no cut) = 1.55 lambda - 0.96,
# else lambda' = 1 + ln(u) / 4 with u ~ U(e^-4, 1).
NO_CUT_SLOPE, NO_CUT_OFFSET, LOG_SPREAD = 1.55, 0.96, 4.0


def soft_labels(labels: tf.Tensor, num_classes: int, label_smoothing: float = 0.0) -> tf.Tensor:
    """Integer labels ``[B]`` to smoothed one-hot ``float32 [B, C]``."""
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing={label_smoothing!r}: it must be in [0, 1).")
    off = label_smoothing / (num_classes - 1) if num_classes > 1 else 0.0
    return tf.one_hot(labels, num_classes, on_value=1.0 - label_smoothing, off_value=off)


def sample_beta(alpha: float, shape, seed: tf.Tensor) -> tf.Tensor:
    """Beta(alpha, alpha) from two gammas; float64 so that small alphas do not underflow to 0/0."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    x = tf.random.stateless_gamma(shape, seeds[0], alpha, dtype=tf.float64)
    y = tf.random.stateless_gamma(shape, seeds[1], alpha, dtype=tf.float64)
    total = x + y
    return tf.cast(tf.where(total > 0, x / tf.where(total > 0, total, 1.0), 1.0), tf.float32)


def mixup(images: tf.Tensor, labels: tf.Tensor, alpha: float, seed: tf.Tensor):
    """Mix each image (and soft label) with the next one in the batch."""
    batch = tf.shape(images)[0]
    coefficient = sample_beta(alpha, [batch], seed)
    coefficient = tf.maximum(coefficient, 1.0 - coefficient)
    c = coefficient[:, None, None, None]
    mixed = c * tf.cast(images, tf.float32) + (1 - c) * tf.cast(tf.roll(images, 1, axis=0), tf.float32)
    images = tf.cast(tf.clip_by_value(tf.round(mixed), 0, 255), images.dtype)
    labels = coefficient[:, None] * labels + (1 - coefficient[:, None]) * tf.roll(labels, 1, axis=0)
    return images, labels


def cutmix_v1_statistics(cutmix_lambda: float) -> dict:
    """What version 1's draws should average: the chance of no cut, and the mean kept share
    when there is a cut (``E[1 + ln(u)/4]`` for ``u ~ U(a, 1)``, ``a = e^-4``)."""
    a = math.exp(-LOG_SPREAD)
    mean_log = (-1.0 - (a * math.log(a) - a)) / (1.0 - a)  # E[ln u] on [a, 1)
    return dict(no_cut=min(max(NO_CUT_SLOPE * cutmix_lambda - NO_CUT_OFFSET, 0.0), 1.0),
                mean_kept_when_cut=1.0 + mean_log / LOG_SPREAD)


def cutmix_v1_lambda(cutmix_lambda: float, seed: tf.Tensor) -> tf.Tensor:
    """One draw of version 1's kept share ``lambda'`` (a float32 scalar; 1 means no cut)."""
    no_cut_seed, share_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    no_cut = tf.random.stateless_uniform([], no_cut_seed) < NO_CUT_SLOPE * cutmix_lambda - NO_CUT_OFFSET
    u = tf.random.stateless_uniform([], share_seed, minval=math.exp(-LOG_SPREAD), maxval=1.0)
    return tf.where(no_cut, 1.0, 1.0 + tf.math.log(u) / LOG_SPREAD)


def cutmix_box(height: int, width: int, cutmix_lambda, seed: tf.Tensor) -> tf.Tensor:
    """Boolean ``[H, W]`` mask of the pasted box (``1 - cutmix_lambda`` of the area)."""
    side = tf.sqrt(1.0 - tf.cast(cutmix_lambda, tf.float32))
    box_h, box_w = height * side, width * side
    centre = tf.random.stateless_uniform([2], seed, maxval=1.0) * [height, width]
    cy = tf.clip_by_value(centre[0], box_h / 2, height - box_h / 2)
    cx = tf.clip_by_value(centre[1], box_w / 2, width - box_w / 2)
    y0, y1 = tf.cast(tf.round(cy - box_h / 2), tf.int32), tf.cast(tf.round(cy + box_h / 2), tf.int32)
    x0, x1 = tf.cast(tf.round(cx - box_w / 2), tf.int32), tf.cast(tf.round(cx + box_w / 2), tf.int32)
    rows, cols = tf.range(height), tf.range(width)
    inside_rows = (rows >= y0) & (rows < y1)
    inside_cols = (cols >= x0) & (cols < x1)
    return inside_rows[:, None] & inside_cols[None, :]


def cutmix(images: tf.Tensor, labels: tf.Tensor, cutmix_lambda: float, seed: tf.Tensor,
           version: int = 1):
    """Paste one box from the image two along the batch into every image."""
    shift = tf.where(tf.shape(images)[0] > 2, 2, 1)
    height, width = images.shape[1], images.shape[2]
    share_seed, box_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    kept_share = cutmix_v1_lambda(cutmix_lambda, share_seed) if version == 1 else cutmix_lambda
    mask = cutmix_box(height, width, kept_share, box_seed)
    images = tf.where(mask[None, :, :, None], tf.roll(images, shift, axis=0), images)
    kept = 1.0 - tf.reduce_mean(tf.cast(mask, tf.float32))
    labels = kept * labels + (1.0 - kept) * tf.roll(labels, shift, axis=0)
    return images, labels


def mix_batch(images, labels, num_classes: int, seed: tf.Tensor, *, label_smoothing: float = 0.0,
              mixup_alpha: float = 0.0, cutmix_lambda: float = 1.0, cutmix_version: int = 1):
    """Soft labels with smoothing, then Mixup, then CutMix, as configured."""
    validate(mixup_alpha, cutmix_lambda, cutmix_version)
    mix_seed, cut_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    targets = soft_labels(labels, num_classes, label_smoothing)
    if mixup_alpha > 0:
        images, targets = mixup(images, targets, mixup_alpha, mix_seed)
    if cutmix_lambda < 1:
        images, targets = cutmix(images, targets, cutmix_lambda, cut_seed, cutmix_version)
    return images, targets


def validate(mixup_alpha: float, cutmix_lambda: float, cutmix_version: int = 1) -> None:
    if not mixup_alpha >= 0:
        raise ValueError(f"mixup_alpha={mixup_alpha!r}: it must be >= 0 (0 turns Mixup off; "
                         "the paper uses 0.1 for B0-B2, 0.2 for B3-B5).")
    if not 0 < cutmix_lambda <= 1:
        raise ValueError(f"cutmix_lambda={cutmix_lambda!r}: it must be in (0, 1] (1 turns CutMix "
                         "off; the paper uses 0.95 to 0.8 from B1 to B5).")
    if cutmix_version not in CUTMIX_VERSIONS:
        raise ValueError(f"cutmix_version={cutmix_version!r}: accepted 1 (a random share per "
                         f"batch, the reference's) or 2 (a fixed share).")
