"""``cdp ingest`` and ``cdp init-key``: land one source's files for one date in bronze, quarantine and silver
(``jobs.ingest``), and create the local PII key that ingest needs to hash identifiers at the door."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from apps.cli.common import DataRoot, Dt, console, fail, settings_for
from cdp.settings import SettingsError

app = typer.Typer()


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="Source contract name (cdp contracts list).")],
    dt: Dt,
    folder: Annotated[
        Path | None, typer.Option(help="Read files from this folder instead of the landing one.")
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """Ingest a source's files for one date into bronze, quarantine and silver, and print the row balance."""
    from cdp.engine import get_spark
    from ingest.landing import LandingError
    from jobs.ingest import IngestError, run
    from schemas import ContractError

    settings = settings_for(data_root)
    try:
        with console.status(f"ingesting {source} {dt}"):
            report = run(get_spark(settings), settings, source, dt, folder=folder)
    except IngestError as exc:
        console.print(exc.report.balance_line())
        raise fail(f"FAILED: {exc}") from None
    except (ContractError, SettingsError, LandingError) as exc:
        raise fail(exc, 2) from None
    console.print(report.balance_line())
    for reason, n in report.reasons.items():
        console.print(f"  quarantined {n:>8,}  {reason}")
    for column, n in report.rejected_ids.items():
        console.print(f"  invalid identifier values nulled {n:>8,}  {column}")
    for file, drift in report.drift.items():
        console.print(f"  schema drift in {file}: {drift}")


@app.command("init-key")
def init_key(data_root: DataRoot = None) -> None:
    """Create a random local PII key file for laptops and demos (production sets CDP_PII_KEY)."""
    settings = settings_for(data_root)
    settings.ensure_local_pii_key()
    console.print(f"PII key ready ({'CDP_PII_KEY' if settings.pii_key else settings.pii_key_file})")
