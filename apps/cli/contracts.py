"""``cdp contracts``: list, validate and show the source and table contracts of ``schemas/`` (plus the folders
in ``CDP_CONTRACT_PATH``), without an engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from apps.cli.common import console, fail, settings_for
from cdp.lake import silver_table

app = typer.Typer(name="contracts", help="Source and table contracts in schemas/.", no_args_is_help=True)


@app.command("list")
def contracts_list() -> None:
    """List source and table contracts."""
    from schemas import ContractError, load_sources, load_tables

    extra = settings_for().contract_paths
    try:
        sources, tables = load_sources(extra), load_tables(extra)
    except ContractError as exc:
        raise fail(exc, 1) from None
    table = Table(title="source contracts")
    for col in ("source", "party", "format", "silver table", "identifier columns"):
        table.add_column(col)
    for s in sources.values():
        table.add_row(
            s.name,
            s.party,
            s.format,
            silver_table(s.entity),
            ", ".join(f"{c}:{t}" for c, t in s.identifier_columns.items()),
        )
    console.print(table)
    if tables:
        tt = Table(title="table contracts")
        tt.add_column("table")
        tt.add_column("description")
        for t in tables.values():
            tt.add_row(t.name, t.description)
        console.print(tt)


@app.command("validate")
def contracts_validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files; all when omitted.")] = None,
) -> None:
    """Validate contract files and print every error with its file and field."""
    from schemas import ContractError, load_contract, load_sources, load_tables

    failures = 0
    try:
        if paths:
            for p in paths:
                try:
                    load_contract(p)
                    console.print(f"[green]ok[/green] {p}")
                except ContractError as exc:
                    failures += 1
                    fail(exc)
        else:
            extra = settings_for().contract_paths
            n = len(load_sources(extra)) + len(load_tables(extra))
            console.print(f"[green]ok[/green] {n} contracts")
    except ContractError as exc:
        raise fail(exc, 1) from None
    if failures:
        raise typer.Exit(1)


@app.command("show")
def contracts_show(name: str) -> None:
    """Show one source contract's columns."""
    from schemas import ContractError, load_source

    try:
        s = load_source(name, settings_for().contract_paths)
    except ContractError as exc:
        raise fail(exc, 1) from None
    console.print(f"[bold]{s.name}[/bold] ({s.party}, {s.format}) -> silver.{s.entity}: {s.description}")
    console.print(f"keys {s.keys}, event time {s.event_time}, max bad share {s.max_bad_share:.0%}")
    table = Table()
    for col in ("column", "type", "required", "id type", "PII", "description"):
        table.add_column(col)
    for c in s.columns:
        table.add_row(c.name, c.type, "yes" if c.required else "", c.id_type or "", c.pii, c.description)
    console.print(table)
