"""``cdp contracts new <file>``: draft a source contract from a sample file (:mod:`ingest.draft`), check
that it loads through the loader ``cdp contracts validate`` uses, and print or write it for the engineer.

Registered on the ``contracts`` group of :mod:`apps.cli.contracts` when :mod:`apps.cli.main` imports this
module. Exit codes: 0 drafted; 1 the draft does not load (a bug to report) or a canonical entity file is
broken; 2 unusable input (missing, empty or unreadable sample, a bad --name or --output).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from apps.cli.common import err, fail
from apps.cli.contracts import app
from ingest.draft import SAMPLE_LINES, DraftError, contract_yaml, draft_contract
from schemas import ContractError, load_contract, source_warnings


def _target(output: Path | None, name: str | None) -> tuple[Path | None, str | None]:
    """(file to write, source name): a contract file must be called ``<name>.yaml``."""
    if output is None:
        return None, name
    if output.is_dir():
        return (output / f"{name}.yaml" if name else output), name
    stem = output.name.removesuffix(".yaml").removesuffix(".yml")
    if output.suffix not in (".yaml", ".yml"):
        raise fail(f"--output {output}: a contract file ends in .yaml", 2)
    if name and name != stem:
        raise fail(f"--output {output}: a contract file is named after its source; use {name}.yaml", 2)
    return output, name or stem


@app.command("new")
def contracts_new(
    file: Annotated[Path, typer.Argument(help="Sample: CSV/TSV/whitespace text, JSON lines, Parquet.")],
    name: Annotated[str | None, typer.Option(help="Source name; from the file name.")] = None,
    entity: Annotated[
        str | None,
        typer.Option(help="Silver entity; a canonical one gives the columns."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (a .yaml file or a folder), not stdout.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --output file.")] = False,
    lines: Annotated[
        int, typer.Option(min=1, help="Data rows of the sample to read at most.")
    ] = SAMPLE_LINES,
) -> None:
    """Draft a source contract from a sample file: delimiter, header, types, date formats, identifiers."""
    target, name = _target(output, name)
    try:
        draft = draft_contract(file, name=name, entity=entity, max_lines=lines)
        text = contract_yaml(draft)
    except DraftError as exc:
        raise fail(exc, 2) from None
    except ContractError as exc:  # a canonical entity file of schemas/entities is broken
        raise fail(exc, 1) from None
    if target is not None and target.is_dir():
        target = target / f"{draft.name}.yaml"
    if target is not None and target.exists() and not force:
        raise fail(f"--output {target}: the file exists; pass --force to overwrite it", 2)
    with tempfile.TemporaryDirectory(prefix="cdp-draft-") as tmp:
        check = Path(tmp) / f"{draft.name}.yaml"
        check.write_text(text, encoding="utf-8")
        try:
            contract = load_contract(check)
        except ContractError as exc:
            err.print(text, markup=False, highlight=False)
            raise fail(f"the draft does not load as a contract (please report): {exc}", 1) from None
    if target is None:
        typer.echo(text, nl=False)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        err.print(f"wrote {target}: check every `guessed:` comment and settle every TODO", markup=False)
    for warning in source_warnings(contract):
        err.print(f"note: {warning}", markup=False, highlight=False)
