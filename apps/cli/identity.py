"""``cdp identity``: resolve silver identifiers into stable OneIDs for a date (``jobs.identity``), explain
one identifier's OneID and the records that link it, and score a date's OneIDs against the demo truth."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from apps.cli.common import DataRoot, Dt, console, date_option, fail, settings_for
from cdp.settings import SettingsError

app = typer.Typer(
    name="identity",
    help="OneID: resolve identifiers into stable OneIDs, explain a OneID, score it against the demo truth.",
    add_completion=False,
)


def _identity_run(dt: _dt.date, rules: Path | None, data_root: Path | None, rebuild: bool = False) -> None:
    from cdp.engine import get_spark
    from identity.rules import RulesError
    from jobs.identity import IdentityError, run
    from quality.gates import QualityGateError
    from schemas import ContractError

    settings = settings_for(data_root)
    try:
        with console.status(f"resolving identities {dt}"):
            report = run(get_spark(settings), settings, dt, rules_path=rules, rebuild=rebuild)
    except (RulesError, ContractError, SettingsError) as exc:
        raise fail(exc, 2) from None
    except (IdentityError, QualityGateError) as exc:
        raise fail(exc, 1) from None
    for line in report.summary():
        console.print(line, markup=False, highlight=False)


@app.callback(invoke_without_command=True)
def identity_main(
    ctx: typer.Context,
    dt: Annotated[_dt.date | None, date_option("Run identity resolution for this date (as 'run').")] = None,
    rules: Annotated[Path | None, typer.Option(help="Identity rules file.")] = None,
    data_root: DataRoot = None,
) -> None:
    """OneID: `cdp identity --dt D` (or `cdp identity run --dt D`) builds gold.oneid_map for date D."""
    if ctx.invoked_subcommand is not None:
        return
    if dt is None:
        console.print(ctx.get_help())
        raise typer.Exit(0)
    _identity_run(dt, rules, data_root)


@app.command("run")
def identity_run(
    dt: Dt,
    rules: Annotated[
        Path | None, typer.Option(help="Identity rules file (default: the packaged identity/rules.yaml).")
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option(help="Recompute a date later dates built on (then rerun the later dates in order)."),
    ] = False,
    data_root: DataRoot = None,
) -> None:
    """Resolve silver identifiers into stable OneIDs for one date (gold.oneid_map and friends)."""
    _identity_run(dt, rules, data_root, rebuild)


def _short(id_type: str, value: str, width: int = 14) -> str:
    """``type:value`` with long values (keyed hashes, 64-hex OAIDs) cut, for tables that fit a terminal."""
    return f"{id_type}:{value if len(value) <= width else value[:width] + '…'}"


@app.command("explain")
def identity_explain(
    identifier: Annotated[str, typer.Argument(help="The identifier as typed: phone, email, device id...")],
    id_type: Annotated[str | None, typer.Option(help="Its ID type; every type it fits when omitted.")] = None,
    dt: Annotated[_dt.date | None, date_option("Map date YYYY-MM-DD; the latest when omitted.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many identifiers and links.")] = 200,
    data_root: DataRoot = None,
) -> None:
    """Show an identifier's OneID, its linked identifiers and the source tables whose records link them."""
    from cdp.engine import get_spark
    from jobs.identity import IdentityError, explain

    settings = settings_for(data_root)
    try:
        out = explain(get_spark(settings), settings, identifier, id_type=id_type, dt=dt, limit=limit)
    except (IdentityError, ValueError, SettingsError) as exc:
        raise fail(exc, 1) from None
    if out.oneid is None:
        raise fail(f"{identifier!r} is not in gold.oneid_map of {out.dt}", 1)
    others = sorted({m["oneid"] for m in out.matches} - {out.oneid})
    console.print(
        f"[bold]OneID {out.oneid}[/bold] ({out.dt}): {identifier} as "
        + ", ".join(f"{m['id_type']} (vid {m['vid']})" for m in out.matches if m["oneid"] == out.oneid)
        + (f"; also matches OneIDs {others} under other ID types" if others else "")
    )
    console.print(_identifiers_table(out))
    console.print(_links_table(out.edges))
    if out.pruned:
        console.print(_pruned_table(out.pruned))


def _identifiers_table(out) -> Table:
    """The identifiers of the explained OneID."""
    ids = Table(title=f"identifiers of OneID {out.oneid}" + (" (first ones)" if out.truncated else ""))
    for col in ("id type", "id value", "vid"):
        ids.add_column(col)
    for r in out.identifiers:
        ids.add_row(r["id_type"], r["id_value"], str(r["vid"]))
    return ids


def _links_table(edges: list[dict]) -> Table:
    """The links of the explained OneID and the records holding them."""
    links = Table(title="links (star centre -> identifier) and the records holding them")
    for col in ("from", "to", "table", "records", "first seen", "last seen"):
        links.add_column(col, overflow="fold")
    for e in edges:
        links.add_row(
            _short(e["src_type"], e["src_value"]),
            _short(e["dst_type"], e["dst_value"]),
            e["table"],
            str(e["records"]),
            f"{e['first_seen']:%Y-%m-%d}" if e["first_seen"] else "",
            f"{e['last_seen']:%Y-%m-%d}" if e["last_seen"] else "",
        )
    return links


def _pruned_table(pruned_edges: list[dict]) -> Table:
    """Links left out of the OneID because they pass through a shared (hub) identifier."""
    pruned = Table(title="links not used: a shared identifier (gold.id_pruned_edges)")
    for col in ("from", "to", "table", "records", "reason"):
        pruned.add_column(col, overflow="fold")
    for e in pruned_edges:
        pruned.add_row(
            _short(e["src_type"], e["src_value"]),
            _short(e["dst_type"], e["dst_value"]),
            e["table"],
            str(e["records"]),
            f"{_short(e['hub_type'], e['hub_value'])} is shared: {e['reason']}",
        )
    return pruned


@app.command("evaluate")
def identity_evaluate(
    dt: Dt,
    truth: Annotated[
        Path | None,
        typer.Option(help="Truth identifiers.parquet (default: <truth root>/identifiers.parquet)."),
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """Score the OneID map of a date against the demo ground truth (pairwise precision, recall, F1)."""
    from cdp.engine import get_spark
    from jobs.identity import IdentityError, evaluate

    settings = settings_for(data_root)
    try:
        with console.status(f"evaluating OneIDs of {dt}"):
            result = evaluate(get_spark(settings), settings, dt, truth_path=truth)
    except (IdentityError, SettingsError) as exc:
        raise fail(exc, 1) from None
    table = Table(title=f"OneID quality {dt} (identity.evaluate explains each figure)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in result.as_dict().items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)
