"""Spread of measured figures: the mean of repeated runs with its 95% confidence interval.

Every measured figure the kit reports carries its spread. With a handful of seeds
the interval is Student's t (two-sided, 95%); the critical values are tabled here
(up to 30 degrees of freedom, then the normal's 1.96), so no statistics package is
needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Two-sided 95% critical values of Student's t by degrees of freedom.
T_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
        17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042}


def t_95(degrees: int) -> float:
    if degrees < 1:
        raise ValueError("a confidence interval needs at least two values.")
    if degrees in T_95:
        return T_95[degrees]
    larger = [d for d in T_95 if d > degrees]
    return T_95[min(larger)] if larger else 1.96  # the next tabled value is slightly wider


@dataclass(frozen=True)
class Estimate:
    mean: float
    half_width: float  # of the 95% interval; nan for a single value
    n: int
    std: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:.3f} (one run)"
        return f"{self.mean:.3f} ± {self.half_width:.3f} (95%, n={self.n})"


def mean_ci(values) -> Estimate:
    """The mean of ``values`` and the half-width of its 95% confidence interval."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values to summarise.")
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return Estimate(mean, math.nan, 1, math.nan)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return Estimate(mean, t_95(n - 1) * std / math.sqrt(n), n, std)


def proportion_ci(successes: int, trials: int) -> Estimate:
    """A proportion (an accuracy on ``trials`` images) with its 95% Wilson interval, reported
    as its centre and half-width."""
    if trials < 1:
        raise ValueError("no trials.")
    p, z = successes / trials, 1.96
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return Estimate(centre, half, trials, math.sqrt(p * (1 - p)))
