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


def ratio_ci(ratios) -> Estimate:
    """A speed-up from paired ratios: their geometric mean and its 95% interval, computed on
    the logarithms (a ratio's interval stays positive and symmetric in factors)."""
    logs = [math.log(float(r)) for r in ratios]
    estimate = mean_ci(logs)
    if estimate.n < 2:
        return Estimate(math.exp(estimate.mean), math.nan, estimate.n, math.nan)
    mean = math.exp(estimate.mean)
    low, high = math.exp(estimate.low), math.exp(estimate.high)
    return AsymmetricEstimate(mean, (high - low) / 2, estimate.n, estimate.std, low, high)


@dataclass(frozen=True)
class AsymmetricEstimate(Estimate):
    """An estimate whose 95% interval is not centred on it (a geometric mean, a difference of
    proportions): ``low``/``high`` are the bounds, ``half_width`` half their distance."""

    bound_low: float = math.nan
    bound_high: float = math.nan

    @property
    def low(self) -> float:
        return self.bound_low

    @property
    def high(self) -> float:
        return self.bound_high

    def __str__(self) -> str:
        if math.isnan(self.bound_low):
            return super().__str__()
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}] (95%)"


def difference_ci(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> Estimate:
    """The difference of two accuracies, ``a - b``, with Newcombe's 95% interval (his method 10:
    Wilson intervals of each, combined). It treats the two as independent samples; for two
    models scored on the same images it is conservative (wider than a paired interval)."""
    a, b = proportion_ci(successes_a, trials_a), proportion_ci(successes_b, trials_b)
    pa, pb = successes_a / trials_a, successes_b / trials_b
    difference = pa - pb
    low = difference - math.sqrt((pa - a.low) ** 2 + (b.high - pb) ** 2)
    high = difference + math.sqrt((a.high - pa) ** 2 + (pb - b.low) ** 2)
    return AsymmetricEstimate(difference, (high - low) / 2, min(trials_a, trials_b), math.nan, low, high)
