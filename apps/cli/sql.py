"""``cdp sql``: analyst SQL over the lake tables a role may read, with DuckDB (``cdp.sql``), no engine: one
query to the screen or a file, or an interactive shell.

It runs the web SQL page's sandbox (one read-only statement, no file, network or extension access, the time
and row limits of the settings) and the access rules of ``--role`` (``cdp.access``). The default role is
``analyst``; ``--role admin`` is for the operator of the machine that holds the lake, who can read its files
anyway, and shows bronze, quarantine, the audit log and every column (never ``vault.*``)."""

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
One read-only query at a time, ending with ';', over one or more lines. Tables are views <layer>.<name>:
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
        typer.Option(
            min=1,
            help="At most this many rows (default 1000 on screen, CDP_SQL_MAX_ROWS for files, never more).",
        ),
    ] = None,
    role: Annotated[
        str,
        typer.Option(
            help="Whose access rules apply: analyst (default), marketer, or admin for the lake's operator."
        ),
    ] = "analyst",
    data_root: DataRoot = None,
) -> None:
    """SQL over the lake tables the role may read (views silver.*, gold.*; bronze.* and quarantine.* for
    admins) with DuckDB, no engine, in the web SQL page's sandbox."""
    from cdp.access import ROLES
    from cdp.sql import FORMATS, LakeSQL, SqlError, write_result

    if fmt not in FORMATS:
        raise fail(f"--format {fmt!r}: use one of {', '.join(FORMATS)}", 2)
    if role not in ROLES:
        raise fail(f"--role {role!r}: use one of {', '.join(ROLES)}", 2)
    if output is not None and fmt == "table":
        fmt = {".parquet": "parquet", ".json": "json", ".jsonl": "json"}.get(output.suffix.lower(), "csv")
    settings = settings_for(data_root)
    if "://" in settings.lake_root:
        raise fail("cdp sql lists tables of a local lake root; CDP_LAKE_ROOT is a URI", 2)
    if limit is not None and limit > settings.sql_max_rows:
        raise fail(f"--limit {limit:,}: at most {settings.sql_max_rows:,} rows (CDP_SQL_MAX_ROWS)", 2)
    lake_sql = LakeSQL.from_settings(settings, role)
    for name, reason in lake_sql.skipped.items():
        err.print(Text(f"skipped {name}: {reason}", style="yellow"))
    screen_limit = min(1000, settings.sql_max_rows)
    if query is None:
        if output is not None:
            raise fail("--output needs a query", 2)
        _shell(lake_sql, fmt if fmt != "parquet" else "table", limit or screen_limit)
        return
    try:
        result = lake_sql.query(query, limit=limit or (settings.sql_max_rows if output else screen_limit))
        if output is not None:
            path = write_result(result.table, fmt, output)
            more = " (more rows exist: CDP_SQL_MAX_ROWS caps a result)" if result.truncated else ""
            err.print(Text(f"{result.table.num_rows:,} rows -> {path} ({result.seconds:.3f} s){more}"))
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
    err.print(
        Text(
            f"cdp sql: {len(lake_sql.tables)} tables from {lake_sql.root} as {lake_sql.role} (DuckDB). "
            ".help for help"
        )
    )
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
    elif cmd == ".limit" and arg.isdigit() and 0 < int(arg) <= lake_sql.max_rows:
        state.limit = int(arg)
    elif cmd == ".limit" and arg.isdigit() and int(arg) > lake_sql.max_rows:
        err.print(Text(f"at most {lake_sql.max_rows:,} rows (CDP_SQL_MAX_ROWS)", style="red"))
    else:
        err.print(Text(f"unknown command {stripped!r}; .help lists them", style="red"))
    return True
