"""Spread of measured figures: the t-based 95% interval, checked against SciPy."""

import math

import pytest

from effnet_lib.common.stats import difference_ci, mean_ci, proportion_ci, t_95


@pytest.mark.parametrize("degrees", [1, 2, 3, 4, 9, 20, 30])
def test_t_critical_values_match_scipy(degrees):
    from scipy import stats

    assert t_95(degrees) == pytest.approx(stats.t.ppf(0.975, degrees), abs=2e-3)


def test_mean_and_interval_of_a_few_runs():
    from scipy import stats

    values = [0.61, 0.58, 0.66]
    estimate = mean_ci(values)
    low, high = stats.t.interval(0.95, 2, loc=sum(values) / 3, scale=stats.sem(values))
    assert (estimate.low, estimate.high) == pytest.approx((low, high), abs=1e-3)
    assert "± " in str(estimate) and "n=3" in str(estimate)
    assert math.isnan(mean_ci([0.5]).half_width) and "one run" in str(mean_ci([0.5]))
    with pytest.raises(ValueError):
        mean_ci([])


def test_proportion_interval_is_wilsons():
    estimate = proportion_ci(300, 500)
    assert estimate.low == pytest.approx(0.5564, abs=1e-3) and estimate.high == pytest.approx(0.6422, abs=1e-3)


def test_difference_of_accuracies_is_newcombes():
    # Newcombe (1998), Statistics in Medicine 17:873, Table II, example (a), method 10.
    estimate = difference_ci(56, 70, 48, 80)
    assert estimate.mean == pytest.approx(0.2)
    assert (estimate.low, estimate.high) == pytest.approx((0.0524, 0.3339), abs=2e-4)
    assert difference_ci(48, 80, 56, 70).high == pytest.approx(-0.0524, abs=2e-4)
