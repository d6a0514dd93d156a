"""The connected-components core of OneID: stable integer vertex ids for identifiers, and the components of
the identifier graph, each labelled by its smallest vertex id.

Identity resolution links identifiers (a hashed phone, a device id, an openid...) that were seen together.
``assign_vertex_ids`` gives every identifier a long ``vid`` that survives from run to run, and
``connected_components`` groups linked vids; the caller turns components into ``oneid`` values and adds the
isolated identifiers, which have no edge.

The components come from the large-star / small-star alternation of Kiveris et al., "Connected Components
in MapReduce and Beyond" (SoCC 2014): O(log n) rounds in practice, each round a few shuffles, with no state
on the driver. Rounds repeat until every component is a star around its smallest vertex; one scalar per
round, the number of vertices not yet in star shape, decides when to stop.

Lineage grows with every round, and Sail ignores ``cache()``/``persist()``, so each round's edges go
through a ``checkpoint`` callable that returns an equivalent DataFrame with short lineage. The platform's
Parquet checkpoint is the standard one (a job passes ``ctx.checkpoints("rounds")``, code without a run
``cdp.run.parquet_checkpoint(spark, folder)``); this module does no I/O itself.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from cdp.run import Checkpoint

ID_BUCKETS = 1024
"""Hash buckets used to number new identifiers in parallel (see ``assign_vertex_ids``)."""


class ComponentsError(RuntimeError):
    """Connected components did not converge within the allowed number of rounds."""


def assign_vertex_ids(
    identifiers: DataFrame, existing: DataFrame | None = None, *, buckets: int = ID_BUCKETS
) -> DataFrame:
    """Give every identifier a stable long vertex id.

    Identifiers found in ``existing`` keep their ``vid``. New identifiers are numbered densely from
    ``max(existing.vid) + 1`` (from 1 without ``existing``). The numbering is deterministic: new identifiers
    are spread over ``buckets`` hash buckets of ``(id_type, id_value)``; bucket ``b`` takes the id range
    after the new identifiers of buckets ``0..b-1``, and inside a bucket ids follow ``(id_type, id_value)``
    order. A single ``row_number`` over all rows would give a globally sorted numbering but would move every
    new identifier into one partition; with buckets, the ``row_number`` window is spread over ``buckets``
    partitions and only the per-bucket counts (at most ``buckets`` rows) need a global running sum.

    Args:
        identifiers: rows ``(id_type string, id_value string)``, duplicates allowed; rows with a NULL
            ``id_type`` or ``id_value`` are ignored.
        existing: a previous run's full map ``(id_type, id_value, vid long)``, or None on the first run.
            Its maximum ``vid`` counts even for identifiers absent from ``identifiers``, so pass the whole
            map to avoid reusing a retired id.
        buckets: the number of hash buckets; changing it changes the ids given to new identifiers (never
            the ids already in ``existing``).

    Returns:
        ``(id_type string, id_value string, vid long)``, one row per distinct input identifier.
    """
    keys = ["id_type", "id_value"]
    wanted = (
        identifiers.select(*keys)
        .where(F.col("id_type").isNotNull() & F.col("id_value").isNotNull())
        .distinct()
    )
    if existing is None:
        kept, fresh_keys = None, wanted
        base = wanted.sparkSession.range(1).select(F.lit(0).cast("long").alias("base"))
    else:
        matched = wanted.join(
            existing.select(*keys, F.col("vid").cast("long").alias("vid")), on=keys, how="left"
        )
        kept, fresh_keys = matched.where(F.col("vid").isNotNull()), matched.where(F.col("vid").isNull())
        base = existing.agg(F.coalesce(F.max("vid"), F.lit(0)).cast("long").alias("base"))

    fresh = fresh_keys.select(*keys, F.pmod(F.xxhash64(*keys), F.lit(buckets)).alias("bucket")).withColumn(
        "rank", F.row_number().over(Window.partitionBy("bucket").orderBy(*keys))
    )
    # The running sum needs one ordered window over all buckets; the table has at most `buckets` rows, so
    # one partition is fine (the constant partition key only says so explicitly).
    offsets = (
        fresh.groupBy("bucket")
        .agg(F.count("*").alias("size"))
        .withColumn(
            "offset",
            F.sum("size").over(Window.partitionBy(F.lit(0)).orderBy("bucket")) - F.col("size"),
        )
        .crossJoin(base)
        .select("bucket", (F.col("base") + F.col("offset")).alias("start"))
    )
    numbered = fresh.join(offsets, on="bucket").select(
        *keys, (F.col("start") + F.col("rank")).cast("long").alias("vid")
    )
    return numbered if kept is None else kept.unionByName(numbered)


def connected_components(
    edges: DataFrame, checkpoint: Checkpoint, *, max_rounds: int = 100
) -> tuple[DataFrame, int]:
    """Label every vertex of an undirected graph with the smallest vertex id of its connected component.

    Runs large-star then small-star once per round until each component is a star around its minimum,
    checkpointing the edges after each step with labels ``edges`` (the input, deduplicated), then
    ``round_<n>_large`` and ``round_<n>_small``. Each step groups edges by vertex, so a vertex with millions
    of edges (a junk identifier shared by everyone) loads one task: drop such identifiers before.

    Args:
        edges: ``(src long, dst long)`` pairs, in either direction; duplicates and self-loops are allowed
            (a vertex with only a self-loop is its own component); rows with a NULL end are ignored.
        checkpoint: cuts lineage each round, e.g. ``ctx.checkpoints("rounds")`` of a run context.
        max_rounds: the number of rounds after which to give up.

    Returns:
        ``(vertex long, component long)`` with one row per vertex that appears in ``edges``, and the
        number of rounds run (0 when the graph is already a forest of stars around their minima).

    Raises:
        ValueError: ``edges`` lacks a ``src`` or ``dst`` column.
        ComponentsError: the graph did not converge within ``max_rounds`` rounds.
    """
    missing = {"src", "dst"} - set(edges.columns)
    if missing:
        raise ValueError(f"edges needs columns src and dst; missing {sorted(missing)}")
    # Every edge is kept as (larger, smaller): the parent direction both star operations work in.
    src, dst = F.col("src").cast("long"), F.col("dst").cast("long")
    start = checkpoint(
        edges.where(src.isNotNull() & dst.isNotNull())
        .select(F.greatest(src, dst).alias("src"), F.least(src, dst).alias("dst"))
        .distinct(),
        "edges",
    )
    current = start.where(F.col("src") != F.col("dst"))
    rounds = 0
    while (unsettled := _unsettled_vertices(current)) > 0:
        if rounds >= max_rounds:
            raise ComponentsError(
                f"connected components did not converge in {max_rounds} rounds ({unsettled} vertices not"
                " yet attached to their component's minimum); raise max_rounds or check the edge list"
            )
        rounds += 1
        # Both steps read their input twice (an aggregate joined back), so each gets its own checkpoint:
        # without one, small-star would compute large-star twice.
        current = checkpoint(_large_star(current), f"round_{rounds}_large")
        current = checkpoint(_small_star(current), f"round_{rounds}_small")

    vertices = (
        start.select(F.col("src").alias("vertex"))
        .unionByName(start.select(F.col("dst").alias("vertex")))
        .distinct()
    )
    # At convergence each non-minimum vertex has exactly one edge, to its component's minimum; the minima
    # and the vertices seen only in self-loops have none and label themselves.
    parents = current.select(F.col("src").alias("vertex"), F.col("dst").alias("component"))
    labelled = vertices.join(parents, on="vertex", how="left").select(
        "vertex", F.coalesce("component", "vertex").alias("component")
    )
    return labelled, rounds


def _large_star(edges: DataFrame) -> DataFrame:
    """Large-star: connect every vertex's larger neighbours to the smallest vertex of its neighbourhood.

    For an edge (v, u) with v > u this yields (v, m(u)), m(u) being the smallest of u and its neighbours;
    a neighbour smaller than u is by construction an edge (u, w), so m(u) is the minimum ``dst`` of the
    edges leaving u, or u itself when there are none.
    """
    lowest = edges.groupBy("src").agg(F.min("dst").alias("lowest")).withColumnRenamed("src", "dst")
    # No distinct: this yields one edge per input edge, and the duplicates it may make (a vertex with two
    # parents sharing one minimum) are harmless to small-star, which deduplicates anyway.
    return edges.join(lowest, on="dst", how="left").select("src", F.coalesce("lowest", "dst").alias("dst"))


def _small_star(edges: DataFrame) -> DataFrame:
    """Small-star: connect every vertex and its smaller neighbours to the smallest of those neighbours.

    For a vertex u with smaller neighbours N(u) and m = min N(u), this yields (u, m) and (w, m) for the
    other w in N(u).
    """
    # A groupBy and a join rather than a window: Sail sorts every window partition and runs this 2-3x slower.
    lowest = edges.groupBy("src").agg(F.min("dst").alias("lowest"))
    pairs = edges.join(lowest, on="src").select(
        F.explode(
            F.array(
                F.struct(F.col("src"), F.col("lowest").alias("dst")),
                F.struct(F.col("dst").alias("src"), F.col("lowest").alias("dst")),
            )
        ).alias("edge")
    )
    return pairs.select("edge.src", "edge.dst").where(F.col("src") != F.col("dst")).distinct()


def _unsettled_vertices(edges: DataFrame) -> int:
    """Count the vertices that keep the graph from being a forest of stars around their minima.

    A vertex is unsettled when it has two smaller neighbours, or both a smaller and a larger one. With none
    left, every non-minimum vertex hangs from its component's minimum and both star operations leave the
    edges unchanged.
    """
    ends = edges.select(
        F.col("src").alias("vertex"), F.lit(1).alias("up"), F.lit(0).alias("down")
    ).unionByName(edges.select(F.col("dst").alias("vertex"), F.lit(0).alias("up"), F.lit(1).alias("down")))
    per_vertex = ends.groupBy("vertex").agg(F.sum("up").alias("up"), F.sum("down").alias("down"))
    return per_vertex.where((F.col("up") > 1) | ((F.col("up") > 0) & (F.col("down") > 0))).count()
