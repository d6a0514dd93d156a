"""Match creators to a target audience (达人匹配): how much of each creator's engaged audience falls in the
target, how many of them are not customers yet, and what reaching them costs.

    engagers (creator_id, oneid) + target (oneid) + customers (oneid) + profile (oneid)
        -> build_match_counts: (creator_id, engaged, in_target, new_in_target) and the population totals
    counts + creator features (price, category, followers)
        -> rank_creators (driver, a few thousand creators at most): scores, reasons, budget

The score blends three percentile ranks: the TGI of the target in the creator's audience, shrunk towards
100 for small audiences (``PRIOR_PEOPLE`` pseudo-people at the population rate, so 3 of 4 engagers in the
target does not beat 300 of 600); the reach of new people (in the target, not customers yet); and cost
efficiency (target engagers per yuan of one post). A creator without a price gets the middle rank for cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

PRIOR_PEOPLE = 30.0
WEIGHTS = {"tgi": 0.6, "reach": 0.2, "cost": 0.2}


def build_match_counts(
    engagers: DataFrame, target: DataFrame, customers: DataFrame, profile: DataFrame
) -> DataFrame:
    """Per creator: engaged people in the profile, those in the target, and those not customers yet.

    Args:
        engagers: ``(creator_id, oneid)``.
        target: the target audience's members (``oneid``).
        customers: OneIDs that already bought (``oneid``).
        profile: the OneIDs of the population (``oneid``).

    Returns:
        ``(creator_id, engaged, in_target, new_in_target, population, target_population)``: the last two
        are the profile's size and the target members in it, the same on every row.
    """

    def ids(df: DataFrame, flag: str) -> DataFrame:
        return df.select(F.col("oneid").cast("string").alias("oneid")).distinct().withColumn(flag, F.lit(1))

    people = (
        ids(profile, "_p")
        .join(ids(target, "_t"), "oneid", "left")
        .join(ids(customers, "_c"), "oneid", "left")
    )
    totals = people.agg(F.count("*").alias("population"), F.count("_t").alias("target_population"))
    audience = engagers.select("creator_id", F.col("oneid").cast("string").alias("oneid")).distinct()
    counts = (
        audience.join(people, "oneid")
        .groupBy("creator_id")
        .agg(
            F.count("*").alias("engaged"),
            F.count("_t").alias("in_target"),
            F.sum(F.when(F.col("_t").isNotNull() & F.col("_c").isNull(), 1).otherwise(0)).alias(
                "new_in_target"
            ),
        )
    )
    return counts.crossJoin(totals)


@dataclass
class CreatorMatch:
    """One creator of a match, with the numbers behind its score and the reasons in words."""

    creator_id: str
    creator_name: str | None
    platform: str | None
    category: str | None
    followers: int | None
    price_per_post: float | None
    engaged: int
    in_target: int
    new_in_target: int
    target_share: float
    tgi: float
    tgi_smoothed: float
    cost_per_target: float | None
    score: float
    growth_30d: float | None = None
    rank: int = 0
    reasons: list[str] = field(default_factory=list)


def _pct_ranks(values: Sequence[float | None]) -> list[float]:
    """Percentile rank in [0, 1] of each value (ties share the mean rank); None gets 0.5."""
    known = sorted(v for v in values if v is not None)
    n = len(known)
    out = []
    for v in values:
        if v is None or n <= 1:
            out.append(0.5)
            continue
        below = sum(1 for x in known if x < v)
        equal = sum(1 for x in known if x == v)
        out.append((below + (equal - 1) / 2) / (n - 1))
    return out


def rank_creators(
    counts: Sequence[Mapping[str, Any]],
    creators: Mapping[str, Mapping[str, Any]],
    *,
    categories: Sequence[str] = (),
    budget: float | None = None,
    weights: Mapping[str, float] = WEIGHTS,
) -> list[CreatorMatch]:
    """Score and order the creators of :func:`build_match_counts` rows; reasons per creator.

    Args:
        counts: rows of :func:`build_match_counts`.
        creators: creator_id -> its latest features (``creator_name``, ``platform``, ``category``,
            ``followers``, ``price_per_post``, ``growth_30d``); creators without statistics still rank.
        categories: keep only creators of these categories (empty keeps all).
        budget: keep the best creators whose prices add up to at most this (a creator without a price
            does not fit a budget).
        weights: weights of the ``tgi``, ``reach`` and ``cost`` percentile ranks.

    Returns:
        The creators by score, best first, ``rank`` from 1.
    """
    wanted = {c.lower() for c in categories}
    rows = []
    for r in counts:
        info = creators.get(r["creator_id"], {})
        if wanted and str(info.get("category") or "").lower() not in wanted:
            continue
        rows.append((r, info))
    out = []
    for r, info in rows:
        engaged, in_target = int(r["engaged"]), int(r["in_target"])
        base = int(r["target_population"]) / max(int(r["population"]), 1)
        share = in_target / engaged if engaged else 0.0
        smoothed = (in_target + PRIOR_PEOPLE * base) / (engaged + PRIOR_PEOPLE)
        price = info.get("price_per_post")
        out.append(
            CreatorMatch(
                creator_id=r["creator_id"],
                creator_name=info.get("creator_name"),
                platform=info.get("platform"),
                category=info.get("category"),
                followers=info.get("followers"),
                price_per_post=price,
                engaged=engaged,
                in_target=in_target,
                new_in_target=int(r["new_in_target"]),
                target_share=share,
                tgi=share / base * 100 if base else 0.0,
                tgi_smoothed=smoothed / base * 100 if base else 0.0,
                cost_per_target=price / in_target if price and in_target else None,
                score=0.0,
                growth_30d=info.get("growth_30d"),
            )
        )
    tgi = _pct_ranks([m.tgi_smoothed for m in out])
    reach = _pct_ranks([math.log1p(m.new_in_target) for m in out])
    cost = _pct_ranks([(m.in_target / m.price_per_post) if m.price_per_post else None for m in out])
    for m, a, b, c in zip(out, tgi, reach, cost, strict=True):
        m.score = round(weights["tgi"] * a + weights["reach"] * b + weights["cost"] * c, 4)
    out.sort(key=lambda m: (-m.score, -m.tgi_smoothed, m.creator_id))
    if budget is not None:
        kept, spent = [], 0.0
        for m in out:
            if m.price_per_post and spent + m.price_per_post <= budget:
                kept.append(m)
                spent += m.price_per_post
        out = kept
    for i, m in enumerate(out, 1):
        m.rank = i
        m.reasons = match_reasons(m)
    return out


def match_reasons(m: CreatorMatch, show: Callable[[int], Any] = lambda n: n) -> list[str]:
    """Why a creator ranks where it does, in words a marketer reads.

    Args:
        m: the creator's match.
        show: how a count of people is written (the caller's minimum group size rule).
    """
    reasons = [
        f"TGI {m.tgi_smoothed:.0f}: its engaged audience is {m.tgi_smoothed / 100:.2f}x as likely to be in "
        "the target as the whole population",
        f"{show(m.in_target)} engaged people in the target, {show(m.new_in_target)} of them not customers "
        "yet",
    ]
    if m.cost_per_target is not None:
        reasons.append(
            f"¥{m.cost_per_target:,.1f} per engaged target person (¥{m.price_per_post:,.0f} per post)"
        )
    else:
        reasons.append("no price per post known: cost not ranked")
    if m.growth_30d is not None:
        reasons.append(f"followers {m.growth_30d:+.1%} in the last 30 days")
    return reasons
