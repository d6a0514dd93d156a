"""What Airflow tasks call: a Spark session chosen by the Airflow connection, and job runs that return small
JSON-able summaries for XCom. DAG files import this module inside task bodies only (no work at parse time).

The connection decides the engine, not the DAG code: when the Airflow connection ``cdp_spark`` (type
``spark_connect``) exists, tasks run against that Spark Connect server (a ``sail spark server`` or a Spark 4
cluster); without it they use the settings' engine (embedded Sail by default).

One writer per table: Sail does not detect conflicting Delta commits, so every task holds a task lock
(:func:`writing`) on each table it writes for as long as it runs: parallel ingest tasks of one run write
different tables, and a maintenance task waits for the daily task writing the same table. Inside the jobs,
tables that several tasks of one run append to (``gold.ingest_runs``, ``gold.quality_results``,
``gold.audience_exports``) are written under the table's own lake lock (:meth:`cdp.lake.Lake.lock`), held
for one commit; maintenance takes both. Task locks and table locks are separate files, so a job that locks
a table its task already holds does not wait for itself.

Failures that a retry cannot fix (a failed quality gate, a bad contract or rule) raise
``AirflowFailException``, so the task fails at once and the date's downstream tasks do not run.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cdp.lake import bronze_table, quarantine_table, silver_table
from cdp.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SPARK_CONN_ID = "cdp_spark"
IDENTITY_TABLES = (
    "gold.id_vertices",
    "gold.id_edges",
    "gold.id_pruned_edges",
    "gold.oneid_map",
    "gold.oneid_changes",
    "gold.identity_report",
    "gold.id_match_pairs",
    "gold.linkage_model",
)
TAG_TABLES = ("gold.tags", "gold.profile", "gold.tag_stats", "gold.models")
AUDIENCE_TABLES = ("gold.consent_optouts", "gold.audiences", "gold.audience_members", "gold.audience_exports")
EFFECT_TABLES = ("gold.effect_summary", "gold.effect_daily", "gold.effect_lift", "gold.effect_aipl",
                 "gold.effect_issues", "gold.attribution")  # fmt: skip
VACUUM_RETENTION_HOURS = 168
"""Maintenance keeps 7 days of history: time travel and readers still on an older version keep working."""

T = TypeVar("T")


def task_settings() -> Settings:
    """Settings for a task: the environment of the Airflow worker."""
    return Settings.from_env()


def connection_url(conn_id: str = SPARK_CONN_ID) -> str | None:
    """The ``sc://`` URL of an Airflow Spark Connect connection, or None when it is not defined."""
    from airflow.providers.apache.spark.hooks.spark_connect import SparkConnectHook

    try:
        return SparkConnectHook(conn_id).get_connection_url()
    except Exception as exc:  # the SDK raises its own "not found" types, which differ across versions
        if "isn't defined" in str(exc) or "not found" in str(exc).lower():
            return None
        raise


def task_spark(settings: Settings, conn_id: str = SPARK_CONN_ID) -> SparkSession:
    """The session a task runs on: the Airflow connection's Spark Connect server, or else the engine
    the settings name."""
    from dataclasses import replace

    from cdp.engine import get_spark

    url = connection_url(conn_id)
    if url:
        return get_spark(replace(settings, engine="remote", spark_remote=url.rstrip("/")))
    return get_spark(settings)


@contextmanager
def writing(settings: Settings, tables: Iterable[str]) -> Iterator[None]:
    """Hold the task lock of every table in ``tables`` for the block, in name order (so two tasks that need
    overlapping tables cannot deadlock). Local lake roots only (see :meth:`cdp.lake.Lake.lock`)."""
    from cdp.lake import Lake

    lake = Lake(None, settings.lake_root, contracts={})  # locks need the root only, not an engine
    with ExitStack() as stack:
        for table in sorted(set(tables)):
            stack.enter_context(lake.lock(f"{table}.task"))
        yield


def _fail_fast(errors: tuple[type[BaseException], ...], call: Callable[[], T]) -> T:
    """Run ``call``; an error of ``errors`` (no retry can fix it) fails the task without retries."""
    try:
        return call()
    except errors as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def job_exists(module: str) -> bool:
    """Whether a job module (``jobs.tags``) is installed; stages whose job does not exist yet skip."""
    return importlib.util.find_spec(module) is not None


def _skip_unless(module: str) -> None:
    if not job_exists(module):
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"{module} is not installed in this deployment")


def list_sources() -> list[str]:
    """Source contract names, read when the task runs (so a new contract needs no DAG change)."""
    from schemas import load_sources

    return sorted(load_sources(task_settings().contract_paths))


def ingest_source(source: str, dt: str) -> dict:
    """Ingest one source for one date; returns the run's row balance for XCom.

    Raises:
        IngestError: the batch was not published (too many bad rows or refused files); Airflow retries
            and then fails the task, stopping this date's downstream stages.
    """
    from jobs import ingest
    from schemas import ContractError, load_source

    settings = task_settings()
    contract = _fail_fast((ContractError,), lambda: load_source(source, extra=settings.contract_paths))
    own = (bronze_table(source), quarantine_table(source), silver_table(contract.entity))

    def run() -> ingest.IngestReport:
        try:
            return ingest.run(task_spark(settings), settings, source, _dt.date.fromisoformat(dt))
        except ingest.IngestError as exc:
            if exc.report.status in ("failed_quality", "failed_threshold"):
                raise _GateFailed(str(exc)) from exc
            raise

    with writing(settings, own):
        report = _fail_fast((_GateFailed,), run)
    return {
        "source": source,
        "dt": dt,
        "balance": report.balance_line(),
        "rows_in": report.rows_in,
        "silver_written": report.silver_written,
        "quarantined": report.quarantined,
    }


class _GateFailed(RuntimeError):
    """A quality gate or threshold stopped a publish: the data must change before a rerun can pass."""


def check_tables(tables: Iterable[str], dt: str, *, stage: str) -> dict[str, Any]:
    """The gate after a stage whose tasks publish themselves: validate the date's rows of each existing
    table with its suite, record the results, and fail the task (no retries) on a critical failure, so
    the next stage does not run for this date.

    Returns:
        Per table: ``passed``, expectations run, failed critical and warning counts, seconds.
    """
    from cdp.lake import Lake
    from quality import QualityGateError, validate_gate, validate_table

    settings = task_settings()
    lake = Lake(task_spark(settings), settings.lake_root)
    results = [
        validate_table(lake, table, dt, stage=stage, contract_paths=settings.contract_paths)
        for table in tables
        if lake.exists(table)
    ]
    _fail_fast((QualityGateError,), lambda: validate_gate(results))
    return {
        r.table: {
            "passed": r.passed,
            "expectations": len(r.outcomes),
            "critical_failed": len(r.failures),
            "warnings": len(r.warnings),
            "seconds": r.seconds,
        }
        for r in results
    }


def resolve_identity(dt: str) -> dict[str, Any]:
    """Resolve OneIDs for one date (``jobs.identity``); its gate validates the map, changes and report
    before anything is written. Dates must run in order (the DAG has ``max_active_runs=1``)."""
    from identity.rules import RulesError
    from jobs import identity
    from jobs.linkage import LinkageError
    from quality import QualityGateError
    from schemas import ContractError

    settings = task_settings()
    with writing(settings, IDENTITY_TABLES):
        report = _fail_fast(
            (QualityGateError, RulesError, ContractError, identity.IdentityError, LinkageError),
            lambda: identity.run(task_spark(settings), settings, dt),
        )
    return {
        "dt": dt,
        "identifiers": sum(report.identifiers.values()),
        "oneids": report.oneids,
        "new_oneids": report.new_oneids,
        "changes": report.changes,
        "alerts": [a["kind"] for a in report.alerts],
        "seconds": report.seconds,
        "gate_seconds": report.quality_seconds,
    }


def build_tags(dt: str, layer: str) -> dict[str, Any]:
    """Build one tag layer for one date (``jobs.tags``); skipped when the tags job is not installed."""
    _skip_unless("jobs.tags")
    from jobs import tags
    from quality import QualityGateError
    from tags.catalog import CatalogError

    settings = task_settings()
    with writing(settings, TAG_TABLES):
        report = _fail_fast(
            (QualityGateError, CatalogError, tags.TagsError),
            lambda: tags.run(task_spark(settings), settings, dt, [layer]),
        )
    return {
        "dt": dt,
        "layer": layer,
        "tags": len(report.tags),
        "oneids": report.oneids,
        "values": report.values,
        "seconds": report.seconds,
    }


def refresh_audiences(dt: str) -> dict[str, Any]:
    """Refresh every rule audience on the date's profile and write their scheduled packs
    (``jobs.audiences.refresh``); skipped when the audiences job is not installed."""
    _skip_unless("jobs.audiences")
    from audiences.errors import AudienceError
    from jobs import audiences

    settings = task_settings()
    with writing(settings, AUDIENCE_TABLES):
        report = _fail_fast((AudienceError,), lambda: audiences.refresh(task_spark(settings), settings, dt))
    return {
        "dt": dt,
        "optouts": report.optouts,
        "refreshed": report.refreshed,
        "exports": report.exports,
        "refused": report.refused,
        "skipped": report.skipped,
        "seconds": report.seconds,
    }


def build_creators(dt: str) -> dict[str, Any]:
    """Build the creator tables of the date (``jobs.creators.build``: features, audience TGI, potential
    model); skipped, with the reason, when the deployment has no creator statistics (source creator_stats)."""
    _skip_unless("jobs.creators")
    from deltalake import DeltaTable

    from jobs import creators

    settings = task_settings()
    stats = f"{settings.lake_root}/silver/creators"
    if "://" not in settings.lake_root and not DeltaTable.is_deltatable(stats):
        return {"dt": dt, "skipped": "no creator statistics: land the creator_stats source to build creators"}
    tables = (creators.FEATURES, creators.AUDIENCE, creators.POTENTIAL, creators.MODELS)
    with writing(settings, tables):
        report = _fail_fast(
            (creators.CreatorsError,), lambda: creators.build(task_spark(settings), settings, dt)
        )
    return {"dt": dt, "creators": report.creators, "potential": report.potential.get("status"),
            "seconds": report.seconds}  # fmt: skip


def export_audience(
    audience: str, destination: str, id_types: list[str] | None = None, version: int | None = None
) -> dict[str, Any]:
    """Write one audience pack (人群包) for a destination (``jobs.audiences.export``), as a marketer or the
    API asks through ``cdp_audience_export``'s params.

    Raises:
        AirflowFailException: unknown audience or destination, an ID type the destination does not take,
            or a pack below the minimum size (no retry changes that).
    """
    from audiences.errors import AudienceError
    from jobs import audiences

    settings = task_settings()
    manifest = _fail_fast(
        (AudienceError,),
        lambda: audiences.export(
            task_spark(settings),
            settings,
            audience,
            destination,
            version=version,
            id_types=list(id_types) if id_types else None,
            created_by="airflow",
        ),
    )
    return {
        "audience": manifest.audience_id,
        "version": manifest.version,
        "destination": manifest.destination,
        "path": manifest.path,
        "people": manifest.people,
        "lines": manifest.lines,
    }


def measure_effect(dt: str) -> dict[str, Any]:
    """Measure every registered campaign up to the date and attribute the orders (``jobs.effect.run``);
    skipped when the effect job is not installed. Bad input is reported in the result, not raised."""
    _skip_unless("jobs.effect")
    from effect import EffectError
    from jobs import effect

    settings = task_settings()
    with writing(settings, EFFECT_TABLES):
        report = _fail_fast((EffectError,), lambda: effect.run(task_spark(settings), settings, dt))
    return {
        "dt": dt,
        "campaigns": report.campaigns,
        "lifts": [x["sentence"] for x in report.lifts if x["metric"] == "conversion_rate"],
        "issues": sorted({i["kind"] for i in report.issues}),
        "attributed_orders": report.attributed_orders,
        "seconds": report.seconds,
    }


# ---- maintenance -----------------------------------------------------------------------------------------


def list_tables() -> list[str]:
    """Every Delta table under the lake root, read when the task runs."""
    from cdp.lake import Lake

    return Lake(None, task_settings().lake_root, contracts={}).tables()


def compact_table(table: str) -> dict[str, Any]:
    """Rewrite a table's small files into larger ones through delta-rs, holding the table's task and table
    locks and its lease (``jobs.maintenance``) so no pipeline task or CLI run writes it meanwhile."""
    from cdp.lake import Lake
    from jobs.maintenance import compact

    settings = task_settings()
    lake = Lake(None, settings.lake_root, contracts={})
    with writing(settings, [table]):
        metrics = compact(lake, table)
    return {
        "table": table,
        "files_removed": metrics.get("numFilesRemoved"),
        "files_added": metrics.get("numFilesAdded"),
    }


def vacuum_table(table: str, retention_hours: int = VACUUM_RETENTION_HOURS) -> dict[str, Any]:
    """Delete files no version younger than ``retention_hours`` needs (at least 7 days: see
    :meth:`cdp.lake.Lake.vacuum`), holding the table's task and table locks and its lease
    (``jobs.maintenance``)."""
    from cdp.lake import Lake, LakeError
    from jobs.maintenance import vacuum

    settings = task_settings()
    lake = Lake(None, settings.lake_root, contracts={})
    with writing(settings, [table]):
        removed = _fail_fast(
            (LakeError,),
            lambda: vacuum(lake, table, retention_hours=retention_hours, dry_run=False),
        )
    return {"table": table, "files_removed": len(removed), "retention_hours": retention_hours}


def vacuum_erasures() -> dict[str, Any]:
    """Vacuum the tables of every erasure whose retention (``CDP_ERASURE_RETENTION_HOURS``) has passed:
    old file versions and log versions that still hold the erased rows go (``jobs.privacy.vacuum_due``, which
    holds each table's lake lock). Runs before compaction, so no other maintenance task holds the tables."""
    from jobs.privacy import vacuum_due

    settings = task_settings()
    removed = vacuum_due(task_spark(settings), settings)
    return {"tables": len(removed), "files_removed": sum(removed.values())}


def history_report(tables: Iterable[str], ds: str, *, days: int = 7) -> dict[str, Any]:
    """Commits of each table in the ``days`` before ``ds`` (operations, rows written), written as JSON to
    ``<data root>/maintenance/history-<ds>.json`` for the operators.

    Returns:
        The report's path and one summary per table.
    """
    from cdp.lake import Lake

    settings = task_settings()
    lake = Lake(None, settings.lake_root, contracts={})
    since = _dt.datetime.fromisoformat(ds).replace(tzinfo=_dt.UTC) - _dt.timedelta(days=days)
    summary = {}
    for table in sorted(tables):
        if not lake.exists(table):
            continue
        commits = lake.history(table)
        recent = [c for c in commits if c.get("timestamp", 0) >= since.timestamp() * 1000]
        ops: dict[str, int] = {}
        for c in recent:
            ops[str(c.get("operation"))] = ops.get(str(c.get("operation")), 0) + 1
        summary[table] = {
            "version": lake.version(table),
            "commits": len(recent),
            "operations": ops,
            "rows_written": sum(
                int((c.get("operationMetrics") or {}).get("numOutputRows") or 0) for c in recent
            ),
        }
    path = Path(settings.data_root) / "maintenance" / f"history-{ds}.json"
    if "://" not in settings.data_root:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")
    return {"path": str(path), "tables": summary}
