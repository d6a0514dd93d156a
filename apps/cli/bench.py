"""``cdp bench``: generate populations of several sizes and time every pipeline stage on them
(``bench.run``), optionally writing the figures as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from apps.cli.common import console, settings_for

app = typer.Typer()


@app.command()
def bench(
    persons: Annotated[
        list[int] | None, typer.Option(help="Population sizes; repeat the option for several.")
    ] = None,
    days: Annotated[int, typer.Option(min=1)] = 1,
    data_root: Annotated[Path, typer.Option(help="Scratch folder for the benchmark data.")] = Path(
        "data/bench"
    ),
    output: Annotated[Path | None, typer.Option(help="Also write the figures as JSON here.")] = None,
    audience_profiles: Annotated[
        int | None,
        typer.Option(
            help="Also time the audience operations on this many profiles, replicated from the "
            "last population (identifiers repeat)."
        ),
    ] = None,
) -> None:
    """Generate populations of the given sizes and time every stage (rows, seconds, peak memory)."""
    from bench.run import run_bench

    report = run_bench(
        settings_for(),
        persons or [100_000],
        days=days,
        data_root=data_root,
        console=console,
        audience_profiles=audience_profiles,
    )
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2, default=str))
        console.print(f"figures written to {output}")
