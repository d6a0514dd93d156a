"""``cdp sql``: analyst SQL over every lake table with DuckDB (``cdp.sql``), no engine: one statement to the
screen or a file, or an interactive shell."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from apps.cli.common import DataRoot, console, err, fail, settings_for

app = typer.Typer()

SHELL_HELP = """\
Statements end with ';' and may span lines. Tables are views named <layer>.<name>, e.g.
  SELECT channel, count(*) FROM silver.orders GROUP BY 1;
Commands: .tables  .schema <table>  .format table|csv|json  .limit <n>  .help  .quit"""


@app.command("sql")
def sql(
    query: Annotated[
        str | None, typer.Argument(help="The SQL statement; an interactive shell when omitted.")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="table (default), csv or json on stdout; csv, parquet or json to a file."
        ),
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the result to this file.")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="At most this many rows (default 1000 on screen, all for files)."),
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """SQL over every lake table (views bronze.*, silver.*, gold.*, quarantine.*) with DuckDB, no engine."""
    from cdp.sql import FORMATS, LakeSQL, SqlError, write_result

    if fmt not in FORMATS:
        raise fail(f"--format {fmt!r}: use one of {', '.join(FORMATS)}", 2)
    if output is not None and fmt == "table":
        fmt = {".parquet": "parquet", ".json": "json", ".jsonl": "json"}.get(output.suffix.lower(), "csv")
    settings = settings_for(data_root)
    if "://" in settings.lake_root:
        raise fail("cdp sql lists tables of a local lake root; CDP_LAKE_ROOT is a URI", 2)
    lake_sql = LakeSQL(settings.lake_root)
    for name, reason in lake_sql.skipped.items():
        err.print(Text(f"skipped {name}: {reason}", style="yellow"))
    if query is None:
        if output is not None:
            raise fail("--output needs a query", 2)
        _shell(lake_sql, fmt if fmt != "parquet" else "table", limit or 1000)
        return
    try:
        result = lake_sql.query(query, limit=limit if (limit or output) else 1000)
        if output is not None:
            path = write_result(result.table, fmt, output)
            err.print(Text(f"{result.table.num_rows:,} rows -> {path} ({result.seconds:.3f} s)"))
            return
    except SqlError as exc:
        raise fail(exc, 1) from None
    if fmt == "parquet":
        raise fail("--format parquet needs --output FILE", 2)
    _print_result(result, fmt)


def _print_result(result, fmt: str) -> None:
    """A query result as a table, CSV or JSON lines on stdout, and its row count and time on stderr."""
    if fmt == "csv":
        import pyarrow.csv as pacsv

        sink = sys.stdout.buffer
        pacsv.write_csv(result.table, sink)
        sink.flush()
    elif fmt == "json":
        import json

        for row in result.table.to_pylist():
            print(json.dumps(row, ensure_ascii=False, default=str))
    else:
        table = Table(show_lines=False)
        for name in result.table.column_names:
            table.add_column(name, overflow="fold")
        for row in result.table.to_pylist():
            table.add_row(*[Text("NULL", style="dim") if v is None else Text(str(v)) for v in row.values()])
        console.print(table)
    more = " (more rows exist: raise --limit or write a file)" if result.truncated else ""
    err.print(Text(f"{result.table.num_rows:,} rows in {result.seconds:.3f} s{more}", style="dim"))


@dataclass
class _ShellState:
    """What the shell's dot commands change: the output format and the row limit."""

    fmt: str
    limit: int


def _shell(lake_sql, fmt: str, limit: int) -> None:
    """Read statements (ending with ';', over several lines) and dot commands until .quit or end of input."""
    from cdp.sql import SqlError

    with contextlib.suppress(ImportError):  # not on every platform
        import readline  # noqa: F401 - line editing and history for input()
    err.print(Text(f"cdp sql: {len(lake_sql.tables)} tables from {lake_sql.root} (DuckDB). .help for help"))
    state = _ShellState(fmt, limit)
    buffer: list[str] = []
    while True:
        try:
            line = input("...> " if buffer else "sql> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return
        stripped = line.strip()
        if not buffer and stripped.startswith("."):
            if not _dot_command(lake_sql, stripped, state):
                return
            continue
        if not stripped and not buffer:
            continue
        buffer.append(line)
        if not stripped.endswith(";"):
            continue
        statement, buffer = "\n".join(buffer), []
        try:
            result = lake_sql.query(statement, limit=state.limit)
        except SqlError as exc:
            err.print(Text(str(exc), style="red"))
            continue
        _print_result(result, state.fmt)


def _dot_command(lake_sql, stripped: str, state: _ShellState) -> bool:
    """Run one shell command (``.tables``, ``.schema t`` ...); False when it ends the shell."""
    from cdp.sql import SqlError

    cmd, _, arg = stripped.partition(" ")
    arg = arg.strip().rstrip(";")
    if cmd in (".quit", ".exit", ".q"):
        return False
    if cmd == ".help":
        console.print(Text(SHELL_HELP))
    elif cmd == ".tables":
        console.print(Text("\n".join(lake_sql.tables) or "(no tables)"))
    elif cmd == ".schema":
        try:
            for name, kind in lake_sql.describe(arg):
                console.print(Text(f"  {name:32} {kind}"))
        except SqlError as exc:
            err.print(Text(str(exc), style="red"))
    elif cmd == ".format" and arg in ("table", "csv", "json"):
        state.fmt = arg
    elif cmd == ".limit" and arg.isdigit() and int(arg) > 0:
        state.limit = int(arg)
    else:
        err.print(Text(f"unknown command {stripped!r}; .help lists them", style="red"))
    return True
