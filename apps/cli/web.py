"""``cdp serve`` (API + web UI), ``cdp token`` (access tokens of the service) and ``cdp sql`` (analyst SQL
over the lake tables)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

token_app = typer.Typer(
    help="Access tokens of the web service (roles admin, marketer, analyst).",
    no_args_is_help=True,
    add_completion=False,
)

SHELL_HELP = """\
Statements end with ';' and may span lines. Tables are views named <layer>.<name>, e.g.
  SELECT channel, count(*) FROM silver.orders GROUP BY 1;
Commands: .tables  .schema <table>  .format table|csv|json  .limit <n>  .help  .quit"""


def _cli():
    # apps.cli.main imports this module at its end; import it lazily to avoid the cycle.
    from apps.cli import main as cli

    return cli


def register(app: typer.Typer) -> None:
    """Add the top-level ``serve``, ``sql`` and ``token`` commands to ``app``."""
    app.command("sql")(sql)
    app.command("serve")(serve)
    app.add_typer(token_app, name="token")


# ---- sql -------------------------------------------------------------------------------------------------


def _print_result(result, fmt: str) -> None:
    from rich.table import Table
    from rich.text import Text

    cli = _cli()
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
        cli.console.print(table)
    more = " (more rows exist: raise --limit or write a file)" if result.truncated else ""
    cli.err.print(Text(f"{result.table.num_rows:,} rows in {result.seconds:.3f} s{more}", style="dim"))


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
    data_root: Annotated[
        Path | None, typer.Option(help="Put lake, packs, landing and truth under this folder.")
    ] = None,
) -> None:
    """SQL over every lake table (views bronze.*, silver.*, gold.*, quarantine.*) with DuckDB, no engine."""
    from rich.text import Text

    from cdp.sql import FORMATS, LakeSQL, SqlError, write_result

    cli = _cli()
    if fmt not in FORMATS:
        raise cli._fail(f"--format {fmt!r}: use one of {', '.join(FORMATS)}", 2)
    if output is not None and fmt == "table":
        fmt = {".parquet": "parquet", ".json": "json", ".jsonl": "json"}.get(output.suffix.lower(), "csv")
    settings = cli._settings(data_root)
    if "://" in settings.lake_root:
        raise cli._fail("cdp sql lists tables of a local lake root; CDP_LAKE_ROOT is a URI", 2)
    lake_sql = LakeSQL(settings.lake_root)
    for name, reason in lake_sql.skipped.items():
        cli.err.print(Text(f"skipped {name}: {reason}", style="yellow"))
    if query is None:
        if output is not None:
            raise cli._fail("--output needs a query", 2)
        _shell(lake_sql, fmt if fmt != "parquet" else "table", limit or 1000)
        return
    try:
        result = lake_sql.query(query, limit=limit if (limit or output) else 1000)
        if output is not None:
            path = write_result(result.table, fmt, output)
            cli.err.print(Text(f"{result.table.num_rows:,} rows -> {path} ({result.seconds:.3f} s)"))
            return
    except SqlError as exc:
        raise cli._fail(exc, 1) from None
    if fmt == "parquet":
        raise cli._fail("--format parquet needs --output FILE", 2)
    _print_result(result, fmt)


def _shell(lake_sql, fmt: str, limit: int) -> None:
    from rich.text import Text

    from cdp.sql import SqlError

    cli = _cli()
    with contextlib.suppress(ImportError):  # not on every platform
        import readline  # noqa: F401 - line editing and history for input()
    cli.err.print(
        Text(f"cdp sql: {len(lake_sql.tables)} tables from {lake_sql.root} (DuckDB). .help for help")
    )
    buffer: list[str] = []
    while True:
        try:
            line = input("...> " if buffer else "sql> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return
        stripped = line.strip()
        if not buffer and stripped.startswith("."):
            cmd, _, arg = stripped.partition(" ")
            arg = arg.strip().rstrip(";")
            if cmd in (".quit", ".exit", ".q"):
                return
            if cmd == ".help":
                cli.console.print(Text(SHELL_HELP))
            elif cmd == ".tables":
                cli.console.print(Text("\n".join(lake_sql.tables) or "(no tables)"))
            elif cmd == ".schema":
                try:
                    for name, kind in lake_sql.describe(arg):
                        cli.console.print(Text(f"  {name:32} {kind}"))
                except SqlError as exc:
                    cli.err.print(Text(str(exc), style="red"))
            elif cmd == ".format" and arg in ("table", "csv", "json"):
                fmt = arg
            elif cmd == ".limit" and arg.isdigit() and int(arg) > 0:
                limit = int(arg)
            else:
                cli.err.print(Text(f"unknown command {stripped!r}; .help lists them", style="red"))
            continue
        if not stripped and not buffer:
            continue
        buffer.append(line)
        if not stripped.endswith(";"):
            continue
        statement, buffer = "\n".join(buffer), []
        try:
            result = lake_sql.query(statement, limit=limit)
        except SqlError as exc:
            cli.err.print(Text(str(exc), style="red"))
            continue
        _print_result(result, fmt)


# ---- serve and tokens ------------------------------------------------------------------------------------


def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on (localhost only by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    init_tokens: Annotated[
        bool,
        typer.Option(help="Create one token per role (admin, marketer, analyst) first and print them once."),
    ] = False,
    tokens_file: Annotated[
        Path | None,
        typer.Option(help="Token file (default <data root>/web/tokens.json or CDP_WEB_TOKENS_FILE)."),
    ] = None,
    data_root: Annotated[
        Path | None, typer.Option(help="Put lake, packs, landing and truth under this folder.")
    ] = None,
) -> None:
    """Start the web service: the API (OpenAPI at /docs) and the web UI for marketers, in one process."""
    from rich.text import Text

    from apps.web.auth import ROLES, TokenError, TokenStore

    cli = _cli()
    settings = cli._settings(data_root)
    try:
        store = TokenStore.from_settings(settings, tokens_file)
        if init_tokens:
            for role in ROLES:
                token = store.create(role, name=f"{role}-initial")
                cli.console.print(Text(f"{role:9} {token}"))
            cli.err.print(
                Text(f"tokens saved (hashed) in {store.path}; the values above are shown only once")
            )
        if not store.has_tokens():
            raise TokenError(
                f"no access tokens in {store.path} or CDP_WEB_TOKENS: run 'cdp serve --init-tokens' "
                "or 'cdp token create --role admin'"
            )
    except TokenError as exc:
        raise cli._fail(exc, 2) from None
    import uvicorn

    from apps.web import create_app

    web_app = create_app(settings, tokens=store)
    cli.err.print(Text(f"CDP web service on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)"))
    uvicorn.run(web_app, host=host, port=port, log_level="info")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, marketer or analyst.")],
    name: Annotated[str | None, typer.Option(help="Who holds the token (shown in the audit log).")] = None,
    tokens_file: Annotated[Path | None, typer.Option(help="Token file.")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Data root.")] = None,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from apps.web.auth import TokenError, TokenStore

    cli = _cli()
    try:
        store = TokenStore.from_settings(cli._settings(data_root), tokens_file)
        print(store.create(role, name=name))
    except TokenError as exc:
        raise cli._fail(exc, 2) from None


@token_app.command("list")
def token_list(
    tokens_file: Annotated[Path | None, typer.Option(help="Token file.")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Data root.")] = None,
) -> None:
    """List token names, roles and ids (never the token values)."""
    from rich.table import Table

    from apps.web.auth import TokenError, TokenStore

    cli = _cli()
    try:
        store = TokenStore.from_settings(cli._settings(data_root), tokens_file)
    except TokenError as exc:
        raise cli._fail(exc, 2) from None
    table = Table(title=f"tokens in {store.path}")
    for col in ("id", "name", "role", "created", "source"):
        table.add_column(col)
    for t in store.list():
        table.add_row(t.token_id, t.name, t.role, t.created, t.source)
    cli.console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The id shown by 'cdp token list'.")],
    tokens_file: Annotated[Path | None, typer.Option(help="Token file.")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Data root.")] = None,
) -> None:
    """Revoke a token by its id."""
    from apps.web.auth import TokenError, TokenStore

    cli = _cli()
    try:
        TokenStore.from_settings(cli._settings(data_root), tokens_file).revoke(token_id)
    except TokenError as exc:
        raise cli._fail(exc, 2) from None
    cli.console.print(f"revoked {token_id}")
