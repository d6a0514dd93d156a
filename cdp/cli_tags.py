"""``cdp tags``: the tag catalog and tag builds (gold.tags, gold.profile, gold.tag_stats)."""

from __future__ import annotations

import typer

tags_app = typer.Typer(
    help="Tag catalog and tag builds: list, show, validate, build gold.tags / gold.profile / gold.tag_stats.",
    no_args_is_help=True,
    add_completion=False,
)
