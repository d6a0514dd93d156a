"""Figures for ``make bench``: how long each table's suite takes on a benchmark lake, and what share of the
ingest stage its gate costs."""

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
