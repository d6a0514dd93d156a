"""``cdp serve`` (the web service: API and web UI, ``apps.web``) and ``cdp token`` (its access tokens: create
once, list without their values, revoke)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from apps.cli.common import DataRoot, console, err, fail, settings_for

app = typer.Typer()
token_app = typer.Typer(
    name="token",
    help="Access tokens of the web service (roles admin, marketer, analyst).",
    no_args_is_help=True,
    add_completion=False,
)

TokensFile = Annotated[Path | None, typer.Option(help="Token file.")]
TokenDataRoot = Annotated[Path | None, typer.Option(help="Data root.")]


@app.command("serve")
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
    data_root: DataRoot = None,
) -> None:
    """Start the web service: the API (OpenAPI at /docs) and the web UI for marketers, in one process."""
    from apps.web.auth import ROLES, TokenError, TokenStore

    settings = settings_for(data_root)
    try:
        store = TokenStore.from_settings(settings, tokens_file)
        if init_tokens:
            for role in ROLES:
                token = store.create(role, name=f"{role}-initial")
                console.print(Text(f"{role:9} {token}"))
            err.print(Text(f"tokens saved (hashed) in {store.path}; the values above are shown only once"))
        if not store.has_tokens():
            raise TokenError(
                f"no access tokens in {store.path} or CDP_WEB_TOKENS: run 'cdp serve --init-tokens' "
                "or 'cdp token create --role admin'"
            )
    except TokenError as exc:
        raise fail(exc, 2) from None
    import uvicorn

    from apps.web.app import create_app

    web_app = create_app(settings, tokens=store)
    err.print(Text(f"CDP web service on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)"))
    uvicorn.run(web_app, host=host, port=port, log_level="info")


def _store(data_root: Path | None, tokens_file: Path | None):
    """The token store of the settings (or ``tokens_file``), or exit 2 when it is unreadable."""
    from apps.web.auth import TokenError, TokenStore

    try:
        return TokenStore.from_settings(settings_for(data_root), tokens_file)
    except TokenError as exc:
        raise fail(exc, 2) from None


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, marketer or analyst.")],
    name: Annotated[str | None, typer.Option(help="Who holds the token (shown in the audit log).")] = None,
    tokens_file: TokensFile = None,
    data_root: TokenDataRoot = None,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from apps.web.auth import TokenError

    store = _store(data_root, tokens_file)
    try:
        print(store.create(role, name=name))
    except TokenError as exc:
        raise fail(exc, 2) from None


@token_app.command("list")
def token_list(tokens_file: TokensFile = None, data_root: TokenDataRoot = None) -> None:
    """List token names, roles and ids (never the token values)."""
    store = _store(data_root, tokens_file)
    table = Table(title=f"tokens in {store.path}")
    for col in ("id", "name", "role", "created", "source"):
        table.add_column(col)
    for t in store.list():
        table.add_row(t.token_id, t.name, t.role, t.created, t.source)
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The id shown by 'cdp token list'.")],
    tokens_file: TokensFile = None,
    data_root: TokenDataRoot = None,
) -> None:
    """Revoke a token by its id."""
    from apps.web.auth import TokenError

    store = _store(data_root, tokens_file)
    try:
        store.revoke(token_id)
    except TokenError as exc:
        raise fail(exc, 2) from None
    console.print(f"revoked {token_id}")
