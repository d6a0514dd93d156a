"""Stage measurement: CPU-seconds beside wall time and peak memory, and a previous run's figures beside this
run's (what ``make bench`` prints)."""

from __future__ import annotations

from rich.console import Console

from cdp.measure import StageResult, measure, results_table


def _render(table) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def _cells(text: str, stage: str) -> list[str]:
    line = next(line for line in text.splitlines() if stage in line)
    return [c.strip() for c in line.strip("│ ").split("│")]


def test_measure_counts_the_cpu_seconds_of_the_block() -> None:
    with measure("busy") as busy:
        total = 0
        for i in range(3_000_000):
            total += i * i
    with measure("idle") as idle:
        pass
    assert busy.cpu_seconds > 0.05
    assert idle.cpu_seconds < busy.cpu_seconds
    assert busy.seconds > 0 and busy.peak_rss_mb > 0


def test_results_table_shows_the_previous_run_beside_each_stage() -> None:
    results = [
        StageResult(
            "ingest 2026-11-01", rows_in=10, rows_out=9, seconds=30.0, peak_rss_mb=1024, cpu_seconds=25.0
        ),
        StageResult("tags 2026-11-01", seconds=12.0, peak_rss_mb=900, cpu_seconds=10.0),
    ]
    previous = {"ingest 2026-11-01": {"seconds": 60.0, "cpu_seconds": 50.0, "peak_rss_mb": 2048}}
    text = _render(results_table("bench", results, previous))
    ingest = _cells(text, "ingest")
    assert ingest[-4:] == ["60.0", "50.0", "2,048", "0.50x"]
    assert ingest[3:6] == ["30.0", "25.0", "1,024"]
    assert _cells(text, "tags")[-4:] == ["-", "-", "-", "-"]
    assert "prev" not in _render(results_table("bench", results))
