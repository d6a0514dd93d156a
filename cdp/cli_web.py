"""``cdp serve`` (API + web UI) and ``cdp sql`` (analyst SQL over the lake tables)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the top-level ``serve`` and ``sql`` commands to ``app``."""
