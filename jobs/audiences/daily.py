"""The daily audiences step, after tags: store the date's opt-outs, refresh rule and engagement audiences on
the new profile, and write their scheduled packs. Also ``python -m jobs.audiences refresh --dt YYYY-MM-DD``.

    silver consent + gold.oneid_map (dt) -> gold.consent_optouts (dt replaced)
    gold.audiences (rule and engagement audiences) + gold.profile (dt)
        -> a new version each (definitions.create)
        -> scheduled packs (exports.export) not yet in gold.audience_exports -> RefreshReport

Idempotent for its date: a rerun reuses the versions the date already made and does not write their packs
again. A pack refused for its size is reported, not raised: one small audience does not stop the pipeline.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from audiences.errors import AudienceError, PackTooSmallError, RuleError
from audiences.export import get_destination
from audiences.spec import AudienceSpec, ExportSchedule, parse_audience
from cdp.lake import LakeError, parse_dt
from cdp.run import RunContext
from cdp.settings import Settings
from jobs.audiences.context import EXPORTS, MAP, OPTOUTS, PROFILE, AudienceContext, ConsentNotAppliedError
from jobs.audiences.definitions import create
from jobs.audiences.exports import export
from jobs.audiences.registry import AudienceVersion, list_versions

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REFRESH_LEASE = "job.audience_refresh"
REFRESHED_KINDS = ("rule", "engagement")
"""Audiences the refresh re-evaluates; seed lists and lookalikes keep the version they were made with."""


@dataclass
class RefreshReport:
    """What one date's refresh did: opt-outs stored, audiences refreshed, packs written, refused, skipped."""

    dt: str
    optouts: int = 0
    refreshed: list[str] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """A summary line, then one line per audience and pack."""
        out = [
            f"audiences {self.dt}: {self.optouts:,} opted-out OneIDs; "
            f"{len(self.refreshed)} audience(s) refreshed, "
            f"{len(self.exports)} pack(s) written, {len(self.refused)} refused; {self.seconds:.1f} s"
        ]
        out += [f"  refreshed {r}" for r in self.refreshed]
        out += [f"  pack {e}" for e in self.exports]
        out += [f"  REFUSED {r}" for r in self.refused]
        out += [f"  skipped {s}" for s in self.skipped]
        return out


def _store_optouts(ctx: AudienceContext, day: _dt.date) -> int:
    """Replace the date's ``gold.consent_optouts`` and count them (0 before the first OneID map)."""
    if not ctx.lake.exists(MAP):
        return 0
    optouts = ctx.compute_optouts(day)
    with ctx.lake.lock(OPTOUTS):
        ctx.lake.replace_dt(OPTOUTS, optouts, day)
    return ctx.lake.read(OPTOUTS).where(F.col("dt") == F.lit(day)).count()


def _has_profile(ctx: AudienceContext, day: _dt.date) -> bool:
    if not ctx.lake.exists(PROFILE):
        return False
    return ctx.lake.read(PROFILE).where(F.col("dt") == F.lit(day)).limit(1).count() > 0


def _versions_of_day(ctx: AudienceContext, day: _dt.date) -> dict[str, AudienceVersion]:
    """The latest version each audience already has for ``day`` (an Airflow clear, a backfill)."""
    of_day: dict[str, AudienceVersion] = {}
    for x in list_versions(ctx, all_versions=True):
        if x.dt == day.isoformat() and x.version > getattr(of_day.get(x.audience_id), "version", 0):
            of_day[x.audience_id] = x
    return of_day


def _written_packs(ctx: AudienceContext) -> set[tuple[str, int, str]]:
    """``(audience_id, version, destination)`` of every pack logged in ``gold.audience_exports``."""
    if not ctx.lake.exists(EXPORTS):
        return set()
    rows = ctx.lake.read(EXPORTS).select("audience_id", "version", "destination").distinct().collect()
    return {(r["audience_id"], r["version"], r["destination"]) for r in rows}


def _schedules(v: AudienceVersion) -> list[ExportSchedule]:
    return [
        ExportSchedule(
            e["destination"],
            tuple(e.get("id_types") or ()),
            e.get("campaign_id"),
            float(e.get("holdout") or 0.0),
        )
        for e in v.definition.get("exports") or []
    ]


def _refresh_one(
    ctx: AudienceContext, v: AudienceVersion, day: _dt.date, created_by: str, report: RefreshReport
) -> AudienceVersion | None:
    """A new version of ``v`` on the profile of ``day``, or None when it cannot be re-evaluated."""
    spec = parse_audience(v.definition | {"name": v.name}) if "rule" in v.definition else None
    if spec is None:
        return None
    spec = AudienceSpec(v.name, v.kind, v.description, rule=spec.rule, exports=spec.exports)
    try:
        new = create(ctx.spark, ctx.settings, spec, dt=day, created_by=created_by)
    except RuleError as exc:  # a tag removed from the catalog: keep the old version, say why
        report.skipped.append(f"{v.audience_id}: {exc}")
        return None
    report.refreshed.append(f"{new.audience_id}@{new.version}: {new.size:,} people")
    return new


def _export_scheduled(
    ctx: AudienceContext,
    v: AudienceVersion,
    written: set[tuple[str, int, str]],
    created_by: str,
    report: RefreshReport,
) -> None:
    """Write the scheduled packs of ``v`` not written yet; a pack refused for its size is reported."""
    for schedule in _schedules(v):
        if (v.audience_id, v.version, get_destination(schedule.destination).name) in written:
            report.exports.append(f"{v.audience_id}@{v.version} -> {schedule.destination}: done")
            continue
        try:
            m = export(ctx.spark, ctx.settings, v.audience_id, schedule.destination, version=v.version,
                       id_types=list(schedule.id_types) or None, created_by=created_by,
                       campaign_id=schedule.campaign_id, holdout=schedule.holdout)  # fmt: skip
            report.exports.append(f"{v.audience_id}@{v.version} -> {schedule.destination}: {m.lines:,} lines")
        except (PackTooSmallError, ConsentNotAppliedError) as exc:  # the rerun after a fix writes it
            report.refused.append(str(exc))


def refresh(
    spark: SparkSession, settings: Settings, dt: str | _dt.date, *, created_by: str = "pipeline"
) -> RefreshReport:
    """Daily step after tags: store the opted-out OneIDs of ``dt``, re-evaluate every rule and engagement
    audience on the new profile (a new version each; older versions stay), and write their scheduled packs.

    Args:
        spark: the session.
        settings: the deployment's settings.
        dt: the logical date.
        created_by: the author of the versions and packs; a version of ``dt`` made by someone else (by hand,
            after the refresh) is left alone, its packs too.

    Returns:
        What was refreshed, written, refused and skipped.

    Raises:
        LakeError: ``dt`` is not a date.
    """
    started = time.perf_counter()
    run = RunContext.open(spark, settings, dt, stage="audiences")
    # One refresh at a time (from the CLI and the DAG alike): two would both make the day's versions.
    with run.lease(
        OPTOUTS, REFRESH_LEASE, job="audience refresh", rerun=f"cdp audience refresh --dt {run.dt}"
    ):
        report = _refresh(run, created_by)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _refresh(run: RunContext, created_by: str) -> RefreshReport:
    ctx, day = AudienceContext.of_run(run), run.dt
    report = RefreshReport(day.isoformat(), optouts=_store_optouts(ctx, day))
    has_profile = _has_profile(ctx, day)
    of_day = _versions_of_day(ctx, day)
    written = _written_packs(ctx)
    for v in list_versions(ctx):
        if v.kind not in REFRESHED_KINDS:
            continue
        if not has_profile:
            report.skipped.append(f"{v.audience_id}: no gold.profile for {day}")
            continue
        if v.audience_id in of_day:
            v = of_day[v.audience_id]
            if v.created_by != created_by:
                continue  # made by hand for this date after its refresh: its packs are exported by hand
        elif v.dt != day.isoformat():
            v = _refresh_one(ctx, v, day, created_by, report)
            if v is None:
                continue
        _export_scheduled(ctx, v, written, created_by, report)
    return report


def _date_argument(text: str) -> _dt.date:
    try:
        return parse_dt(text)
    except LakeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.audiences refresh --dt YYYY-MM-DD`` (for spark-submit and schedulers).

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when omitted.

    Returns:
        The exit code: 0, or 1 after printing an audience error.
    """
    from cdp.engine import get_spark

    parser = argparse.ArgumentParser(prog="jobs.audiences")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("refresh", help="re-evaluate rule audiences and write scheduled packs for a date")
    r.add_argument("--dt", required=True, type=_date_argument, help="logical date, YYYY-MM-DD")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    spark = get_spark(settings)
    try:
        for line in refresh(spark, settings, args.dt).lines():
            print(line)
    except AudienceError as exc:
        print(f"error: {exc}")
        return 1
    return 0
