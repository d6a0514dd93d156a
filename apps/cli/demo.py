"""``cdp generate`` and ``cdp demo``: a simulated population's landing files and ground truth, and the whole
pipeline run on it date by date (the demo generator in ``demo/``, the one-process runner in
``runners.local``).

The helpers that make a fresh demo population and print what it wrote are shared with ``cdp airflow demo``.
"""

from __future__ import annotations

import datetime as _dt
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from apps.cli.common import DataRoot, console, date_option, settings_for
from cdp.measure import results_table
from cdp.settings import Settings

app = typer.Typer()

DEMO_START = _dt.date(2026, 11, 1)
Persons = Annotated[int, typer.Option(min=100, help="Simulated persons.")]
DemoDays = Annotated[int, typer.Option(min=1, help="Logical dates to run.")]
DemoStart = Annotated[_dt.date, date_option("First logical date (YYYY-MM-DD).")]
DemoSeed = Annotated[int, typer.Option(help="Random seed of the population.")]


@app.command()
def generate(
    persons: Persons = 20_000,
    days: Annotated[int, typer.Option(min=1, help="Landing days to write.")] = 2,
    start: Annotated[_dt.date, date_option("First landing day (YYYY-MM-DD).")] = DEMO_START,
    history_days: Annotated[int, typer.Option(min=0, help="History carried by the first day.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed writes the same files.")] = 42,
    data_root: DataRoot = None,
) -> None:
    """Write a demo population's landing files and ground truth (no pipeline stage runs)."""
    from runners.local import generate_population

    settings = settings_for(data_root)
    with console.status("generating") as status:
        result = generate_population(
            settings,
            persons=persons,
            days=days,
            start=start,
            seed=seed,
            history_days=history_days,
            progress=lambda m: status.update(m),
        )
    console.print(rows_table(result.extra["rows"]))
    console.print(
        f"landing files: {settings.landing_root}\nground truth:  {settings.truth_root} "
        f"(evaluation only; the pipeline never reads it)\n{result.seconds:.1f} s"
    )


@app.command()
def demo(
    persons: Persons = 20_000,
    days: DemoDays = 2,
    start: DemoStart = DEMO_START,
    seed: DemoSeed = 42,
    keep: Annotated[
        bool, typer.Option(help="Keep the existing lake and packs (reruns are idempotent).")
    ] = False,
    data_root: DataRoot = None,
) -> None:
    """Generate a demo population and run every pipeline stage on it, date by date (from an empty lake
    unless --keep)."""
    from cdp.engine import get_spark
    from runners.local import demo_audiences, run_stages, stages

    settings = settings_for(data_root)
    with console.status("generating the demo population") as status:
        gen = demo_population(settings, persons, days, start, seed, keep, status)
        dates = [start + _dt.timedelta(days=i) for i in range(days)]
        results = run_stages(settings, dates[:1], progress=lambda m: status.update(m))
        status.update("creating the example audiences")
        made = demo_audiences(get_spark(settings), settings, start)
        results += run_stages(settings, dates[1:], progress=lambda m: status.update(m))
    console.print(rows_table(gen.extra["rows"]))
    console.print(results_table("pipeline stages", [gen, *results]))
    for r in results:
        for line in r.extra.get("balance", []):
            console.print(f"  {line}")
    for line in made:
        console.print(line, markup=False, highlight=False)
    names = ", ".join(s.name for s in stages()) or "none yet"
    console.print(
        f"stages run: {names}\nlanding files: {settings.landing_root}\n"
        f"Delta lake:    {settings.lake_root}\naudience packs: {settings.packs_root}\n"
        f"ground truth:  {settings.truth_root}"
    )
    print_tables(settings)


def demo_population(
    settings: Settings, persons: int, days: int, first: _dt.date, seed: int, keep: bool, status
):
    """A fresh demo population in the landing and truth folders (and an empty lake unless ``keep``).

    Returns:
        The generator's stage result (``extra["rows"]``: rows written per source).
    """
    from runners.local import generate_population

    if not keep:
        for folder in (settings.lake_root, settings.packs_root, f"{settings.data_root}/_scratch"):
            shutil.rmtree(folder, ignore_errors=True)
    settings.ensure_local_pii_key()
    return generate_population(
        settings,
        persons=persons,
        days=days,
        start=first,
        seed=seed,
        history_days=365,
        progress=lambda m: status.update(f"generate: {m}"),
    )


def rows_table(rows: dict[str, int]) -> Table:
    """Rows written per source, as a table."""
    table = Table(title="rows written per source")
    table.add_column("source")
    table.add_column("rows", justify="right")
    for source, n in sorted(rows.items()):
        table.add_row(source, f"{n:,}")
    return table


def print_tables(settings: Settings) -> None:
    """Print every Delta table under the lake root with its folder."""
    lake_root = Path(settings.lake_root)
    if not lake_root.is_dir():
        return
    for layer in sorted(p for p in lake_root.iterdir() if p.is_dir()):
        for table in sorted(p for p in layer.iterdir() if (p / "_delta_log").is_dir()):
            console.print(f"  {layer.name + '.' + table.name:<32} {table}")
