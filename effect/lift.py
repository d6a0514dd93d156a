"""Incremental lift of a campaign with a holdout: pack members (treatment) against the held-out control.

Both groups were eligible for the pack and split by a hash (:mod:`effect.holdout`), so the difference of
their outcomes over the campaign's window is what the campaign caused (intention to treat: every pack
member counts, reached or not, so no self-selection of the people the platform happened to reach).

- conversion rate (bought at least once): difference of proportions, 95% CI of Agresti and Caffo (the Wald
  interval with one buyer and one non-buyer added to each group), two-sided p-value of the pooled z-test;
  relative lift with a CI by the delta method on the log ratio; incremental purchasers = difference x
  treatment size.
- revenue per person: Welch's t (means and variances from sums and sums of squares), 95% CI and p-value;
  incremental revenue = difference x treatment size; incremental ROAS = incremental revenue / cost.

Plain Python and scipy on a handful of numbers per campaign; the job computes the sums in Spark.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats

CONFIDENCE = 0.95
MIN_GROUP = 100
"""Below this many people in either group the figures are shown with a warning: too small to tell."""
MIN_CONVERSIONS = 10
"""Below this many buyers in both groups together a conversion lift cannot be told from chance."""


@dataclass(frozen=True)
class LiftResult:
    """One metric of a campaign's lift (a ``gold.effect_lift`` row without campaign and date).

    Attributes:
        metric: ``conversion_rate`` or ``revenue_per_person``.
        treatment_n, control_n: people in each group.
        treatment_value, control_value: the metric in each group.
        abs_lift, abs_ci_low, abs_ci_high: treatment minus control, with its 95% interval.
        rel_lift, rel_ci_low, rel_ci_high: ``abs_lift / control_value``, with its interval (None when the
            control value is 0 or a group has no buyer).
        p_value: two-sided, against no difference.
        incremental, incremental_ci_low, incremental_ci_high: ``abs_lift x treatment_n``: purchasers
            (conversion) or CNY (revenue) the campaign caused, with the interval.
        incremental_roas, incremental_roas_ci_low, incremental_roas_ci_high: incremental revenue per CNY
            spent (revenue metric with a cost only).
        warning: why the figures cannot be trusted (groups too small), or None.
        sentence: the result in one plain sentence.
    """

    metric: str
    treatment_n: int
    control_n: int
    treatment_value: float | None
    control_value: float | None
    abs_lift: float | None
    abs_ci_low: float | None
    abs_ci_high: float | None
    rel_lift: float | None
    rel_ci_low: float | None
    rel_ci_high: float | None
    p_value: float | None
    incremental: float | None
    incremental_ci_low: float | None
    incremental_ci_high: float | None
    incremental_roas: float | None = None
    incremental_roas_ci_low: float | None = None
    incremental_roas_ci_high: float | None = None
    warning: str | None = None
    sentence: str = ""

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def significant(self) -> bool:
        """Whether the interval excludes zero."""
        return self.abs_ci_low is not None and (self.abs_ci_low > 0 or self.abs_ci_high < 0)


def _z() -> float:
    return float(stats.norm.ppf(0.5 + CONFIDENCE / 2))


def _size_warning(n_t: int, n_c: int, buyers: int | None = None) -> str | None:
    if n_c == 0:
        return "no control group (export the pack with a holdout to measure lift)"
    if n_t < MIN_GROUP or n_c < MIN_GROUP:
        return (
            f"groups too small to tell ({n_t:,} pack members, {n_c:,} held out; at least {MIN_GROUP:,} each "
            "needed): read the lift as noise"
        )
    if buyers is not None and buyers < MIN_CONVERSIONS:
        return f"only {buyers} buyers in both groups together: too few to tell a lift from chance"
    return None


def _p_text(p: float | None) -> str:
    if p is None:
        return "p not defined"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _empty(metric: str, n_t: int, n_c: int, warning: str) -> LiftResult:
    nones: list[Any] = [None] * 12
    return LiftResult(metric, n_t, n_c, *nones, warning=warning, sentence=f"Lift not measured: {warning}.")


def conversion_lift(buyers_t: int, n_t: int, buyers_c: int, n_c: int) -> LiftResult:
    """The lift of the share of people who bought (see the module doc).

    Args:
        buyers_t: treatment members who bought in the window.
        n_t: treatment members.
        buyers_c: control members who bought in the window.
        n_c: control members.
    """
    metric = "conversion_rate"
    if n_t == 0 or n_c == 0:
        return _empty(metric, n_t, n_c, _size_warning(n_t, n_c) or "no pack members")
    p_t, p_c = buyers_t / n_t, buyers_c / n_c
    diff = p_t - p_c
    z = _z()
    # Agresti-Caffo: one buyer and one non-buyer added to each group for the interval, which keeps its
    # coverage when a group has few or no buyers (the plain Wald interval collapses to a point at 0)
    a_t, a_c = (buyers_t + 1) / (n_t + 2), (buyers_c + 1) / (n_c + 2)
    se = math.sqrt(a_t * (1 - a_t) / (n_t + 2) + a_c * (1 - a_c) / (n_c + 2))
    pooled = (buyers_t + buyers_c) / (n_t + n_c)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    p_value = float(2 * stats.norm.sf(abs(diff) / se0)) if se0 > 0 else 1.0
    low, high = (a_t - a_c) - z * se, (a_t - a_c) + z * se
    rel = rel_low = rel_high = None
    if buyers_t > 0 and buyers_c > 0:
        rel = p_t / p_c - 1
        se_log = math.sqrt((1 - p_t) / buyers_t + (1 - p_c) / buyers_c)
        rel_low = math.exp(math.log(p_t / p_c) - z * se_log) - 1
        rel_high = math.exp(math.log(p_t / p_c) + z * se_log) - 1
    warning = _size_warning(n_t, n_c, buyers_t + buyers_c)
    inc, inc_low, inc_high = diff * n_t, low * n_t, high * n_t
    groups = f"{p_t:.1%} of {n_t:,} pack members bought against {p_c:.1%} of {n_c:,} held out"
    if low > 0:
        sentence = (
            f"The campaign caused about {inc:,.0f} purchasers (95% CI {inc_low:,.0f} to {inc_high:,.0f}; "
            f"{_p_text(p_value)}): {groups}."
        )
    elif high < 0:
        sentence = (
            f"Fewer pack members bought than held-out people: about {-inc:,.0f} purchasers fewer "
            f"(95% CI {-inc_high:,.0f} to {-inc_low:,.0f}; {_p_text(p_value)}): {groups}."
        )
    else:
        sentence = (
            f"No lift could be shown: about {inc:,.0f} purchasers (95% CI {inc_low:,.0f} to {inc_high:,.0f}; "
            f"{_p_text(p_value)}): {groups}."
        )
    if warning:
        sentence += f" Warning: {warning}."
    return LiftResult(
        metric,
        n_t,
        n_c,
        p_t,
        p_c,
        diff,
        low,
        high,
        rel,
        rel_low,
        rel_high,
        p_value,
        inc,
        inc_low,
        inc_high,
        warning=warning,
        sentence=sentence,
    )


def revenue_lift(
    sum_t: float, sumsq_t: float, n_t: int, sum_c: float, sumsq_c: float, n_c: int, cost: float | None = None
) -> LiftResult:
    """The lift of revenue per person, and the incremental ROAS against ``cost`` (see the module doc).

    Args:
        sum_t, sumsq_t, n_t: revenue of each treatment member in the window: sum, sum of squares, count.
        sum_c, sumsq_c, n_c: the same for the control group.
        cost: what the campaign cost (CNY), for the incremental ROAS; None or 0 leaves it out.
    """
    metric = "revenue_per_person"
    if n_t < 2 or n_c < 2:
        return _empty(metric, n_t, n_c, _size_warning(n_t, n_c) or "fewer than two people in a group")
    m_t, m_c = sum_t / n_t, sum_c / n_c
    v_t = max(sumsq_t - n_t * m_t * m_t, 0.0) / (n_t - 1)
    v_c = max(sumsq_c - n_c * m_c * m_c, 0.0) / (n_c - 1)
    a, b = v_t / n_t, v_c / n_c
    se = math.sqrt(a + b)
    diff = m_t - m_c
    if se > 0:
        df = (a + b) ** 2 / ((a * a / (n_t - 1) if a else 0.0) + (b * b / (n_c - 1) if b else 0.0))
        t_crit = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))
        p_value = float(2 * stats.t.sf(abs(diff) / se, df))
    else:
        t_crit, p_value = 0.0, (1.0 if diff == 0 else 0.0)
    low, high = diff - t_crit * se, diff + t_crit * se
    rel = rel_low = rel_high = None
    if m_c > 0 and m_t > 0 and sum_t > 0 and sum_c > 0:
        rel = m_t / m_c - 1
        se_log = math.sqrt(a / (m_t * m_t) + b / (m_c * m_c))
        z = _z()
        rel_low = math.exp(math.log(m_t / m_c) - z * se_log) - 1
        rel_high = math.exp(math.log(m_t / m_c) + z * se_log) - 1
    inc, inc_low, inc_high = diff * n_t, low * n_t, high * n_t
    roas = roas_low = roas_high = None
    if cost:
        roas, roas_low, roas_high = inc / cost, inc_low / cost, inc_high / cost
    warning = _size_warning(n_t, n_c)
    sentence = (
        f"Revenue per pack member {m_t:,.2f} CNY against {m_c:,.2f} held out: about {inc:,.0f} CNY "
        f"incremental (95% CI {inc_low:,.0f} to {inc_high:,.0f}; {_p_text(p_value)})"
        + (f", an incremental ROAS of {roas:.2f} (95% CI {roas_low:.2f} to {roas_high:.2f})" if cost else "")
        + "."
        + (f" Warning: {warning}." if warning else "")
    )
    return LiftResult(
        metric,
        n_t,
        n_c,
        m_t,
        m_c,
        diff,
        low,
        high,
        rel,
        rel_low,
        rel_high,
        p_value,
        inc,
        inc_low,
        inc_high,
        roas,
        roas_low,
        roas_high,
        warning=warning,
        sentence=sentence,
    )
