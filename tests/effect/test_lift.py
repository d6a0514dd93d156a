"""Lift statistics on hand-computed and synthetic data: intervals, p-values, coverage, warnings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from effect import conversion_lift, revenue_lift


def test_conversion_lift_against_hand_computed_figures() -> None:
    r = conversion_lift(150, 1000, 100, 1000)
    a_t, a_c = 151 / 1002, 101 / 1002  # Agresti-Caffo: one buyer and one non-buyer more in each group
    se = math.sqrt(a_t * (1 - a_t) / 1002 + a_c * (1 - a_c) / 1002)
    assert r.abs_lift == pytest.approx(0.05)
    assert (r.abs_ci_low, r.abs_ci_high) == pytest.approx(
        (a_t - a_c - 1.959964 * se, a_t - a_c + 1.959964 * se), abs=1e-6
    )
    z = 0.05 / math.sqrt(0.125 * 0.875 * (2 / 1000))
    assert r.p_value == pytest.approx(2 * stats.norm.sf(z))
    assert r.rel_lift == pytest.approx(0.5)
    assert r.rel_ci_low < 0.5 < r.rel_ci_high
    assert r.incremental == pytest.approx(50) and r.incremental_ci_low == pytest.approx(r.abs_ci_low * 1000)
    assert r.significant and r.warning is None
    assert r.sentence.startswith("The campaign caused about 50 purchasers (95% CI 21 to 79; p < 0.001)")


def test_no_lift_is_said_plainly() -> None:
    r = conversion_lift(100, 1000, 100, 1000)
    assert r.abs_lift == 0 and r.p_value == pytest.approx(1.0)
    assert not r.significant and r.sentence.startswith("No lift could be shown")


@pytest.mark.parametrize(
    ("args", "warning"),
    [
        ((5, 40, 2, 30), "groups too small to tell (40 pack members, 30 held out"),
        ((3, 1000, 2, 1000), "only 5 buyers in both groups together"),
        ((30, 1000, 0, 0), "no control group"),
    ],
)
def test_small_groups_get_a_warning(args: tuple, warning: str) -> None:
    r = conversion_lift(*args)
    assert (warning in r.warning and "Warning" in r.sentence) or "not measured" in r.sentence


def test_the_conversion_interval_covers_the_true_lift_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(5)
    n_t, n_c, p_c, true = 3000, 1000, 0.05, 0.02
    covered = 0
    runs = 400
    for _ in range(runs):
        r = conversion_lift(int(rng.binomial(n_t, p_c + true)), n_t, int(rng.binomial(n_c, p_c)), n_c)
        covered += r.abs_ci_low <= true <= r.abs_ci_high
    assert 0.92 <= covered / runs <= 0.98


def test_revenue_lift_is_welchs_t_test() -> None:
    rng = np.random.default_rng(1)
    t = np.where(rng.random(2000) < 0.2, rng.lognormal(5, 0.5, 2000), 0.0)
    c = np.where(rng.random(800) < 0.15, rng.lognormal(5, 0.5, 800), 0.0)
    r = revenue_lift(t.sum(), (t**2).sum(), len(t), c.sum(), (c**2).sum(), len(c), cost=1000.0)
    expected = stats.ttest_ind(t, c, equal_var=False)
    assert r.p_value == pytest.approx(expected.pvalue, rel=1e-6)
    assert r.abs_lift == pytest.approx(t.mean() - c.mean())
    ci = expected.confidence_interval(0.95)
    assert (r.abs_ci_low, r.abs_ci_high) == pytest.approx((ci.low, ci.high), rel=1e-6)
    assert r.incremental == pytest.approx((t.mean() - c.mean()) * 2000)
    assert r.incremental_roas == pytest.approx(r.incremental / 1000.0)
    assert "incremental ROAS" in r.sentence


def test_revenue_lift_without_a_control_is_not_measured() -> None:
    r = revenue_lift(100.0, 1000.0, 50, 0.0, 0.0, 0)
    assert r.abs_lift is None and "no control group" in r.warning


def test_no_buyer_in_the_control_does_not_collapse_the_interval() -> None:
    r = conversion_lift(11, 1800, 0, 440)
    assert r.abs_ci_low < 0 < r.abs_ci_high  # the Wald interval would be 0.6% +- 0.4%, excluding zero
    assert r.p_value > 0.05 and r.sentence.startswith("No lift could be shown")


def test_a_campaign_whose_people_cannot_be_followed_to_their_orders_gets_a_lower_bound_warning() -> None:
    from jobs.effect import _identity_gap

    row = conversion_lift(60, 1_000, 40, 1_000).to_row()
    assert _identity_gap(row, 0.95) == {} and _identity_gap(row, None) == {}
    gap = _identity_gap(row, 0.3)
    assert "only 30% of this campaign's people" in gap["warning"] and "lower bound" in gap["sentence"]
    small = conversion_lift(1, 10, 0, 10).to_row()
    assert _identity_gap(small, 0.3)["warning"].startswith(small["warning"] + "; only 30%")
