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
    """What one stage did: rows in and out, wall seconds, CPU-seconds and peak resident memory of this process
    tree (the embedded engine runs in this process, so both include it)."""

    stage: str
    rows_in: int | None = None
    rows_out: int | None = None
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)
    cpu_seconds: float = 0.0


def _tree_rss() -> int:
    proc = psutil.Process()
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with suppress(psutil.Error):  # a child may exit while we look
            total += child.memory_info().rss
    return total


def _tree_cpu() -> float:
    """CPU-seconds (user + system) of this process, its running children and its waited-for children."""
    proc = psutil.Process()
    times = proc.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in proc.children(recursive=True):
        with suppress(psutil.Error):
            t = child.cpu_times()
            total += t.user + t.system
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
    cpu = _tree_cpu()
    start = time.perf_counter()
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        result.seconds = time.perf_counter() - start
        result.cpu_seconds = max(_tree_cpu() - cpu, 0.0)
        result.peak_rss_mb = max(peak, _tree_rss()) / 2**20


def results_table(title: str, results: list[StageResult], previous: dict[str, dict] | None = None) -> Table:
    """Render stage results as a table: stage, rows in, rows out, seconds, CPU-seconds, peak MB.

    Args:
        title: the table's title.
        results: the stages, in order.
        previous: an earlier run's figures by stage name (``seconds``, ``cpu_seconds``, ``peak_rss_mb``),
            shown beside each stage with the ratio of this run's seconds to that run's, so a regression shows.
    """
    table = Table(title=title)
    columns = ["stage", "rows in", "rows out", "seconds", "CPU s", "peak MB"]
    if previous is not None:
        columns += ["prev seconds", "prev CPU s", "prev peak MB", "seconds / prev"]
    for col in columns:
        table.add_column(col, justify="left" if col == "stage" else "right")
    for r in results:
        cells = [
            r.stage,
            "" if r.rows_in is None else f"{r.rows_in:,}",
            "" if r.rows_out is None else f"{r.rows_out:,}",
            f"{r.seconds:.1f}",
            f"{r.cpu_seconds:.1f}",
            f"{r.peak_rss_mb:,.0f}",
        ]
        if previous is not None:
            cells += _previous_cells(r, previous.get(r.stage))
        table.add_row(*cells)
    return table


def _previous_cells(r: StageResult, before: dict | None) -> list[str]:
    if not before:
        return ["-", "-", "-", "-"]
    seconds = float(before.get("seconds") or 0.0)
    cpu = before.get("cpu_seconds")
    peak = before.get("peak_rss_mb")
    return [
        f"{seconds:.1f}",
        "-" if cpu is None else f"{float(cpu):.1f}",
        "-" if peak is None else f"{float(peak):,.0f}",
        f"{r.seconds / seconds:.2f}x" if seconds else "-",
    ]
