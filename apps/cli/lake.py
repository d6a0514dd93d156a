"""``cdp lake``: list the lake's Delta tables, show their history and rows, and maintain them (compaction,
vacuum) through the lake catalog ``cdp.lake`` (delta-rs; the engine only to show rows); maintenance runs as
``jobs.maintenance``, holding the table's lease."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import typer
from rich.table import Table

from apps.cli.common import DataRoot, console, fail, settings_for

app = typer.Typer(
    name="lake",
    help="Lake tables: list, inspect, maintain (compaction, vacuum, history).",
    no_args_is_help=True,
)


def _lake(data_root: Path | None, with_engine: bool = False):
    """The lake catalog of the settings, with an engine session only when rows are read."""
    from cdp.lake import Lake

    settings = settings_for(data_root)
    spark = None
    if with_engine:
        from cdp.engine import get_spark

        spark = get_spark(settings)
    return Lake(spark, settings.lake_root)


@app.command("tables")
def lake_tables(data_root: DataRoot = None) -> None:
    """List the Delta tables under the lake root with their latest version."""
    lake = _lake(data_root)
    table = Table(title=f"tables in {lake.root}")
    for col in ("table", "version", "path"):
        table.add_column(col)
    for name in lake.tables():
        table.add_row(name, str(lake.version(name)), lake.path(name))
    console.print(table)


@app.command("history")
def lake_history(table: str, limit: int = 20, data_root: DataRoot = None) -> None:
    """Show a table's commits (through delta-rs)."""
    from cdp.lake import LakeError

    try:
        rows = _lake(data_root).history(table, limit)
    except LakeError as exc:
        raise fail(exc, 1) from None
    out = Table(title=f"history of {table}")
    for col in ("version", "timestamp", "operation", "metrics"):
        out.add_column(col)
    for h in rows:
        ts = _dt.datetime.fromtimestamp(h.get("timestamp", 0) / 1000, tz=_dt.UTC).isoformat(
            timespec="seconds"
        )
        metrics = h.get("operationMetrics") or {}
        out.add_row(
            str(h.get("version")),
            ts,
            str(h.get("operation")),
            ", ".join(f"{k}={v}" for k, v in list(metrics.items())[:4]),
        )
    console.print(out)


@app.command("compact")
def lake_compact(table: str, data_root: DataRoot = None) -> None:
    """Rewrite small files of a table into larger ones (holding its lease: refused while a run writes it)."""
    from jobs.maintenance import compact

    metrics = compact(_lake(data_root), table)
    console.print(f"{table}: {metrics.get('numFilesRemoved')} files -> {metrics.get('numFilesAdded')}")


@app.command("vacuum")
def lake_vacuum(
    table: str, retention_hours: int = 168, apply: bool = False, data_root: DataRoot = None
) -> None:
    """List (or with --apply delete, holding the table's lease) files older than the retention that no
    version needs."""
    from cdp.lake import LakeError
    from jobs.maintenance import vacuum

    try:
        files = vacuum(_lake(data_root), table, retention_hours=retention_hours, dry_run=not apply)
    except LakeError as exc:
        raise fail(exc, 1) from None
    console.print(f"{table}: {len(files)} files {'removed' if apply else 'would be removed (dry run)'}")


@app.command("show")
def lake_show(table: str, limit: int = 20, version: int | None = None, data_root: DataRoot = None) -> None:
    """Print the first rows of a table (optionally at an older version) through the engine; an operator's
    command with an admin's access (``cdp.access``): never ``vault.*``."""
    from cdp.access import policy_for
    from cdp.lake import LakeError

    if (reason := policy_for("admin").table_refusal(table)) is not None:
        raise fail(reason, 1)
    lake = _lake(data_root, with_engine=True)
    try:
        df = lake.read(table, version=version)
    except LakeError as exc:
        raise fail(exc, 1) from None
    df.show(limit, truncate=40)
