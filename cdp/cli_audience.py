"""``cdp audience``: estimate, create, insight, overlap, lookalike, export packs."""

from __future__ import annotations

import typer

audience_app = typer.Typer(
    help="Audiences: estimate, create, insight, overlap, lookalike, export packs for ad platforms.",
    no_args_is_help=True,
    add_completion=False,
)
