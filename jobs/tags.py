"""Tags for one logical date: the tag catalog built over silver tables keyed by OneID.

    gold.oneid_map (dt) + silver.*  (records up to dt)
        -> base views as of dt (members, orders, events, ad_events, kol_engagement, demographics, ...)
        -> raw -> fact -> model tags (catalog order)      -> predictive tags (trained, scored: tags.models)
        -> gold.tags       (oneid, tag_id, value, dt)        long, NULLs left out
        -> gold.profile    one row per OneID, one typed column per tag (what audiences filter on)
        -> gold.tag_stats  coverage, distribution, change against the previous dt, holdout metrics
        -> gold.models     model registry (metrics, features, file under <lake>/models/<tag>/<dt>/)

Write-audit-publish: the date's tags, profile and stats are staged in scratch, validated together with the
suites of ``quality/suites`` (``quality.gate_tables``: every OneID in the map, coverage bounds, row count
against the previous dt) and published only when no critical expectation fails; a failure raises
``QualityGateError`` and leaves every tag table as it was.

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
import shutil
import time
import uuid
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.lake import Lake, parse_dt
from cdp.settings import Settings
from identity.components import parquet_checkpoint
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
from tags.catalog import LAYERS, VIEWS, Catalog, CatalogError, TagDefinition, load_catalog
from tags.views import ViewSpec, as_of_view, population, with_oneid

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
    untrained: list[str] = field(default_factory=list)
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
        for tag_id in self.untrained:
            lines.append(f"  model {tag_id}: not trained (too little history before {self.dt}); NULL")
        for tag_id, m in self.models.items():
            lines.append(
                f"  model {tag_id}: {m['metric']} {m['metric_value']:.3f} on the holdout "
                f"(baseline {m['baseline_value']:.3f}), {m['train_rows']:,} train / "
                f"{m['holdout_rows']:,} holdout rows"
            )
        return lines


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

    def __init__(
        self, spark: SparkSession, lake: Lake, settings: Settings, day: _dt.date, checkpoint
    ) -> None:
        self.spark, self.lake, self.day, self.checkpoint = spark, lake, day, checkpoint
        self.specs = view_specs(settings)
        snapshot = lake.read(MAP).where(F.col("dt") == F.lit(day)).select("id_type", "id_value", "oneid")
        self.oneid_map = snapshot
        self.population = checkpoint(population(snapshot), "population")
        self._keyed: dict[str, DataFrame] = {}

    def keyed(self, view: str) -> DataFrame:
        """One silver table with OneIDs (records ingested up to dt), checkpointed once per build."""
        if view not in self._keyed:
            table = VIEWS[view]
            if view not in self.specs:
                raise TagsError(f"view {view}: no source plan for {table} in the identity rules")
            if self.lake.exists(table):
                silver = self.lake.read(table).where(F.col("_dt") <= F.lit(self.day))
                keyed = silver.transform(with_oneid(self.specs[view], self.oneid_map))
            else:
                raise TagsError(f"view {view} needs {table}, which does not exist; run cdp ingest first")
            self._keyed[view] = self.checkpoint(keyed, f"keyed_{view}")
        return self._keyed[view]

    def views(self, names: set[str], as_of: _dt.date) -> dict[str, DataFrame]:
        return {v: self.keyed(v).transform(as_of_view(self.specs[v], as_of)) for v in sorted(names)}

    def wide(self, tags: list[TagDefinition], as_of: _dt.date, label: str) -> DataFrame:
        """The non-predictive ``tags`` as of ``as_of`` (one row per OneID of dt), checkpointed."""
        sourced = [t for t in tags if t.kind in ("aggregate", "query")]
        derived = [t for t in tags if t.kind in ("expr", "function")]
        names = {v for t in sourced for v in t.sources}
        views = self.views(names, as_of)
        with registered_views(self.spark, views):
            base = self.checkpoint(source_tags(self.population, views, sourced), f"{label}_source")
        return self.checkpoint(base.transform(derived_tags(derived)), label)

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


def _scratch(settings: Settings, name: str) -> str:
    folder = f"{settings.data_root}/_scratch/tags/{name}"
    if "://" not in folder:
        shutil.rmtree(folder, ignore_errors=True)
    return folder


def _kept(lake: Lake, report: TagsReport, day: _dt.date) -> TagsReport | None:
    """The published build of ``day`` when a later date's profile exists and ``day`` has every tag asked."""
    if not lake.exists(PROFILE) or not lake.exists(STATS):
        return None
    if lake.read(PROFILE).where(F.col("dt") > F.lit(day)).limit(1).count() == 0:
        return None
    stats = lake.read(STATS).where(F.col("dt") == F.lit(day)).select("tag_id", "population", "coverage")
    rows = {r["tag_id"]: r for r in stats.collect()}
    if not rows or any(t not in rows for t in report.tags):
        return None
    report.kept = True
    report.coverage = {t: rows[t]["coverage"] for t in report.tags}
    report.oneids = int(next(iter(rows.values()))["population"])
    report.values = lake.read(TAGS).where(F.col("dt") == F.lit(day)).count()
    return report


def _previous_dt(lake: Lake, day: _dt.date) -> _dt.date | None:
    if not lake.exists(PROFILE):
        return None
    return lake.read(PROFILE).where(F.col("dt") < F.lit(day)).agg(F.max("dt")).collect()[0][0]


def _with_missing_columns(df: DataFrame, contract: TableContract) -> DataFrame:
    """Add NULL columns for tags the frame lacks (a tag added to the catalog after an earlier dt)."""
    have = set(df.columns)

    def column(name: str, spark_type: str):
        return F.col(name) if name in have else F.lit(None).cast(spark_type).alias(name)

    return df.select(*[column(c.name, c.spark_type) for c in contract.columns])


def _stage_profile(lake: Lake, wide: DataFrame, day: _dt.date) -> DataFrame:
    """The ``gold.profile`` rows of ``day`` (every contract column, ``dt`` set), not yet published."""
    profile = wide.withColumn("oneid", F.col("oneid").cast("string")).withColumn("dt", F.lit(day))
    return _with_missing_columns(profile, lake.contracts[PROFILE])


def _publish_profile(lake: Lake, profile: DataFrame, day: _dt.date, checkpoint) -> None:
    contract = lake.contracts[PROFILE]
    if not lake.exists(PROFILE):
        # Created empty from the contract first: every tag column nullable, whatever the first data's
        # plan infers (a NOT NULL column would refuse the NULLs of a later partial build).
        lake.overwrite(PROFILE, lake.spark.createDataFrame([], contract.ddl))
    if lake.exists(PROFILE) and set(lake.read(PROFILE).columns) != {c.name for c in contract.columns}:
        # The catalog gained or lost tags: rewrite every dt with the new columns (NULL where unknown),
        # from a checkpoint so that the overwrite never reads the files it replaces.
        others = _with_missing_columns(lake.read(PROFILE).where(F.col("dt") != F.lit(day)), contract)
        everything = checkpoint(others.unionByName(profile), "profile_all")
        lake.overwrite(PROFILE, everything)
        return
    lake.replace_dt(PROFILE, profile, day)


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
        dt: the logical date (``YYYY-MM-DD``); the OneID map of that date must exist.
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
    t0 = time.perf_counter()
    day = parse_dt(dt)
    catalog = catalog or load_catalog()
    layers = list(layers or LAYERS)
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown:
        raise CatalogError(f"unknown layer(s) {unknown}; use {', '.join(LAYERS)}")
    selected = catalog.layer(*layers)
    needed = catalog.closure(t.id for t in selected)
    report = TagsReport(dt=day.isoformat(), layers=layers, tags=[t.id for t in selected])
    report.layer_of = {t.id: t.layer for t in catalog.tags}
    lake = Lake(spark, settings.lake_root, contracts=load_tables() | {PROFILE: profile_contract(catalog)})
    if not rebuild and (kept := _kept(lake, report, day)) is not None:
        kept.seconds = round(time.perf_counter() - t0, 3)
        return kept

    def step(name: str) -> None:
        report.steps[name] = round(time.perf_counter() - t0, 2)
        log.info("tags %s: %s done at %.1f s", day, name, report.steps[name])

    if not lake.exists(MAP) or lake.read(MAP).where(F.col("dt") == F.lit(day)).limit(1).count() == 0:
        raise TagsError(f"{MAP} has no snapshot for {day}; run cdp identity run --dt {day} first")
    scratch = _scratch(settings, day.isoformat())
    checkpoint = parquet_checkpoint(spark, scratch)
    builder = _Builder(spark, lake, settings, day, checkpoint)
    step("views")

    plain = [t for t in needed if t.layer != "predictive" or t.kind != "model"]
    plain_ids = {t.id for t in plain}
    # Predictive tags that are expressions over model outputs come after the models.
    before = [t for t in plain if not any(d not in plain_ids for d in _all_deps(catalog, t))]
    after = [t for t in plain if t not in before]
    try:
        wide = builder.wide(before, day, "wide")
    except Exception as exc:  # the engine's analysis error names the column; add the catalog's side
        raise TagsError(f"tag build failed for {day}: {exc}") from exc
    step("tags")

    models = [t for t in needed if t.kind == "model"]
    if models:
        for tag in models:
            scores, row = _train_and_score(builder, catalog, tag, wide, day, lake.root)
            if scores is None:
                wide = wide.withColumn(tag.id, F.lit(None).cast(tag.spark_type))
                report.untrained.append(tag.id)
            else:
                wide = wide.join(scores, "oneid", "left")
                report.models[tag.id] = row
            step(f"model {tag.id}")
        wide = checkpoint(wide.transform(derived_tags(after)), "wide_predictive")
        full_models = {t.id for t in models} == {t.id for t in catalog.tags if t.kind == "model"}
        done = [*report.models, *report.untrained]

    selected_ids = [t.id for t in selected]
    wide = wide.select("oneid", *[t.id for t in needed])
    # Write: the date's tags, profile and stats staged in scratch; nothing published yet.
    long = checkpoint(to_long(wide, selected_ids), "long")
    if set(layers) == set(LAYERS):
        full = wide
    else:
        kept = _existing(lake, TAGS, day)
        if kept is not None:
            kept = kept.where(~F.col("tag_id").isin(selected_ids)).drop("dt")
            long = checkpoint(kept.unionByName(long), "long_all")
        full = _merge_profile(lake, wide, selected_ids, day, checkpoint)
    profile = checkpoint(_stage_profile(lake, full, day), "profile")
    prev = _previous_dt(lake, day)
    report.previous_dt = prev.isoformat() if prev else None
    stats = _stats(lake, catalog, selected, profile, long, day, prev, report)
    step("staged")

    # Validate: the suites of gold.tags, gold.profile and gold.tag_stats on the staged rows; a critical
    # failure raises QualityGateError and leaves every tag table as it was.
    audits = gate_tables(
        lake,
        {
            TAGS: long.withColumn("dt", F.lit(day)),
            PROFILE: profile,
            STATS: spark.createDataFrame(stats, lake.contracts[STATS].ddl),
        },
        day,
        stage="tags" if set(layers) == set(LAYERS) else "tags " + "+".join(layers),
        contract_paths=settings.contract_paths,
    )
    report.quality_seconds = round(sum(a.seconds for a in audits), 3)
    step("gate")

    # Publish.
    if models:
        _write_rows(lake, spark, MODELS, list(report.models.values()), done, day, full_models)
    lake.replace_dt(TAGS, long, day)
    step("gold.tags")
    _publish_profile(lake, profile, day, checkpoint)
    step("gold.profile")
    _write_rows(lake, spark, STATS, stats, [r["tag_id"] for r in stats], day, set(layers) == set(LAYERS))
    step("gold.tag_stats")
    report.oneids = int(stats[0]["population"]) if stats else 0
    report.values = lake.read(TAGS).where(F.col("dt") == F.lit(day)).count()
    report.coverage = {r["tag_id"]: r["coverage"] for r in stats}
    report.seconds = round(time.perf_counter() - t0, 3)
    if "://" not in scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    return report


def _training_frame(builder: _Builder, catalog: Catalog, tag: TagDefinition, as_of: _dt.date) -> DataFrame:
    """Features as of ``as_of`` joined with the label of the ``horizon`` days after it, in the population."""
    spec = tag.model
    assert spec is not None
    features = builder.wide(catalog.closure(spec.features), as_of, f"{tag.id}_features_{as_of:%Y%m%d}")
    label = builder.label(
        spec.label.from_, spec.label.value, spec.label.where, spec.label.default, as_of, spec.horizon_days
    )
    frame = features.join(label, "oneid")
    return frame.where(F.expr(spec.population)) if spec.population else frame


def _train_and_score(
    builder: _Builder, catalog: Catalog, tag: TagDefinition, wide: DataFrame, day: _dt.date, root: str
) -> tuple[DataFrame | None, dict | None]:
    """Train on the older window, measure on the holdout window, refit on the holdout window, score ``dt``.

    Returns:
        ``(oneid, <tag>)`` scores (NULL outside the model's population) and the ``gold.models`` row, or
        ``(None, None)`` when the history is too short to train (the tag is NULL for the date).
    """
    import pickle

    from tags import models

    spec = tag.model
    assert spec is not None
    types = {f: catalog[f].type for f in spec.features}
    train_as_of, holdout_as_of = models.cutoffs(day, spec.horizon_days)
    train = models.to_pandas(
        _training_frame(builder, catalog, tag, train_as_of), spec.features, spec.sample_rows
    )
    holdout = models.to_pandas(
        _training_frame(builder, catalog, tag, holdout_as_of), spec.features, spec.sample_rows, seed=11
    )
    if train.empty or holdout.empty:
        # Too little history (a new deployment, a short demo): the tag stays NULL for this dt, the rest
        # of the build goes on, and the registry has no row for it.
        log.warning(
            "tags %s: %s not trained: no rows as of %s or %s; the model needs %d days of history",
            day,
            tag.id,
            train_as_of,
            holdout_as_of,
            2 * spec.horizon_days,
        )
        return None, None
    fitted = models.fit(spec, types, train)
    metrics = models.evaluate(
        spec,
        holdout["label"].to_numpy(),
        fitted.predict(holdout),
        models.baseline_scores(spec, holdout, train),
    )
    final = models.fit(spec, types, holdout)  # the most recent window scores dt
    name, value, baseline = models.headline(spec, metrics)
    model_id = uuid.uuid4().hex[:16]
    path = f"{root}/models/{tag.id}/dt={day.isoformat()}/model.pkl"
    if "://" not in path:
        from pathlib import Path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(pickle.dumps(final))
    population_rows = wide.where(F.expr(spec.population)) if spec.population else wide
    scores = models.score(population_rows, final, tag.id)
    row = {
        "model_id": model_id,
        "tag_id": tag.id,
        "algorithm": spec.algorithm,
        "task": spec.task,
        "horizon_days": spec.horizon_days,
        "train_as_of": train_as_of,
        "holdout_as_of": holdout_as_of,
        "features": dumps(list(spec.features)),
        "params": dumps({**models.DEFAULT_PARAMS[spec.algorithm], **spec.params}),
        "metrics": dumps(metrics),
        "metric": name,
        "metric_value": value,
        "baseline_value": baseline,
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "path": path,
        "trained_at": _dt.datetime.now(_dt.UTC).replace(tzinfo=None),
        "dt": day,
    }
    log.info("tags %s: model %s %s %.3f (baseline %.3f)", day, tag.id, name, value, baseline)
    return builder.checkpoint(scores, f"scores_{tag.id}"), row


def _all_deps(catalog: Catalog, tag: TagDefinition) -> set[str]:
    return {t.id for t in catalog.closure([tag.id])} - {tag.id}


def _existing(lake: Lake, table: str, day: _dt.date) -> DataFrame | None:
    if not lake.exists(table):
        return None
    return lake.read(table).where(F.col("dt") == F.lit(day))


def _merge_profile(lake: Lake, wide: DataFrame, tag_ids: list[str], day: _dt.date, checkpoint) -> DataFrame:
    """The profile of ``day`` with ``tag_ids`` replaced by the new values and the other tags kept."""
    current = _existing(lake, PROFILE, day)
    new = wide.select(F.col("oneid").cast("string").alias("oneid"), *tag_ids)
    if current is None:
        return new
    keep = [c for c in current.columns if c not in (*tag_ids, "oneid", "dt")]
    merged = new.join(current.select("oneid", *keep), "oneid", "full")
    return checkpoint(merged, "profile_merged")


def _write_rows(
    lake: Lake,
    spark: SparkSession,
    table: str,
    rows: list[dict],
    tag_ids: list[str],
    day: _dt.date,
    full: bool,
) -> None:
    """Replace the ``day`` snapshot of a small per-tag table; a partial build keeps the other tags' rows."""
    old = None if full else _existing(lake, table, day)
    kept = [] if old is None else [r.asDict() for r in old.where(~F.col("tag_id").isin(tag_ids)).collect()]
    lake.replace_dt(table, spark.createDataFrame(kept + rows, lake.contracts[table].ddl), day)


def _stats(
    lake: Lake,
    catalog: Catalog,
    tags: list[TagDefinition],
    profile: DataFrame,
    long: DataFrame,
    day: _dt.date,
    prev: _dt.date | None,
    report: TagsReport,
) -> list[dict]:
    """Rows of ``gold.tag_stats`` for the tags built, from the staged ``profile`` and ``long`` of ``day``."""
    coverage = coverage_stats(profile, tags)
    counts = value_counts(long, [t.id for t in tags if t.type not in ("long", "double")])
    prev_cov: dict[str, float] = {}
    changed: dict[str, float | None] = {}
    if prev is not None:
        old = lake.read(PROFILE).where(F.col("dt") == F.lit(prev))
        changed = change_stats(profile, old, [t.id for t in tags])
        if lake.exists(STATS):
            prev_cov = {
                r["tag_id"]: r["coverage"]
                for r in lake.read(STATS)
                .where(F.col("dt") == F.lit(prev))
                .select("tag_id", "coverage")
                .collect()
            }
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
                "previous_dt": prev,
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
                "built_at": now,
                "dt": day,
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
    raise SystemExit(main())
