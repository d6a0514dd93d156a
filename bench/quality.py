"""Figures for ``make bench``: how long each table's suite takes on a benchmark lake, and what share of its
stage each gate costs (ingest per source, identity), from what the gates recorded in
``gold.quality_results``."""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from cdp.lake import Lake, parse_dt
from quality.catalog import load_suite, suite_tables
from quality.gates import validate

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from cdp.settings import Settings
    from jobs.ingest import IngestReport


def time_suites(
    spark: SparkSession, settings: Settings, dt: str | _dt.date, tables: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Validate each table's rows of ``dt`` with its suite (nothing recorded) and time it.

    Args:
        spark: the engine session.
        settings: where the lake is.
        dt: the logical date.
        tables: the tables to time; every existing table with a suite when omitted.

    Returns:
        One dict per table: ``table``, ``rows``, ``expectations``, ``seconds`` (the validation alone),
        ``passed``.
    """
    day = parse_dt(dt)
    lake = Lake(spark, settings.lake_root)
    names = list(tables) if tables is not None else suite_tables(settings.contract_paths)
    out = []
    for table in names:
        if not lake.exists(table):
            continue
        plan = load_suite(table, contract_paths=settings.contract_paths)
        df = lake.read(table)
        if plan.dt_column:
            df = df.filter(F.col(plan.dt_column) == F.lit(day))
        rows = df.count()
        start = time.perf_counter()
        result = validate(lake, plan, df, day, stage="bench", contract_paths=settings.contract_paths)
        out.append(
            {
                "table": table,
                "rows": rows,
                "expectations": len(result.outcomes),
                "seconds": round(time.perf_counter() - start, 3),
                "passed": result.passed,
            }
        )
    return out


def gate_shares(reports: Iterable[IngestReport]) -> list[dict[str, Any]]:
    """The ingest gate's cost per run: seconds of validation and their share of the run's seconds."""
    return [
        {
            "source": r.source,
            "dt": r.dt,
            "rows_in": r.rows_in,
            "ingest_seconds": r.seconds,
            "gate_seconds": r.quality_seconds,
            "share": round(r.quality_seconds / r.seconds, 4) if r.seconds else None,
        }
        for r in reports
    ]


def stage_gate_shares(
    lake: Lake, dates: Iterable[_dt.date], stage_seconds: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    """The gates' cost per stage and date, from ``gold.quality_results`` (seconds of each validation) and
    the stage's own duration: ``gold.ingest_runs.seconds`` for each ingest run, ``stage_seconds`` (stage
    name and date, e.g. ``identity 2026-11-01``, as ``runners.local`` measures it) for the others.

    Returns:
        One dict per gated stage and date: ``stage``, ``dt``, ``tables``, ``gate_seconds``,
        ``stage_seconds`` and ``share`` (None when the stage's duration is unknown).
    """
    days = [parse_dt(d) for d in dates]
    if not lake.exists("gold.quality_results"):
        return []
    # one row per validation (its seconds repeat on every expectation row); the latest run of a stage wins
    validations = (
        lake.read("gold.quality_results")
        .where(F.col("dt").isin(days) & (F.col("stage") != "bench"))
        .groupBy("stage", "dt", "run_id", "table_name")
        .agg(F.max("seconds").alias("seconds"), F.max("validated_at").alias("at"))
        .collect()
    )
    ingest_seconds: dict[tuple[str, _dt.date], float] = {}
    if lake.exists("gold.ingest_runs"):
        for r in (
            lake.read("gold.ingest_runs")
            .where(F.col("dt").isin(days))
            .orderBy("started_at")
            .select("source", "dt", "seconds")
            .collect()
        ):
            ingest_seconds[(f"ingest {r.source}", r.dt)] = float(r.seconds or 0)
    latest: dict[tuple[str, _dt.date, str], Any] = {}
    for v in validations:
        key = (v.stage, v.dt, v.table_name)
        if key not in latest or v.at > latest[key].at:
            latest[key] = v
    by_stage: dict[tuple[str, _dt.date], list[Any]] = {}
    for (stage, day, _), v in latest.items():
        by_stage.setdefault((stage, day), []).append(v)
    out = []
    for (stage, day), vs in sorted(by_stage.items()):
        gate = round(sum(float(v.seconds or 0) for v in vs), 3)
        total = ingest_seconds.get((stage, day)) or (stage_seconds or {}).get(f"{stage} {day.isoformat()}")
        out.append(
            {
                "stage": stage,
                "dt": day.isoformat(),
                "tables": sorted(v.table_name for v in vs),
                "gate_seconds": gate,
                "stage_seconds": total,
                "share": round(gate / total, 4) if total else None,
            }
        )
    return out
