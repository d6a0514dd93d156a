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


def _version_line(v) -> str:
    return (
        f"{v.audience_id} v{v.version} ({v.kind}, dt {v.dt}): {v.size:,} people"
        + (f", {v.opted_out:,} opted out removed" if v.opted_out else "")
        + f"; created {v.created_at} by {v.created_by}"
    )


@app.command("estimate")
def estimate_cmd(rule: str, dt: Dt = None, data_root: DataRoot = None) -> None:
    """Size of a rule's audience (consented people), without writing anything."""
    from jobs import audiences as job

    spark, settings = _env(data_root)
    est = _run(job.estimate, spark, settings, rule, dt)
    console.print(
        f"{est.size:,} people ({est.share:.2%} of {est.population:,} profiles on {est.dt}); "
        f"{est.opted_out:,} more match but opted out; {est.seconds:.2f} s"
    )


@app.command("create")
def create_cmd(
    definition: Annotated[str, typer.Argument(help="A definition or rule: file path, JSON or YAML.")],
    name: Annotated[str | None, typer.Option(help="Audience name (needed for a bare rule).")] = None,
    description: str = "",
    dt: Dt = None,
    by: Annotated[str | None, typer.Option(help="Author recorded with the version.")] = None,
    data_root: DataRoot = None,
) -> None:
    """Materialise an audience as a new version in gold.audience_members."""
    from jobs import audiences as job

    spark, settings = _env(data_root)
    v = _run(
        job.create, spark, settings, definition, name=name, description=description, dt=dt, created_by=by
    )
    console.print(_version_line(v) + f" ({v.seconds:.1f} s)")
    if v.details.get("seed_list"):
        console.print("seed list: " + json.dumps(v.details["seed_list"], ensure_ascii=False))
    if v.id_type_counts:
        console.print("ID types: " + ", ".join(f"{t} {n:,}" for t, n in sorted(v.id_type_counts.items())))


@app.command("list")
def list_cmd(
    all_versions: Annotated[bool, typer.Option("--all", help="Every version, not only the latest.")] = False,
    data_root: DataRoot = None,
) -> None:
    """Audiences and their latest (or every) version."""
    from jobs import audiences as job

    spark, settings = _env(data_root)
    table = Table(title="audiences")
    for col in ("id", "version", "kind", "dt", "size", "created", "by"):
        table.add_column(col, justify="right" if col in ("version", "size") else "left")
    for v in job.list_audiences(spark, settings, all_versions=all_versions):
        table.add_row(v.audience_id, str(v.version), v.kind, v.dt, f"{v.size:,}", v.created_at, v.created_by)
    console.print(table)


@app.command("show")
def show_cmd(audience: str, version: int | None = None, data_root: DataRoot = None) -> None:
    """One audience version: definition, counts, details (lookalike evaluation, seed-list matches)."""
    from jobs import audiences as job

    spark, settings = _env(data_root)
    v = _run(job.show, spark, settings, audience, version)
    console.print(_version_line(v))
    console.print_json(json.dumps({"definition": v.definition, "id_type_counts": v.id_type_counts,
                                   "details": v.details}, ensure_ascii=False, default=str))  # fmt: skip


@app.command("insight")
def insight_cmd(
    audience: str,
    version: int | None = None,
    top: Annotated[int, typer.Option(help="Rows shown, defining traits first.")] = 30,
    data_root: DataRoot = None,
) -> None:
    """Size, coverage per ID type, and tag values by TGI (audience share / population share x 100)."""
    from jobs import audiences as job

    spark, settings = _env(data_root)
    ins = _run(job.insight, spark, settings, audience, version, top=top)
    console.print(
        f"{ins.audience_id} v{ins.version}: {ins.size:,} people of {ins.population:,} profiles on {ins.dt} "
        f"({ins.seconds:.1f} s)"
    )
    console.print("coverage: " + ", ".join(f"{t} {n:,} ({n / max(ins.size, 1):.0%})" for t, n in
                                           sorted(ins.coverage.items(), key=lambda kv: -kv[1])))  # fmt: skip
    table = Table(title="tag values, defining traits first")
    for col in ("tag", "value", "audience", "share", "population share", "TGI"):
        table.add_column(col, justify="left" if col in ("tag", "value") else "right")
    for r in ins.rows:
        table.add_row(
            r.tag,
            r.value,
            f"{r.audience_count:,}",
            f"{r.audience_share:.1%}",
            f"{r.population_share:.1%}",
            f"{r.tgi:.0f}",
        )
    console.print(table)


@app.command("overlap")
def overlap_cmd(a: str, b: str, data_root: DataRoot = None) -> None:
    """Overlap of two audiences (``id`` or ``id@version``)."""
    from jobs import audiences as job

    spark, settings = _env(data_root)
    o = _run(job.overlap, spark, settings, a, b)
    console.print(
        f"{o.a}: {o.a_size:,}; {o.b}: {o.b_size:,}; both {o.both:,} ({o.share_of_a:.1%} of the first, "
        f"{o.share_of_b:.1%} of the second); either {o.either:,}; Jaccard {o.jaccard:.3f}"
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
    console.print(_version_line(res.audience))
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
