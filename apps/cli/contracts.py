"""``cdp contracts``: list, validate and show the source and table contracts of ``schemas/`` (plus the folders
in ``CDP_CONTRACT_PATH``) without an engine, and preview one file through a source's mapping and typing with
the engine, writing nothing.

Validation checks each source against its canonical entity (``schemas/entities``): every required canonical
column produced, types that match; a source of an entity no tag reads is a warning."""

from __future__ import annotations

import datetime as _dt
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from apps.cli.common import console, date_option, err, fail, settings_for
from cdp.lake import silver_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from schemas import SourceContract

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
    """Validate contract files, sources against their canonical entity, and print every error with its file
    and field (warnings too: a source of an entity no tag reads)."""
    from schemas import (
        ContractError,
        SourceContract,
        load_contract,
        load_sources,
        load_tables,
        source_warnings,
    )

    failures = 0
    try:
        if paths:
            for p in paths:
                try:
                    contract = load_contract(p)
                    console.print(f"[green]ok[/green] {p}")
                    if isinstance(contract, SourceContract):
                        _warn(source_warnings(contract))
                except ContractError as exc:
                    failures += 1
                    fail(exc)
        else:
            extra = settings_for().contract_paths
            sources = load_sources(extra)
            n = len(sources) + len(load_tables(extra))
            console.print(f"[green]ok[/green] {n} contracts")
            for source in sources.values():
                _warn(source_warnings(source))
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
    for col in ("column", "type", "required", "id type", "PII", "made from", "description"):
        table.add_column(col)
    for c in s.columns:
        table.add_row(
            c.name, c.type, "yes" if c.required else "", c.id_type or "", c.pii, _made_from(c), c.description
        )
    console.print(table)


def _made_from(column: object) -> str:
    """How a source column is made from the file, in the contract's words (``from: x``, ``expr: ...``)."""
    parts = []
    for key in ("from_", "expr", "const", "map", "default", "format", "timezone"):
        if key in column.model_fields_set:  # type: ignore[attr-defined]
            value = getattr(column, key)
            parts.append(f"{key.rstrip('_')}: {'null (not in the files)' if value is None else value}")
    return ", ".join(parts)


def _warn(lines: list[str]) -> None:
    for line in lines:
        err.print(f"[yellow]warning[/yellow] {line}")


def preview_file(
    spark: SparkSession, contract: SourceContract, path: Path, dt: _dt.date, staging: Path
) -> DataFrame:
    """One file through the ingest transforms, nothing written: parsed, mapped, typed, identifiers
    normalised, with ``_reasons`` (empty for rows that would reach silver) and ``_raw``.

    Raises:
        LandingError: the file is refused as a whole (the message names it and the fix).
    """
    from pyspark.sql import functions as F

    from ingest.landing import check_file
    from ingest.protect import with_checked_rows
    from ingest.rows import REASONS, build_raw_line
    from jobs.ingest import read_file

    landed = check_file(path, contract, staging)
    typed = read_file(spark, contract, landed).transform(with_checked_rows(contract, dt))
    columns = [c.name for c in contract.columns]
    return typed.select(
        *[F.col(f"`{c}`") for c in columns],
        F.col(REASONS),
        build_raw_line(typed.columns).alias("_raw"),
    )


@app.command("preview")
def contracts_preview(
    source: Annotated[str, typer.Argument(help="Source contract name (cdp contracts list).")],
    file: Annotated[Path, typer.Argument(help="One landed file of that source.")],
    rows: Annotated[int, typer.Option(help="Rows to show of each kind.")] = 10,
    dt: Annotated[
        _dt.date | None, date_option("Logical date for the time checks (today by default).")
    ] = None,
) -> None:
    """Show a file's first rows after mapping and typing, and the rows that would be quarantined with their
    reasons; nothing is written."""
    from cdp.engine import get_spark
    from ingest.landing import LandingError
    from ingest.rows import REASONS
    from schemas import ContractError, load_source

    settings = settings_for()
    try:
        contract = load_source(source, settings.contract_paths)
    except ContractError as exc:
        raise fail(exc, 2) from None
    if not file.is_file():
        raise fail(f"{file}: no such file; give the path of one landed file of source {source}", 2)
    with tempfile.TemporaryDirectory(prefix="cdp-preview-") as staging:
        try:
            day = dt or _dt.date.today()
            checked = preview_file(get_spark(settings), contract, file, day, Path(staging))
            good = checked.filter("size(_reasons) = 0").drop(REASONS, "_raw").limit(rows).collect()
            bad = checked.filter("size(_reasons) > 0").select(REASONS, "_raw").limit(rows).collect()
            counts = checked.selectExpr("size(_reasons) = 0 AS ok").groupBy("ok").count().collect()
        except LandingError as exc:
            raise fail(exc, 2) from None
        except Exception as exc:  # an expr: that does not run on this file: one line, not a traceback
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise fail(
                f"{file}: the mapping of source {source} cannot run on this file: {first}", 2
            ) from None
    n = {r["ok"]: r["count"] for r in counts}
    console.print(
        f"[bold]{source}[/bold] {file}: {n.get(True, 0):,} rows to silver.{contract.entity}, "
        f"{n.get(False, 0):,} to quarantine (nothing written)"
    )
    table = Table(title=f"first rows after mapping and typing (of {n.get(True, 0):,})")
    names = [c.name for c in contract.columns]
    for name in names:
        table.add_column(name)
    for row in good:
        table.add_row(*["" if row[c] is None else str(row[c]) for c in names])
    console.print(table)
    if bad:
        qt = Table(title=f"rows that would be quarantined (of {n.get(False, 0):,})")
        qt.add_column("reasons")
        qt.add_column("line as landed")
        for row in bad:
            qt.add_row(", ".join(row[REASONS]), row["_raw"])
        console.print(qt)
