"""OneID for one logical date: silver identifiers -> identity graph -> stable OneIDs, and the report.

    silver.*  (records up to dt)
        -> gold.id_vertices        identifier -> stable vertex id (insert only)
        -> gold.id_edges           links kept, per source, first/last seen        (snapshot per dt)
        -> gold.id_pruned_edges    links of shared identifiers, with the reason   (snapshot per dt)
        -> gold.oneid_map          identifier -> OneID                            (snapshot per dt)
        -> gold.oneid_changes      merges, splits, retirements since the previous dt
        -> gold.identity_report    counts, component sizes, largest components, pruned hubs, alerts
    with the rules' probabilistic linkage on (jobs.linkage, before the records step):
        -> gold.id_match_pairs     scored record pairs, weight and deciding comparison (snapshot per dt)
        -> gold.linkage_model      m, u and weight per comparison level                (snapshot per dt)

Steps, one function each around the run's context (``cdp.run.RunContext``): records -> vertices -> hubs ->
edges -> components -> oneids -> report -> audit -> publish.

Write-audit-publish: every output is first written to the run's scratch checkpoints; the map, the changes
and the report are validated with their suites (``quality.gate_tables``), and the tables are written only
when no critical expectation fails. A failed gate raises ``QualityGateError`` and leaves every table as it
was (the results are in ``gold.quality_results``). The scratch folder is the run's own and is removed when
the run ends, also on error.

The graph is rebuilt from every silver record ingested up to ``dt`` (``_dt <= dt``); the previous state is
the latest ``gold.oneid_map`` date before ``dt``. Rerunning a date replaces its snapshots with the same
OneIDs. Backfills run dates in order, as later dates build on earlier ones.

A date that later dates already built on is kept: rerunning it (an Airflow clear, a backfill over a range
that includes it) returns the published report and writes nothing, because silver has moved on since (a
record updated on a later date carries that date's ``_dt``), so recomputing would renumber OneIDs under the
later snapshots. Late data for such a date is resolved by the next date's run; ``rebuild=True``
(``cdp identity run --rebuild``) recomputes it anyway, after which the later dates are rerun in order.

Run as ``cdp identity run --dt YYYY-MM-DD`` or ``python -m jobs.identity --dt YYYY-MM-DD`` (also under
spark-submit); ``cdp identity explain`` and ``cdp identity evaluate`` use ``explain`` and ``evaluate``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.lake import Lake, parse_dt, silver_table
from cdp.run import RunContext, union_all
from cdp.settings import Settings
from identity.components import assign_vertex_ids, connected_components
from identity.evaluate import Evaluation, linkable_groups, score, truth_identifiers
from identity.graph import (
    build_priority,
    find_hubs,
    find_person_hubs,
    identifier_links,
    person_anchors,
    person_links,
    record_identifiers,
    record_vertices,
    star_edges,
    with_record_ids,
)
from identity.graph import with_vertex_ids as _with_vids
from identity.normalize import NORMALIZERS
from identity.pii import build_keyed_hash
from identity.resolve import assign_oneids, oneid_changes, with_components
from identity.rules import (
    RULES_FILE,
    IdentityRules,
    RulesError,
    SourcePlan,
    load_rules,
    plan_linkage,
    plan_sources,
)
from jobs.linkage import (
    LINKAGE_MODEL,
    MATCH_PAIRS,
    LinkageError,
    LinkageReport,
    audit_tables,
    run_linkage,
)
from quality.gates import QualityGateError, gate_tables
from schemas import load_sources

VERTICES, EDGES, PRUNED = "gold.id_vertices", "gold.id_edges", "gold.id_pruned_edges"
MAP, CHANGES, REPORT = "gold.oneid_map", "gold.oneid_changes", "gold.identity_report"
SIZE_BUCKETS = ((1, 1), (2, 2), (3, 5), (6, 10), (11, 20), (21, 50), (51, 100), (101, None))
LARGEST = 10
TOP_HUBS = 20


class IdentityError(RuntimeError):
    """Identity resolution cannot run: nothing to resolve, or no map for the date asked."""


@dataclass
class IdentityReport:
    """What one run found; also the rows of ``gold.identity_report``."""

    dt: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    sources: list[str] = field(default_factory=list)
    identifiers: dict[str, int] = field(default_factory=dict)
    edges: int = 0
    pruned_edges: int = 0
    hubs: int = 0
    hub_types: dict[str, int] = field(default_factory=dict)
    oneids: int = 0
    new_oneids: int = 0
    changes: dict[str, int] = field(default_factory=dict)
    rounds: int = 0
    sizes: dict[str, int] = field(default_factory=dict)
    largest: list[dict] = field(default_factory=list)
    top_hubs: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    previous_dt: str | None = None
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    quality_seconds: float = 0.0
    kept: bool = False
    linkage: LinkageReport | None = None

    def rows(self) -> list[dict]:
        """The report in the long form of ``gold.identity_report``."""
        dt = _dt.date.fromisoformat(self.dt)

        def row(metric: str, dimension: str, value: float | None, detail: object = None) -> dict:
            return {
                "metric": metric,
                "dimension": dimension,
                "value": None if value is None else float(value),
                "detail": None if detail is None else json.dumps(detail, default=str),
                "dt": dt,
            }

        out = [row("identifiers", t, n) for t, n in sorted(self.identifiers.items())]
        out += [
            row("identifiers", "all", sum(self.identifiers.values())),
            row("oneids", "all", self.oneids),
            row("oneids", "new", self.new_oneids),
            row("edges", "kept", self.edges),
            row("pruned_edges", "all", self.pruned_edges),
            row("hubs", "all", self.hubs),
        ]
        out += [row("hubs", t, n) for t, n in sorted(self.hub_types.items())]
        out += [row("changes", t, n) for t, n in sorted(self.changes.items())]
        out += [row("component_size", b, n) for b, n in self.sizes.items()]
        out += [row("largest_component", str(c["oneid"]), c["size"], c) for c in self.largest]
        out += [row("pruned_hub", f"{h['id_type']}:{h['id_value']}", h["degree"], h) for h in self.top_hubs]
        out += [row("alert", a["kind"], a.get("value"), a) for a in self.alerts]
        out.append(
            row(
                "run",
                "seconds",
                self.seconds,
                {
                    "run_id": self.run_id,
                    "rounds": self.rounds,
                    "previous_dt": self.previous_dt,
                    "sources": self.sources,
                    "steps": self.steps,
                },
            )
        )
        out.append(row("run", "rounds", self.rounds))
        if self.linkage is not None:
            out += [row(*r) for r in self.linkage.rows()]
        return out

    def summary(self) -> list[str]:
        """Human-readable lines for the CLI."""
        ids = sum(self.identifiers.values())
        lines = [
            f"identity {self.dt}: {ids:,} identifiers -> {self.oneids:,} OneIDs ({self.new_oneids:,} new), "
            f"{self.edges:,} edges kept, {self.pruned_edges:,} pruned around {self.hubs:,} shared "
            f"identifiers; {self.rounds} rounds, {self.seconds:.1f} s"
            + (f" (previous map {self.previous_dt})" if self.previous_dt else " (first map)")
            + (" [kept: later dates build on this map; nothing rewritten]" if self.kept else ""),
            "  identifiers: " + ", ".join(f"{t} {n:,}" for t, n in sorted(self.identifiers.items())),
            "  OneID sizes: " + ", ".join(f"{b}: {n:,}" for b, n in self.sizes.items()),
        ]
        if self.changes:
            lines.append("  changes: " + ", ".join(f"{t} {n:,}" for t, n in sorted(self.changes.items())))
        if self.hub_types:
            lines.append("  shared: " + ", ".join(f"{t} {n:,}" for t, n in sorted(self.hub_types.items())))
        if self.linkage is not None:
            lines += self.linkage.summary()
        for a in self.alerts:
            lines.append(f"  ALERT {a['kind']}: {a['message']}")
        return lines


def _kept_report(ctx: RunContext) -> IdentityReport | None:
    """The published report of this date when a later date's map exists (that map built on this one)."""
    if not ctx.lake.exists(REPORT) or not ctx.has_later_dt(MAP):
        return None
    rows = ctx.read_dt(REPORT).select("metric", "dimension", "value", "detail").collect()
    return _report_from_rows(ctx.dt, [r.asDict() for r in rows]) if rows else None


def _report_from_rows(dt: _dt.date, rows: list[dict]) -> IdentityReport:
    """An ``IdentityReport`` read back from its rows in ``gold.identity_report`` (marked ``kept``)."""
    report = IdentityReport(dt=dt.isoformat(), kept=True)
    number = {(r["metric"], r["dimension"]): int(r["value"] or 0) for r in rows}
    for r in rows:
        if r["metric"] == "identifiers" and r["dimension"] != "all":
            report.identifiers[r["dimension"]] = int(r["value"])
        elif r["metric"] == "hubs" and r["dimension"] != "all":
            report.hub_types[r["dimension"]] = int(r["value"])
        elif r["metric"] == "changes":
            report.changes[r["dimension"]] = int(r["value"])
        elif r["metric"] == "component_size":
            report.sizes[r["dimension"]] = int(r["value"])
        elif r["metric"] == "run" and r["dimension"] == "seconds" and r["detail"]:
            detail = json.loads(r["detail"])
            report.run_id = detail.get("run_id", report.run_id)
            report.previous_dt = detail.get("previous_dt")
            report.sources = detail.get("sources", [])
    report.oneids = number.get(("oneids", "all"), 0)
    report.new_oneids = number.get(("oneids", "new"), 0)
    report.edges = number.get(("edges", "kept"), 0)
    report.pruned_edges = number.get(("pruned_edges", "all"), 0)
    report.hubs = number.get(("hubs", "all"), 0)
    report.rounds = number.get(("run", "rounds"), 0)
    return report


def _largest_issued(ctx: RunContext, previous: DataFrame | None) -> int:
    """The largest OneID issued before this date: in the previous map, or retired in an earlier change."""
    best = 0
    if previous is not None:
        best = previous.agg(F.max("oneid")).collect()[0][0] or 0
    if ctx.lake.exists(CHANGES):
        retired = ctx.lake.read(CHANGES).where(F.col("dt") < F.lit(ctx.dt)).agg(F.max("old_oneid"))
        best = max(best, retired.collect()[0][0] or 0)
    return int(best)


def _size_bucket() -> F.Column:
    n = F.col("size")
    expr = None
    for lo, hi in SIZE_BUCKETS:
        label = str(lo) if lo == hi else (f"{lo}-{hi}" if hi else f">{lo - 1}")
        cond = (n >= lo) if hi is None else n.between(lo, hi)
        expr = F.when(cond, label) if expr is None else expr.when(cond, label)
    return expr


def _bucket_order() -> list[str]:
    return [str(lo) if lo == hi else (f"{lo}-{hi}" if hi else f">{lo - 1}") for lo, hi in SIZE_BUCKETS]


def _fill_report(
    report: IdentityReport, rules: IdentityRules, oneid_map: DataFrame, hubs: DataFrame, changes: DataFrame
) -> None:
    """Aggregate the small figures of the report (a few rows each reach the driver)."""
    report.identifiers = {r["id_type"]: r["count"] for r in oneid_map.groupBy("id_type").count().collect()}
    sizes = oneid_map.groupBy("oneid").agg(F.count(F.lit(1)).alias("size"))
    by_bucket = {
        r["b"]: r["count"] for r in sizes.select(_size_bucket().alias("b")).groupBy("b").count().collect()
    }
    report.sizes = {b: by_bucket[b] for b in _bucket_order() if b in by_bucket}
    report.oneids = sum(report.sizes.values())

    top = sizes.orderBy(F.col("size").desc(), "oneid").limit(LARGEST)
    composition: dict[int, dict[str, int]] = {}
    for r in oneid_map.join(top.select("oneid"), on="oneid").groupBy("oneid", "id_type").count().collect():
        composition.setdefault(r["oneid"], {})[r["id_type"]] = r["count"]
    report.largest = [
        {
            "oneid": r["oneid"],
            "size": r["size"],
            "id_types": dict(sorted(composition.get(r["oneid"], {}).items())),
        }
        for r in top.collect()
    ]

    report.hub_types = {r["id_type"]: r["count"] for r in hubs.groupBy("id_type").count().collect()}
    report.hubs = sum(report.hub_types.values())
    report.top_hubs = [
        r.asDict()
        for r in hubs.orderBy(F.col("degree").desc(), "id_type", "id_value").limit(TOP_HUBS).collect()
    ]
    report.changes = {r["change_type"]: r["count"] for r in changes.groupBy("change_type").count().collect()}
    report.alerts = _alerts(rules, oneid_map, sizes)


def _alerts(rules: IdentityRules, oneid_map: DataFrame, sizes: DataFrame) -> list[dict]:
    """OneIDs over the rules' bounds: too many identifiers, or too many of one ID type."""
    alerts = []
    big = sizes.where(F.col("size") > rules.max_component_size)
    n_big = big.count()
    if n_big:
        examples = [r["oneid"] for r in big.orderBy(F.col("size").desc(), "oneid").limit(LARGEST).collect()]
        alerts.append(
            {
                "kind": "component_over_bound",
                "value": n_big,
                "oneids": examples,
                "message": f"{n_big} OneIDs hold more than {rules.max_component_size} identifiers "
                f"(max_component_size), e.g. {examples}; inspect them with cdp identity explain",
            }
        )
    for id_type, limit in sorted(rules.max_per_oneid.items()):
        over = (
            oneid_map.where(F.col("id_type") == id_type)
            .groupBy("oneid")
            .agg(F.count(F.lit(1)).alias("n"))
            .where(F.col("n") > limit)
        )
        n_over = over.count()
        if n_over:
            examples = [r["oneid"] for r in over.orderBy("oneid").limit(LARGEST).collect()]
            alerts.append(
                {
                    "kind": f"several_{id_type}",
                    "value": n_over,
                    "oneids": examples,
                    "message": f"{n_over} OneIDs hold more than {limit} {id_type} (max_per_oneid), "
                    f"e.g. {examples}",
                }
            )
    return alerts


def run(
    spark: SparkSession,
    settings: Settings,
    dt: str | _dt.date,
    *,
    rules_path: str | Path | None = None,
    rebuild: bool = False,
    link: bool | None = None,
) -> IdentityReport:
    """Resolve identities for logical date ``dt`` and write the identity tables.

    Args:
        spark: the engine session.
        settings: lake and scratch locations, PII key (for attribute links), contract paths.
        dt: the logical date, a ``datetime.date`` or ``YYYY-MM-DD``.
        rules_path: identity rules; the packaged ``identity/rules.yaml`` when omitted.
        rebuild: recompute ``dt`` even when a later date's map already built on it (see the module doc).
        link: run the probabilistic linkage of the rules' ``probabilistic`` section (``jobs.linkage``):
            True forces it on, False off; None follows its ``enabled``.

    Returns:
        The run report (also written to ``gold.identity_report``); for a kept date, the published one
        with ``kept=True``.

    Raises:
        RulesError, ContractError: the rules or contracts are invalid (file and field named).
        IdentityError: no silver table with identifiers exists yet.
        QualityGateError: a critical expectation failed on the map, the changes or the report; nothing
            of this date was written.
    """
    ctx = RunContext.open(spark, settings, dt, stage="identity")
    rules = load_rules(rules_path)
    if link is not None:
        rules = _with_linkage(rules, link, rules_path)
    sources = load_sources(settings.contract_paths)
    plans = plan_sources(rules, sources, rules_path=rules_path)
    links = plan_linkage(rules, sources, rules_path=rules_path) if rules.linkage_enabled else []
    key = settings.require_pii_key() if any(p.attributes for p in plans) or links else None
    report = IdentityReport(dt=ctx.dt.isoformat(), run_id=ctx.run_id, steps=ctx.steps)
    rerun = f"cdp identity run --dt {ctx.dt}"  # one writer per table: the leases, held for the whole run
    audited = (MATCH_PAIRS, LINKAGE_MODEL) if links else ()
    with ctx.lease(VERTICES, EDGES, PRUNED, MAP, CHANGES, REPORT, *audited, rerun=rerun), ctx.scratch_space():
        if not rebuild and (kept := _kept_report(ctx)) is not None:
            kept.seconds = round(ctx.elapsed(), 3)
            return kept
        pair_tuples = linkage = None
        if links:
            pair_tuples, linkage, report.linkage = run_linkage(ctx, rules, links, sources, key)
        records = _records(ctx, plans, key, report, pair_tuples)
        vertices, new = _vertices(ctx, records)
        hubs = _hubs(ctx, rules, records, vertices)
        edges, pruned = _edges(ctx, records, hubs, vertices, report)
        components = _components(ctx, rules, edges, vertices, report)
        oneid_map, changes = _oneids(ctx, components, report)
        _fill_report(report, rules, oneid_map, hubs, changes)
        report.seconds = round(ctx.elapsed(), 3)
        staged = _audit(ctx, rules, report, oneid_map, changes)
        if linkage is not None:
            staged |= audit_tables(ctx, rules, linkage, report.linkage, vertices)
        # Publish: nothing of this date is written before the gate passed.
        ctx.lake.append(VERTICES, new)
        ctx.lake.replace_dt(EDGES, edges, ctx.dt)
        ctx.lake.replace_dt(PRUNED, pruned, ctx.dt)
        for table, rows in staged.items():
            ctx.lake.replace_dt(table, rows, ctx.dt)
        ctx.step("publish")
    return report


def _with_linkage(rules: IdentityRules, on: bool, rules_path: str | Path | None) -> IdentityRules:
    """The rules with the probabilistic linkage switched on or off (``cdp identity link``)."""
    if rules.probabilistic is None:
        if not on:
            return rules
        raise RulesError(
            f"{rules_path or RULES_FILE}: probabilistic: section is missing; declare its sources, "
            "attributes, comparisons and blocking rules (see the README, Probabilistic linkage)"
        )
    return rules.model_copy(update={"probabilistic": rules.probabilistic.model_copy(update={"enabled": on})})


def _records(
    ctx: RunContext,
    plans: list[SourcePlan],
    key: str | None,
    report: IdentityReport,
    pair_tuples: DataFrame | None = None,
) -> DataFrame:
    """Identifier tuples of every silver record ingested up to dt, with record ids (checkpointed); the
    accepted pairs of the probabilistic linkage are tuples too (``jobs.linkage``).

    Raises:
        IdentityError: no silver table with identifiers exists yet.
    """
    parts = []
    for plan in plans:
        if ctx.lake.exists(plan.table):
            rows = ctx.read_up_to(plan.table, source=plan.source)
            parts.append(rows.transform(record_identifiers(plan, key)))
            report.sources.append(plan.source)
    if not parts:
        raise IdentityError("no silver table with identifiers exists yet; run cdp ingest first")
    if pair_tuples is not None:
        parts.append(pair_tuples)
    records = ctx.checkpoint(with_record_ids(union_all(parts)), "records")
    ctx.step("records")
    return records


def _vertices(ctx: RunContext, records: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Stable vertex ids (known identifiers keep theirs, new ones are appended), and the new vertices to
    append to ``gold.id_vertices`` after the gate."""
    lake = ctx.lake
    existing = lake.read(VERTICES).select("id_type", "id_value", "vid") if lake.exists(VERTICES) else None
    vertices = ctx.checkpoint(assign_vertex_ids(record_vertices(records), existing), "vertices")
    new = vertices if existing is None else vertices.join(existing, ["id_type", "id_value"], "left_anti")
    ctx.step("vertices")
    return vertices, new.withColumn("first_dt", F.lit(ctx.dt))


def _hubs(ctx: RunContext, rules: IdentityRules, records: DataFrame, vertices: DataFrame) -> DataFrame:
    """Shared identifiers: over a per-type limit or max_degree first; then, once the person identifiers are
    grouped into persons without those, identifiers whose persons break the person_limit."""
    links = ctx.checkpoint(identifier_links(records), "links")
    hubs = ctx.checkpoint(find_hubs(links, rules), "hubs_by_limits")
    if rules.person_limit is not None:
        person_edges = _with_vids(person_links(links, hubs, rules), vertices)
        labels, _ = connected_components(
            person_edges.select(F.col("src_vid").alias("src"), F.col("dst_vid").alias("dst")),
            ctx.checkpoints("person_rounds"),
        )
        persons = ctx.checkpoint(person_anchors(vertices, labels, hubs, rules), "persons")
        hubs = ctx.checkpoint(find_person_hubs(hubs, links, persons, rules), "hubs")
    ctx.step("hubs")
    return hubs


def _edges(
    ctx: RunContext, records: DataFrame, hubs: DataFrame, vertices: DataFrame, report: IdentityReport
) -> tuple[DataFrame, DataFrame]:
    """The star edges without shared identifiers, and the pruned ones for the audit (checkpointed)."""
    edges, pruned = star_edges(records, hubs, ctx.checkpoint)
    edges = ctx.checkpoint(_with_vids(edges, vertices), "edges")
    pruned = ctx.checkpoint(_with_vids(pruned, vertices), "pruned")
    report.edges, report.pruned_edges = edges.count(), pruned.count()
    ctx.step("edges")
    return edges, pruned


def _components(
    ctx: RunContext, rules: IdentityRules, edges: DataFrame, vertices: DataFrame, report: IdentityReport
) -> DataFrame:
    """Connected components on the kept edges, each vertex with its priority rank (checkpointed)."""
    labels, report.rounds = connected_components(
        edges.select(F.col("src_vid").alias("src"), F.col("dst_vid").alias("dst")),
        ctx.checkpoints("rounds"),
    )
    components = ctx.checkpoint(
        with_components(vertices, labels).withColumn("rank", build_priority(rules)), "components"
    )
    ctx.step("components")
    return components


def _oneids(ctx: RunContext, components: DataFrame, report: IdentityReport) -> tuple[DataFrame, DataFrame]:
    """OneIDs that survive from the previous map, new ones above the largest issued, and the changes."""
    previous_dt = ctx.previous_dt(MAP)
    previous = None
    if previous_dt is not None:
        report.previous_dt = previous_dt.isoformat()
        previous = ctx.read_dt(MAP, previous_dt).select("vid", "oneid")
    base = _largest_issued(ctx, previous)
    oneid_map = ctx.checkpoint(assign_oneids(components, previous, base=base), "oneid_map")
    if previous is None:
        changes = ctx.spark.createDataFrame(
            [], "change_type string, old_oneid long, new_oneid long, identifiers long"
        )
    else:
        changes = ctx.checkpoint(oneid_changes(previous, oneid_map), "changes")
    report.new_oneids = oneid_map.where(F.col("oneid") > base).select("oneid").distinct().count()
    ctx.step("oneids")
    return oneid_map, changes


def _audit(
    ctx: RunContext, rules: IdentityRules, report: IdentityReport, oneid_map: DataFrame, changes: DataFrame
) -> dict[str, DataFrame]:
    """The staged map, changes and report validated with their suites (the map's ID types against the
    rules': ``ID_TYPES`` and the types of the enabled attribute rules).

    Returns:
        The staged rows per table, each with its ``dt`` column, ready to publish.

    Raises:
        QualityGateError: a critical expectation failed; nothing is published.
    """
    dated = F.lit(ctx.dt).alias("dt")
    staged = {
        MAP: oneid_map.select("id_type", "id_value", "vid", "oneid", dated),
        CHANGES: changes.select("*", dated),
        REPORT: ctx.spark.createDataFrame(report.rows(), ctx.lake.contracts[REPORT].ddl),
    }
    audits = gate_tables(
        ctx.lake,
        staged,
        ctx.dt,
        stage="identity",
        parameters={"id_types": rules.id_types},
        contract_paths=ctx.settings.contract_paths,
    )
    report.quality_seconds = round(sum(a.seconds for a in audits), 3)
    ctx.step("gate")
    return staged


# ---- explain ----------------------------------------------------------------------------------------------


@dataclass
class Explanation:
    """Why an identifier has its OneID: the identifiers of the OneID and the links between them."""

    query: str
    dt: str
    matches: list[dict] = field(default_factory=list)
    oneid: int | None = None
    identifiers: list[dict] = field(default_factory=list)
    edges: list[dict] = field(default_factory=list)
    pruned: list[dict] = field(default_factory=list)
    truncated: bool = False


def _lookup_values(spark: SparkSession, identifier: str, id_type: str | None, key: str, hashed: set[str]):
    """The lake's form of a typed-in identifier under each ID type it could be (normalised, hashed if PII)."""
    types = [id_type] if id_type else sorted(NORMALIZERS)
    raw = spark.createDataFrame([(identifier,)], "raw string")
    forms = []
    for t in types:
        value = NORMALIZERS[t](F.col("raw"))
        if t in hashed:
            value = build_keyed_hash(value, key)
        forms.append(F.struct(F.lit(t).alias("id_type"), value.alias("id_value")))
    exploded = raw.select(F.explode(F.array(*forms)).alias("f")).select("f.id_type", "f.id_value")
    return exploded.where(F.col("id_value").isNotNull())


def explain(
    spark: SparkSession,
    settings: Settings,
    identifier: str,
    *,
    id_type: str | None = None,
    dt: str | _dt.date | None = None,
    limit: int = 200,
) -> Explanation:
    """Find an identifier's OneID and show what links it: the OneID's identifiers and, per link, the source
    tables whose records hold it; links pruned as shared are listed with their reason.

    Args:
        spark: the engine session.
        settings: lake location and PII key (phones and emails are looked up by keyed hash).
        identifier: the value as typed (a phone in any format, an email, a device id...).
        id_type: the ID type; every type the value normalises under when omitted.
        dt: the map's date; the latest when omitted.
        limit: at most this many identifiers and links are listed.

    Returns:
        The explanation; ``oneid`` is None when the identifier is not in the map.

    Raises:
        IdentityError: there is no OneID map yet.
        ValueError: ``id_type`` is unknown.
    """
    if id_type is not None and id_type not in NORMALIZERS:
        raise ValueError(f"unknown id type {id_type!r}; use one of {', '.join(sorted(NORMALIZERS))}")
    lake = Lake.from_settings(spark, settings)
    if not lake.exists(MAP):
        raise IdentityError(f"{MAP} does not exist yet; run cdp identity run --dt YYYY-MM-DD first")
    dt = lake.latest_dt(MAP) if dt is None else parse_dt(dt)
    if dt is None:
        raise IdentityError(f"{MAP} is empty; run cdp identity run --dt YYYY-MM-DD first")
    out = Explanation(query=identifier, dt=dt.isoformat())
    sources = load_sources(settings.contract_paths)
    hashed = {c.id_type for s in sources.values() for c in s.columns if c.id_type and c.pii == "direct"}
    key = settings.require_pii_key()
    snapshot = lake.read_dt(MAP, dt)
    wanted = _lookup_values(spark, identifier, id_type, key, hashed)
    found = snapshot.join(wanted, on=["id_type", "id_value"]).select("id_type", "id_value", "vid", "oneid")
    out.matches = [r.asDict() for r in found.orderBy("oneid", "id_type").collect()]
    if not out.matches:
        return out
    out.oneid = out.matches[0]["oneid"]
    members = snapshot.where(F.col("oneid") == out.oneid).select("id_type", "id_value", "vid")
    rows = members.orderBy("vid").limit(limit + 1).collect()
    out.truncated = len(rows) > limit
    out.identifiers = [r.asDict() for r in rows[:limit]]
    tables = {name: silver_table(s.entity) for name, s in sources.items()}
    out.edges, out.pruned = _links_of(lake, dt, members.select("vid"), tables, limit)
    return out


def _links_of(
    lake: Lake, dt: _dt.date, vids: DataFrame, tables: dict[str, str], limit: int
) -> tuple[list[dict], list[dict]]:
    """The kept links leaving ``vids`` and the pruned links touching them on ``dt``, each with the silver
    table of its source."""
    cols = ["src_type", "src_value", "dst_type", "dst_value", "source", "first_seen", "last_seen", "records"]
    edges: list[dict] = []
    pruned: list[dict] = []
    if lake.exists(EDGES):
        links = (
            lake.read_dt(EDGES, dt)
            .join(vids.withColumnRenamed("vid", "src_vid"), on="src_vid")
            .select(*cols)
            .orderBy("src_type", "src_value", "dst_type", "dst_value", "source")
            .limit(limit)
        )
        edges = [r.asDict() | {"table": tables.get(r["source"], r["source"])} for r in links.collect()]
    if lake.exists(PRUNED):
        audit = lake.read_dt(PRUNED, dt)
        touching = union_all(
            [
                audit.join(vids.withColumnRenamed("vid", "src_vid"), on="src_vid"),
                audit.join(vids.withColumnRenamed("vid", "dst_vid"), on="dst_vid"),
            ]
        )
        links = (
            touching.select(*cols, "hub_type", "hub_value", "reason")
            .distinct()
            .orderBy("hub_type", "hub_value", "src_value", "dst_value", "source")
            .limit(limit)
        )
        pruned = [r.asDict() | {"table": tables.get(r["source"], r["source"])} for r in links.collect()]
    return edges, pruned


# ---- evaluate ---------------------------------------------------------------------------------------------


def evaluate(
    spark: SparkSession, settings: Settings, dt: str | _dt.date, *, truth_path: str | Path | None = None
) -> Evaluation:
    """Score the OneID map of ``dt`` against the demo ground truth (see ``identity.evaluate``).

    Args:
        spark: the engine session.
        settings: lake location, truth folder and the PII key the lake was built with.
        dt: the map's date.
        truth_path: the truth ``identifiers.parquet``; ``<truth_root>/identifiers.parquet`` when omitted.

    Returns:
        The scores.

    Raises:
        IdentityError: no map for ``dt`` or no truth file.
    """
    ctx = RunContext.open(spark, settings, dt, stage="identity_evaluate")
    path = Path(truth_path) if truth_path else Path(settings.truth_root) / "identifiers.parquet"
    if not path.exists():
        raise IdentityError(f"no ground truth at {path}; evaluation needs a demo population (cdp demo)")
    if not ctx.lake.exists(MAP):
        raise IdentityError(f"{MAP} does not exist yet; run cdp identity run --dt {ctx.dt} first")
    predicted = ctx.read_dt(MAP)
    if predicted.limit(1).count() == 0:
        raise IdentityError(f"{MAP} has no snapshot for {ctx.dt}; run cdp identity run --dt {ctx.dt} first")
    with ctx.scratch_space():
        truth = ctx.checkpoint(
            truth_identifiers(spark.read.parquet(str(path)), settings.require_pii_key()), "truth"
        )
        evidence = [ctx.read_dt(EDGES).select("src_vid", "dst_vid")]
        if ctx.lake.exists(PRUNED):
            evidence.append(ctx.read_dt(PRUNED).select("src_vid", "dst_vid"))
        vertices = predicted.select("id_type", "id_value", "vid")
        groups = ctx.checkpoint(
            linkable_groups(truth, vertices, union_all(evidence), ctx.checkpoints("rounds")), "groups"
        )
        return score(predicted, truth, groups)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point for spark-submit and ``python -m jobs.identity``."""
    from cdp.engine import get_spark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dt", required=True)
    parser.add_argument("--rules", help="identity rules file (default: the packaged identity/rules.yaml)")
    parser.add_argument("--link", action="store_true", help="run the probabilistic linkage of the rules")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        report = run(get_spark(settings), settings, args.dt, rules_path=args.rules, link=args.link or None)
    except (RulesError, IdentityError, QualityGateError, LinkageError) as exc:
        # One clear line for the operator (the gate's results are in gold.quality_results), no traceback.
        print(f"identity {args.dt}: {exc}", file=sys.stderr)
        return 1
    for line in report.summary():
        print(line)
    return 0


if __name__ == "__main__":
    from cdp.run import exit_with

    exit_with(main)
