"""The identity graph: identifiers seen in the same silver record become edges, except the links of shared
identifiers, which are pruned with their reason.

Three steps, each ``DataFrame -> DataFrame``:

1. ``record_identifiers`` reduces one silver table to its distinct identifier tuples (the identifiers of a
   record, in star order, with first/last seen time and the number of records). An event log repeats the
   same few tuples per device, so everything after works on far fewer rows than silver holds.
2. ``find_hubs`` counts, for every identifier, the distinct identifiers of each type seen with it, and
   flags it as shared when a count passes a limit of the rules (a tablet seen with three member ids) or
   its total passes ``max_degree``. Then ``find_person_hubs``, given ``person_anchors`` (the components
   of ``person_links``, the links among person identifiers alone: member ids, phones, WeChat ids...),
   flags a device whose persons hold together more member ids than ``person_limit`` allows (a tablet
   seen with the mother's member id and with the son's openid, which his member account is bound to).
3. ``star_edges`` links each tuple as a star around its highest-priority identifier that is not shared
   (a star keeps a tuple connected with k-1 edges instead of k(k-1)/2), and returns the links of shared
   identifiers separately as pruned edges, each with the reason, so nothing disappears silently.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from identity.components import Checkpoint
from identity.pii import build_keyed_hash
from identity.rules import IdentityRules, SourcePlan

Transform = Callable[[DataFrame], DataFrame]

IDENTIFIER = "struct<id_type:string,id_value:string,rank:int>"
"""One identifier in a tuple; ``rank`` orders the star (smallest is the centre)."""

EDGE_KEYS = ["src_type", "src_value", "dst_type", "dst_value", "source"]
"""An edge is one pair of identifiers seen together in one source."""

_ATTRIBUTE_SEPARATOR = "\u001f"  # the ASCII unit separator never occurs in a hashed or typed value
_ATTRIBUTE_RANK = 10**6  # after every identifier column (their ranks are priority * 100 + position)


def _present(col: Column) -> Column:
    """The identifier value, NULL when missing or blank (junk values are already NULL in silver)."""
    value = col.cast("string")
    return F.when(F.trim(value) != "", value)


def record_identifiers(plan: SourcePlan, key: str | None = None) -> Transform:
    """Reduce one silver table to its distinct identifier tuples.

    Args:
        plan: which columns of the source hold identifiers, its time column and attribute rules.
        key: the deployment's PII key, needed only when the plan has attribute rules (the attributes of a
            rule are keyed-hashed together into one identifier of the rule's ID type).

    Returns:
        A transform of the silver table to ``(source, ids array<IDENTIFIER>, first_seen, last_seen,
        records)``: one row per distinct tuple with at least one identifier; ``ids`` holds the tuple's
        non-NULL identifiers in star order.

    Raises:
        ValueError: the plan has an attribute rule and no key was given.
    """
    columns = [(F.col(f"`{c}`"), t, rank) for c, t, rank in plan.identifiers]
    for position, rule in enumerate(plan.attributes or ()):
        if not key:
            raise ValueError("attribute links need the PII key to hash the attributes")
        parts = [F.col(f"`{c}`").cast("string") for c in rule.columns]
        complete = F.lit(True)
        for part in parts:
            complete = complete & _present(part).isNotNull()
        value = F.when(complete, build_keyed_hash(F.concat_ws(_ATTRIBUTE_SEPARATOR, *parts), key))
        columns.append((value, rule.id_type, _ATTRIBUTE_RANK + position))

    def transform(silver: DataFrame) -> DataFrame:
        names = [f"_id{i}" for i in range(len(columns))]
        tuples = (
            silver.select(
                *[_present(col).alias(n) for n, (col, _, _) in zip(names, columns, strict=True)],
                F.col(f"`{plan.time_column}`").cast("timestamp").alias("_seen"),
            )
            # Filter here, not on the array below: Sail fails to push a filter on size(ids) through the
            # projection that builds it ("No field named ?table?.<id type>").
            .where(F.coalesce(*[F.col(n) for n in names]).isNotNull())
            .groupBy(*names)
            .agg(
                F.min("_seen").alias("first_seen"),
                F.max("_seen").alias("last_seen"),
                F.count(F.lit(1)).alias("records"),
            )
        )
        ids = F.filter(
            F.array(
                *[
                    F.struct(
                        F.lit(id_type).alias("id_type"),
                        F.col(n).alias("id_value"),
                        F.lit(rank).cast("int").alias("rank"),
                    )
                    for n, (_, id_type, rank) in zip(names, columns, strict=True)
                ]
            ),
            lambda i: i["id_value"].isNotNull(),
        )
        return tuples.select(
            F.lit(plan.source).alias("source"),
            ids.alias("ids"),
            "first_seen",
            "last_seen",
            F.col("records").cast("long").alias("records"),
        )

    return transform


def with_record_ids(records: DataFrame) -> DataFrame:
    """Number the tuples (``record_id long``, unique, not consecutive).

    The numbers come from ``monotonically_increasing_id``, which depends on partitioning: checkpoint the
    result before using it twice, so every later step sees the same numbers.
    """
    return records.select(F.monotonically_increasing_id().alias("record_id"), "*")


def record_vertices(records: DataFrame) -> DataFrame:
    """The distinct identifiers of the tuples: ``(id_type, id_value)``."""
    return (
        records.select(F.explode("ids").alias("i"))
        .select(F.col("i.id_type").alias("id_type"), F.col("i.id_value").alias("id_value"))
        .distinct()
    )


def identifier_links(records: DataFrame) -> DataFrame:
    """Every ordered pair of distinct identifiers seen in one tuple, once:
    ``(id_type, id_value, linked_type, linked_value)``."""
    pairs = records.select(F.explode("ids").alias("x"), "ids").select("x", F.explode("ids").alias("y"))
    return (
        pairs.select(
            F.col("x.id_type").alias("id_type"),
            F.col("x.id_value").alias("id_value"),
            F.col("y.id_type").alias("linked_type"),
            F.col("y.id_value").alias("linked_value"),
        )
        .where((F.col("id_type") != F.col("linked_type")) | (F.col("id_value") != F.col("linked_value")))
        .distinct()
    )


def _limit(rules: IdentityRules) -> tuple[Column, Column]:
    """The limit of (id_type, linked_type) and its rule name, as CASE expressions (NULL: no limit).

    One flat ``CASE WHEN`` per column: nesting ``otherwise`` would exceed the Spark Connect plan depth.
    """
    limit = reason = None
    for id_type, linked, n, name in rules.link_limits():
        hit = (F.col("id_type") == id_type) & (F.col("linked_type") == linked)
        limit = (
            F.when(hit, F.lit(n).cast("long")) if limit is None else limit.when(hit, F.lit(n).cast("long"))
        )
        reason = F.when(hit, F.lit(name)) if reason is None else reason.when(hit, F.lit(name))
    if limit is None:
        return F.lit(None).cast("long"), F.lit(None).cast("string")
    return limit, reason


def person_links(links: DataFrame, hubs: DataFrame, rules: IdentityRules) -> DataFrame:
    """Links between two person identifiers (``rules.person_types``) neither of which is shared, once per
    pair: ``(src_type, src_value, dst_type, dst_value)``. Their components are the persons."""
    types = list(rules.person_types)
    shared = hubs.select("id_type", "id_value")
    return (
        links.where(
            F.col("id_type").isin(*types)
            & F.col("linked_type").isin(*types)
            & (
                (F.col("id_type") < F.col("linked_type"))
                | ((F.col("id_type") == F.col("linked_type")) & (F.col("id_value") < F.col("linked_value")))
            )
        )
        .join(shared, on=["id_type", "id_value"], how="left_anti")
        .join(
            shared.select(F.col("id_type").alias("linked_type"), F.col("id_value").alias("linked_value")),
            on=["linked_type", "linked_value"],
            how="left_anti",
        )
        .select(
            F.col("id_type").alias("src_type"),
            F.col("id_value").alias("src_value"),
            F.col("linked_type").alias("dst_type"),
            F.col("linked_value").alias("dst_value"),
        )
    )


def person_anchors(
    vertices: DataFrame, labels: DataFrame, hubs: DataFrame, rules: IdentityRules
) -> DataFrame:
    """Label every person identifier with its person: its component among person identifiers only.

    Args:
        vertices: ``(id_type, id_value, vid)``.
        labels: ``(vertex, component)``, the connected components of ``person_links``.
        hubs: identifiers already shared by the per-type limits; they stand for no person.
        rules: ``person_types``.

    Returns:
        ``(id_type, id_value, person long)`` for every person identifier that is not shared.
    """
    return (
        vertices.where(F.col("id_type").isin(*rules.person_types))
        .join(hubs.select("id_type", "id_value"), on=["id_type", "id_value"], how="left_anti")
        .join(labels.withColumnRenamed("vertex", "vid"), on="vid", how="left")
        .select("id_type", "id_value", F.coalesce("component", "vid").cast("long").alias("person"))
    )


def _reasons(why: DataFrame) -> DataFrame:
    """One row per identifier with every reason, sorted: ``(id_type, id_value, reason)``."""
    return why.groupBy("id_type", "id_value").agg(
        F.concat_ws("; ", F.array_sort(F.collect_list("why"))).alias("reason")
    )


def find_hubs(links: DataFrame, rules: IdentityRules) -> DataFrame:
    """Identifiers treated as shared because they are linked to more identifiers than the rules allow.

    Args:
        links: ``identifier_links`` of the tuples.
        rules: ``max_degree`` and the per-type ``limits``.

    Returns:
        ``(id_type, id_value, degree long, reason string)``: one row per shared identifier, ``degree``
        being its number of distinct linked identifiers and ``reason`` every limit it broke, e.g.
        ``max_degree: 61 linked > 50; shared_device: 3 member_id > 1``.
    """
    per_type = links.groupBy("id_type", "id_value", "linked_type").agg(F.count(F.lit(1)).alias("links"))
    limit, name = _limit(rules)
    over_type = (
        per_type.select("*", limit.alias("max_links"), name.alias("rule"))
        .where(F.col("links") > F.col("max_links"))
        .select(
            "id_type",
            "id_value",
            F.format_string("%s: %d %s > %d", "rule", "links", "linked_type", "max_links").alias("why"),
        )
    )
    degree = per_type.groupBy("id_type", "id_value").agg(F.sum("links").cast("long").alias("degree"))
    over_degree = degree.where(F.col("degree") > rules.max_degree).select(
        "id_type",
        "id_value",
        F.format_string("max_degree: %d linked > %d", "degree", F.lit(rules.max_degree)).alias("why"),
    )
    return (
        _reasons(over_type.unionByName(over_degree))
        .join(degree, on=["id_type", "id_value"])
        .select("id_type", "id_value", "degree", "reason")
    )


def find_person_hubs(
    hubs: DataFrame, links: DataFrame, persons: DataFrame, rules: IdentityRules
) -> DataFrame:
    """Add to ``hubs`` the identifiers whose persons break ``rules.person_limit``.

    An identifier of ``person_limit.id_types`` (a device) is linked to person identifiers; their persons
    (``person_anchors``) hold together some member ids, openids...; more than ``person_limit.max_links``
    of a type means the device is shared by several persons, e.g. ``shared_between_persons: persons hold
    2 member_id > 1``.

    Args:
        hubs: ``find_hubs`` output.
        links: ``identifier_links`` of the tuples.
        persons: ``person_anchors``.
        rules: the ``person_limit``.

    Returns:
        ``hubs`` with the new shared identifiers, and the new reasons of those already in it.
    """
    rule = rules.person_limit
    if rule is None:
        return hubs
    linked = persons.select(
        F.col("id_type").alias("linked_type"), F.col("id_value").alias("linked_value"), "person"
    )
    seen_with = (
        links.where(F.col("id_type").isin(*rule.id_types))
        .join(linked, on=["linked_type", "linked_value"])
        .select("id_type", "id_value", "person")
        .distinct()
    )
    held = persons.where(F.col("id_type").isin(*rule.max_links)).select(
        "person", F.col("id_type").alias("linked_type"), F.col("id_value").alias("linked_value")
    )
    through = (
        seen_with.join(held, on="person")
        .select("id_type", "id_value", "linked_type", "linked_value")
        .distinct()
        .groupBy("id_type", "id_value", "linked_type")
        .agg(F.count(F.lit(1)).alias("links"))
    )
    cap = None
    for held_type, n in rule.max_links.items():
        hit = F.col("linked_type") == held_type
        cap = F.when(hit, F.lit(n).cast("long")) if cap is None else cap.when(hit, F.lit(n).cast("long"))
    why = through.where(F.col("links") > cap).select(
        "id_type",
        "id_value",
        F.format_string("%s: persons hold %d %s > %d", F.lit(rule.name), "links", "linked_type", cap).alias(
            "why"
        ),
    )
    old = hubs.select("id_type", "id_value", F.explode(F.split("reason", "; ")).alias("why"))
    reasons = _reasons(old.unionByName(why))
    # Only the new hubs lack a degree; counting it over the links of the few hubs is cheap.
    degree = (
        links.join(reasons.select("id_type", "id_value"), on=["id_type", "id_value"], how="left_semi")
        .groupBy("id_type", "id_value")
        .agg(F.count(F.lit(1)).cast("long").alias("degree"))
    )
    return reasons.join(degree, on=["id_type", "id_value"]).select("id_type", "id_value", "degree", "reason")


def _ends(first: Column, second: Column) -> list[Column]:
    """Source and destination of an edge between two identifier structs: the higher priority is ``src``."""
    src = F.when(first["rank"] <= second["rank"], first).otherwise(second)
    dst = F.when(first["rank"] <= second["rank"], second).otherwise(first)
    return [
        src["id_type"].alias("src_type"),
        src["id_value"].alias("src_value"),
        dst["id_type"].alias("dst_type"),
        dst["id_value"].alias("dst_value"),
    ]


def _seen() -> list[Column]:
    return [
        F.min("first_seen").alias("first_seen"),
        F.max("last_seen").alias("last_seen"),
        F.sum("records").cast("long").alias("records"),
    ]


def _with_rank(rank: str) -> Column:
    """The identifier of the tuple's ``ids`` whose rank is in column ``rank`` (NULL when that is NULL)."""
    return F.get(F.filter("ids", lambda i: i["rank"] == F.col(rank)), 0)


def star_edges(
    records: DataFrame, hubs: DataFrame, checkpoint: Checkpoint | None = None
) -> tuple[DataFrame, DataFrame]:
    """Link each tuple as a star around its highest-priority identifier that is not shared.

    A shared identifier (in ``hubs``) gets no edge; instead its link to the tuple's centre (or, when every
    identifier of the tuple is shared, to the tuple's highest-priority identifier) is returned as pruned.

    Args:
        records: identifier tuples with ``record_id`` (``with_record_ids``, checkpointed); ranks are unique
            within a tuple, as ``record_identifiers`` makes them.
        hubs: shared identifiers ``(id_type, id_value, reason, ...)`` (``find_hubs``).
        checkpoint: when given, the per-identifier rows both results derive from are checkpointed (label
            ``star``) so that an engine without cache computes them once.

    Returns:
        ``(edges, pruned)``. ``edges``: ``(src_type, src_value, dst_type, dst_value, source, first_seen,
        last_seen, records)``, one row per pair and source, ``src`` being the star centre. ``pruned``: the
        same columns plus ``hub_type``, ``hub_value`` and ``reason``.
    """
    rows = records.select(
        "record_id", "source", "first_seen", "last_seen", "records", "ids", F.explode("ids").alias("me")
    )
    flagged = rows.join(
        hubs.select(F.col("id_type").alias("_t"), F.col("id_value").alias("_v"), "reason"),
        on=(F.col("me.id_type") == F.col("_t")) & (F.col("me.id_value") == F.col("_v")),
        how="left",
    )
    hub = F.col("reason").isNotNull()
    # The centre is found by its rank: min() over a struct is two orders of magnitude slower on Sail than
    # over an int, and the tuple's own array gives the identifier back.
    ranks = flagged.groupBy("record_id").agg(
        F.min(F.when(~hub, F.col("me.rank"))).alias("centre_rank"), F.min("me.rank").alias("top_rank")
    )
    joined = flagged.join(ranks, on="record_id").select(
        "source",
        "first_seen",
        "last_seen",
        "records",
        "reason",
        "me",
        _with_rank("centre_rank").alias("centre"),
        _with_rank("top_rank").alias("top"),
    )
    if checkpoint is not None:
        joined = checkpoint(joined, "star")
    edges = (
        joined.where(F.col("reason").isNull() & (F.col("me.rank") != F.col("centre.rank")))
        .select(*_ends(F.col("centre"), F.col("me")), "source", "first_seen", "last_seen", "records")
        .groupBy(*EDGE_KEYS)
        .agg(*_seen())
    )
    partner = F.coalesce(F.col("centre"), F.col("top"))
    pruned = (
        joined.where(F.col("reason").isNotNull() & (F.col("me.rank") != partner["rank"]))
        .select(
            *_ends(partner, F.col("me")),
            "source",
            "first_seen",
            "last_seen",
            "records",
            F.col("me.id_type").alias("hub_type"),
            F.col("me.id_value").alias("hub_value"),
            "reason",
        )
        .groupBy(*EDGE_KEYS, "hub_type", "hub_value", "reason")
        .agg(*_seen())
    )
    return edges, pruned


def build_priority(rules: IdentityRules, id_type: Column | None = None) -> Column:
    """The star rank of an ID type column (``id_type`` by default): 0 for the strongest, attribute
    identifiers after every ID type; unknown types rank last."""
    col = F.col("id_type") if id_type is None else id_type
    types = [*rules.priority, *(r.id_type for r in rules.attribute_links)]
    expr = F.when(col == types[0], F.lit(0))
    for rank, t in enumerate(types[1:], start=1):
        expr = expr.when(col == t, F.lit(rank))
    return expr.otherwise(F.lit(len(types))).cast("int")


def with_vertex_ids(edges: DataFrame, vertices: DataFrame) -> DataFrame:
    """Add ``src_vid`` and ``dst_vid`` to edges from the vertex table ``(id_type, id_value, vid)``."""
    src = vertices.select(
        F.col("id_type").alias("src_type"),
        F.col("id_value").alias("src_value"),
        F.col("vid").alias("src_vid"),
    )
    dst = vertices.select(
        F.col("id_type").alias("dst_type"),
        F.col("id_value").alias("dst_value"),
        F.col("vid").alias("dst_vid"),
    )
    return edges.join(src, on=["src_type", "src_value"]).join(dst, on=["dst_type", "dst_value"])
