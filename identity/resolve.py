"""Stable OneIDs: turn this run's connected components into OneIDs that survive from run to run, and record
how OneIDs merged and split since the previous run.

OneIDs are increasing integers, so the oldest of two OneIDs is the smaller one. Given the previous run's
``(vid, oneid)`` and this run's ``(vid, component)``:

- every previous OneID is *won* by the component that now holds its anchor: its strongest surviving
  identifier (smallest ``rank``, the ID-type priority of the rules, so a member id outweighs a device),
  the oldest one among equals (smallest ``vid``; vertex ids only grow, so the smallest was seen first).
  A shared tablet pruned away from a person therefore never takes the person's OneID with it;
- a component keeps the smallest OneID it won; the other OneIDs it won are **merged** into it and retire;
- a component that won nothing gets a new OneID above every OneID issued before, numbered in the order of
  the components' smallest ``vid``. When it holds identifiers of an earlier OneID, that OneID **split**.

The same inputs always give the same OneIDs, so rerunning a date reproduces its map.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from identity.components import ID_BUCKETS

CHANGE_TYPES = ("merged", "split", "retired")
"""``merged``: the old OneID retired into the new one; ``split``: some identifiers of the old OneID moved to
the new one while the rest stayed or merged elsewhere; ``retired``: none of its identifiers are left."""


def with_components(vertices: DataFrame, labels: DataFrame) -> DataFrame:
    """Add each vertex's ``component`` (its own ``vid`` when it has no edge).

    Args:
        vertices: ``(..., vid)``, every identifier of the run.
        labels: ``(vertex, component)`` from ``identity.components.connected_components``.

    Returns:
        ``vertices`` with ``component long``.
    """
    return vertices.join(labels.withColumnRenamed("vertex", "vid"), on="vid", how="left").withColumn(
        "component", F.coalesce(F.col("component"), F.col("vid")).cast("long")
    )


def number_in_order(df: DataFrame, column: str, base: int, *, buckets: int = ID_BUCKETS) -> DataFrame:
    """Number the rows ``base + 1, base + 2, ...`` in the order of ``column`` (unique, integer), in parallel.

    Rows are spread over ``buckets`` ranges of ``column``; each range is numbered by a ``row_number``
    window, and the ranges are offset by a running sum over at most ``buckets`` counts, so no step puts
    every row in one partition.

    Args:
        df: rows with a unique integer ``column``.
        column: the order.
        base: the number before the first.
        buckets: ranges numbered in parallel.

    Returns:
        ``df`` with ``number long``.
    """
    c = F.col(column)
    stats = df.agg(F.min(column).alias("_lo"), F.max(column).alias("_hi"))
    width = F.col("_hi") - F.col("_lo") + F.lit(1)
    bucketed = df.crossJoin(stats).withColumn(
        "_bucket", F.floor((c - F.col("_lo")) * F.lit(buckets) / width).cast("long")
    )
    ranked = bucketed.withColumn("_rank", F.row_number().over(Window.partitionBy("_bucket").orderBy(column)))
    offsets = (
        ranked.groupBy("_bucket")
        .agg(F.count(F.lit(1)).alias("_size"))
        .withColumn(
            "_offset",
            F.sum("_size").over(Window.partitionBy(F.lit(0)).orderBy("_bucket")) - F.col("_size"),
        )
        .select("_bucket", "_offset")
    )
    return (
        ranked.join(offsets, on="_bucket")
        .withColumn("number", (F.lit(base) + F.col("_offset") + F.col("_rank")).cast("long"))
        .drop("_lo", "_hi", "_bucket", "_rank", "_offset")
    )


def _anchor(df: DataFrame) -> F.Column:
    """The order in which identifiers anchor a OneID: strongest type first, then oldest."""
    rank = F.col("rank") if "rank" in df.columns else F.lit(0)
    return F.struct(rank.alias("rank"), F.col("vid"))


def _winners(previous: DataFrame, components: DataFrame) -> DataFrame:
    """For each previous OneID still holding identifiers: the component of its anchor."""
    held = previous.select("vid", F.col("oneid").alias("old")).join(components, on="vid")
    return held.groupBy("old").agg(F.min_by("component", _anchor(held)).alias("component"))


def assign_oneids(
    components: DataFrame, previous: DataFrame | None, *, base: int, buckets: int = ID_BUCKETS
) -> DataFrame:
    """Give every component a OneID, keeping previous OneIDs as described in the module docstring.

    Args:
        components: ``(vid, component)`` for every identifier of this run, optionally with ``rank`` (the
            priority of its ID type; without it, only age decides which part of a split keeps the OneID).
        previous: the previous run's ``(vid, oneid)``, or None on the first run.
        base: the largest OneID ever issued before (retired ones included); new OneIDs start above it.
        buckets: ranges numbered in parallel (see ``number_in_order``); does not change the result.

    Returns:
        ``components`` with ``oneid long``.
    """
    comps = components.select("component").distinct()
    if previous is None:
        fresh = comps
        kept = None
    else:
        anchors = components.select("vid", "component", *(["rank"] if "rank" in components.columns else []))
        kept = _winners(previous, anchors).groupBy("component").agg(F.min("old").alias("oneid"))
        fresh = comps.join(kept.select("component"), on="component", how="left_anti")
    numbered = number_in_order(fresh, "component", base, buckets=buckets).select(
        "component", F.col("number").alias("oneid")
    )
    oneids = numbered if kept is None else kept.unionByName(numbered)
    return components.join(oneids, on="component").select(*components.columns, "oneid")


def oneid_changes(previous: DataFrame, current: DataFrame) -> DataFrame:
    """How identifiers moved between OneIDs since the previous run.

    Args:
        previous: the previous run's ``(vid, oneid)``.
        current: this run's ``(vid, oneid)``, with ``rank`` when ``assign_oneids`` had it.

    Returns:
        ``(change_type, old_oneid, new_oneid, identifiers long)``: one row per (old, new) pair of OneIDs
        between which identifiers moved, ``merged`` when the old OneID retired into the OneID of its
        anchor, ``split`` otherwise; and one ``retired`` row (``new_oneid`` NULL) per old OneID none of
        whose identifiers is left.
    """
    ranks = ["rank"] if "rank" in current.columns else []
    held = previous.select("vid", F.col("oneid").alias("old_oneid")).join(
        current.select("vid", F.col("oneid").alias("new_oneid"), *ranks), on="vid"
    )
    winner = held.groupBy("old_oneid").agg(F.min_by("new_oneid", _anchor(held)).alias("heir"))
    moved = (
        held.where(F.col("old_oneid") != F.col("new_oneid"))
        .groupBy("old_oneid", "new_oneid")
        .agg(F.count(F.lit(1)).alias("identifiers"))
        .join(winner, on="old_oneid")
        .select(
            F.when((F.col("new_oneid") == F.col("heir")) & (F.col("heir") != F.col("old_oneid")), "merged")
            .otherwise("split")
            .alias("change_type"),
            "old_oneid",
            "new_oneid",
            F.col("identifiers").cast("long").alias("identifiers"),
        )
    )
    retired = (
        previous.groupBy(F.col("oneid").alias("old_oneid"))
        .agg(F.count(F.lit(1)).alias("identifiers"))
        .join(held.select("old_oneid").distinct(), on="old_oneid", how="left_anti")
        .select(
            F.lit("retired").alias("change_type"),
            "old_oneid",
            F.lit(None).cast("long").alias("new_oneid"),
            F.col("identifiers").cast("long").alias("identifiers"),
        )
    )
    return moved.unionByName(retired)
