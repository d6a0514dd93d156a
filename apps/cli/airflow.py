"""``cdp airflow``: local Airflow standalone with the CDP DAGs and a Sail server (``runners.airflow_local``),
or the demo population run date by date through the ``cdp_daily`` DAG."""

from __future__ import annotations

import datetime as _dt
from typing import Annotated

import typer
from rich.table import Table

from apps.cli.common import DataRoot, console, fail, settings_for
from apps.cli.demo import (
    DEMO_START,
    DemoDays,
    DemoSeed,
    DemoStart,
    Persons,
    demo_population,
    print_tables,
    rows_table,
)

app = typer.Typer(
    name="airflow", help="Local Airflow: standalone with the CDP DAGs, or the demo run through it."
)
SparkPort = Annotated[int, typer.Option(help="Port of the local Sail Spark Connect server.")]
Embedded = Annotated[bool, typer.Option(help="Run tasks on an in-process engine instead.")]


@app.callback(invoke_without_command=True)
def airflow_main(
    ctx: typer.Context, spark_port: SparkPort = 50051, embedded: Embedded = False, data_root: DataRoot = None
) -> None:
    """Start Airflow standalone (UI on http://localhost:8080) with the CDP DAGs and a local Sail server
    (the same as ``cdp airflow up``)."""
    if ctx.invoked_subcommand is None:
        airflow_up(spark_port, embedded, data_root)


@app.command("up")
def airflow_up(spark_port: SparkPort = 50051, embedded: Embedded = False, data_root: DataRoot = None) -> None:
    """Start Airflow standalone (UI on http://localhost:8080) with the CDP DAGs and a local Sail server."""
    from runners.airflow_local import up

    raise typer.Exit(up(settings_for(data_root), spark_port=spark_port, embedded=embedded))


@app.command("demo")
def airflow_demo(
    persons: Persons = 20_000,
    days: DemoDays = 2,
    start: DemoStart = DEMO_START,
    seed: DemoSeed = 42,
    keep: Annotated[bool, typer.Option(help="Keep the existing lake and packs.")] = False,
    data_root: DataRoot = None,
) -> None:
    """Generate a demo population and run the cdp_daily DAG for each demo date through Airflow (dag.test,
    embedded engine); exit 1 when a run fails."""
    from cdp.engine import get_spark
    from runners.airflow_local import run_daily
    from runners.local import demo_audiences

    settings = settings_for(data_root)
    with console.status("generating the demo population") as status:
        gen = demo_population(settings, persons, days, start, seed, keep, status)
    console.print(rows_table(gen.extra["rows"]))
    dates = [start + _dt.timedelta(days=i) for i in range(days)]
    runs = run_daily(settings, dates[:1])
    made = []
    if runs[-1]["state"] == "success":
        # A marketer's first audiences (audiences/examples): created on the first date's profile with their
        # packs; every later cdp_daily run refreshes them and writes their packs again.
        made = demo_audiences(get_spark(settings), settings, start)
        runs += run_daily(settings, dates[1:]) if len(dates) > 1 else []
    console.print(_runs_table(runs))
    for line in made:
        console.print(line, markup=False, highlight=False)
    print_tables(settings)
    console.print(f"audience packs: {settings.packs_root}")
    if any(r["state"] != "success" for r in runs):
        raise fail("a cdp_daily run failed; see the task logs above and gold.quality_results", 1)


def _runs_table(runs: list[dict]) -> Table:
    """One row per ``cdp_daily`` run: its date, state and task states counted."""
    table = Table(title="cdp_daily through Airflow")
    for col in ("dt", "state", "tasks"):
        table.add_column(col, overflow="fold")
    for r in runs:
        counts: dict[str, int] = {}
        for state in r["tasks"].values():
            counts[state] = counts.get(state, 0) + 1
        table.add_row(r["dt"], r["state"], ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return table
