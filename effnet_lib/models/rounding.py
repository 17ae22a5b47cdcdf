"""Tiny pure helpers that turn scaled coefficients into whole channels, repeats and groups."""

from __future__ import annotations

import math


def round_filters(filters: float, width_coefficient: float, divisor: int = 8) -> int:
    """Scale a channel count and round it to a multiple of ``divisor``, never below 90%."""
    scaled = filters * width_coefficient
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth_coefficient: float) -> int:
    """Scale a stage's repeat count, rounding up."""
    return int(math.ceil(depth_coefficient * repeats))


def largest_divisor_at_most(number: int, limit: int) -> int:
    """The largest divisor of ``number`` that is ``<= limit`` (at least 1).

    Grouped convolutions and GroupNorm both need groups of equal size.
    """
    divisor = max(min(number, limit), 1)
    while number % divisor:
        divisor -= 1
    return divisor


def conv_groups(channels: int, group_size: int) -> int:
    """Number of groups of the spatial convolution: ``max(C // group_size, 1)``.

    ``group_size=1`` is depthwise. A grouped convolution needs equal groups, so when
    ``C`` is not divisible by that count the largest divisor of ``C`` below it is
    used. Among B0-B7 this happens once: B6-G16 stage 1 has 56 channels, and
    56 // 16 = 3 does not divide 56, so it gets 2 groups of 28. (The reference code
    would ask for 3 groups there and fail; the paper trains B0-B5 only.)
    """
    return largest_divisor_at_most(channels, max(channels // group_size, 1))
