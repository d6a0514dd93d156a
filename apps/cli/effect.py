"""``cdp campaign`` and ``cdp effect``: tie campaigns to packs, measure what they did.

    cdp campaign register --pack interested_not_bought/v1/oceanengine --media oceanengine \\
        --campaign-id OE-2026-11-A --budget 5000 --start 2026-11-02 --end 2026-11-08 --holdout 0.1
    cdp campaign list
    cdp effect run --dt 2026-11-09
    cdp effect report OE-2026-11-A                       # a campaign, or an audience (all its campaigns)
    cdp effect report interested_not_bought --compare important_customers

Counts of people below the minimum group size (``CDP_MIN_GROUP_SIZE``) are shown as ``< k``.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from apps.cli.common import DataRoot, console, date_option, fail, settings_for

campaign_app = typer.Typer(
    name="campaign",
    help="Campaigns tied to audience packs (人群包): register, list.",
    no_args_is_help=True,
    add_completion=False,
)
app = typer.Typer(
    name="effect",
    help="Effect analysis: funnel, cost, attribution and incremental lift of each campaign.",
    no_args_is_help=True,
    add_completion=False,
)


def _env(data_root: Path | None):
    from cdp.engine import get_spark

    settings = settings_for(data_root)
    return get_spark(settings), settings


def _run(fn, *args, **kwargs):
    """Call a job; a domain error becomes its message and exit code 1."""
    from audiences.errors import AudienceError
    from effect import EffectError

    try:
        return fn(*args, **kwargs)
    except (EffectError, AudienceError) as exc:
        raise fail(exc) from None


@campaign_app.command("register")
def register_cmd(
    pack: Annotated[
        str, typer.Option(help="<audience>/v<N>/<destination>, e.g. interested_not_bought/v1/oceanengine")
    ],
    media: Annotated[str, typer.Option(help="oceanengine | tencent | kuaishou | baidu | ...")],
    campaign_id: Annotated[
        str, typer.Option(help="The platform's campaign id (campaign_id of the delivery logs).")
    ],
    start: Annotated[_dt.date, date_option("First day of delivery (YYYY-MM-DD).")],
    end: Annotated[_dt.date, date_option("Last day of delivery (YYYY-MM-DD).")],
    budget: Annotated[float | None, typer.Option(help="Budget in CNY.")] = None,
    holdout: Annotated[
        float, typer.Option(help="Share of the audience kept out of the pack as control.")
    ] = 0.0,
    window: Annotated[
        int, typer.Option(help="Attribution window: days after the end whose purchases count.")
    ] = 7,
    name: Annotated[str | None, typer.Option(help="A display name.")] = None,
    no_export: Annotated[bool, typer.Option(help="Record only; the pack is exported later.")] = False,
    by: Annotated[str | None, typer.Option(help="Author recorded in the registry.")] = None,
    data_root: DataRoot = None,
) -> None:
    """Record which campaign used which pack; with --holdout the pack is (re)written without the control."""
    from effect import CampaignError
    from jobs import effect as job

    document = {
        "campaign_id": campaign_id,
        "media": media,
        "pack": pack,
        "start": start,
        "end": end,
        "budget": budget,
        "holdout": holdout,
        "attribution_window_days": window,
        "name": name,
    }
    try:
        from effect import plan_campaign

        campaign = plan_campaign(document)
    except CampaignError as exc:
        raise fail(exc, 2) from None
    spark, settings = _env(data_root)
    result = _run(job.register, spark, settings, campaign, registered_by=by, export_pack=not no_export)
    for line in result.lines():
        console.print(Text(line))


@campaign_app.command("list")
def list_cmd(data_root: DataRoot = None) -> None:
    """Every registered campaign with its pack, dates, budget and holdout."""
    from jobs import effect as job

    spark, settings = _env(data_root)
    campaigns = job.list_campaigns(spark, settings)
    if not campaigns:
        console.print(
            "no campaign registered; cdp campaign register --pack <audience>/v<N>/<destination> ..."
        )
        return
    table = Table(title="campaigns (gold.campaigns)")
    for col in ("campaign", "media", "pack", "start", "end", "budget", "holdout", "window"):
        table.add_column(col)
    for c in campaigns:
        table.add_row(
            c.campaign_id,
            c.media,
            str(c.pack),
            str(c.start),
            str(c.end),
            "-" if c.budget is None else f"{c.budget:,.0f}",
            f"{c.holdout:.0%}",
            f"{c.attribution_window_days} d",
        )
    console.print(table)


@app.command("run")
def run_cmd(
    dt: Annotated[_dt.date, date_option("Logical date (YYYY-MM-DD).")],
    no_markov: Annotated[bool, typer.Option(help="Skip the data-driven Markov attribution.")] = False,
    data_root: DataRoot = None,
) -> None:
    """Measure the registered campaigns up to a date; attribute the orders (gold.effect_*, attribution)."""
    from jobs import effect as job

    spark, settings = _env(data_root)
    report = _run(job.run, spark, settings, dt, markov=not no_markov)
    for line in report.lines():
        console.print(Text(line))


def _num(x: Any, spec: str = ",.2f") -> str:
    return "-" if x is None else format(x, spec)


def _people(n: Any, k: int) -> str:
    from audiences.insight import public_count

    shown = public_count(n, k)
    return f"{shown:,}" if isinstance(shown, int) else str(shown)


FIGURES = (
    ("members", "pack members", "people"),
    ("control", "held out", "people"),
    ("reach", "reach", "people"),
    ("impressions", "impressions", ",d"),
    ("clicks", "clicks", ",d"),
    ("conversions", "conversions", ",d"),
    ("cost", "cost (CNY)", ",.2f"),
    ("budget", "budget (CNY)", ",.0f"),
    ("cpm", "CPM", ",.2f"),
    ("cpc", "CPC", ",.2f"),
    ("cpa", "CPA", ",.2f"),
    ("ctr", "CTR", ".2%"),
    ("cvr", "CVR", ".2%"),
    ("revenue", "revenue of the exposed", ",.2f"),
    ("roas", "ROAS", ",.2f"),
    ("roi", "ROI", ".1%"),
    ("exposed", "funnel: exposed", "people"),
    ("clicked", "funnel: clicked", "people"),
    ("visited", "funnel: visited", "people"),
    ("carted", "funnel: carted", "people"),
    ("purchased", "funnel: purchased", "people"),
)


def _table(reports: list[dict], k: int) -> Table:
    summaries = [s for r in reports for s in r["summary"]]
    table = Table(title=" vs ".join(f"{r['key']} ({r['dt']})" for r in reports))
    table.add_column("")
    for s in summaries:
        table.add_column(f"{s['campaign_id']}\n{s['audience_id']} v{s['version']}", justify="right")
    for key, label, spec in FIGURES:
        table.add_row(
            label, *[_people(s[key], k) if spec == "people" else _num(s[key], spec) for s in summaries]
        )
    return table


@app.command("report")
def report_cmd(
    key: Annotated[str, typer.Argument(help="A campaign id, or an audience id (all its campaigns).")],
    compare: Annotated[str | None, typer.Option(help="Another campaign or audience, side by side.")] = None,
    dt: Annotated[_dt.date | None, date_option("The run date; the latest when omitted.")] = None,
    data_root: DataRoot = None,
) -> None:
    """Cost figures, funnel, lift (with its interval), daily trend and bad input of a campaign or audience."""
    from jobs import effect as job

    spark, settings = _env(data_root)
    reports = [_run(job.report, spark, settings, k, dt=dt) for k in [key, *([compare] if compare else [])]]
    k = settings.min_group_size
    console.print(_table(reports, k))
    for r in reports:
        for x in r["lift"]:
            console.print(Text(f"lift {x['campaign_id']} {x['metric']}: {x['sentence']}"))
        for i in r["issues"]:
            if i["kind"] != "unknown_campaign":
                console.print(
                    Text(f"ISSUE {i['kind']} {i['campaign_id']}: {i['rows']:,} rows; {i['detail']}")
                )
        moves: dict[tuple[str, str], list[str]] = {}
        hidden: dict[tuple[str, str], int] = {}
        for a in r["aipl"]:
            if a["stage_before"] != a["stage_after"]:
                group = (a["campaign_id"], a["arm"])
                if a["people"] >= k:
                    move = f"{a['stage_before']}->{a['stage_after']} {a['people']:,}"
                    moves.setdefault(group, []).append(move)
                else:
                    hidden[group] = hidden.get(group, 0) + 1
        for campaign_id, arm in sorted(set(moves) | set(hidden)):
            shown = ", ".join(moves.get((campaign_id, arm), [])) or "no move of k people or more"
            n = hidden.get((campaign_id, arm), 0)
            small = f" ({n} smaller moves, < {k})" if n else ""
            console.print(Text(f"AIPL {campaign_id} {arm}: {shown}{small}"))
        days = {}
        for d in r["daily"]:
            days.setdefault(d["campaign_id"], []).append(
                f"{d['day']}: {d['impressions']:,} imp, {d['cost']:,.2f}"
            )
        for campaign_id, line in days.items():
            console.print(Text(f"daily {campaign_id}: " + "; ".join(line)))
