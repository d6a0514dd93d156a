"""``cdp quality``: validate a published table for one date with its Great Expectations suite (``quality``),
build Data Docs from ``gold.quality_results``, and print a table's suite as a starting point for a new one."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from apps.cli.common import DataRoot, console, date_option, err, fail, settings_for

app = typer.Typer(
    name="quality",
    help="Data quality: validate a table with its Great Expectations suite, build Data Docs.",
    no_args_is_help=True,
)


@app.command("run")
def quality_run(
    table: Annotated[str, typer.Argument(help="Lake table, e.g. silver.members (see cdp lake tables).")],
    dt: Annotated[_dt.date, date_option("Logical date YYYY-MM-DD: the rows validated.")],
    whole_table: Annotated[bool, typer.Option(help="Validate every row, not only the date's.")] = False,
    record: Annotated[bool, typer.Option(help="Append the results to gold.quality_results.")] = True,
    data_root: DataRoot = None,
) -> None:
    """Validate a published table for one date with its suite; exit 1 when a critical expectation fails."""
    from cdp.engine import get_spark
    from cdp.lake import Lake, LakeError
    from quality import SuiteError, validate_table
    from schemas import ContractError

    settings = settings_for(data_root)
    try:
        with console.status(f"validating {table} {dt}"):
            result = validate_table(
                Lake(get_spark(settings), settings.lake_root),
                table,
                dt,
                whole_table=whole_table,
                record=record,
                contract_paths=settings.contract_paths,
            )
    except (LakeError, SuiteError, ContractError) as exc:
        raise fail(exc, 2) from None
    out = Table(title=f"{table} {result.dt}: {result.suite}")
    for col in ("#", "severity", "expectation", "column", "ok", "observed"):
        out.add_column(col, overflow="fold")
    for o in result.outcomes:
        ok = Text("yes", style="green") if o.success else Text("NO", style="red")
        out.add_row(str(o.position), o.severity, o.expectation, o.column or "", ok, Text(o.observed))
    console.print(out)
    for skipped in result.skipped:
        console.print(Text(f"  skipped {skipped}"))
    console.print(Text(result.summary(), style="green" if result.passed else "red"))
    if not result.passed:
        raise typer.Exit(1)


@app.command("docs")
def quality_docs(
    output: Annotated[
        Path | None, typer.Option(help="Folder of the Data Docs project (default: <data root>/quality_docs).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Validations of the latest N logical dates.")] = 30,
    data_root: DataRoot = None,
) -> None:
    """Build Great Expectations Data Docs from gold.quality_results and print the index.html path."""
    from cdp.engine import get_spark
    from cdp.lake import Lake, LakeError
    from quality import build_docs

    settings = settings_for(data_root)
    if output is None and "://" in settings.data_root:
        raise fail("the data root is not a local folder: give --output for the Data Docs", 2)
    folder = output or Path(settings.data_root) / "quality_docs"
    try:
        with console.status("building Data Docs"):
            index = build_docs(
                Lake(get_spark(settings), settings.lake_root),
                folder,
                days=days,
                contract_paths=settings.contract_paths,
            )
    except LakeError as exc:
        raise fail(exc, 1) from None
    console.print(Text(f"Data Docs: {index}"))
    console.print(Text(f"open {index.as_uri()} in a browser"))


@app.command("suite")
def quality_suite(
    table: Annotated[str, typer.Argument(help="Lake table, e.g. silver.members.")],
) -> None:
    """Print a table's suite as JSON: its file, or the one derived from its contract (a starting point for
    quality/suites/<table>.json)."""
    from quality import SuiteError, load_suite
    from schemas import ContractError

    settings = settings_for()
    try:
        plan = load_suite(table, settings.suite_paths, contract_paths=settings.contract_paths)
    except (SuiteError, ContractError) as exc:
        raise fail(exc, 2) from None
    err.print(Text(f"suite of {table}: {plan.origin}"))
    print(json.dumps(plan.data, indent=2, ensure_ascii=False))
