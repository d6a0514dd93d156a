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


def _identity_run(
    dt: _dt.date, rules: Path | None, data_root: Path | None, rebuild: bool = False, link: bool | None = None
) -> None:
    from cdp.engine import get_spark
    from identity.rules import RulesError
    from jobs.identity import IdentityError, run
    from jobs.linkage import LinkageError
    from quality.gates import QualityGateError
    from schemas import ContractError

    settings = settings_for(data_root)
    try:
        with console.status(f"resolving identities {dt}"):
            report = run(get_spark(settings), settings, dt, rules_path=rules, rebuild=rebuild, link=link)
    except (RulesError, ContractError, SettingsError) as exc:
        raise fail(exc, 2) from None
    except (IdentityError, QualityGateError, LinkageError) as exc:
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


RulesFile = Annotated[
    Path | None, typer.Option(help="Identity rules file (default: the packaged identity/rules.yaml).")
]
Rebuild = Annotated[
    bool, typer.Option(help="Recompute a date later dates built on (then rerun the later dates in order).")
]


@app.command("run")
def identity_run(
    dt: Dt,
    rules: RulesFile = None,
    rebuild: Rebuild = False,
    data_root: DataRoot = None,
) -> None:
    """Resolve silver identifiers into stable OneIDs for one date (gold.oneid_map and friends)."""
    _identity_run(dt, rules, data_root, rebuild)


@app.command("link")
def identity_link(
    dt: Dt,
    rules: RulesFile = None,
    rebuild: Rebuild = False,
    data_root: DataRoot = None,
) -> None:
    """Probabilistic linkage of records without strong identifiers (the rules' probabilistic section, even
    while enabled: false), then identity resolution with the accepted pairs; prints m/u, the score
    distribution and the pairs each threshold accepts."""
    _identity_run(dt, rules, data_root, rebuild, link=True)


@app.command("explain-pair")
def identity_explain_pair(
    first: Annotated[str, typer.Argument(help="A record key (customer_no), or <id_type>:<key>.")],
    second: Annotated[str, typer.Argument(help="The other record key.")],
    dt: Annotated[_dt.date | None, date_option("Date YYYY-MM-DD; the latest when omitted.")] = None,
    data_root: DataRoot = None,
) -> None:
    """Show the match-weight waterfall of two records scored by probabilistic linkage."""
    from cdp.engine import get_spark
    from jobs.linkage import LinkageError, explain_pair

    settings = settings_for(data_root)
    try:
        out = explain_pair(get_spark(settings), settings, first, second, dt=dt)
    except (LinkageError, SettingsError) as exc:
        raise fail(exc, 1) from None
    pair = out["pair"]
    if pair is None:
        raise fail(
            f"{first} and {second} were not scored at match probability >= 0.5 on {out['dt']}: no blocking "
            "rule paired them, or their weight was low",
            1,
        )
    console.print(
        f"[bold]{_short(pair['src_type'], pair['src_value'], 30)} ~ "
        f"{_short(pair['dst_type'], pair['dst_value'], 30)}[/bold] ({out['dt']}): "
        f"match weight {pair['match_weight']:+.2f}, probability "
        f"{pair['match_probability']:.6f}, {'accepted' if pair['accepted'] else 'not accepted'}; "
        f"decided by {pair['deciding']}",
        highlight=False,
    )
    table = Table(title="match weight waterfall (log2 Bayes factors)")
    for col in ("step", "level", "m", "u", "weight", "cumulative", "probability"):
        table.add_column(col, justify="left" if col in ("step", "level") else "right")
    for r in out["waterfall"]:
        table.add_row(
            r["step"],
            r["level"],
            "" if r["m"] is None else f"{r['m']:.4f}",
            "" if r["u"] is None else f"{r['u']:.5f}",
            f"{r['weight']:+.2f}",
            f"{r['cumulative']:+.2f}",
            f"{r['probability']:.6f}",
        )
    console.print(table)


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
    """Score the OneID map of a date against the demo ground truth (pairwise precision, recall, F1); with
    the attribute-only demo records (demo.persons_noisy), also the probabilistic stage alone and the graph."""
    from cdp.engine import get_spark
    from jobs.identity import IdentityError, evaluate

    settings = settings_for(data_root)
    try:
        with console.status(f"evaluating OneIDs of {dt}"):
            result = evaluate(get_spark(settings), settings, dt, truth_path=truth)
    except (IdentityError, SettingsError) as exc:
        # A lake of attribute-only records has only their truth: score what can be scored.
        if isinstance(exc, IdentityError) and _print_linkage_scores(settings, dt):
            return
        raise fail(exc, 1) from None
    table = Table(title=f"OneID quality {dt} (identity.evaluate explains each figure)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in result.as_dict().items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)
    _print_linkage_scores(settings, dt)


def _print_linkage_scores(settings, dt: _dt.date) -> bool:
    """Scores of the attribute-only demo records when their truth exists: the probabilistic stage alone
    (accepted pairs) and the whole graph (records in one OneID)."""
    from cdp.engine import get_spark
    from jobs.linkage import evaluate_linkage

    scores = evaluate_linkage(get_spark(settings), settings, dt)
    if not scores:
        return False
    table = Table(
        title=f"attribute-only records {dt}: pairwise scores (recall_sharing: of pairs sharing an attribute)"
    )
    table.add_column("measure")
    for name in scores:
        table.add_column(name, justify="right")
    for measure in next(iter(scores.values())).as_dict():
        values = [s.as_dict()[measure] for s in scores.values()]
        table.add_row(measure, *[f"{v:.4f}" if isinstance(v, float) else f"{v:,}" for v in values])
    console.print(table)
    return True
