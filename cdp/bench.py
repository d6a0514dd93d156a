"""``make bench``: generate populations of given sizes and time every stage that exists, printing a table
of stage, rows in/out, seconds and peak memory. Figures, not pass/fail: speed targets live here, not in
tests."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

from cdp.measure import results_table
from cdp.pipeline import generate_population, run_stages
from cdp.settings import Settings


def machine() -> str:
    """A one-line description of the machine the figures come from."""
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}"
    )


def per_source_table(stage: str, rows: list[dict]) -> Table:
    """Ingest throughput per source: rows in, rows to silver, seconds, rows per second."""
    table = Table(title=f"{stage}: per source")
    for col in ("source", "rows in", "to silver", "quarantined", "seconds", "rows/s"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for r in rows:
        table.add_row(
            r["source"],
            f"{r['rows_in']:,}",
            f"{r['silver_written']:,}",
            f"{r['quarantined']:,}",
            f"{r['seconds']:.1f}",
            f"{r['rows_per_s'] or 0:,}",
        )
    return table


def run_bench(
    settings: Settings, sizes: list[int], *, days: int, data_root: Path, console: Console
) -> dict[str, object]:
    """Run generation and every stage for each population size and print one table per size.

    Returns:
        The figures as a JSON-ready dict.
    """
    report: dict[str, object] = {"machine": machine(), "engine": settings.engine, "runs": []}
    console.print(f"machine: {report['machine']}; engine: {settings.engine}")
    start = _dt.date(2026, 11, 1)
    for n in sizes:
        shutil.rmtree(data_root / f"persons_{n}", ignore_errors=True)  # every figure from an empty lake
        run_settings = settings.with_data_root(data_root / f"persons_{n}")
        run_settings.ensure_local_pii_key()
        with console.status(f"{n:,} persons") as status:
            gen = generate_population(
                run_settings,
                persons=n,
                days=days,
                start=start,
                seed=7,
                history_days=365,
                progress=lambda m, n=n: status.update(f"{n:,} persons: generate: {m}"),
            )
            dates = [start + _dt.timedelta(days=i) for i in range(days)]
            results = [
                gen,
                *run_stages(
                    run_settings, dates, progress=lambda m, n=n: status.update(f"{n:,} persons: {m}")
                ),
            ]
        console.print(results_table(f"{n:,} persons, {days} day(s)", results))
        for r in results:
            if r.extra.get("per_source"):
                console.print(per_source_table(r.stage, r.extra["per_source"]))
        report["runs"].append({"persons": n, "stages": [r.__dict__ for r in results]})
    return report
