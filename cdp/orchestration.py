"""What Airflow tasks call: a Spark session chosen by the Airflow connection, and job runs that return small
JSON-able summaries for XCom. DAG files import this module inside task bodies only (no work at parse time).

The connection decides the engine, not the DAG code: when the Airflow connection ``cdp_spark`` (type
``spark_connect``) exists, tasks run against that Spark Connect server (a ``sail spark server`` or a Spark 4
cluster); without it they use the settings' engine (embedded Sail by default).
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

from cdp.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SPARK_CONN_ID = "cdp_spark"


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

    settings = task_settings()
    report = ingest.run(task_spark(settings), settings, source, _dt.date.fromisoformat(dt))
    return {
        "source": source,
        "dt": dt,
        "balance": report.balance_line(),
        "rows_in": report.rows_in,
        "silver_written": report.silver_written,
        "quarantined": report.quarantined,
    }
