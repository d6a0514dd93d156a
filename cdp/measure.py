"""Timing and peak-memory measurement of pipeline stages, for the demo summary and ``make bench``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import psutil
from rich.table import Table


@dataclass
class StageResult:
    """What one stage did: rows in and out, wall seconds, and peak resident memory of this process tree."""

    stage: str
    rows_in: int | None = None
    rows_out: int | None = None
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


def _tree_rss() -> int:
    proc = psutil.Process()
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with suppress(psutil.Error):  # a child may exit while we look
            total += child.memory_info().rss
    return total


@contextmanager
def measure(stage: str, interval: float = 0.05) -> Iterator[StageResult]:
    """Time a block and sample the peak RSS of this process and its children while it runs.

    The embedded engine runs inside this process, so its memory is included.

    Yields:
        A ``StageResult`` the block may fill with ``rows_in``/``rows_out``; seconds and peak memory are set
        when the block ends.
    """
    result = StageResult(stage)
    peak = _tree_rss()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(interval):
            peak = max(peak, _tree_rss())

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        result.seconds = time.perf_counter() - start
        result.peak_rss_mb = max(peak, _tree_rss()) / 2**20


def results_table(title: str, results: list[StageResult]) -> Table:
    """Render stage results as a table: stage, rows in, rows out, seconds, peak MB."""
    table = Table(title=title)
    for col in ("stage", "rows in", "rows out", "seconds", "peak MB"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for r in results:
        table.add_row(
            r.stage,
            "" if r.rows_in is None else f"{r.rows_in:,}",
            "" if r.rows_out is None else f"{r.rows_out:,}",
            f"{r.seconds:.1f}",
            f"{r.peak_rss_mb:,.0f}",
        )
    return table
