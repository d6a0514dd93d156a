"""Start-up shared by every ``cdp`` command group: the two consoles, the one way to fail, settings read from
the environment (``CDP_*``, ``SPARK_REMOTE``) and placed under ``--data-root``, and the option types the
groups share.

Dates typed on the command line are parsed here, once, into ``datetime.date``: a bad date is a usage error
(exit 2) that names the option, and the jobs receive dates, never strings to parse again.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from cdp.settings import Settings, SettingsError

console = Console()
err = Console(stderr=True, soft_wrap=True)

DataRoot = Annotated[Path | None, typer.Option(help="Put lake, packs, landing and truth under this folder.")]


def fail(message: object, code: int = 1) -> typer.Exit:
    """Print an error verbatim (no markup, no wrapping) on stderr and return the exit to raise.

    Args:
        message: the error or its text; its ``str`` is printed.
        code: the exit code: 1 for a failed action, 2 for unusable input or settings, 3 (``cdp.run.REFUSED``)
            for a run refused by another run's lease or a half-written table.

    Returns:
        The ``typer.Exit`` for the caller to raise (``raise fail(exc, 2) from None``).
    """
    err.print(Text(str(message), style="red"))
    return typer.Exit(code)


def settings_for(data_root: Path | None = None) -> Settings:
    """Settings from the environment, with every data folder under ``data_root`` when given.

    Raises:
        typer.Exit: code 2 after printing the setting at fault.
    """
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise fail(f"settings: {exc}", 2) from None
    return settings.with_data_root(data_root) if data_root else settings


def parse_day(value: str | _dt.date) -> _dt.date:
    """A ``YYYY-MM-DD`` option value as a date (defaults may already be dates).

    Raises:
        typer.BadParameter: the value is not a date.
    """
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD") from None


def date_option(help: str, *args: Any) -> Any:
    """A ``--dt``-style option whose value arrives as a ``datetime.date`` (see :func:`parse_day`).

    Args:
        help: the option's help text.
        args: option names, when they differ from the parameter's.
    """
    return typer.Option(*args, parser=parse_day, help=help)


Dt = Annotated[_dt.date, date_option("Logical date YYYY-MM-DD.")]
