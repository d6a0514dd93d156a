"""``cdp creators``: creator (达人) marketing on the command line (``jobs.creators``): build the creator
tables of a date, match creators to a saved audience, list high-potential creators, show one creator, and
turn the engaged audience of chosen creators into an audience and its pack (种草人群 -> re-targeting)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from apps.cli.common import DataRoot, Dt, console, fail, settings_for

app = typer.Typer(
    name="creators",
    help="Creators (达人): build features, match to an audience, high-potential creators, seed audiences.",
    no_args_is_help=True,
    add_completion=False,
)
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _run(call: Callable[..., Any], data_root, *args: Any, **kwargs: Any) -> Any:
    """Run a ``jobs.creators`` function; a user error becomes one line and exit code 1."""
    from audiences.errors import AudienceError
    from cdp.engine import get_spark
    from cdp.lake import LakeError
    from jobs.creators import CreatorsError

    settings = settings_for(data_root)
    try:
        return call(get_spark(settings), settings, *args, **kwargs)
    except (CreatorsError, AudienceError, LakeError) as exc:
        raise fail(exc) from None


def _fmt(value: Any, kind: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if kind == "pct":
        return f"{value:+.1%}"
    if kind == "money":
        return f"¥{value:,.0f}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}"


@app.command("build")
def build(dt: Dt, data_root: DataRoot = None) -> None:
    """Build gold.creator_features, gold.creator_audience, gold.creator_potential and gold.creator_models."""
    from jobs import creators as job

    report = _run(job.build, data_root, dt)
    for line in report.summary():
        console.print(Text(line))


@app.command("match")
def match(
    audience: Annotated[str, typer.Argument(help="The target audience: id, name or id@version.")],
    category: Annotated[
        list[str] | None, typer.Option(help="Only creators of this category (repeatable).")
    ] = None,
    budget: Annotated[float | None, typer.Option(help="Total price of the posts, CNY.")] = None,
    top: Annotated[int, typer.Option(help="Creators to list.")] = 20,
    as_json: Json = False,
    data_root: DataRoot = None,
) -> None:
    """Rank creators by how much of their engaged audience is in the target audience, and by cost."""
    from dataclasses import asdict

    from jobs import creators as job

    result = _run(job.match, data_root, audience, categories=category or (), budget=budget, top=top)
    if as_json:
        console.print_json(json.dumps(asdict(result), default=str, ensure_ascii=False))
        return
    table = Table(
        title=f"creators for {result.audience_id}@{result.version} ({result.target_in_population} of "
        f"{result.population} people, {result.dt})"
    )
    for col in ("#", "creator", "name", "category", "followers", "price", "engaged", "in target", "new",
                "TGI", "¥/target", "score"):  # fmt: skip
        table.add_column(col)
    for m in result.creators:
        table.add_row(
            str(m["rank"]),
            m["creator_id"],
            _fmt(m["creator_name"]),
            _fmt(m["category"]),
            _fmt(m["followers"]),
            _fmt(m["price_per_post"], "money"),
            _fmt(m["engaged"]),
            _fmt(m["in_target"]),
            _fmt(m["new_in_target"]),
            f"{m['tgi_smoothed']:.0f}",
            _fmt(m["cost_per_target"]),
            f"{m['score']:.2f}",
        )
    console.print(table)
    for m in result.creators:
        console.print(Text(f"{m['rank']}. {m['creator_id']}: " + "; ".join(m["reasons"])))
    if result.hidden:
        console.print(
            Text(
                f"{result.hidden} creators not ranked: fewer than {result.k} of their engaged people are in "
                "the target (or outside it), which cannot be shown (CDP_MIN_GROUP_SIZE)"
            )
        )


@app.command("potential")
def potential(
    top: Annotated[int, typer.Option(help="Creators to list.")] = 20,
    category: Annotated[
        list[str] | None, typer.Option(help="Only creators of this category (repeatable).")
    ] = None,
    as_json: Json = False,
    data_root: DataRoot = None,
) -> None:
    """High-potential creators (高潜达人): the highest predicted follower growth over the next 30 days."""
    from dataclasses import asdict

    from jobs import creators as job

    result = _run(job.potential, data_root, top=top, category=category or ())
    if as_json:
        console.print_json(json.dumps(asdict(result), default=str, ensure_ascii=False))
        return
    table = Table(title=f"high-potential creators, {result.dt}")
    for col in ("#", "creator", "name", "platform", "category", "followers", "growth 30d", "predicted 30d",
                "price"):  # fmt: skip
        table.add_column(col)
    for r in result.creators:
        table.add_row(
            str(r["rank"]),
            r["creator_id"],
            _fmt(r["creator_name"]),
            _fmt(r["platform"]),
            _fmt(r["category"]),
            _fmt(r["followers"]),
            _fmt(r["growth_30d"], "pct"),
            _fmt(r["predicted_growth_30d"], "pct"),
            _fmt(r["price_per_post"], "money"),
        )
    console.print(table)
    ev = result.evaluation
    if ev.get("precision"):
        p = ev["precision"]
        console.print(
            Text(
                f"holdout {ev.get('holdout_dt')}: precision@{ev['k']} of the true top growers: model "
                f"{p['model']:.2f}, current followers {p['current_followers']:.2f}, last 30 days growth "
                f"{p['growth_last_30d']:.2f}"
            )
        )
    elif ev.get("reason"):
        console.print(Text(f"model not trained: {ev['reason']}"))


@app.command("content")
def content(
    top: Annotated[int, typer.Option(help="Contents to list.")] = 20,
    creator: Annotated[
        list[str] | None, typer.Option(help="Only this creator's contents (repeatable).")
    ] = None,
    as_json: Json = False,
    data_root: DataRoot = None,
) -> None:
    """Early content signal (内容加热): live contents by their final engagement predicted from 3 days."""
    from dataclasses import asdict

    from jobs import creators as job

    result = _run(job.content, data_root, top=top, creator_ids=creator or ())
    if as_json:
        console.print_json(json.dumps(asdict(result), default=str, ensure_ascii=False))
        return
    table = Table(title=f"contents worth boosting, {result.dt}")
    for col in ("#", "content", "creator", "published", "days", "so far", "first 3 days", "predicted final",
                "extrapolated"):  # fmt: skip
        table.add_column(col)
    for r in result.contents:
        table.add_row(
            str(r["rank"]),
            r["content_id"],
            r["creator_id"],
            str(r["published_date"]),
            str(r["days_observed"]),
            _fmt(r["engagements_so_far"]),
            _fmt(r["early_engagements"]),
            _fmt(round(r["predicted_final_engagements"])),
            _fmt(round(r["extrapolated_final_engagements"])),
        )
    console.print(table)
    ev = result.evaluation
    if ev.get("precision"):
        p, e = ev["precision"], ev["median_ape"]
        console.print(
            Text(
                f"holdout ({ev['holdout_contents']:,} finished contents): precision@{ev['k']} of the true "
                f"top contents: model {p['model']:.2f}, extrapolation {p['extrapolation']:.2f}; median error "
                f"{e['model']:.0%} vs {e['extrapolation']:.0%}"
            )
        )
    elif ev.get("reason"):
        console.print(Text(f"content signal not trained: {ev['reason']}"))


@app.command("show")
def show(
    creator_id: Annotated[str, typer.Argument(help="Creator id, e.g. KOL1003.")],
    as_json: Json = False,
    data_root: DataRoot = None,
) -> None:
    """One creator: features, its engaged audience's TGI per tag value, follower trend."""
    from dataclasses import asdict

    from jobs import creators as job

    result = _run(job.creator, data_root, creator_id)
    if as_json:
        console.print_json(json.dumps(asdict(result), default=str, ensure_ascii=False))
        return
    for key, value in result.features.items():
        console.print(Text(f"{key}: {_fmt(value)}"))
    table = Table(title=f"{creator_id}: engaged audience by tag (TGI against the population)")
    for col in ("tag", "value", "people", "share", "population share", "TGI"):
        table.add_column(col)
    for r in result.audience:
        share = r["audience_share"]
        table.add_row(
            r["tag"],
            r["value"],
            _fmt(r["audience_count"]),
            "-" if share is None else f"{share:.1%}",
            "-" if r["population_share"] is None else f"{r['population_share']:.1%}",
            "-" if r["tgi"] is None else f"{r['tgi']:.0f}",
        )
    console.print(table)
    if result.trend:
        first, last = result.trend[0], result.trend[-1]
        console.print(
            Text(f"followers {first['date']} {first['followers']:,} -> {last['date']} {last['followers']:,}")
        )


@app.command("seed")
def seed(
    creator_ids: Annotated[list[str], typer.Argument(help="Creator ids whose engaged people to take.")],
    name: Annotated[str, typer.Option(help="Name of the new audience.")],
    within_days: Annotated[int, typer.Option(help="Engagements of the last N days.")] = 30,
    destination: Annotated[
        str | None, typer.Option(help="Also export a pack: tencent, oceanengine, google, meta or csv.")
    ] = None,
    id_types: Annotated[str | None, typer.Option(help="Comma-separated ID types of the pack.")] = None,
    data_root: DataRoot = None,
) -> None:
    """The seeding audience (种草人群) of chosen creators as a saved audience, and optionally its pack."""
    from jobs import creators as job

    types = [t.strip() for t in id_types.split(",") if t.strip()] if id_types else None
    version, manifest = _run(
        job.seed,
        data_root,
        creator_ids,
        name=name,
        within_days=within_days,
        destination=destination,
        id_types=types,
    )
    console.print(Text(f"audience {version.audience_id}@{version.version}: {version.size:,} people"))
    if manifest is not None:
        console.print(Text(f"pack {manifest.destination} v{manifest.version}: {manifest.people:,} people"))
