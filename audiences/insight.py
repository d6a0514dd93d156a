"""Audience insight: for every tag value, its share in the audience, its share in the population and the TGI
(target group index = audience share / population share x 100), ordered so that the traits defining the
audience come first; and the overlap of two audiences.

Numeric and date tags are cut into bins at population quantiles (``numeric_edges``), other tags keep their
most frequent values; a missing value is shown as ``(none)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from audiences.rules import _kind

Transform = Callable[[DataFrame], DataFrame]
NONE_LABEL = "(none)"
_SEP = "\u0001"


def insight_columns(columns: Mapping[str, str], exclude: Sequence[str] = ()) -> dict[str, str]:
    """Profile columns insight describes: every tag except ``oneid``, ``dt`` and ``exclude``, by kind."""
    skip = {"oneid", "dt", *exclude}
    return {c: _kind(t) for c, t in columns.items() if c not in skip and _kind(t) != "other"}


def numeric_edges(profile: DataFrame, kinds: Mapping[str, str], bins: int = 5) -> dict[str, list[float]]:
    """Quantile cut points of the numeric tags (one small aggregate query).

    Returns:
        Tag -> sorted distinct inner edges (at most ``bins - 1``).
    """
    numeric = [c for c, k in kinds.items() if k == "number"]
    if not numeric:
        return {}
    probs = [i / bins for i in range(1, bins)]
    # One scalar percentile per expression: Sail takes no array of percentages.
    row = profile.agg(
        *[
            F.percentile_approx(F.col(f"`{c}`").cast("double"), p, 1000).alias(f"{c}__{i}")
            for c in numeric
            for i, p in enumerate(probs)
        ]
    ).collect()[0]
    return {
        c: sorted({float(row[f"{c}__{i}"]) for i in range(len(probs)) if row[f"{c}__{i}"] is not None})
        for c in numeric
    }


def _fmt(x: float) -> str:
    return f"{x:g}"


def _label(column: str, kind: str, edges: Sequence[float]) -> Column:
    col = F.col(f"`{column}`")
    if kind == "number":
        value = col.cast("double")
        if not edges:
            label = F.lit("all")
        else:
            label = F.lit(f">= {_fmt(edges[-1])}")
            for i in range(len(edges) - 1, -1, -1):
                text = f"< {_fmt(edges[0])}" if i == 0 else f"{_fmt(edges[i - 1])} - {_fmt(edges[i])}"
                label = F.when(value < F.lit(edges[i]), F.lit(text)).otherwise(label)
        return F.when(value.isNotNull(), label)
    if kind in ("date", "timestamp"):
        return F.date_format(col.cast("date"), "yyyy-MM")
    if kind == "array":
        return F.array_join(F.array_sort(col), ",")
    return col.cast("string")


def build_insight(
    members: DataFrame,
    kinds: Mapping[str, str],
    edges: Mapping[str, Sequence[float]],
    *,
    max_values: int = 20,
) -> Transform:
    """A transform of the profile to the insight table of an audience.

    Args:
        members: the audience (``oneid``).
        kinds: tag -> kind (:func:`insight_columns`).
        edges: numeric bin edges (:func:`numeric_edges`).
        max_values: values kept per tag, the most frequent in the population.

    Returns:
        A transform giving ``(tag, value, audience_count, audience_share, population_count,
        population_share, tgi, score)`` sorted by ``score`` (audience share x ln(TGI/100)): traits much more
        frequent in the audience than in the population, and held by many of its members, come first.
    """

    def transform(profile: DataFrame) -> DataFrame:
        flagged = profile.select(
            F.col("oneid").cast("string").alias("oneid"), *[F.col(f"`{c}`") for c in kinds]
        ).join(
            members.select(F.col("oneid").cast("string").alias("oneid"))
            .distinct()
            .withColumn("_in", F.lit(1)),
            "oneid",
            "left",
        )
        # Strings "tag<SEP>value", not structs: Sail mixes up field metadata of structs built from different
        # expressions in one array.
        pairs = F.array(
            *[
                F.concat(F.lit(c + _SEP), F.coalesce(_label(c, k, edges.get(c, [])), F.lit(NONE_LABEL)))
                for c, k in kinds.items()
            ]
        )
        long = flagged.select(
            F.coalesce(F.col("_in"), F.lit(0)).alias("_in"), F.explode(pairs).alias("p")
        ).select(
            "_in",
            F.substring_index("p", _SEP, 1).alias("tag"),
            F.expr(f"substring(p, instr(p, '{_SEP}') + 1)").alias("value"),
        )
        counts = long.groupBy("tag", "value").agg(
            F.sum("_in").alias("audience_count"), F.count("*").alias("population_count")
        )
        totals = flagged.agg(F.sum(F.coalesce(F.col("_in"), F.lit(0))).alias("_a"), F.count("*").alias("_p"))
        rank = Window.partitionBy("tag").orderBy(F.col("population_count").desc(), F.col("value"))
        out = (
            counts.crossJoin(totals)
            .withColumn("_rank", F.row_number().over(rank))
            .where(F.col("_rank") <= max_values)
            .select(
                "tag",
                "value",
                F.col("audience_count").cast("long").alias("audience_count"),
                (F.col("audience_count") / F.greatest(F.col("_a"), F.lit(1))).alias("audience_share"),
                F.col("population_count").cast("long").alias("population_count"),
                (F.col("population_count") / F.col("_p")).alias("population_share"),
            )
            .withColumn("tgi", F.col("audience_share") / F.col("population_share") * 100)
            .withColumn(
                "score",
                F.when(F.col("tgi") > 0, F.col("audience_share") * F.log(F.col("tgi") / 100)).otherwise(
                    F.lit(-1.0)
                ),
            )
        )
        return out.orderBy(F.col("score").desc(), F.col("tag"), F.col("value"))

    return transform


def overlap_counts(a: DataFrame, b: DataFrame) -> dict[str, int]:
    """Sizes of two audiences (``oneid``), of their intersection and of their union (one query)."""
    left = a.select(F.col("oneid").cast("string").alias("oneid")).distinct().withColumn("_a", F.lit(1))
    right = b.select(F.col("oneid").cast("string").alias("oneid")).distinct().withColumn("_b", F.lit(1))
    row = (
        left.join(right, "oneid", "full")
        .agg(
            F.sum(F.coalesce("_a", F.lit(0))).alias("a"),
            F.sum(F.coalesce("_b", F.lit(0))).alias("b"),
            F.sum(F.when(F.col("_a").isNotNull() & F.col("_b").isNotNull(), 1).otherwise(0)).alias("both"),
            F.count("*").alias("either"),
        )
        .collect()[0]
    )
    return {k: int(row[k] or 0) for k in ("a", "b", "both", "either")}
