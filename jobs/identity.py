"""OneID for one logical date: silver identifiers -> identity graph -> stable OneIDs, and the report.

    silver.*  (records up to dt)
        -> gold.id_vertices        identifier -> stable vertex id (insert only)
        -> gold.id_edges           links kept, per source, first/last seen        (snapshot per dt)
        -> gold.id_pruned_edges    links of shared identifiers, with the reason   (snapshot per dt)
        -> gold.oneid_map          identifier -> OneID                            (snapshot per dt)
        -> gold.oneid_changes      merges, splits, retirements since the previous dt
        -> gold.identity_report    counts, component sizes, largest components, pruned hubs, alerts

Write-audit-publish: every output is first written to the run's scratch checkpoints; the map, the changes
and the report are validated with their suites (``quality.gate_tables``), and the tables are written only
when no critical expectation fails. A failed gate raises ``QualityGateError`` and leaves every table as it
was (the results are in ``gold.quality_results``).

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
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.lake import Lake, parse_dt
from cdp.settings import Settings
from identity.components import assign_vertex_ids, connected_components, parquet_checkpoint
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
from identity.rules import IdentityRules, load_rules, plan_sources
from quality.gates import gate_tables
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

    def rows(self) -> list[dict]:
        """The report in the long form of ``gold.identity_report``."""
        day = _dt.date.fromisoformat(self.dt)

        def row(metric: str, dimension: str, value: float | None, detail: object = None) -> dict:
            return {
                "metric": metric,
                "dimension": dimension,
                "value": None if value is None else float(value),
                "detail": None if detail is None else json.dumps(detail, default=str),
                "dt": day,
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
        for a in self.alerts:
            lines.append(f"  ALERT {a['kind']}: {a['message']}")
        return lines


def _scratch(settings: Settings, name: str) -> str:
    """A scratch folder for one run's checkpoints, emptied first (a local path or an object-store URI)."""
    folder = f"{settings.data_root}/_scratch/identity/{name}"
    _clear(folder)
    return folder


def _clear(folder: str) -> None:
    # Object stores keep the previous run's files; checkpoints overwrite them label by label.
    if "://" not in folder:
        shutil.rmtree(folder, ignore_errors=True)


def _previous_dt(lake: Lake, day: _dt.date) -> _dt.date | None:
    if not lake.exists(MAP):
        return None
    return lake.read(MAP).where(F.col("dt") < F.lit(day)).agg(F.max("dt")).collect()[0][0]


def _kept_report(lake: Lake, day: _dt.date) -> IdentityReport | None:
    """The published report of ``day`` when a later date's map exists (that map built on this one)."""
    if not lake.exists(MAP) or not lake.exists(REPORT):
        return None
    later = lake.read(MAP).where(F.col("dt") > F.lit(day)).limit(1).count()
    rows = lake.read(REPORT).where(F.col("dt") == F.lit(day)).select("metric", "dimension", "value", "detail")
    rows = [r.asDict() for r in rows.collect()] if later else []
    if not rows:
        return None
    report = IdentityReport(dt=day.isoformat(), kept=True)
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


def _largest_issued(lake: Lake, previous: DataFrame | None, day: _dt.date) -> int:
    """The largest OneID issued before ``day``: in the previous map, or retired in an earlier change."""
    best = 0
    if previous is not None:
        best = previous.agg(F.max("oneid")).collect()[0][0] or 0
    if lake.exists(CHANGES):
        retired = lake.read(CHANGES).where(F.col("dt") < F.lit(day)).agg(F.max("old_oneid")).collect()[0][0]
        best = max(best, retired or 0)
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

    big = sizes.where(F.col("size") > rules.max_component_size)
    n_big = big.count()
    if n_big:
        examples = [r["oneid"] for r in big.orderBy(F.col("size").desc(), "oneid").limit(LARGEST).collect()]
        report.alerts.append(
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
            report.alerts.append(
                {
                    "kind": f"several_{id_type}",
                    "value": n_over,
                    "oneids": examples,
                    "message": f"{n_over} OneIDs hold more than {limit} {id_type} (max_per_oneid), "
                    f"e.g. {examples}",
                }
            )


def run(
    spark: SparkSession,
    settings: Settings,
    dt: str | _dt.date,
    *,
    rules_path: str | Path | None = None,
    rebuild: bool = False,
) -> IdentityReport:
    """Resolve identities for logical date ``dt`` and write the identity tables.

    Args:
        spark: the engine session.
        settings: lake and scratch locations, PII key (for attribute links), contract paths.
        dt: the logical date (``YYYY-MM-DD``).
        rules_path: identity rules; the packaged ``identity/rules.yaml`` when omitted.
        rebuild: recompute ``dt`` even when a later date's map already built on it (see the module doc).

    Returns:
        The run report (also written to ``gold.identity_report``); for a kept date, the published one
        with ``kept=True``.

    Raises:
        RulesError, ContractError: the rules or contracts are invalid (file and field named).
        IdentityError: no silver table with identifiers exists yet.
        QualityGateError: a critical expectation failed on the map, the changes or the report; nothing
            of this date was written.
    """
    t0 = time.perf_counter()
    day = parse_dt(dt)
    rules = load_rules(rules_path)
    plans = plan_sources(rules, load_sources(settings.contract_paths), rules_path=rules_path)
    key = settings.require_pii_key() if any(p.attributes for p in plans) else None
    lake = Lake(spark, settings.lake_root)
    if not rebuild and (kept := _kept_report(lake, day)) is not None:
        kept.seconds = round(time.perf_counter() - t0, 3)
        return kept
    report = IdentityReport(dt=day.isoformat())

    def step(name: str) -> None:
        report.steps[name] = round(time.perf_counter() - t0, 2)

    scratch = _scratch(settings, day.isoformat())
    checkpoint = parquet_checkpoint(spark, scratch)

    # 1. Identifier tuples of every silver record ingested up to dt.
    parts = []
    for plan in plans:
        if lake.exists(plan.table):
            silver = lake.read(plan.table).where(F.col("_dt") <= F.lit(day))
            parts.append(silver.transform(record_identifiers(plan, key)))
            report.sources.append(plan.source)
    if not parts:
        raise IdentityError("no silver table with identifiers exists yet; run cdp ingest first")
    records = parts[0]
    for part in parts[1:]:
        records = records.unionByName(part)
    records = checkpoint(with_record_ids(records), "records")
    step("records")

    # 2. Stable vertex ids: known identifiers keep theirs, new ones are appended.
    existing = lake.read(VERTICES).select("id_type", "id_value", "vid") if lake.exists(VERTICES) else None
    vertices = checkpoint(assign_vertex_ids(record_vertices(records), existing), "vertices")
    new = vertices if existing is None else vertices.join(existing, ["id_type", "id_value"], "left_anti")
    new = new.withColumn("first_dt", F.lit(day))  # appended after the gate; VERTICES is unchanged until then
    step("vertices")

    # 3. Shared identifiers: over a per-type limit or max_degree first; then, once the person identifiers
    # are grouped into persons without those, identifiers whose persons break the person_limit.
    links = checkpoint(identifier_links(records), "links")
    hubs = checkpoint(find_hubs(links, rules), "hubs_by_limits")
    if rules.person_limit is not None:
        person_edges = _with_vids(person_links(links, hubs, rules), vertices)
        labels, _ = connected_components(
            person_edges.select(F.col("src_vid").alias("src"), F.col("dst_vid").alias("dst")),
            parquet_checkpoint(spark, f"{scratch}/person_rounds"),
        )
        persons = checkpoint(person_anchors(vertices, labels, hubs, rules), "persons")
        hubs = checkpoint(find_person_hubs(hubs, links, persons, rules), "hubs")
    step("hubs")

    # 4. The star edges without shared identifiers, and the pruned ones for the audit.
    edges, pruned = star_edges(records, hubs, checkpoint)
    edges = checkpoint(_with_vids(edges, vertices), "edges")
    pruned = checkpoint(_with_vids(pruned, vertices), "pruned")
    report.edges, report.pruned_edges = edges.count(), pruned.count()
    step("edges")

    # 5. Connected components on the kept edges.
    labels, report.rounds = connected_components(
        edges.select(F.col("src_vid").alias("src"), F.col("dst_vid").alias("dst")),
        parquet_checkpoint(spark, f"{scratch}/rounds"),  # its own folder: its labels are its own
    )
    components = checkpoint(
        with_components(vertices, labels).withColumn("rank", build_priority(rules)), "components"
    )
    step("components")

    # 6. OneIDs that survive from the previous map.
    prev_day = _previous_dt(lake, day)
    previous = None
    if prev_day is not None:
        report.previous_dt = prev_day.isoformat()
        previous = lake.read(MAP).where(F.col("dt") == F.lit(prev_day)).select("vid", "oneid")
    base = _largest_issued(lake, previous, day)
    oneid_map = checkpoint(assign_oneids(components, previous, base=base), "oneid_map")
    if previous is None:
        changes = spark.createDataFrame(
            [], "change_type string, old_oneid long, new_oneid long, identifiers long"
        )
    else:
        changes = checkpoint(oneid_changes(previous, oneid_map), "changes")
    report.new_oneids = oneid_map.where(F.col("oneid") > base).select("oneid").distinct().count()
    step("oneids")

    # 7. Report.
    _fill_report(report, rules, oneid_map, hubs, changes)
    report.seconds = round(time.perf_counter() - t0, 3)
    report_rows = spark.createDataFrame(report.rows(), lake.contracts[REPORT].ddl)

    # 8. Gate: the staged map, changes and report with their suites; raises before anything is published.
    dated = F.lit(day).alias("dt")
    staged = {
        MAP: oneid_map.select("id_type", "id_value", "vid", "oneid", dated),
        CHANGES: changes.select("*", dated),
        REPORT: report_rows,
    }
    try:
        audits = gate_tables(lake, staged, day, stage="identity", contract_paths=settings.contract_paths)
    except Exception:
        _clear(scratch)
        raise
    report.quality_seconds = round(sum(a.seconds for a in audits), 3)
    step("gate")

    # 9. Publish.
    lake.append(VERTICES, new)
    lake.replace_dt(EDGES, edges, day)
    lake.replace_dt(PRUNED, pruned, day)
    lake.replace_dt(MAP, staged[MAP].drop("dt"), day)
    lake.replace_dt(CHANGES, changes, day)
    lake.replace_dt(REPORT, report_rows, day)
    step("publish")
    _clear(scratch)
    return report


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


def _latest_dt(lake: Lake, dt: str | _dt.date | None) -> _dt.date:
    if not lake.exists(MAP):
        raise IdentityError(f"{MAP} does not exist yet; run cdp identity run --dt YYYY-MM-DD first")
    if dt is not None:
        return parse_dt(dt)
    latest = lake.read(MAP).agg(F.max("dt")).collect()[0][0]
    if latest is None:
        raise IdentityError(f"{MAP} is empty; run cdp identity run --dt YYYY-MM-DD first")
    return latest


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
    lake = Lake(spark, settings.lake_root)
    day = _latest_dt(lake, dt)
    out = Explanation(query=identifier, dt=day.isoformat())
    sources = load_sources(settings.contract_paths)
    hashed = {c.id_type for s in sources.values() for c in s.columns if c.id_type and c.pii == "direct"}
    key = settings.require_pii_key()
    snapshot = lake.read(MAP).where(F.col("dt") == F.lit(day))
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
    entity = {name: f"silver.{s.entity}" for name, s in sources.items()}
    vids = members.select("vid")
    cols = ["src_type", "src_value", "dst_type", "dst_value", "source", "first_seen", "last_seen", "records"]
    if lake.exists(EDGES):
        links = (
            lake.read(EDGES)
            .where(F.col("dt") == F.lit(day))
            .join(vids.withColumnRenamed("vid", "src_vid"), on="src_vid")
            .select(*cols)
            .orderBy("src_type", "src_value", "dst_type", "dst_value", "source")
            .limit(limit)
        )
        out.edges = [r.asDict() | {"table": entity.get(r["source"], r["source"])} for r in links.collect()]
    if lake.exists(PRUNED):
        audit = lake.read(PRUNED).where(F.col("dt") == F.lit(day))
        touching = audit.join(vids.withColumnRenamed("vid", "src_vid"), on="src_vid").unionByName(
            audit.join(vids.withColumnRenamed("vid", "dst_vid"), on="dst_vid")
        )
        pruned = (
            touching.select(*cols, "hub_type", "hub_value", "reason")
            .distinct()
            .orderBy("hub_type", "hub_value", "src_value", "dst_value", "source")
            .limit(limit)
        )
        out.pruned = [r.asDict() | {"table": entity.get(r["source"], r["source"])} for r in pruned.collect()]
    return out


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
    day = parse_dt(dt)
    lake = Lake(spark, settings.lake_root)
    path = Path(truth_path) if truth_path else Path(settings.truth_root) / "identifiers.parquet"
    if not path.exists():
        raise IdentityError(f"no ground truth at {path}; evaluation needs a demo population (cdp demo)")
    if not lake.exists(MAP):
        raise IdentityError(f"{MAP} does not exist yet; run cdp identity run --dt {day} first")
    predicted = lake.read(MAP).where(F.col("dt") == F.lit(day))
    if predicted.limit(1).count() == 0:
        raise IdentityError(f"{MAP} has no snapshot for {day}; run cdp identity run --dt {day} first")
    scratch = _scratch(settings, f"evaluate-{day.isoformat()}")
    checkpoint = parquet_checkpoint(spark, scratch)
    truth = checkpoint(truth_identifiers(spark.read.parquet(str(path)), settings.require_pii_key()), "truth")
    evidence = lake.read(EDGES).where(F.col("dt") == F.lit(day)).select("src_vid", "dst_vid")
    if lake.exists(PRUNED):
        evidence = evidence.unionByName(
            lake.read(PRUNED).where(F.col("dt") == F.lit(day)).select("src_vid", "dst_vid")
        )
    vertices = predicted.select("id_type", "id_value", "vid")
    rounds = parquet_checkpoint(spark, f"{scratch}/rounds")
    groups = checkpoint(linkable_groups(truth, vertices, evidence, rounds), "groups")
    result = score(predicted, truth, groups)
    _clear(scratch)
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point for spark-submit and ``python -m jobs.identity``."""
    from cdp.engine import get_spark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dt", required=True)
    parser.add_argument("--rules", help="identity rules file (default: the packaged identity/rules.yaml)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    report = run(get_spark(settings), settings, args.dt, rules_path=args.rules)
    for line in report.summary():
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
