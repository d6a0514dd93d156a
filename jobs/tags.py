"""Tags for one logical date: the tag catalog built over silver tables keyed by OneID.

    gold.oneid_map (dt) + silver.*  (records up to dt)
        -> base views as of dt (members, orders, events, ad_events, kol_engagement, demographics, ...)
        -> raw -> fact -> model tags (catalog order)      -> predictive tags (trained, scored: tags.models)
                                                             against BG/NBD on the holdout (tags.btyd)
        -> gold.tags       (oneid, tag_id, value, dt)        long, NULLs left out
        -> gold.profile    one row per OneID, one typed column per tag (what audiences filter on)
        -> gold.tag_stats  coverage, distribution, change against the previous dt, holdout metrics
        -> gold.models     model registry (metrics, features, file under <lake>/models/<tag>/<dt>/), with
                           the reason of every model not trained or not published

A deployment without a source for an entity (no silver table, or none of its records up to dt) still
builds: the view is an empty frame with the silver columns the entity's contracts give, its tags are NULL
(or their default) for every OneID, and the report and ``gold.tag_stats.coverage_warning`` say which
source each tag misses. A model is trained only on windows with both classes (classification) and a
usable feature, and published only with a finite holdout metric; otherwise its tag is NULL for the date
and ``gold.models`` records why (``status``, ``reason``).

Steps, one function each around the run's context (``cdp.run.RunContext``): build (plain tags, then model
scores, then expressions over them) -> stage -> audit -> publish.

Write-audit-publish: the date's tags, profile and stats are staged in the run's scratch, validated together
with the suites of ``quality/suites`` (``quality.gate_tables``: every OneID in the map, coverage bounds, row
count against the previous dt) and published only when no critical expectation fails; a failure raises
``QualityGateError`` and leaves every tag table as it was. The scratch folder is the run's own and is
removed when the run ends, also on error.

A date whose tags a later date's profile already followed is kept on rerun (an Airflow clear, a backfill
over a range): the published snapshot is returned and nothing is rewritten, because silver has moved on
since (a record updated later carries the later ``_dt``) and retraining on it would change the date's
scores. ``rebuild=True`` (``cdp tags build --rebuild``) recomputes it anyway, e.g. to backfill a new tag.

Every output is a snapshot per ``dt``: rebuilding a date replaces it, earlier dates stay for comparison.
``layers`` rebuilds only the tags of those layers (their dependencies are recomputed in memory, not
rewritten) and keeps the other tags of the date.

Run as ``cdp tags build --dt YYYY-MM-DD [--layer fact]`` or ``python -m jobs.tags --dt YYYY-MM-DD``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.lake import Lake
from cdp.run import RunContext, union_all
from cdp.settings import Settings
from identity.rules import load_rules, plan_sources
from quality.gates import gate_tables
from schemas import TableContract, load_sources, load_tables
from tags.build import (
    change_stats,
    coverage_stats,
    derived_tags,
    dumps,
    registered_views,
    source_tags,
    to_long,
    value_counts,
)
from tags.catalog import LAYERS, VIEWS, Catalog, CatalogError, ModelSpec, TagDefinition, load_catalog
from tags.views import ViewSpec, as_of_view, population, referenced_columns, silver_ddl, with_oneid

if TYPE_CHECKING:  # imported where used: scipy and LightGBM load only when a model is built
    from tags.btyd import BgNbd

log = logging.getLogger(__name__)

MAP = "gold.oneid_map"
TAGS, PROFILE, STATS, MODELS = "gold.tags", "gold.profile", "gold.tag_stats", "gold.models"
# Profile views are snapshots, not events: the latest row per key, with no as-of cut.
PROFILE_VIEWS = {
    "members": (("member_id",), "updated_at"),
    "demographics": (("provider", "oaid", "idfa", "imei"), "snapshot_date"),
    "dmp_segments": (("provider", "segment_code", "oaid", "idfa", "imei"), "snapshot_date"),
}


class TagsError(RuntimeError):
    """The tag build cannot run: no OneID map for the date, or a definition fails against the data."""


@dataclass
class TagsReport:
    """What one build did."""

    dt: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    layers: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    oneids: int = 0
    values: int = 0
    coverage: dict[str, float] = field(default_factory=dict)
    models: dict[str, dict] = field(default_factory=dict)
    untrained: dict[str, str] = field(default_factory=dict)
    """Model tags not trained or not published for the date, with the reason (their tag is NULL)."""
    registry: list[dict] = field(default_factory=list)
    """The rows written to gold.models: every model tag of the build, published or not."""
    missing_sources: dict[str, str] = field(default_factory=dict)
    """Base views without records for the date (view -> why): their tags count them as empty."""
    coverage_warnings: dict[str, str] = field(default_factory=dict)
    """Tags that read a missing source, or models not trained (tag -> why)."""
    previous_dt: str | None = None
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    layer_of: dict[str, str] = field(default_factory=dict)
    quality_seconds: float = 0.0
    kept: bool = False

    def summary(self) -> list[str]:
        """Human-readable lines for the CLI."""
        lines = [
            f"tags {self.dt}: {len(self.tags)} tags ({', '.join(self.layers)}) for {self.oneids:,} OneIDs, "
            f"{self.values:,} values; {self.seconds:.1f} s"
            + (f" (previous {self.previous_dt})" if self.previous_dt else "")
            + (" [kept: a later date's profile exists; nothing rewritten]" if self.kept else "")
        ]
        by_layer: dict[str, list[str]] = {}
        for t in self.tags:
            by_layer.setdefault(self.layer_of.get(t, "?"), []).append(t)
        for layer in LAYERS:
            if layer in by_layer:
                cov = [self.coverage.get(t, 0.0) for t in by_layer[layer]]
                lines.append(
                    f"  {layer}: {len(cov)} tags, mean coverage {sum(cov) / len(cov):.1%}, "
                    f"lowest {min(cov):.1%}"
                )
        for view, why in self.missing_sources.items():
            affected = [t for t, w in self.coverage_warnings.items() if f"{VIEWS[view]} " in w]
            shown = ", ".join(affected[:8]) + (f" and {len(affected) - 8} more" if len(affected) > 8 else "")
            lines.append(f"  WARNING source {view}: {why}; {len(affected)} tags read it as empty: {shown}")
        for tag_id, why in self.untrained.items():
            lines.append(f"  model {tag_id}: not published ({why}); NULL")
        for tag_id, m in self.models.items():
            lines.append(
                f"  model {tag_id}: {m['metric']} {m['metric_value']:.3f} on the holdout "
                f"(baseline {m['baseline_value']:.3f}{_vs_btyd(m)}), {m['train_rows']:,} train / "
                f"{m['holdout_rows']:,} holdout rows"
            )
        return lines


def _vs_btyd(model_row: dict) -> str:
    """``; BG/NBD 0.712`` when the model was measured against the BG/NBD benchmark on its holdout, and which
    of the two scores the date when BG/NBD ranked the holdout better."""
    auc = model_row.get("btyd_auc")
    if auc is None or not math.isfinite(auc):
        return ""
    metrics = json.loads(model_row.get("metrics") or "{}")
    if metrics.get("selected") != "bg_nbd":
        return f"; BG/NBD {auc:.3f}"
    model_auc = metrics.get("model_auc")
    return f"; BG/NBD {auc:.3f} published, trained model {float(model_auc or 'nan'):.3f}"


def profile_contract(catalog: Catalog) -> TableContract:
    """The contract of ``gold.profile`` for a catalog: ``oneid``, one typed column per tag, ``dt``."""
    columns = [{"name": "oneid", "type": "string", "required": True}]
    columns += [{"name": t.id, "type": t.type, "description": t.name_en} for t in catalog.tags]
    columns.append({"name": "dt", "type": "date", "required": True})
    return TableContract.model_validate(
        {
            "kind": "table",
            "name": PROFILE,
            "description": "One row per OneID and dt with every tag of the catalog as a typed column.",
            "partition_by": ["dt"],
            "keys": ["oneid", "dt"],
            "columns": columns,
        }
    )


def silver_schemas(settings: Settings) -> dict[str, str]:
    """The DDL of each base view's silver table, from the source contracts of its entity (the schema of the
    empty view of a deployment without that source)."""
    sources = load_sources(settings.contract_paths).values()
    out = {}
    for view, table in VIEWS.items():
        contracts = [c for c in sources if f"silver.{c.entity}" == table]
        if contracts:
            out[view] = silver_ddl(contracts)
    return out


def view_specs(settings: Settings) -> dict[str, ViewSpec]:
    """Base views from the identity rules' source plans: each view's identifier columns in star order."""
    plans = plan_sources(load_rules(), load_sources(settings.contract_paths))
    sources = load_sources(settings.contract_paths)
    specs = {}
    for plan in plans:
        view = plan.table.removeprefix("silver.")
        if view not in VIEWS:
            continue
        ids = tuple((c, t) for c, t, _ in sorted(plan.identifiers, key=lambda i: i[2]))
        profile = PROFILE_VIEWS.get(view)
        time_column = None if profile else sources[plan.source].event_time
        specs[view] = ViewSpec(view, ids, time_column=time_column, latest_by=profile)
    return specs


class _Builder:
    """Builds wide frames of a catalog as of any date (the build date, or a model's cutoffs)."""

    def __init__(self, ctx: RunContext, tags: list[TagDefinition]) -> None:
        self.ctx = ctx
        # What the build's definitions can read: each keyed view is checkpointed with those columns only.
        self.definitions = " ".join(t.model_dump_json() for t in tags)
        self.queries = [t.query for t in tags if t.kind == "query" and t.query]
        self.specs = view_specs(ctx.settings)
        self.schemas = silver_schemas(ctx.settings)
        self.missing: dict[str, str] = {}
        self.oneid_map = ctx.read_dt(MAP).select("id_type", "id_value", "oneid")
        self.population = ctx.checkpoint(population(self.oneid_map), "population")
        self._keyed: dict[str, DataFrame] = {}
        self._once: dict[tuple, Any] = {}

    def once(self, key: tuple, make: Callable[[], Any]) -> Any:
        """``make()`` the first time ``key`` is asked for, the same value afterwards: the checkpoints and fits
        that the models of a build (or one model's feature, sample and benchmark) share are made once."""
        if key not in self._once:
            self._once[key] = make()
        return self._once[key]

    def check_sources(self, views: set[str]) -> dict[str, str]:
        """Find the ``views`` whose silver table does not exist or has no records up to dt (view -> why);
        they are read as empty frames with the contract's columns.

        Raises:
            TagsError: a view has no source plan in the identity rules or no source contract.
        """
        for view in sorted(views - set(self.missing)):
            table = VIEWS[view]
            if view not in self.specs or view not in self.schemas:
                raise TagsError(f"view {view}: no source contract with an identifier writes {table}")
            if not self.ctx.lake.exists(table):
                self.missing[view] = f"{table} does not exist (no source ingested for it)"
            elif self.ctx.read_up_to(table).limit(1).count() == 0:
                self.missing[view] = f"{table} has no records up to {self.ctx.dt}"
        return self.missing

    def keyed(self, view: str) -> DataFrame:
        """One silver table with OneIDs (records ingested up to dt), checkpointed once per build."""
        if view not in self._keyed:
            self.check_sources({view})
            if view in self.missing:
                rows = self.ctx.spark.createDataFrame([], self.schemas[view])
            else:
                rows = self.ctx.read_up_to(VIEWS[view])
            keyed = rows.transform(with_oneid(self.specs[view], self.oneid_map))
            kept = referenced_columns(self.specs[view], keyed.columns, self.definitions, self.queries)
            keyed = keyed if kept is None else keyed.select(*[f"`{c}`" for c in kept])
            self._keyed[view] = self.ctx.checkpoint(keyed, f"keyed_{view}")
        return self._keyed[view]

    def views(self, names: set[str], as_of: _dt.date) -> dict[str, DataFrame]:
        return {v: self.keyed(v).transform(as_of_view(self.specs[v], as_of)) for v in sorted(names)}

    def wide(self, tags: list[TagDefinition], as_of: _dt.date, label: str) -> DataFrame:
        """The non-predictive ``tags`` as of ``as_of`` (one row per OneID of dt), checkpointed."""
        sourced = [t for t in tags if t.kind in ("aggregate", "query")]
        derived = [t for t in tags if t.kind in ("expr", "function")]
        names = {v for t in sourced for v in t.sources}
        views = self.views(names, as_of)
        with registered_views(self.ctx.spark, views):
            base = self.ctx.checkpoint(source_tags(self.population, views, sourced), f"{label}_source")
        return self.ctx.checkpoint(base.transform(derived_tags(derived)), label)

    def features(self, tags: list[TagDefinition], as_of: _dt.date) -> DataFrame:
        """The models' feature ``tags`` as of a cutoff: built and checkpointed once per cutoff, shared by
        every model that trains or measures on it."""
        key = ("features", as_of, tuple(t.id for t in tags))
        return self.once(key, lambda: self.wide(tags, as_of, f"features_{as_of:%Y%m%d}_{len(self._once)}"))

    def label(
        self, view: str, value: str, where: str | None, default, as_of: _dt.date, horizon: int
    ) -> DataFrame:
        """``(oneid, label)``: an aggregate over ``view`` in the ``horizon`` days after ``as_of``."""
        end = as_of + _dt.timedelta(days=horizon)
        rows = self.views({view}, end)[view].where(F.col("days_ago") < horizon)
        if where:
            rows = rows.where(F.expr(where))
        agg = rows.groupBy("oneid").agg(F.expr(value).alias("label"))
        return self.population.join(agg, "oneid", "left").select(
            "oneid", F.coalesce(F.col("label"), F.lit(default)).alias("label")
        )


@dataclass
class _Staged:
    """The date's rows of gold.tags, gold.profile and gold.tag_stats, written to scratch, not published."""

    long: DataFrame
    profile: DataFrame
    stats: list[dict]


def run(
    spark: SparkSession,
    settings: Settings,
    dt: str | _dt.date,
    layers: list[str] | None = None,
    *,
    catalog: Catalog | None = None,
    rebuild: bool = False,
) -> TagsReport:
    """Build the tags of logical date ``dt`` and write gold.tags, gold.profile, gold.tag_stats (and
    gold.models for predictive tags).

    Args:
        spark: the engine session.
        settings: lake and scratch locations, contract paths.
        dt: the logical date, a ``datetime.date`` or ``YYYY-MM-DD``; the OneID map of that date must exist.
        layers: rebuild only these layers (``raw``, ``fact``, ``model``, ``predictive``); all when omitted.
        catalog: the tag catalog; the packaged one plus ``CDP_TAG_PATH`` folders when omitted.
        rebuild: recompute ``dt`` even when a later date's profile exists (see the module doc).

    Returns:
        The build report.

    Raises:
        CatalogError: the catalog or ``layers`` is invalid (nothing is written).
        TagsError: no OneID map for ``dt``, or a definition fails on the data (nothing is written).
        QualityGateError: a critical expectation failed on the staged tables (nothing is written).
    """
    catalog = catalog or load_catalog()
    layers = list(layers or LAYERS)
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown:
        raise CatalogError(f"unknown layer(s) {unknown}; use {', '.join(LAYERS)}")
    lake = Lake(spark, settings.lake_root, contracts=load_tables() | {PROFILE: profile_contract(catalog)})
    ctx = RunContext.open(spark, settings, dt, stage="tags", lake=lake)
    selected = catalog.layer(*layers)
    report = TagsReport(
        dt=ctx.dt.isoformat(),
        run_id=ctx.run_id,
        layers=layers,
        tags=[t.id for t in selected],
        steps=ctx.steps,
    )
    report.layer_of = {t.id: t.layer for t in catalog.tags}
    # One writer per table: the leases are held for the whole run, before anything is read.
    with ctx.lease(TAGS, PROFILE, STATS, MODELS, rerun=f"cdp tags build --dt {ctx.dt}"):
        if not rebuild and (kept := _kept(ctx, report)) is not None:
            kept.seconds = round(ctx.elapsed(), 3)
            return kept
        if not lake.exists(MAP) or ctx.read_dt(MAP).limit(1).count() == 0:
            raise TagsError(f"{MAP} has no snapshot for {ctx.dt}; run cdp identity run --dt {ctx.dt} first")
        with ctx.scratch_space():
            _run(ctx, catalog, layers, selected, report)
    report.seconds = round(ctx.elapsed(), 3)
    return report


def _run(
    ctx: RunContext, catalog: Catalog, layers: list[str], selected: list[TagDefinition], report: TagsReport
) -> None:
    """Build, stage, audit and publish the date's tags (inside the run's leases and scratch)."""
    needed = catalog.closure(t.id for t in selected)
    builder = _Builder(ctx, needed)
    ctx.step("views")
    _check_sources(builder, catalog, selected, needed, report)
    wide = _build(builder, catalog, needed, report)
    staged = _stage(ctx, layers, selected, wide, report)
    _explain_empty(builder, catalog, staged, report)
    _audit(ctx, layers, staged, report)
    _publish(ctx, catalog, layers, staged, report)


def _explain_empty(builder: _Builder, catalog: Catalog, staged: _Staged, report: TagsReport) -> None:
    """A coverage warning for each tag no OneID has although its sources have records, when a column it
    names is NULL in every record of one of those sources (a deployment whose contracts do not map that
    canonical column). A tag with no such column stays without a warning: its definition is broken and the
    tags gate stops it. One aggregate pass per base view involved, only when some tag is empty."""
    empty = [r for r in staged.stats if r["coverage"] == 0 and not r["coverage_warning"]]
    if not empty:
        return
    null_columns: dict[str, list[str]] = {}
    for row in empty:
        tag = catalog[row["tag_id"]]
        closure = catalog.closure([tag.id])
        text = " ".join(t.model_dump_json() for t in closure)
        reasons = []
        for view in sorted({v for t in closure for v in t.sources} - set(builder.missing)):
            if view not in null_columns:
                keyed = builder.keyed(view)
                columns = [c for c in keyed.columns if not c.startswith("_") and c != "oneid"]
                counts = keyed.select(*[F.count(F.col(f"`{c}`")).alias(c) for c in columns]).first()
                null_columns[view] = [c for c in columns if counts[c] == 0]
            named = [c for c in null_columns[view] if re.search(rf"\b{re.escape(c)}\b", text)]
            if named:
                reasons.append(f"{VIEWS[view]} has no value in {', '.join(named)} (no source maps it)")
        if reasons:
            row["coverage_warning"] = report.coverage_warnings[tag.id] = "; ".join(reasons)


def _kept(ctx: RunContext, report: TagsReport) -> TagsReport | None:
    """The published build of this date when a later date's profile exists and it has every tag asked."""
    if not ctx.lake.exists(STATS) or not ctx.has_later_dt(PROFILE):
        return None
    stats = ctx.read_dt(STATS).select("tag_id", "population", "coverage")
    rows = {r["tag_id"]: r for r in stats.collect()}
    if not rows or any(t not in rows for t in report.tags):
        return None
    report.kept = True
    report.coverage = {t: rows[t]["coverage"] for t in report.tags}
    report.oneids = int(next(iter(rows.values()))["population"])
    report.values = ctx.read_dt(TAGS).count()
    return report


def _check_sources(
    builder: _Builder,
    catalog: Catalog,
    selected: list[TagDefinition],
    needed: list[TagDefinition],
    report: TagsReport,
) -> None:
    """Record the base views without records for dt and a coverage warning for every selected tag that
    reads one of them, directly or through the tags it depends on."""
    missing = builder.check_sources({v for t in needed for v in t.sources})
    report.missing_sources = dict(missing)
    for view, why in missing.items():
        log.warning("tags %s: source %s: %s; its tags count it as empty", builder.ctx.dt, view, why)
    for tag in selected:
        views = sorted({v for t in catalog.closure([tag.id]) for v in t.sources} & set(missing))
        if views:
            report.coverage_warnings[tag.id] = "source missing: " + "; ".join(
                f"{VIEWS[v]} ({missing[v].removeprefix(VIEWS[v] + ' ')})" for v in views
            )


def _build(builder: _Builder, catalog: Catalog, needed: list[TagDefinition], report: TagsReport) -> DataFrame:
    """The wide frame of every tag ``needed`` (one row per OneID): plain tags, then model scores, then the
    predictive tags that are expressions over model outputs.

    Raises:
        TagsError: a definition fails on the data.
    """
    ctx = builder.ctx
    plain = [t for t in needed if t.layer != "predictive" or t.kind != "model"]
    plain_ids = {t.id for t in plain}
    before = [t for t in plain if not any(d not in plain_ids for d in _all_deps(catalog, t))]
    after = [t for t in plain if t not in before]
    try:
        wide = builder.wide(before, ctx.dt, "wide")
    except Exception as exc:  # the engine's analysis error names the column; add the catalog's side
        raise TagsError(f"tag build failed for {ctx.dt}: {exc}") from exc
    ctx.step("tags")

    models = [t for t in needed if t.kind == "model"]
    if models:
        # One feature frame per cutoff for all the models (their features' union), not one per model.
        features = catalog.closure(f for t in models for f in t.model.features)  # type: ignore[union-attr]
        # The scores and the tags built on them go to a narrow frame (OneID and what those tags read), joined
        # to the wide frame once: a window over every OneID (percent_rank) gathers all its rows' columns.
        read = {d for t in after for d in _all_deps(catalog, t)}
        narrow = wide.select("oneid", *[c for c in wide.columns if c in read and c != "oneid"])
        for tag in models:
            scores, row = _train_and_score(builder, features, tag, wide)
            report.registry.append(row)
            if scores is None:
                narrow = narrow.withColumn(tag.id, F.lit(None).cast(tag.spark_type))
                report.untrained[tag.id] = row["reason"]
                report.coverage_warnings[tag.id] = f"model not published: {row['reason']}"
            else:
                narrow = narrow.join(scores, "oneid", "left")
                report.models[tag.id] = row
            ctx.step(f"model {tag.id}")
        added = [*[t.id for t in models], *[t.id for t in after]]
        scored = ctx.checkpoint(narrow.transform(derived_tags(after)).select("oneid", *added), "predictive")
        # The narrow side first: a hash join holds its left side in memory and streams the right.
        wide = ctx.checkpoint(scored.join(wide, "oneid", "right"), "wide_predictive")
    return wide.select("oneid", *[t.id for t in needed])


def _all_deps(catalog: Catalog, tag: TagDefinition) -> set[str]:
    return {t.id for t in catalog.closure([tag.id])} - {tag.id}


def _stage(
    ctx: RunContext, layers: list[str], selected: list[TagDefinition], wide: DataFrame, report: TagsReport
) -> _Staged:
    """The date's tags, profile and stats in scratch; a partial build keeps the date's other tags."""
    selected_ids = [t.id for t in selected]
    long = ctx.checkpoint(to_long(wide, selected_ids), "long")
    if set(layers) == set(LAYERS):
        full = wide
    else:
        if ctx.lake.exists(TAGS):
            others = ctx.read_dt(TAGS).where(~F.col("tag_id").isin(selected_ids)).drop("dt")
            long = ctx.checkpoint(union_all([others, long]), "long_all")
        full = _merge_profile(ctx, wide, selected_ids)
    profile = ctx.checkpoint(_stage_profile(ctx, full), "profile")
    previous_dt = ctx.previous_dt(PROFILE)
    report.previous_dt = previous_dt.isoformat() if previous_dt else None
    stats = _stats(ctx, selected, profile, long, previous_dt, report)
    ctx.step("staged")
    return _Staged(long, profile, stats)


def _merge_profile(ctx: RunContext, wide: DataFrame, tag_ids: list[str]) -> DataFrame:
    """The profile of this date with ``tag_ids`` replaced by the new values and the other tags kept."""
    new = wide.select(F.col("oneid").cast("string").alias("oneid"), *tag_ids)
    if not ctx.lake.exists(PROFILE):
        return new
    current = ctx.read_dt(PROFILE)
    keep = [c for c in current.columns if c not in (*tag_ids, "oneid", "dt")]
    merged = new.join(current.select("oneid", *keep), "oneid", "full")
    return ctx.checkpoint(merged, "profile_merged")


def _with_missing_columns(df: DataFrame, contract: TableContract) -> DataFrame:
    """Add NULL columns for tags the frame lacks (a tag added to the catalog after an earlier dt)."""
    have = set(df.columns)

    def column(name: str, spark_type: str):
        return F.col(name) if name in have else F.lit(None).cast(spark_type).alias(name)

    return df.select(*[column(c.name, c.spark_type) for c in contract.columns])


def _stage_profile(ctx: RunContext, wide: DataFrame) -> DataFrame:
    """The ``gold.profile`` rows of this date (every contract column, ``dt`` set), not yet published."""
    profile = wide.withColumn("oneid", F.col("oneid").cast("string")).withColumn("dt", F.lit(ctx.dt))
    return _with_missing_columns(profile, ctx.lake.contracts[PROFILE])


def _audit(ctx: RunContext, layers: list[str], staged: _Staged, report: TagsReport) -> None:
    """The suites of gold.tags, gold.profile and gold.tag_stats on the staged rows.

    Raises:
        QualityGateError: a critical expectation failed; every tag table is left as it was.
    """
    audits = gate_tables(
        ctx.lake,
        {
            TAGS: staged.long.withColumn("dt", F.lit(ctx.dt)),
            PROFILE: staged.profile,
            STATS: ctx.spark.createDataFrame(staged.stats, ctx.lake.contracts[STATS].ddl),
        },
        ctx.dt,
        stage="tags" if set(layers) == set(LAYERS) else "tags " + "+".join(layers),
        contract_paths=ctx.settings.contract_paths,
    )
    report.quality_seconds = round(sum(a.seconds for a in audits), 3)
    ctx.step("gate")


def _publish(
    ctx: RunContext, catalog: Catalog, layers: list[str], staged: _Staged, report: TagsReport
) -> None:
    """Write the staged date to gold.models, gold.tags, gold.profile and gold.tag_stats."""
    trained = [*report.models, *report.untrained]
    if trained:
        every_model = set(trained) == {t.id for t in catalog.tags if t.kind == "model"}
        _write_rows(ctx, MODELS, report.registry, trained, every_model)
    ctx.lake.replace_dt(TAGS, staged.long, ctx.dt)
    ctx.step("gold.tags")
    _publish_profile(ctx, staged.profile)
    ctx.step("gold.profile")
    tag_ids = [r["tag_id"] for r in staged.stats]
    _write_rows(ctx, STATS, staged.stats, tag_ids, set(layers) == set(LAYERS))
    ctx.step("gold.tag_stats")
    report.oneids = int(staged.stats[0]["population"]) if staged.stats else 0
    report.values = ctx.read_dt(TAGS).count()
    report.coverage = {r["tag_id"]: r["coverage"] for r in staged.stats}


def _publish_profile(ctx: RunContext, profile: DataFrame) -> None:
    lake = ctx.lake
    contract = lake.contracts[PROFILE]
    if not lake.exists(PROFILE):
        # Created empty from the contract first: every tag column nullable, whatever the first data's
        # plan infers (a NOT NULL column would refuse the NULLs of a later partial build).
        lake.overwrite(PROFILE, ctx.spark.createDataFrame([], contract.ddl))
    if set(lake.read(PROFILE).columns) != {c.name for c in contract.columns}:
        # The catalog gained or lost tags: rewrite every dt with the new columns (NULL where unknown),
        # from a checkpoint so that the overwrite never reads the files it replaces.
        others = _with_missing_columns(lake.read(PROFILE).where(F.col("dt") != F.lit(ctx.dt)), contract)
        lake.overwrite(PROFILE, ctx.checkpoint(union_all([others, profile]), "profile_all"))
        return
    lake.replace_dt(PROFILE, profile, ctx.dt)


def _write_rows(ctx: RunContext, table: str, rows: list[dict], tag_ids: list[str], full: bool) -> None:
    """Replace this date's snapshot of a small per-tag table; a partial build keeps the other tags' rows."""
    _add_contract_columns(ctx, table)
    old = None if full or not ctx.lake.exists(table) else ctx.read_dt(table)
    kept = [] if old is None else [r.asDict() for r in old.where(~F.col("tag_id").isin(tag_ids)).collect()]
    ctx.lake.replace_dt(table, ctx.spark.createDataFrame(kept + rows, ctx.lake.contracts[table].ddl), ctx.dt)


def _add_contract_columns(ctx: RunContext, table: str) -> None:
    """Rewrite ``table`` with the columns its contract gained since it was created (NULL in the rows of
    earlier dates, e.g. ``gold.models.status``), so that older snapshots stay readable with the new ones."""
    lake = ctx.lake
    contract = lake.contracts[table]
    if not lake.exists(table) or set(lake.read(table).columns) == {c.name for c in contract.columns}:
        return
    rows = ctx.checkpoint(_with_missing_columns(lake.read(table), contract), f"{table.replace('.', '_')}_all")
    lake.overwrite(table, rows)


def _training_frame(
    builder: _Builder,
    features: list[TagDefinition],
    tag: TagDefinition,
    as_of: _dt.date,
    with_btyd: Callable[[_dt.date], Callable[[DataFrame], DataFrame]],
) -> DataFrame:
    """Features as of ``as_of`` (shared by the models) joined with the label of the ``horizon`` days after
    it, in the model's population, with the BG/NBD feature of ``with_btyd`` (:func:`_btyd_feature`).

    Checkpointed once per model and cutoff: the sample counts it and brings it to the driver, and the BG/NBD
    benchmark groups its labels, so the label's aggregate over the orders runs once, not three times.
    """
    spec = tag.model
    assert spec is not None

    def make() -> DataFrame:
        label = builder.label(
            spec.label.from_, spec.label.value, spec.label.where, spec.label.default, as_of, spec.horizon_days
        )
        frame = builder.features(features, as_of).join(label, "oneid")
        frame = frame.where(F.expr(spec.population)) if spec.population else frame
        return builder.ctx.checkpoint(frame.transform(with_btyd(as_of)), f"training_{tag.id}_{as_of:%Y%m%d}")

    return builder.once(("training", tag.id, as_of), make)


def _train_and_score(
    builder: _Builder, features: list[TagDefinition], tag: TagDefinition, wide: DataFrame
) -> tuple[DataFrame | None, dict]:
    """Train on the older window, measure on the holdout window, refit on the holdout window, score ``dt``.

    ``features`` are the tags every model's features need (the same list for all models of a build), so
    the feature frame of a cutoff is built once.

    Returns:
        ``(oneid, <tag>)`` scores (NULL outside the model's population) and the ``gold.models`` row; the
        scores are None when the model is not trained (too little history, one class, no usable feature)
        or not published (no finite holdout metric): the tag is NULL for the date and the row says why.
    """
    from tags import btyd, models

    ctx, spec = builder.ctx, tag.model
    assert spec is not None
    spec, with_btyd = _btyd_feature(builder, spec)
    types = {t.id: t.type for t in features if t.id in spec.features} | {btyd.FEATURE: "double"}
    cutoffs = train_as_of, holdout_as_of = models.cutoffs(ctx.dt, spec.horizon_days)
    frames = {as_of: _training_frame(builder, features, tag, as_of, with_btyd) for as_of in cutoffs}
    train = models.to_pandas(frames[train_as_of], spec.features, spec.sample_rows)
    holdout = models.to_pandas(frames[holdout_as_of], spec.features, spec.sample_rows, seed=11)
    row = _model_row(ctx, tag, train_as_of, holdout_as_of, len(train), len(holdout))
    row["features"] = dumps(list(spec.features))
    reason = models.untrainable(spec, train, f"training window as of {train_as_of}") or models.untrainable(
        spec, holdout, f"holdout window as of {holdout_as_of}"
    )
    if reason is None:
        fitted = models.fit(spec, types, train)
        metrics = models.evaluate(
            spec,
            holdout["label"].to_numpy(),
            fitted.predict(holdout),
            models.baseline_scores(spec, holdout, train),
        )
        metrics = btyd.champion(
            metrics | _btyd_benchmark(builder, spec, [frames[as_of] for as_of in cutoffs], cutoffs)
        )
        name, value, baseline = models.headline(spec, metrics)
        row.update(btyd_auc=metrics.get("btyd_auc"), baseline_auc=metrics.get("baseline_auc"))
        row.update(algorithm="bg_nbd" if metrics.get("selected") == "bg_nbd" else row["algorithm"])
        row.update(metrics=dumps(metrics), metric=name, metric_value=value, baseline_value=baseline)
        reason = models.unpublishable(spec, metrics)
    if reason is not None:
        # The tag stays NULL for this dt, the rest of the build goes on, the registry says why.
        log.warning("tags %s: model %s not published: %s", ctx.dt, tag.id, reason)
        status = "not_trained" if row["metrics"] is None else "rejected"
        value = row["metric_value"]
        finite = value is not None and math.isfinite(value)
        return None, {**row, "metric_value": value if finite else None, "status": status, "reason": reason}
    unusable = models.unusable_features(spec, holdout)
    final = models.fit(spec, types, holdout)  # the most recent window scores dt
    row.update(
        path=_save_model(ctx, tag.id, final),
        status="published",
        reason=f"NULL or constant features: {', '.join(unusable)}" if unusable else None,
    )
    log.info("tags %s: model %s %s %.3f (baseline %.3f)", ctx.dt, tag.id, name, value, baseline)
    population_rows = wide.where(F.expr(spec.population)) if spec.population else wide
    population_rows = population_rows.transform(with_btyd(ctx.dt))
    if metrics.get("selected") == "bg_nbd":  # BG/NBD ranked the holdout better: it scores dt
        scores = population_rows.select(F.col("oneid").cast("long"), btyd.build_score(metrics).alias(tag.id))
    else:
        scores = models.score(population_rows, final, tag.id)
    return ctx.checkpoint(scores, f"scores_{tag.id}"), row


def _model_row(
    ctx: RunContext,
    tag: TagDefinition,
    train_as_of: _dt.date,
    holdout_as_of: _dt.date,
    train: int,
    holdout: int,
) -> dict:
    """The ``gold.models`` row of a model before training: metrics, path and status filled in later."""
    from tags import models

    spec = tag.model
    assert spec is not None
    return {
        "model_id": uuid.uuid4().hex[:16],
        "tag_id": tag.id,
        "algorithm": spec.algorithm,
        "task": spec.task,
        "horizon_days": spec.horizon_days,
        "train_as_of": train_as_of,
        "holdout_as_of": holdout_as_of,
        "features": dumps(list(spec.features)),
        "params": dumps({**models.DEFAULT_PARAMS[spec.algorithm], **spec.params}),
        "metrics": None,
        "metric": "auc" if spec.task == "classification" else "mae",
        "metric_value": None,
        "baseline_value": None,
        "train_rows": train,
        "holdout_rows": holdout,
        "path": None,
        "status": None,
        "reason": None,
        "btyd_auc": None,
        "baseline_auc": None,
        "trained_at": _dt.datetime.now(_dt.UTC).replace(tzinfo=None),
        "dt": ctx.dt,
    }


def _btyd_summaries(builder: _Builder, spec: ModelSpec, as_of: _dt.date) -> DataFrame:
    """``(oneid, x, t_x, T)`` of the orders the model's label counts (e.g. paid ones), up to ``as_of``:
    checkpointed once per filter and cutoff, shared by the models (and the feature and benchmark of each)
    whose labels count the same orders."""
    from tags import btyd

    def make() -> DataFrame:
        orders = builder.views({"orders"}, as_of)["orders"]
        if spec.label.where:
            orders = orders.where(F.expr(spec.label.where))
        summaries = orders.transform(btyd.summary(as_of, builder.specs["orders"].time_column or "order_time"))
        return builder.ctx.checkpoint(summaries, f"btyd_{as_of:%Y%m%d}_{len(builder._once)}")

    return builder.once(("btyd_summaries", spec.label.where, as_of), make)


def _btyd_fit(builder: _Builder, spec: ModelSpec, as_of: _dt.date) -> BgNbd | None:
    """BG/NBD fitted on every customer of :func:`_btyd_summaries` (None without any), once per filter and
    cutoff: the fit does not depend on the model's horizon, so models counting the same orders share it."""
    from tags import btyd

    def make() -> BgNbd | None:
        x, t_x, big_t, n = btyd.triple_counts(_btyd_summaries(builder, spec, as_of))
        return btyd.fit(x, t_x, big_t, n) if n.sum() else None

    return builder.once(("btyd_fit", spec.label.where, as_of), make)


def _btyd_feature(
    builder: _Builder, spec: ModelSpec
) -> tuple[ModelSpec, Callable[[_dt.date], Callable[[DataFrame], DataFrame]]]:
    """A purchase-label model's spec with BG/NBD's P(purchase in its horizon) as one more feature, and the
    transform adding that feature to OneIDs as of a cutoff (NULL without a purchase before it); other
    models unchanged, with a transform that adds nothing.

    BG/NBD is fitted at each cutoff on the order history before it, without labels, so the feature leaks
    nothing from the label window; the model then has the benchmark's own score to match or improve on.
    """
    from tags import btyd

    if btyd.label_direction(spec.task, spec.label.from_, spec.label.value) is None:
        return spec, lambda as_of: lambda frame: frame

    def with_feature(as_of: _dt.date) -> Callable[[DataFrame], DataFrame]:
        summaries, fitted = _btyd_summaries(builder, spec, as_of), _btyd_fit(builder, spec, as_of)
        if fitted is None:
            return lambda frame: frame.withColumn(btyd.FEATURE, F.lit(None).cast("double"))
        scores = summaries.select(
            "oneid", btyd.build_p_purchase(fitted, spec.horizon_days).alias(btyd.FEATURE)
        )
        return lambda frame: frame.join(scores, "oneid", "left")

    return spec.model_copy(update={"features": [*spec.features, btyd.FEATURE]}), with_feature


def _btyd_benchmark(
    builder: _Builder, spec: ModelSpec, frames: list[DataFrame], cutoffs: tuple[_dt.date, _dt.date]
) -> dict:
    """The BG/NBD benchmark of a model whose label is a purchase (or no purchase) in its horizon: fitted on
    the order history before the training cutoff, measured on the holdout window's population and labels
    (``btyd_auc`` and the parameters, for the model's metrics); empty for other models.

    Only the distinct ``(x, t_x, T)`` triples with their label counts come to the driver. The model's own
    AUC is measured on the holdout it samples (``sample_rows``); below that size both see the same rows.

    Args:
        builder: the build (its summaries per cutoff are shared with the BG/NBD feature).
        spec: the model.
        frames: the model's training frames (:func:`_training_frame`) of the training and holdout cutoffs.
        cutoffs: the training and holdout cutoffs.
    """
    from tags import btyd

    direction = btyd.label_direction(spec.task, spec.label.from_, spec.label.value)
    if direction is None:
        return {}
    groups = [
        btyd.labelled_triples(frame, _btyd_summaries(builder, spec, as_of))
        for frame, as_of in zip(frames, cutoffs, strict=True)
    ]
    return btyd.benchmark(*groups, spec.horizon_days, direction)


def _save_model(ctx: RunContext, tag_id: str, model: object) -> str:
    """Pickle a fitted model to ``<lake>/models/<tag>/dt=<dt>/model.pkl`` (local lakes); returns the path."""
    import pickle

    path = f"{ctx.lake.root}/models/{tag_id}/dt={ctx.dt.isoformat()}/model.pkl"
    if "://" not in path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(pickle.dumps(model))
    return path


def _stats(
    ctx: RunContext,
    tags: list[TagDefinition],
    profile: DataFrame,
    long: DataFrame,
    previous_dt: _dt.date | None,
    report: TagsReport,
) -> list[dict]:
    """Rows of ``gold.tag_stats`` for the tags built, from the staged ``profile`` and ``long`` of the date."""
    coverage = coverage_stats(profile, tags)
    counts = value_counts(long, [t.id for t in tags if t.type not in ("long", "double")])
    prev_cov: dict[str, float] = {}
    changed: dict[str, float | None] = {}
    if previous_dt is not None:
        changed = change_stats(profile, ctx.read_dt(PROFILE, previous_dt), [t.id for t in tags])
        if ctx.lake.exists(STATS):
            rows = ctx.read_dt(STATS, previous_dt).select("tag_id", "coverage").collect()
            prev_cov = {r["tag_id"]: r["coverage"] for r in rows}
    now = _dt.datetime.now(_dt.UTC).replace(tzinfo=None)
    rows = []
    for t in tags:
        c = coverage[t.id]
        cov = c["non_null"] / c["population"] if c["population"] else 0.0
        model = report.models.get(t.id)
        rows.append(
            {
                "tag_id": t.id,
                "layer": t.layer,
                "value_type": t.type,
                "population": c["population"],
                "non_null": c["non_null"],
                "coverage": cov,
                "distinct_values": c["distinct"],
                "distribution": dumps(counts.get(t.id) or c["distribution"]),
                "previous_dt": previous_dt,
                "previous_coverage": prev_cov.get(t.id),
                "coverage_change": cov - prev_cov[t.id] if t.id in prev_cov else None,
                "changed_share": changed.get(t.id),
                "metric": model["metric"] if model else None,
                "metric_value": model["metric_value"] if model else None,
                "baseline_value": model["baseline_value"] if model else None,
                "detail": (
                    dumps({"model_id": model["model_id"], "metrics": json.loads(model["metrics"])})
                    if model
                    else None
                ),
                "coverage_warning": report.coverage_warnings.get(t.id),
                "built_at": now,
                "dt": ctx.dt,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point for spark-submit and ``python -m jobs.tags``."""
    from cdp.engine import get_spark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dt", required=True)
    parser.add_argument(
        "--layer", action="append", choices=LAYERS, help="rebuild only this layer (repeatable)"
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    report = run(get_spark(settings), settings, args.dt, args.layer)
    for line in report.summary():
        print(line)
    return 0


if __name__ == "__main__":
    from cdp.run import exit_with

    exit_with(main)
