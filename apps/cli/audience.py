"""``cdp audience``: estimate, create, list, show, insight, overlap, lookalike, export packs, refresh.

Rules and definitions are JSON or YAML, inline or as a file path (see ``audiences/rules.py`` for the DSL)::

    cdp audience estimate '{"all": [{"tag": "gender", "value": "F"}, {"tag": "age_band", "op": "in",
                            "value": ["18-24", "25-34"]}]}'
    cdp audience create examples/young_women.yaml
    cdp audience insight young_women
    cdp audience lookalike young_women --size 50000
    cdp audience export young_women_lookalike --destination tencent --id-types phone,oaid
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from apps.cli.common import DataRoot, console, date_option, fail, settings_for

app = typer.Typer(
    name="audience",
    help="Audiences: estimate, create, insight, overlap, lookalike, export packs for ad platforms.",
    no_args_is_help=True,
    add_completion=False,
)

Dt = Annotated[_dt.date | None, date_option("Profile date (YYYY-MM-DD); the latest when omitted.")]


def _env(data_root: Path | None):
    """Settings and a session, or a clean exit on a settings error."""
    from cdp.engine import get_spark

    settings = settings_for(data_root)
    return get_spark(settings), settings


def _run(fn, *args, **kwargs):
    """Call a ``jobs.audiences`` function; an AudienceError becomes its message and exit code 1."""
    from audiences.errors import AudienceError

    try:
        return fn(*args, **kwargs)
    except AudienceError as exc:
        raise fail(exc) from None


def _count(n) -> str:
    """A public count (``audiences.insight.public_count``): ``1,234``, ``< 50``, or ``hidden`` (withheld)."""
    if n is None:
        return "hidden"
    return f"{n:,}" if isinstance(n, int) else str(n)


def _share(x: float | None, spec: str = ".1%") -> str:
    return "–" if x is None else format(x, spec)


def _version_line(v, k: int) -> str:
    """A version's headline, its counts below the minimum group size ``k`` shown as ``< k``."""
    from audiences.insight import public_count

    return (
        f"{v.audience_id} v{v.version} ({v.kind}, dt {v.dt}): {_count(public_count(v.size, k))} people"
        + (f", {v.opted_out:,} opted out removed" if v.opted_out >= k else "")
        + f"; created {v.created_at} by {v.created_by}"
    )


def _public_seed_list(details: dict, k: int) -> dict:
    """A version's seed-list facts with counts below ``k`` shown as ``< k``."""
    from audiences.insight import public_count

    counts = ("matched", "unmatched", "invalid")
    return {key: public_count(n, k) if key in counts else n for key, n in (details or {}).items()}


@app.command("estimate")
def estimate_cmd(rule: str, dt: Dt = None, data_root: DataRoot = None) -> None:
    """Size of a rule's audience (consented people), without writing anything."""
    from jobs import audiences as job

    spark, settings = _env(data_root)
    est = _run(job.estimate, spark, settings, rule, dt)
    console.print(
        f"{_count(est.size)} people ({_share(est.share, '.2%')} of {est.population:,} profiles on {est.dt}); "
        f"{_count(est.opted_out)} more match but opted out; {est.seconds:.2f} s"
    )


@app.command("create")
def create_cmd(
    definition: Annotated[str, typer.Argument(help="A definition or rule: file path, JSON or YAML.")],
    name: Annotated[str | None, typer.Option(help="Audience name (needed for a bare rule).")] = None,
    description: str = "",
    dt: Dt = None,
    by: Annotated[str | None, typer.Option(help="Author recorded with the version.")] = None,
    new_version: Annotated[
        bool, typer.Option("--new-version", help="Add a version to the audience of this name (must exist).")
    ] = False,
    data_root: DataRoot = None,
) -> None:
    """Materialise an audience (a new version with --new-version) in gold.audience_members.

    A seed list (``seed: {path: phones.csv, id_type: phone}``) is read and matched in memory; one matching
    fewer than CDP_MIN_GROUP_SIZE people is refused.
    """
    from audiences.insight import public_coverage
    from jobs import audiences as job

    spark, settings = _env(data_root)
    v = _run(
        job.create,
        spark,
        settings,
        definition,
        name=name,
        description=description,
        dt=dt,
        created_by=by,
        new_version=new_version,
    )
    k = settings.min_group_size
    console.print(_version_line(v, k) + f" ({v.seconds:.1f} s)")
    if v.details.get("seed_list"):
        seed_list = _public_seed_list(v.details["seed_list"], k)
        console.print("seed list: " + json.dumps(seed_list, ensure_ascii=False))
    if v.id_type_counts:
        console.print(
            "ID types: "
            + ", ".join(
                f"{t} {_count(n)}" for t, n in sorted(public_coverage(v.id_type_counts, v.size, k).items())
            )
        )


@app.command("list")
def list_cmd(
    all_versions: Annotated[bool, typer.Option("--all", help="Every version, not only the latest.")] = False,
    data_root: DataRoot = None,
) -> None:
    """Audiences and their latest (or every) version."""
    from audiences.insight import public_count
    from jobs import audiences as job

    spark, settings = _env(data_root)
    table = Table(title="audiences")
    for col in ("id", "version", "kind", "dt", "size", "created", "by"):
        table.add_column(col, justify="right" if col in ("version", "size") else "left")
    for v in job.list_audiences(spark, settings, all_versions=all_versions):
        size = _count(public_count(v.size, settings.min_group_size))
        table.add_row(v.audience_id, str(v.version), v.kind, v.dt, size, v.created_at, v.created_by)
    console.print(table)


@app.command("show")
def show_cmd(audience: str, version: int | None = None, data_root: DataRoot = None) -> None:
    """One audience version: definition, counts, details (lookalike evaluation, seed-list matches)."""
    from audiences.insight import public_coverage
    from jobs import audiences as job

    spark, settings = _env(data_root)
    v = _run(job.show, spark, settings, audience, version)
    k = settings.min_group_size
    console.print(_version_line(v, k))
    details = dict(v.details)
    if "seed_list" in details:
        details["seed_list"] = _public_seed_list(details["seed_list"], k)
    counts = public_coverage(v.id_type_counts, v.size, k)
    console.print_json(json.dumps({"definition": v.definition, "id_type_counts": counts, "details": details},
                                  ensure_ascii=False, default=str))  # fmt: skip


@app.command("insight")
def insight_cmd(
    audience: str,
    version: int | None = None,
    top: Annotated[int, typer.Option(help="Rows shown, defining traits first.")] = 30,
    data_root: DataRoot = None,
) -> None:
    """Size, coverage per ID type, and tag values by TGI (audience share / population share x 100).

    Counts below CDP_MIN_GROUP_SIZE show as ``< k``; an audience smaller than that is refused.
    """
    from audiences.insight import public_share
    from jobs import audiences as job

    spark, settings = _env(data_root)
    ins = _run(job.insight, spark, settings, audience, version, top=top)
    console.print(
        f"{ins.audience_id} v{ins.version}: {ins.size:,} people of {ins.population:,} profiles on {ins.dt} "
        f"({ins.seconds:.1f} s)"
    )
    console.print("coverage: " + ", ".join(f"{t} {_count(n)} ({_share(public_share(n, ins.size), '.0%')})"
                                           for t, n in ins.coverage.items()))  # fmt: skip
    table = Table(
        title=f"tag values, defining traits first (counts below {settings.min_group_size:,} hidden)"
    )
    for col in ("tag", "value", "audience", "share", "population share", "TGI"):
        table.add_column(col, justify="left" if col in ("tag", "value") else "right")
    for r in ins.rows:
        table.add_row(
            r.tag,
            r.value,
            _count(r.audience_count),
            _share(r.audience_share),
            _share(r.population_share),
            _share(r.tgi, ".0f"),
        )
    console.print(table)


@app.command("overlap")
def overlap_cmd(a: str, b: str, data_root: DataRoot = None) -> None:
    """Overlap of two audiences (``id`` or ``id@version``); groups below CDP_MIN_GROUP_SIZE show ``< k``."""
    from jobs import audiences as job

    spark, settings = _env(data_root)
    o = _run(job.overlap, spark, settings, a, b)
    console.print(
        f"{o.a}: {_count(o.a_size)}; {o.b}: {_count(o.b_size)}; both {_count(o.both)} "
        f"({_share(o.share_of_a)} of the first, {_share(o.share_of_b)} of the second); "
        f"either {_count(o.either)}; Jaccard {_share(o.jaccard, '.3f')}"
    )


@app.command("lookalike")
def lookalike_cmd(
    seed: Annotated[str, typer.Argument(help="Seed audience (id or id@version).")],
    size: Annotated[int | None, typer.Option(help="People to add.")] = None,
    top_percent: Annotated[float | None, typer.Option(help="Or: this percentage of the population.")] = None,
    name: Annotated[str | None, typer.Option(help="Name of the new audience.")] = None,
    exclude_tag: Annotated[
        list[str] | None, typer.Option(help="Tags left out of the model (repeatable).")
    ] = None,
    include_seed: Annotated[bool, typer.Option(help="Also put the seed in the new audience.")] = False,
    evaluation: Annotated[bool, typer.Option(help="Run the hide-and-recover evaluation.")] = True,
    by: Annotated[str | None, typer.Option(help="Author recorded with the version.")] = None,
    data_root: DataRoot = None,
) -> None:
    """Expand a seed: train on it against the population, score everyone, keep the most similar."""
    from jobs import audiences as job

    spark, settings = _env(data_root)
    res = _run(
        job.lookalike,
        spark,
        settings,
        seed,
        size=size,
        top_percent=top_percent,
        name=name,
        exclude_tags=exclude_tag or [],
        include_seed=include_seed,
        evaluation=evaluation,
        created_by=by,
    )
    console.print(_version_line(res.audience, settings.min_group_size))
    console.print(
        f"seed {res.seed_size:,} members; train {res.train_seconds:.1f} s, "
        f"score + write {res.score_seconds:.1f} s"
    )
    if res.evaluation is not None:
        for line in res.evaluation.lines():
            console.print(Text(line))


@app.command("export")
def export_cmd(
    audience: str,
    destination: Annotated[str, typer.Option(help="oceanengine | tencent | google | meta | csv")],
    id_types: Annotated[
        str | None, typer.Option(help="Comma-separated ID types; all the destination takes.")
    ] = None,
    version: int | None = None,
    min_size: Annotated[
        int | None,
        typer.Option(help="Minimum people (default: the min_pack_size setting, CDP_MIN_PACK_SIZE, 1,000)."),
    ] = None,
    by: Annotated[str | None, typer.Option(help="Author recorded in the manifest.")] = None,
    campaign_id: Annotated[
        str | None, typer.Option(help="The campaign the pack is for (its groups are kept for cdp effect).")
    ] = None,
    holdout: Annotated[float, typer.Option(help="Share held out as the campaign's control.")] = 0.0,
    consent_override: Annotated[
        str | None,
        typer.Option(help="Admin only: export although a consent batch is not applied (audited reason)."),
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """Write a pack (人群包) under packs/<audience>/<version>/<destination>/ with its manifest."""
    from jobs import audiences as job

    spark, settings = _env(data_root)
    types = [t.strip() for t in id_types.split(",") if t.strip()] if id_types else None
    m = _run(
        job.export,
        spark,
        settings,
        audience,
        destination,
        version=version,
        id_types=types,
        min_size=min_size,
        created_by=by,
        campaign_id=campaign_id,
        holdout=holdout,
        consent_override=consent_override,
    )
    console.print(
        f"{m.audience_id} v{m.version} -> {m.destination}: {m.people:,} people, {m.lines:,} lines in "
        f"{len(m.files)} file(s), {m.skipped:,} identifiers skipped, "
        f"{m.opted_out_removed:,} opted out removed"
    )
    for t, c in m.id_types.items():
        skipped = ", ".join(f"{k} {n:,}" for k, n in c["skipped"].items())
        console.print(
            f"  {t} ({c['platform_type']}): {c['lines']:,} lines"
            + (f"; skipped {skipped}" if skipped else "")
        )
    if m.holdout:
        held = m.holdout
        console.print(f"  campaign {held['campaign_id']}: {held['control_people']:,} people held out")
    console.print(f"pack: {m.path}")


@app.command("refresh")
def refresh_cmd(
    dt: Annotated[_dt.date, date_option("Logical date (YYYY-MM-DD).")], data_root: DataRoot = None
) -> None:
    """Re-evaluate rule audiences on a new date (new versions) and write their scheduled packs."""
    from jobs import audiences as job

    spark, settings = _env(data_root)
    report = _run(job.refresh, spark, settings, dt)
    for line in report.lines():
        console.print(Text(line))
