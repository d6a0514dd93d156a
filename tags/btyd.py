"""BG/NBD ("buy till you die") model of repeat purchases: the benchmark the purchase propensity must match.

Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the Pareto/NBD model",
Marketing Science 24(2). While active, a customer buys as a Poisson process with rate
``lambda ~ Gamma(r, alpha)``; after every repeat purchase they drop out for good with probability
``p ~ Beta(a, b)``. A customer's history before a cutoff is summed up by ``(x, t_x, T)``: ``x`` repeat
purchase days, ``t_x`` days from the first to the last purchase day, ``T`` days from the first purchase day
to the cutoff.

Where it sits in the pipeline: ``summary`` turns an order table into ``(oneid, x, t_x, T)`` on the engine,
``triple_counts`` brings the distinct triples with their counts to the driver (the fit costs what the
distinct triples cost, not what the people cost), ``fit`` maximises the closed-form log-likelihood with
scipy, and ``p_purchase`` / ``build_p_purchase`` give P(at least one purchase in the next ``t`` days) on the
driver (numpy) or per person on the engine (a Spark Column, no UDF). ``grouped_auc`` measures a score that
is constant within groups (a triple) from the groups' positive and negative counts, so the holdout AUC
needs no per-person collect either. ``jobs.tags`` reports that AUC beside the model's (``gold.models``).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from scipy import optimize, special

SUMMARY_COLUMNS = ("x", "t_x", "T")
FEATURE = "btyd_p_purchase"
"""The feature a purchase model gets from BG/NBD: P(at least one purchase in the model's horizon)."""
# A label counting purchases in the horizon: "> 0" (a purchase) or "= 0" (no purchase: churn).
_BOUGHT = re.compile(r"^\s*count\s*\(.*\)\s*(>\s*0|>=\s*1)\s*$", re.IGNORECASE | re.DOTALL)
_QUIET = re.compile(r"^\s*count\s*\(.*\)\s*(=|==|<\s*1|<=\s*0)\s*0?\s*$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class BgNbd:
    """Fitted BG/NBD parameters (time unit: days) and the fit's log-likelihood."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    customers: int = 0


def summary(
    as_of: _dt.date, time_column: str = "order_time", key: str = "oneid"
) -> Callable[[DataFrame], DataFrame]:
    """A transform from purchase rows (``key``, ``time_column``; already filtered to real purchases, e.g.
    paid orders) to one ``(key, x, t_x, T)`` row per customer with a purchase on or before ``as_of``.

    Purchases are counted per day (several orders on one day are one purchase), so ``x`` is the number of
    purchase days after the first, ``t_x`` the days from the first to the last purchase day and ``T`` the days
    from the first purchase day to ``as_of``.
    """

    def transform(purchases: DataFrame) -> DataFrame:
        day = F.to_date(F.col(time_column))
        days_ago = F.datediff(F.lit(as_of), day)
        rows = purchases.where(day <= F.lit(as_of)).select(F.col(key), days_ago.alias("_ago"))
        return rows.groupBy(key).agg(
            (F.count_distinct("_ago") - F.lit(1)).cast("long").alias("x"),
            (F.max("_ago") - F.min("_ago")).cast("long").alias("t_x"),
            F.max("_ago").cast("long").alias("T"),
        )

    return transform


def triple_counts(summaries: DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, t_x, T, n)`` arrays: the distinct triples of ``summaries`` and how many customers have each."""
    rows = summaries.groupBy(*SUMMARY_COLUMNS).count().orderBy(*SUMMARY_COLUMNS).collect()
    if not rows:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    x, t_x, big_t, n = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    return x, t_x, big_t, n


def _log_terms(params, x, t_x, big_t):
    """The two log-terms of the individual likelihood (alive at T; dropped out after the last purchase)
    without the common ``log Gamma(r+x) - log Gamma(r) + r log alpha`` factor."""
    r, alpha, a, b = params
    alive = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + big_t)
    repeat = x > 0
    dropped = np.full_like(alive, -np.inf)
    xs = x[repeat]
    dropped[repeat] = (
        special.betaln(a + 1, b + xs - 1) - special.betaln(a, b) - (r + xs) * np.log(alpha + t_x[repeat])
    )
    return alive, dropped


def log_likelihood(
    params: tuple[float, float, float, float], x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
) -> np.ndarray:
    """The BG/NBD log-likelihood of each ``(x, t_x, T)`` (FHL 2005, eq. 6), vectorised."""
    r, alpha, _, _ = params
    x, t_x, big_t = (np.asarray(v, dtype=float) for v in (x, t_x, big_t))
    alive, dropped = _log_terms(params, x, t_x, big_t)
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    return common + np.logaddexp(alive, dropped)


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    """``u . v`` without BLAS: a multi-threaded ``ddot`` waking its threads on busy cores took milliseconds
    for what takes tens of microseconds on one."""
    return float(np.multiply(u, v).sum())


class _Objective:
    """The fit's objective (the customers' mean negative log-likelihood plus the ridge) and its analytic
    gradient, as functions of the log-parameters.

    Every term that depends on one of ``x``, ``t_x`` or ``T`` alone (the log-gamma, beta and digamma functions
    of ``x``, the logarithms of ``alpha + t_x`` and ``alpha + T``) is computed once per distinct value of that
    column and indexed per triple: there are a few hundred distinct values where there are tens of thousands
    of triples, so an evaluation costs a handful of array operations over the triples.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, n: np.ndarray) -> None:
        self.w = n / float(n.sum())
        self.x = x
        self.ux, self.ix = np.unique(x, return_inverse=True)
        self.ut_x, self.it_x = np.unique(t_x, return_inverse=True)
        self.ut, self.it = np.unique(big_t, return_inverse=True)
        self.wx = np.bincount(self.ix, weights=self.w, minlength=len(self.ux))
        self.repeat = self.ux > 0

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(theta)
        ux, ix, rep, wx, w = self.ux, self.ix, self.repeat, self.wx, self.w
        # Terms of x alone (FHL 2005, eq. 6): the common factor, and the beta functions of the two log-terms.
        common = special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha)
        beta_ab = special.betaln(a, b)
        alive_x = special.betaln(a, b + ux) - beta_ab
        dropped_x = np.full_like(ux, -np.inf)  # no repeat purchase, no dropout after one
        dropped_x[rep] = special.betaln(a + 1, b + ux[rep] - 1) - beta_ab
        inv_t, inv_tx = 1.0 / (alpha + self.ut), 1.0 / (alpha + self.ut_x)
        log_t, log_tx = -np.log(inv_t)[self.it], -np.log(inv_tx)[self.it_x]
        rx = r + self.x
        alive = alive_x[ix] - rx * log_t
        dropped = dropped_x[ix] - rx * log_tx
        both = np.logaddexp(alive, dropped)
        w_alive, w_dropped = np.exp(alive - both), np.exp(dropped - both)
        ll = _dot(wx, common) + _dot(w, both)
        # d(log-likelihood)/d(parameter); digamma is the derivative of the log-gamma (and log-beta) terms, and
        # the derivative of log(e^alive + e^dropped) weighs the two terms' derivatives by w_alive, w_dropped.
        psi_ab, psi_abx = special.digamma(a + b), special.digamma(a + b + ux)
        inv_bx1 = np.zeros_like(ux)
        inv_bx1[rep] = 1.0 / (b + ux[rep] - 1)
        d_r = _dot(wx, special.digamma(r + ux) - special.digamma(r) + np.log(alpha)) - _dot(
            w, w_alive * log_t + w_dropped * log_tx
        )
        d_alpha = r / alpha - _dot(w, rx * (w_alive * inv_t[self.it] + w_dropped * inv_tx[self.it_x]))
        d_a = _dot(wx, psi_ab - psi_abx) + _dot(w, w_dropped) / a
        d_b = _dot(wx, psi_ab - special.digamma(b) - psi_abx + special.digamma(b + ux)) - _dot(
            w, w_dropped * inv_bx1[ix]
        )
        grad = -np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b]) + 2e-6 * theta
        return float(-ll + 1e-6 * _dot(theta, theta)), grad


def fit(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, n: np.ndarray | None = None) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters for summaries ``(x, t_x, T)``, each counted ``n`` times.

    The parameters are optimised on the log scale (L-BFGS-B with the analytic gradient, bounded so that no
    parameter runs off to 0 or infinity on a degenerate history); a tiny ridge on the log-parameters keeps the
    optimum finite when the data cannot tell two parameters apart (e.g. nobody ever repeats). With the
    gradient the fit takes a few dozen evaluations of the likelihood where numerical differences took
    five per step.

    Raises:
        ValueError: no customers.
    """
    x, t_x, big_t = (np.asarray(v, dtype=float) for v in (x, t_x, big_t))
    n = np.ones_like(x) if n is None else np.asarray(n, dtype=float)
    total = float(n.sum())
    if total <= 0:
        raise ValueError("BG/NBD needs at least one customer with a purchase")
    objective = _Objective(x, t_x, big_t, n)
    start = np.log([1.0, max(float((n * big_t).sum() / total), 1.0), 1.0, 1.0])
    # Tolerances below scipy's defaults: with the exact gradient they cost two or three evaluations more and
    # put the parameters within ~1e-6 of the optimum (the defaults stopped up to 5e-4 away).
    best = optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-9.0, 12.0)] * 4,
        options={"ftol": 1e-12, "gtol": 1e-9},
    )
    if not best.success:  # a rough surface: Nelder-Mead from where L-BFGS-B stopped
        best = optimize.minimize(
            lambda theta: objective(theta)[0], best.x, method="Nelder-Mead", options={"maxiter": 4000}
        )
    r, alpha, a, b = (float(v) for v in np.exp(best.x))
    ll = float((n * log_likelihood((r, alpha, a, b), x, t_x, big_t)).sum())
    return BgNbd(r, alpha, a, b, log_likelihood=ll, customers=int(total))


def p_alive(model: BgNbd, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    """P(still active at T | x, t_x, T) (FHL 2005, eq. 11)."""
    x, t_x, big_t = (np.asarray(v, dtype=float) for v in (x, t_x, big_t))
    alive, dropped = _log_terms((model.r, model.alpha, model.a, model.b), x, t_x, big_t)
    return np.exp(alive - np.logaddexp(alive, dropped))


def p_no_purchase(model: BgNbd, t: float, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    """P(no purchase in (T, T + t] | x, t_x, T).

    Dropout happens only right after a purchase, so a customer active at T makes no purchase in the next
    ``t`` days with probability ``exp(-lambda t)``; integrated over the posterior of ``lambda`` this is
    ``((alpha + T) / (alpha + T + t)) ** (r + x)``, and a customer who has dropped out buys nothing:
    ``P0 = P(alive) * ((alpha + T) / (alpha + T + t)) ** (r + x) + 1 - P(alive)``, i.e. the likelihood of the
    history seen up to ``T + t`` over the likelihood up to ``T``. For a new customer (``x = t_x = T = 0``) it
    is FHL 2005's P(X(t) = 0) = ``(alpha / (alpha + t)) ** r``.
    """
    x, t_x, big_t = (np.asarray(v, dtype=float) for v in (x, t_x, big_t))
    alive = p_alive(model, x, t_x, big_t)
    stay_quiet = np.exp((model.r + x) * (np.log(model.alpha + big_t) - np.log(model.alpha + big_t + t)))
    return alive * stay_quiet + 1.0 - alive


def p_purchase(model: BgNbd, t: float, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    """P(at least one purchase in (T, T + t] | x, t_x, T): what competes with a purchase propensity."""
    return 1.0 - p_no_purchase(model, t, x, t_x, big_t)


def expected_purchases(
    model: BgNbd, t: float, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, eq. 10; needs ``a > 1``, NaN otherwise)."""
    x, t_x, big_t = (np.asarray(v, dtype=float) for v in (x, t_x, big_t))
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    if a <= 1:
        return np.full_like(x, np.nan)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + big_t + t))
    head = (a + b + x - 1) / (a - 1) * (1 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * hyp)
    return head * p_alive(model, x, t_x, big_t)


def build_p_purchase(model: BgNbd, t: float, x: str = "x", t_x: str = "t_x", big_t: str = "T") -> Column:
    """P(at least one purchase in the next ``t`` days) of the summary columns, as a Spark Column (the same
    closed form as :func:`p_purchase`; NULL where the summary is NULL, i.e. no purchase yet)."""
    r, alpha, a, b = (F.lit(float(v)) for v in (model.r, model.alpha, model.a, model.b))
    cx, ctx, ct = F.col(x).cast("double"), F.col(t_x).cast("double"), F.col(big_t).cast("double")
    ratio = F.when(
        cx > 0, a / (b + cx - 1) * F.exp((r + cx) * (F.log(alpha + ct) - F.log(alpha + ctx)))
    ).otherwise(F.lit(0.0))
    alive = F.lit(1.0) / (F.lit(1.0) + ratio)
    quiet = F.exp((r + cx) * (F.log(alpha + ct) - F.log(alpha + ct + F.lit(float(t)))))
    return F.when(cx.isNotNull(), alive * (F.lit(1.0) - quiet))


def grouped_auc(scores: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> float:
    """ROC AUC of a score that is constant within groups, from each group's positive and negative counts
    (ties count one half, as ``sklearn.metrics.roc_auc_score`` does); NaN with only one class."""
    scores, pos, neg = (np.asarray(v, dtype=float) for v in (scores, positives, negatives))
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos == 0 or total_neg == 0:
        return float("nan")
    levels, where = np.unique(scores, return_inverse=True)
    pos_at = np.bincount(where, weights=pos, minlength=len(levels))
    neg_at = np.bincount(where, weights=neg, minlength=len(levels))
    neg_below = np.cumsum(neg_at) - neg_at
    return float(((neg_below + 0.5 * neg_at) * pos_at).sum() / (total_pos * total_neg))


def simulate(
    model: BgNbd, customers: int, big_t: float, t: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Simulate the BG/NBD process for ``customers`` whose first purchase was ``big_t`` days before the
    cutoff: ``(x, t_x, T, bought_after)``, the last being whether they buy in the ``t`` days after it.

    For tests and for checking a fit; numpy only, vectorised over customers.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(model.r, 1.0 / model.alpha, customers)
    p = rng.beta(model.a, model.b, customers)
    now = np.zeros(customers)
    x = np.zeros(customers)
    t_x = np.zeros(customers)
    after = np.zeros(customers, dtype=bool)
    active = np.ones(customers, dtype=bool)
    end = big_t + t
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0 / lam[idx])
        past_end = now[idx] > end
        active[idx[past_end]] = False
        idx = idx[~past_end]
        before = now[idx] <= big_t
        x[idx[before]] += 1
        t_x[idx[before]] = now[idx[before]]
        after[idx[~before]] = True
        # Only the first purchase after the cutoff matters; earlier ones may end the customer's life.
        active[idx[~before]] = False
        died = rng.random(len(idx)) < p[idx]
        active[idx[before & died]] = False
    return x, t_x, np.full(customers, float(big_t)), after


def label_direction(task: str, view: str, value: str) -> int | None:
    """Whether a model's label is a purchase in its horizon (``1``), no purchase in it (``-1``, churn), or
    neither (``None``: no BG/NBD benchmark), from the label's view and aggregate (``count(...) > 0``)."""
    if task != "classification" or view != "orders":
        return None
    if _BOUGHT.match(value):
        return 1
    if _QUIET.match(value):
        return -1
    return None


@dataclass(frozen=True)
class LabelledTriples:
    """A labelled population grouped by summary triple: ``x``, ``t_x``, ``T``, ``positives``, ``negatives``
    per distinct triple of the customers, and the labels of the prospects (no purchase before the cutoff)."""

    x: np.ndarray
    t_x: np.ndarray
    big_t: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray
    prospect_positives: float = 0.0
    prospect_negatives: float = 0.0


def labelled_triples(labels: DataFrame, summaries: DataFrame, key: str = "oneid") -> LabelledTriples:
    """Group ``labels`` (``key``, ``label``; positive when it is true or above 0) by the summary triple of
    each ``key`` (``summaries`` from :func:`summary`) and bring the groups, not the people, to the driver."""
    positive = (F.col("label").cast("double") > 0).cast("long")
    grouped = (
        labels.select(key, "label")
        .join(summaries.select(key, *SUMMARY_COLUMNS), key, "left")
        .groupBy(*SUMMARY_COLUMNS)
        .agg(F.sum(positive).alias("pos"), F.sum(F.lit(1) - positive).alias("neg"))
        .orderBy(*SUMMARY_COLUMNS)
        .collect()
    )
    prospects = [g for g in grouped if g["x"] is None]
    rows = [g for g in grouped if g["x"] is not None]
    columns = [np.array([g[c] for g in rows], dtype=float) for c in (*SUMMARY_COLUMNS, "pos", "neg")]
    return LabelledTriples(
        *columns,
        prospect_positives=float(sum(g["pos"] for g in prospects)),
        prospect_negatives=float(sum(g["neg"] for g in prospects)),
    )


def benchmark(train: LabelledTriples, holdout: LabelledTriples, horizon_days: int, direction: int) -> dict:
    """Fit BG/NBD on the training window's customers and measure its P(purchase in ``horizon_days``) on the
    holdout: ``btyd_auc`` and the parameters, for a model's metrics.

    Prospects (no purchase before the cutoff) are outside BG/NBD; they score the share of the training
    window's prospects whose label was positive (one tied group in the AUC, as any single score would be).

    Args:
        train: the training window's labelled triples (the fit uses the triples, not the labels).
        holdout: the holdout window's labelled triples.
        horizon_days: the label's horizon.
        direction: ``1`` when the label is a purchase, ``-1`` when it is no purchase (churn).
    """
    counts = train.positives + train.negatives
    if counts.sum() == 0:
        return {"btyd_auc": float("nan"), "btyd_customers": 0}
    model = fit(train.x, train.t_x, train.big_t, counts)
    bought = p_purchase(model, horizon_days, holdout.x, holdout.t_x, holdout.big_t)
    scores = bought if direction == 1 else 1.0 - bought
    seen = train.prospect_positives + train.prospect_negatives
    prospect = train.prospect_positives / seen if seen else (0.0 if direction == 1 else 1.0)
    auc = grouped_auc(
        np.append(scores, prospect),
        np.append(holdout.positives, holdout.prospect_positives),
        np.append(holdout.negatives, holdout.prospect_negatives),
    )
    return {
        "btyd_auc": auc,
        "btyd_direction": direction,
        "btyd_prospect_score": prospect,
        "btyd_r": model.r,
        "btyd_alpha": model.alpha,
        "btyd_a": model.a,
        "btyd_b": model.b,
        "btyd_customers": model.customers,
        "btyd_triples": len(counts),
    }


def champion(metrics: dict) -> dict:
    """A model's holdout metrics with the published scorer chosen: ``selected`` is ``bg_nbd`` when the BG/NBD
    benchmark ranked the holdout better than the model (``auc`` is then BG/NBD's and the model's moves to
    ``model_auc``), else ``model``; unchanged without a benchmark.

    The choice is made on the holdout that measures it: with two candidates the optimism is small, and a
    deployment whose data cannot beat BG/NBD (transactions only, little history) still gets BG/NBD.
    """
    bench = metrics.get("btyd_auc")
    if bench is None or not np.isfinite(bench):
        return metrics
    auc = metrics.get("auc")
    if auc is not None and np.isfinite(auc) and auc >= bench:
        return metrics | {"selected": "model"}
    return metrics | {"selected": "bg_nbd", "model_auc": auc, "auc": bench}


def build_score(metrics: dict) -> Column:
    """The published score when BG/NBD is selected (:func:`champion`), from the :data:`FEATURE` column:
    P(purchase in the horizon), or P(none) for a churn label; prospects get the score they had on the
    holdout (the training window's prospect share)."""
    bought = F.col(FEATURE)
    score = bought if metrics["btyd_direction"] == 1 else F.lit(1.0) - bought
    return F.coalesce(score, F.lit(float(metrics["btyd_prospect_score"])))
