"""Audience insight: for every tag value, its share in the audience, its share in the population and the TGI
(target group index = audience share / population share x 100), ordered so that the traits defining the
audience come first; and the overlap of two audiences.

Numeric and date tags are cut into bins at population quantiles (``numeric_edges``), other tags keep their
most frequent values; a missing value is shown as ``(none)``.

Every count a user sees follows one rule, the minimum group size ``k`` (``settings.min_group_size``): a count
from ``k`` up is shown as is; a count below ``k``, zero included (zero or one tells whether an identifier is
known), is shown as the text ``"< k"`` (:func:`public_count`); and a count that could otherwise be worked out
from the numbers shown beside it (a total minus the other cells, a size minus an intersection) is withheld,
``None`` (:func:`public_counts`, :func:`public_coverage`, :func:`public_insight_rows`,
:func:`public_overlap`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from audiences.errors import AudienceError
from audiences.rules import _kind

Transform = Callable[[DataFrame], DataFrame]
NONE_LABEL = "(none)"
_SEP = "\u0001"
PublicCount = int | str | None
"""A count as shown: the number (``>= k``), ``"< k"`` (below ``k``), or None (withheld: it would give away
another, small group)."""


class GroupTooSmallError(AudienceError):
    """An insight, overlap or seed audience would describe fewer people than the minimum group size."""


# ---- the minimum group size -------------------------------------------------------------------------------


def public_count(n: int | None, k: int) -> int | str:
    """A count as any user may see it: the number from ``k`` up, else the text ``"< k"``.

    Zero is below ``k`` too: an answer of 0 against 1 would tell whether one identifier is known.
    """
    n = int(n or 0)
    return n if n >= k else f"< {k}"


def is_shown(count: PublicCount) -> bool:
    """True when a public count is a number (neither ``"< k"`` nor withheld)."""
    return isinstance(count, int) and not isinstance(count, bool)


def public_share(count: PublicCount, total: PublicCount) -> float | None:
    """``count / total`` when both are shown, else None (a share would give the hidden count away)."""
    if is_shown(count) and is_shown(total) and total:
        return count / total  # type: ignore[operator]
    return None


def public_counts(counts: Sequence[int], total: int | None, k: int) -> list[PublicCount]:
    """The cells of one distribution (the values of one tag) as they may be shown.

    Each cell below ``k`` is ``"< k"``. When the cells shown are subtracted from the ``total`` the user also
    sees, the rest (hidden cells and values not listed) must be zero or at least ``k``, or a single hidden
    cell could be worked out; the smallest shown cells are then withheld (None) until it is.

    Args:
        counts: people per value.
        total: the people the cells add up to when every value is listed (None when no total is shown).
        k: the minimum group size.
    """
    out: list[PublicCount] = [public_count(n, k) for n in counts]
    if total is None:
        return out
    shown = sorted((n, i) for i, n in enumerate(counts) if is_shown(out[i]))
    rest = int(total) - sum(n for n, _ in shown)
    while shown and 0 < rest < k:
        n, i = shown.pop(0)
        out[i] = None
        rest += n
    return out


def public_coverage(counts: Mapping[str, int], size: int, k: int) -> dict[str, PublicCount]:
    """People with an identifier of each ID type in an audience of ``size``, as they may be shown: each count
    follows :func:`public_count`, and is withheld when the people without that ID type (``size`` minus it)
    are between 1 and ``k - 1``."""
    out: dict[str, PublicCount] = {}
    for id_type, n in counts.items():
        shown = public_count(n, k)
        out[id_type] = None if is_shown(shown) and 0 < int(size) - int(n) < k else shown
    return out


def public_overlap(counts: Mapping[str, int], k: int) -> dict[str, PublicCount]:
    """Sizes, intersection and union of two audiences (:func:`overlap_counts`) as they may be shown.

    Both sizes and the intersection follow :func:`public_count`. The intersection is withheld when either
    audience minus it (the people in one and not the other) is between 1 and ``k - 1``; the union is shown
    only when both sizes and the intersection are, since it is their sum minus the intersection.
    """
    a, b, both = (int(counts[x]) for x in ("a", "b", "both"))
    out: dict[str, PublicCount] = {
        "a": public_count(a, k),
        "b": public_count(b, k),
        "both": public_count(both, k),
    }
    if is_shown(out["both"]) and any(0 < n < k for n in (a - both, b - both)):
        out["both"] = None
    out["either"] = int(counts["either"]) if all(is_shown(out[x]) for x in ("a", "b", "both")) else None
    return out


def public_insight_rows(
    rows: Sequence[Mapping[str, Any]], k: int, audience_total: int, population_total: int
) -> list[dict[str, Any]]:
    """Rows of :func:`build_insight` (sorted, defining traits first) as they may be shown.

    Per tag and per side (audience, population) the counts follow :func:`public_counts` against the side's
    total (every person has exactly one value of each tag). A hidden count loses its share, and a row with
    either side hidden loses its TGI and score. Rows without a TGI move to the end, by tag and value, so that
    their place in the order tells nothing of their counts.

    Args:
        rows: dicts with ``tag, value, audience_count, audience_share, population_count, population_share,
            tgi`` (and ``score``).
        k: the minimum group size.
        audience_total: the audience's members in the profile.
        population_total: the people in the profile.
    """
    out = [dict(r) for r in rows]
    for side, total in (("audience", audience_total), ("population", population_total)):
        by_tag: dict[str, list[int]] = {}
        for i, r in enumerate(out):
            by_tag.setdefault(r["tag"], []).append(i)
        for positions in by_tag.values():
            shown = public_counts([int(out[i][f"{side}_count"]) for i in positions], total, k)
            for i, count in zip(positions, shown, strict=True):
                out[i][f"{side}_count"] = count
                if not is_shown(count):
                    out[i][f"{side}_share"] = None
    for r in out:
        if r["audience_share"] is None or r["population_share"] is None:
            r["tgi"] = None
            if "score" in r:
                r["score"] = None
    kept = [r for r in out if r["tgi"] is not None]
    hidden = sorted((r for r in out if r["tgi"] is None), key=lambda r: (str(r["tag"]), str(r["value"])))
    return kept + hidden


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
