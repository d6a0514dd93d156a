"""Multi-touch attribution of orders to the ad touches before them, across media and campaigns.

A touch is a delivery-log row of a OneID (by default impressions and clicks) in the ``lookback_days``
before an order of that OneID. Each order's credit (summing to 1) goes to the touches' ``(media,
campaign_id)`` by model:

- ``last_touch``: all to the last touch before the order; ``first_touch``: all to the first;
- ``linear``: equal shares per touch;
- ``time_decay``: shares proportional to ``0.5 ** (age / half_life_days)``, age = order time - touch time;
- ``markov`` (data-driven, optional): shares proportional to each channel's removal effect in a first-order
  Markov chain of every OneID's path (converting and not), among the channels on the order's path.

Ties on touch time break on ``(media, campaign_id)`` so a rerun gives the same credit. Orders without a
touch in the look-back keep their full credit with ``media`` and ``campaign_id`` NULL (unattributed), so
every order appears under every model and credits of one order and model add up to 1.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

Transform = Callable[[DataFrame], DataFrame]
RULE_MODELS = ("last_touch", "first_touch", "linear", "time_decay")
MARKOV = "markov"
MODELS = (*RULE_MODELS, MARKOV)
TOUCH_EVENTS = ("impression", "click")
_SEP = "|"
MAX_PATH = 20
"""Markov paths keep the last this many touches (long paths add states, not signal)."""


def touches(delivery: DataFrame, kinds: Sequence[str] = TOUCH_EVENTS) -> DataFrame:
    """``(oneid, touch_time, media, campaign_id)`` of keyed delivery rows of the given event types."""
    return delivery.where(F.col("oneid").isNotNull() & F.col("event_type").isin(*kinds)).select(
        "oneid", F.col("event_time").alias("touch_time"), "media", "campaign_id"
    )


def order_touches(touch: DataFrame, lookback_days: int) -> Transform:
    """A transform of orders to one row per order and touch of its OneID in the ``lookback_days`` before it,
    with ``age_days``: what every model starts from (a caller running several models checkpoints it once
    and passes it as ``joined``)."""

    def transform(orders: DataFrame) -> DataFrame:
        seconds = F.unix_timestamp("order_time") - F.unix_timestamp("touch_time")
        return (
            orders.join(touch, "oneid")
            .where((seconds >= 0) & (seconds <= lookback_days * 86400))
            .withColumn("age_days", seconds.cast("double") / 86400.0)
        )

    return transform


def _pairs(orders: DataFrame, touch: DataFrame, lookback_days: int, joined: DataFrame | None) -> DataFrame:
    """:func:`order_touches` of ``orders``, or ``joined`` when the caller has it already (checkpointed once
    for several models)."""
    return orders.transform(order_touches(touch, lookback_days)) if joined is None else joined


def rule_credits(
    touch: DataFrame,
    *,
    lookback_days: int = 7,
    half_life_days: float = 7.0,
    joined: DataFrame | None = None,
) -> Transform:
    """A transform of orders ``(order_id, oneid, order_time, amount)`` to their credits under the rule
    models: ``(order_id, oneid, order_time, amount, model, media, campaign_id, credit)``; ``joined`` is
    :func:`order_touches` of the same orders when the caller has it already."""

    def transform(orders: DataFrame) -> DataFrame:
        pairs = _pairs(orders, touch, lookback_days, joined)
        order = Window.partitionBy("order_id")
        asc = order.orderBy("touch_time", "media", "campaign_id")
        desc = order.orderBy(F.col("touch_time").desc(), F.col("media").desc(), F.col("campaign_id").desc())
        decay = F.pow(F.lit(0.5), F.col("age_days") / F.lit(float(half_life_days)))
        ranked = pairs.select(
            "*",
            F.row_number().over(asc).alias("_first"),
            F.row_number().over(desc).alias("_last"),
            F.count("*").over(order).alias("_n"),
            (decay / F.sum(decay).over(order)).alias("_decay"),
        )
        credit = {
            "last_touch": F.when(F.col("_last") == 1, 1.0).otherwise(0.0),
            "first_touch": F.when(F.col("_first") == 1, 1.0).otherwise(0.0),
            "linear": F.lit(1.0) / F.col("_n"),
            "time_decay": F.col("_decay"),
        }
        keys = ["order_id", "oneid", "order_time", "amount", "media", "campaign_id"]
        parts = [ranked.select(*keys, F.lit(m).alias("model"), c.alias("credit")) for m, c in credit.items()]
        out = parts[0]
        for p in parts[1:]:
            out = out.unionByName(p)
        credited = (
            out.groupBy("order_id", "oneid", "order_time", "amount", "model", "media", "campaign_id")
            .agg(F.sum("credit").alias("credit"))
            .where(F.col("credit") > 0)
        )
        return credited.unionByName(_unattributed(orders, pairs, RULE_MODELS))

    return transform


def _unattributed(orders: DataFrame, joined: DataFrame, models: Sequence[str]) -> DataFrame:
    """Orders without any touch in the look-back: full credit, media and campaign NULL, under each model."""
    touched = joined.select("order_id").distinct()
    alone = orders.join(touched, "order_id", "left_anti")
    return alone.select(
        "order_id",
        "oneid",
        "order_time",
        "amount",
        F.explode(F.array(*[F.lit(m) for m in models])).alias("model"),
        F.lit(None).cast("string").alias("media"),
        F.lit(None).cast("string").alias("campaign_id"),
        F.lit(1.0).alias("credit"),
    )


def markov_removal_effects(paths: Iterable[tuple[Sequence[str], int, int]]) -> dict[str, float]:
    """Removal effects of channels in a first-order Markov chain of paths.

    Args:
        paths: ``(channels in time order, conversions, non-conversions)`` per distinct path.

    Returns:
        Channel -> its removal effect: the share of conversions lost when the channel is removed (every
        transition into it goes to non-conversion instead), 0..1. Empty when nothing converted.
    """
    counts: Counter[tuple[str, str]] = Counter()
    channels: set[str] = set()
    for path, conv, null in paths:
        path = list(path)[-MAX_PATH:]
        channels.update(path)
        states = ["(start)", *path]
        for a, b in itertools.pairwise(states):
            counts[(a, b)] += conv + null
        if conv:
            counts[(states[-1], "(conversion)")] += conv
        if null:
            counts[(states[-1], "(null)")] += null
    names = ["(start)", *sorted(channels)]
    index = {s: i for i, s in enumerate(names)}

    def p_conversion(removed: str | None) -> float:
        n = len(names)
        q = np.zeros((n, n))  # transitions among transient states
        r = np.zeros(n)  # transition into conversion
        totals: Counter[str] = Counter()
        for (a, _), c in counts.items():
            totals[a] += c
        for (a, b), c in counts.items():
            if a == removed or totals[a] == 0:
                continue
            if b == "(conversion)":
                r[index[a]] += c / totals[a]
            elif b in index and b != removed:
                q[index[a], index[b]] += c / totals[a]
        # absorbing chain: x = Q x + r  ->  (I - Q) x = r
        x = np.linalg.lstsq(np.eye(n) - q, r, rcond=None)[0]
        return float(x[index["(start)"]])

    base = p_conversion(None)
    if base <= 0:
        return {}
    return {c: max(0.0, 1.0 - p_conversion(c) / base) for c in sorted(channels)}


def channel_key(media: str | None, campaign_id: str | None) -> str:
    """The Markov state of a touch: its media and campaign."""
    return f"{media}{_SEP}{campaign_id}"


def markov_paths(
    touch: DataFrame, orders: DataFrame, *, lookback_days: int = 7, joined: DataFrame | None = None
) -> DataFrame:
    """``(path, conversions, nulls)``: each order's touches in the look-back (a converting path) and each
    touched OneID without an order (its touches as a non-converting path), channels in time order with
    repeats of the same channel in a row collapsed; small enough to collect (one row per distinct path).
    ``joined`` is :func:`order_touches` of the orders when the caller has it already."""
    channel = F.concat_ws(_SEP, F.coalesce("media", F.lit("None")), F.coalesce("campaign_id", F.lit("None")))
    pairs = _pairs(orders, touch, lookback_days, joined)
    conv = pairs.groupBy("order_id").agg(
        F.array_sort(F.collect_list(F.struct("touch_time", channel.alias("c")))).alias("t")
    )
    buyers = orders.select("oneid").distinct()
    null = (
        touch.join(buyers, "oneid", "left_anti")
        .groupBy("oneid")
        .agg(F.array_sort(F.collect_list(F.struct("touch_time", channel.alias("c")))).alias("t"))
    )
    path = F.concat_ws(">", F.expr("transform(t, x -> x.c)"))
    both = conv.select(path.alias("path"), F.lit(1).alias("c"), F.lit(0).alias("n")).unionByName(
        null.select(path.alias("path"), F.lit(0).alias("c"), F.lit(1).alias("n"))
    )
    return both.groupBy("path").agg(F.sum("c").alias("conversions"), F.sum("n").alias("nulls"))


def collapse(path: str) -> list[str]:
    """A collected path string as channels, repeats in a row collapsed."""
    out: list[str] = []
    for c in path.split(">") if path else []:
        if not out or out[-1] != c:
            out.append(c)
    return out


def markov_credits(
    touch: DataFrame, effects: DataFrame, *, lookback_days: int = 7, joined: DataFrame | None = None
) -> Transform:
    """A transform of orders to their credits under the ``markov`` model: each order's credit shared among
    the distinct channels on its path in proportion to their removal effects (``effects``: ``media,
    campaign_id, effect``); equal shares when every effect on the path is 0. ``joined`` is
    :func:`order_touches` of the same orders when the caller has it already."""

    def transform(orders: DataFrame) -> DataFrame:
        pairs = _pairs(orders, touch, lookback_days, joined)
        channels = pairs.select(
            "order_id", "oneid", "order_time", "amount", "media", "campaign_id"
        ).distinct()
        with_effect = channels.join(effects, ["media", "campaign_id"], "left").withColumn(
            "effect", F.coalesce(F.col("effect"), F.lit(0.0))
        )
        order = Window.partitionBy("order_id")
        total, n = F.sum("effect").over(order), F.count("*").over(order)
        credit = F.when(total > 0, F.col("effect") / total).otherwise(F.lit(1.0) / n)
        credited = with_effect.select(
            "order_id",
            "oneid",
            "order_time",
            "amount",
            F.lit(MARKOV).alias("model"),
            "media",
            "campaign_id",
            credit.alias("credit"),
        ).where(F.col("credit") > 0)
        return credited.unionByName(_unattributed(orders, pairs, (MARKOV,)))

    return transform
