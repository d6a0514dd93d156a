"""``cdp privacy``: erase a person (PIPL right to deletion) from the lake and the packs (``jobs.privacy``),
and vacuum the old file versions of past erasures once the deployment's retention has passed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from apps.cli.common import DataRoot, console, fail, settings_for
from cdp.settings import SettingsError

app = typer.Typer(
    name="privacy",
    help="Privacy: erase a person from the lake and the packs (right to deletion), vacuum old versions.",
    add_completion=False,
    no_args_is_help=True,
)


@app.command("erase")
def erase(
    identifier: Annotated[
        list[str] | None,
        typer.Option(help="An identifier of the person as TYPE:VALUE (phone:13812345678); repeatable."),
    ] = None,
    oneid: Annotated[list[int] | None, typer.Option(help="A OneID of the person; repeatable.")] = None,
    file: Annotated[
        Path | None, typer.Option(help="A file of TYPE:VALUE lines (oneid:42 for a OneID; # comments).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Only count what would be removed; change nothing.")] = False,
    data_root: DataRoot = None,
) -> None:
    """Remove a person from bronze, silver, gold, quarantine, the vault and the packs; record the request
    (digests only) so that later ingests of their old files do not bring them back."""
    from cdp.engine import get_spark
    from identity.erasure import ErasureError, load_request_file, parse_request
    from jobs.privacy import erase as run_erase
    from schemas import ContractError

    settings = settings_for(data_root)
    try:
        texts = list(identifier or [])
        if file is not None:
            texts += load_request_file(file)
        request = parse_request(
            texts, oneid or [], where=str(file) if file and not identifier else "identifier"
        )
        with console.status("erasing") as status:
            report = run_erase(
                get_spark(settings),
                settings,
                request,
                dry_run=dry_run,
                progress=lambda t: status.update(f"searching {t}"),
            )
    except (ErasureError, ContractError, SettingsError) as exc:
        raise fail(exc, 2) from None
    table = Table(title=f"erasure {report.request_id}" + (" (dry run)" if dry_run else ""))
    table.add_column("where")
    table.add_column("removed" if not dry_run else "would remove", justify="right")
    table.add_column("vacuumed files", justify="right")
    for name, rows in sorted(report.tables.items()):
        table.add_row(name, f"{rows:,} rows", str(report.vacuumed.get(name, "")))
    for pack, lines in sorted(report.packs.items()):
        table.add_row(f"pack {pack}", f"{lines:,} lines", "")
    console.print(table)
    for line in report.summary():
        console.print(line, markup=False, highlight=False)


@app.command("vacuum")
def vacuum(data_root: DataRoot = None) -> None:
    """Vacuum the tables of past erasures whose retention (CDP_ERASURE_RETENTION_HOURS) has passed: delete
    the files and log versions that still hold the erased rows."""
    from cdp.engine import get_spark
    from jobs.privacy import vacuum_due

    settings = settings_for(data_root)
    done = vacuum_due(get_spark(settings), settings)
    if not done:
        console.print("no erasure due for vacuum")
    for name, files in sorted(done.items()):
        console.print(f"{name}: {files} file(s) deleted", markup=False, highlight=False)
