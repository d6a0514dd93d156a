"""Effect analysis for one logical date: what each campaign on an audience pack (人群包) did.

    gold.campaigns (registered: campaign -> pack, media, dates, budget, holdout share)
    gold.campaign_holdouts (written at export: pack members = treatment, held-out people = control)
    silver.ad_events (up to dt) -- OneIDs (gold.oneid_map, latest <= dt) --> delivery with oneid (NULL:
        unmatched)
    silver.orders -> paid orders with oneid;  silver.events -> 1P behaviour with oneid
        -> gold.effect_issues   bad input, reported (unknown campaigns, negative cost, clicks without
                                impressions, delivery outside the dates or on other media, no pack)
        -> gold.effect_daily    per campaign and day: impressions, clicks, conversions, cost, reach, CPM...
        -> gold.effect_summary  per campaign: totals, CPM/CPC/CPA/CTR/CVR, revenue/ROAS/ROI of the exposed,
                                funnel exposed -> clicked -> visited -> carted -> purchased
        -> gold.effect_lift     per campaign with a control: conversion and revenue lift, CI, p-value
        -> gold.effect_aipl     AIPL stages of both groups before the campaign and on dt
        -> gold.attribution     per order: credits by last/first touch, linear, time decay (and Markov)

Every output is a snapshot per ``dt`` (rerunning a date replaces it; the report reads the latest date), so
the DAG runs it daily after the audiences stage and a rerun gives the same tables. The campaign registry
and the groups are written by :func:`register` and the pack export (:func:`hold_out`, :func:`store_groups`).

Run as ``cdp effect run --dt YYYY-MM-DD`` or ``python -m jobs.effect --dt YYYY-MM-DD``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import getpass
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.lake import Lake, LakeError, parse_dt
from cdp.run import RunContext
from cdp.settings import Settings
from effect import (
    Campaign,
    CampaignError,
    EffectError,
    UnknownCampaignError,
    aipl_transitions,
    campaign_delivery,
    conversion_lift,
    daily_delivery,
    delivery_issues,
    exposures,
    funnel,
    group_outcomes,
    markov_credits,
    markov_paths,
    markov_removal_effects,
    paid_orders,
    plan_campaign,
    purchases_after_exposure,
    revenue_lift,
    rule_credits,
    touches,
    with_cost_figures,
)
from effect.attribution import collapse, order_touches
from effect.issues import ISSUE_COLUMNS
from jobs.effect_groups import HOLDOUTS

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

CAMPAIGNS = "gold.campaigns"
SUMMARY, DAILY, LIFT, AIPL = (
    "gold.effect_summary",
    "gold.effect_daily",
    "gold.effect_lift",
    "gold.effect_aipl",
)
ATTRIBUTION, ISSUES = "gold.attribution", "gold.effect_issues"
MAP, PROFILE, EXPORTS, MEMBERS = (
    "gold.oneid_map",
    "gold.profile",
    "gold.audience_exports",
    "gold.audience_members",
)
VIEWS = {"ad_events": "silver.ad_events", "orders": "silver.orders", "events": "silver.events"}
ATTRIBUTION_DAYS = 30
"""Orders of this many days up to dt are attributed (more when a registered campaign started earlier)."""
MAX_ATTRIBUTION_DAYS = 90
LOOKBACK_DAYS = 7
HALF_LIFE_DAYS = 7.0


# ---- registration and groups (called by the CLI, the API and the pack export) ---------------------------


@dataclass
class Registration:
    """What :func:`register` did: the campaign, and the pack it exported (with its holdout) if any."""

    campaign: Campaign
    pack_path: str | None = None
    people: int | None = None
    control: int | None = None
    exported: bool = False

    def lines(self) -> list[str]:
        c = self.campaign
        out = [
            f"campaign {c.campaign_id} ({c.media}) registered on pack {c.pack}: {c.start} to {c.end}, "
            f"budget {c.budget if c.budget is not None else '-'}, holdout {c.holdout:.0%}, "
            f"attribution window {c.attribution_window_days} days"
        ]
        if self.exported:
            out.append(
                f"  pack written with the holdout: {self.people:,} people in the pack, "
                f"{self.control:,} held out "
                f"-> {self.pack_path} (upload this pack)"
            )
        elif self.pack_path:
            out.append(f"  pack {self.pack_path} (already exported for this campaign)")
        return out


def _manifest(settings: Settings, campaign: Campaign) -> dict[str, Any] | None:
    pack = campaign.pack
    path = (
        Path(settings.packs_root) / pack.audience_id / f"v{pack.version}" / pack.destination / "manifest.json"
    )
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def register(
    spark: SparkSession,
    settings: Settings,
    campaign: Campaign | dict[str, Any],
    *,
    registered_by: str | None = None,
    id_types: list[str] | None = None,
    export_pack: bool = True,
) -> Registration:
    """Record which campaign used which pack (``gold.campaigns``, replacing an earlier registration of the
    same id). With a holdout, or when the pack was not exported yet, the pack is (re)written for the campaign
    with its control group kept out (:func:`jobs.audiences.export` with ``campaign_id``).

    Args:
        spark: the session.
        settings: the deployment's settings.
        campaign: the campaign, or its registration document (:func:`effect.plan_campaign`).
        registered_by: the author (the OS user by default).
        id_types: the ID types of the pack when it is written; all the destination takes by default.
        export_pack: False records the campaign only (its pack is exported later, e.g. by a schedule); until
            then the effect run reports it as ``campaign_without_pack``.

    Raises:
        CampaignError: the registration is invalid.
        AudienceError: the audience version or destination does not exist, or the pack would be too small.
    """
    from jobs.audiences import export

    c = campaign if isinstance(campaign, Campaign) else plan_campaign(campaign)
    lake = Lake.from_settings(spark, settings)
    manifest = _manifest(settings, c)
    held = (manifest or {}).get("holdout") or {}
    same = held.get("campaign_id") == c.campaign_id and float(held.get("share") or 0) == c.holdout
    result = Registration(c, pack_path=(manifest or {}).get("path"))
    if export_pack and (manifest is None or (c.holdout > 0 and not same)):
        m = export(
            spark,
            settings,
            c.pack.audience_id,
            c.pack.destination,
            version=c.pack.version,
            id_types=id_types,
            created_by=registered_by,
            campaign_id=c.campaign_id,
            holdout=c.holdout,
        )
        result = Registration(c, m.path, m.people, int((m.holdout or {}).get("control_people") or 0), True)
    row = c.to_row() | {
        "registered_at": _dt.datetime.now(_dt.UTC).replace(tzinfo=None, microsecond=0),
        "registered_by": registered_by or getpass.getuser(),
    }
    frame = spark.createDataFrame([row], lake.contracts[CAMPAIGNS].ddl)
    with lake.lock(CAMPAIGNS):
        lake.upsert(CAMPAIGNS, frame, ["campaign_id"])
    return result


def list_campaigns(spark: SparkSession, settings: Settings) -> list[Campaign]:
    """Every registered campaign, by start date and id."""
    lake = Lake.from_settings(spark, settings)
    if not lake.exists(CAMPAIGNS):
        return []
    rows = [r.asDict() for r in lake.read(CAMPAIGNS).collect()]
    return sorted((Campaign.from_row(r) for r in rows), key=lambda c: (c.start, c.campaign_id))


# ---- the daily run -----------------------------------------------------------------------------------------


@dataclass
class EffectReport:
    """What one date's effect run found."""

    dt: str
    campaigns: list[str] = field(default_factory=list)
    summaries: list[dict] = field(default_factory=list)
    lifts: list[dict] = field(default_factory=list)
    issues: list[dict] = field(default_factory=list)
    attributed_orders: int = 0
    delivery_rows: int = 0
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """A summary line, then one line per campaign, lift and issue."""
        out = [
            f"effect {self.dt}: {len(self.campaigns)} campaign(s), {self.delivery_rows:,} delivery rows, "
            f"{self.attributed_orders:,} orders attributed, {len(self.issues)} issue(s); {self.seconds:.1f} s"
        ]
        for s in self.summaries:
            out.append(
                f"  {s['campaign_id']}: reach {s['reach']:,}, {s['impressions']:,} impressions, "
                f"{s['clicks']:,} "
                f"clicks, cost {s['cost']:,.2f}, CPM {_f(s['cpm'])}, CTR {_p(s['ctr'])}, revenue "
                f"{s['revenue']:,.2f}, ROAS {_f(s['roas'])}"
            )
        out += [f"  lift {x['campaign_id']}: {x['sentence']}" for x in self.lifts]
        for kind in sorted({i["kind"] for i in self.issues}):
            found = [i for i in self.issues if i["kind"] == kind]
            if len(found) > 3:  # e.g. the delivery logs of every campaign nobody registered: one line
                names = ", ".join(str(i["campaign_id"]) for i in found[:5])
                rows = sum(i["rows"] for i in found)
                out.append(
                    f"  ISSUE {kind}: {len(found)} campaigns ({names}, ...), {rows:,} rows; "
                    + found[0]["detail"]
                )
                continue
            out += [
                f"  ISSUE {kind} {i['campaign_id'] or ''}: {i['rows']:,} rows; {i['detail']}" for i in found
            ]
        return out


def _f(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.2f}"


def _p(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


@dataclass
class _Inputs:
    """The date's inputs, keyed with OneIDs and checkpointed once."""

    campaigns: DataFrame
    members: DataFrame
    delivery: DataFrame
    orders: DataFrame
    events: DataFrame
    since: _dt.date
    delivery_rows: int
    oneid_map: DataFrame | None = None


def run(
    spark: SparkSession,
    settings: Settings,
    dt: str | _dt.date,
    *,
    lookback_days: int = LOOKBACK_DAYS,
    half_life_days: float = HALF_LIFE_DAYS,
    markov: bool = True,
) -> EffectReport:
    """Measure every registered campaign up to ``dt`` and attribute the orders (see the module doc).

    Args:
        spark: the engine session.
        settings: the deployment's settings.
        dt: the logical date.
        lookback_days: touches this many days before an order count in attribution.
        half_life_days: the half-life of the time-decay model.
        markov: also compute the data-driven Markov removal-effect model.

    Returns:
        The run's report (also written to the gold tables of the module doc).

    Raises:
        EffectError: no OneID map on or before ``dt``.
    """
    ctx = RunContext.open(spark, settings, dt, stage="effect")
    report = EffectReport(ctx.dt.isoformat())
    with ctx.scratch_space():
        inputs = _inputs(ctx)
        ctx.step("inputs")
        issues = _issues(ctx, inputs)
        ctx.step("issues")
        summaries = _summaries(ctx, inputs, issues)
        ctx.step("summary")
        lifts = _lifts(ctx, inputs, summaries)
        ctx.step("lift")
        _aipl(ctx, inputs)
        ctx.step("aipl")
        report.attributed_orders = _attribution(ctx, inputs, lookback_days, half_life_days, markov)
        ctx.step("attribution")
    report.campaigns = [s["campaign_id"] for s in summaries]
    report.summaries, report.lifts, report.issues = summaries, lifts, issues
    report.delivery_rows = inputs.delivery_rows
    report.steps, report.seconds = dict(ctx.steps), round(ctx.elapsed(), 2)
    return report


def _empty(ctx: RunContext, table: str) -> DataFrame:
    columns = [c for c in ctx.lake.contracts[table].columns if c.name != "dt"]
    return ctx.spark.createDataFrame([], ", ".join(f"{c.name} {c.spark_type}" for c in columns))


def _keyed(
    ctx: RunContext,
    view: str,
    oneid_map: DataFrame,
    since: _dt.date,
    time_column: str,
    *,
    unmatched: bool = False,
) -> DataFrame:
    """The silver rows of ``view`` ingested up to dt with event dates in ``[since, dt]``, keyed with OneIDs
    (``oneid`` as string); empty without the table.

    Args:
        ctx: the run.
        view: the view of :data:`VIEWS`.
        oneid_map: ``(id_type, id_value, oneid)`` of one date.
        since: the first event day kept.
        time_column: the event time column.
        unmatched: keep the rows without a known identifier too, with ``oneid`` NULL (one left join of every
            row, instead of keying the rows and joining them back to all rows).
    """
    from jobs.tags import silver_schemas, view_specs
    from tags.views import first_identifier, with_oneid

    table = VIEWS[view]
    if ctx.lake.exists(table):
        rows = ctx.read_up_to(table)
    else:
        rows = ctx.spark.createDataFrame([], silver_schemas(ctx.settings)[view])
    day = F.to_date(time_column)
    rows = rows.where((day >= F.lit(since)) & (day <= F.lit(ctx.dt)))
    spec = view_specs(ctx.settings)[view]
    if unmatched:
        # the identifier with_oneid keys on, joined to the map without dropping a row
        key = first_identifier(spec.identifiers)
        ids = oneid_map.select(
            F.col("id_type").alias("_id_type"), F.col("id_value").alias("_id_value"), "oneid"
        )
        keyed = (
            rows.withColumn("_id_type", key["id_type"])
            .withColumn("_id_value", key["id_value"])
            .join(ids, ["_id_type", "_id_value"], "left")
            .drop("_id_type", "_id_value")
        )
    else:
        keyed = rows.transform(with_oneid(spec, oneid_map))
    return keyed.withColumn("oneid", F.col("oneid").cast("string"))


def _inputs(ctx: RunContext) -> _Inputs:
    """Campaigns, groups and the keyed delivery, orders and events from the earliest day any output needs."""
    latest = ctx.latest_dt(MAP)
    if latest is None:
        raise EffectError(f"no gold.oneid_map on or before {ctx.dt}; run the identity stage first")
    oneid_map = ctx.checkpoint(ctx.read_dt(MAP, latest).select("id_type", "id_value", "oneid"), "map")
    campaigns = ctx.lake.read(CAMPAIGNS) if ctx.lake.exists(CAMPAIGNS) else _empty(ctx, CAMPAIGNS)
    campaigns = ctx.checkpoint(campaigns, "campaigns")
    starts = [r[0] for r in campaigns.select("start_date").collect()]
    floor = ctx.dt - _dt.timedelta(days=MAX_ATTRIBUTION_DAYS)
    since = max(min([ctx.dt - _dt.timedelta(days=ATTRIBUTION_DAYS), *starts]), floor)
    touch_since = since - _dt.timedelta(days=LOOKBACK_DAYS)
    # every delivery row once (log_id is the silver key), with its OneID or NULL (unmatched)
    keyed = _keyed(ctx, "ad_events", oneid_map, touch_since, "event_time", unmatched=True)
    delivery = keyed.select(
        "log_id",
        "event_time",
        F.lower("media").alias("media"),
        "campaign_id",
        F.lower("event_type").alias("event_type"),
        F.col("cost").cast("double").alias("cost"),
        "oneid",
    )
    delivery = ctx.checkpoint(delivery, "delivery")
    order_lines = _keyed(ctx, "orders", oneid_map, since, "order_time")
    orders = ctx.checkpoint(order_lines.transform(paid_orders), "orders")
    events = _keyed(ctx, "events", oneid_map, since, "event_time")
    events = ctx.checkpoint(events.select("oneid", "event_time", "event_type"), "events")
    members = ctx.checkpoint(_members(ctx, campaigns), "members")
    return _Inputs(campaigns, members, delivery, orders, events, since, delivery.count(), oneid_map)


def _members(ctx: RunContext, campaigns: DataFrame) -> DataFrame:
    """``(campaign_id, oneid, arm)``: the stored groups of each campaign's packs; a campaign without stored
    groups (its pack exported before it was registered, without a holdout) gets the members of its audience
    version as treatment."""
    stored = (
        ctx.lake.read(HOLDOUTS).select("campaign_id", "oneid", "arm")
        if ctx.lake.exists(HOLDOUTS)
        else ctx.spark.createDataFrame([], "campaign_id string, oneid string, arm string")
    )
    # one arm per person: someone in a pack of the campaign counts as treatment
    stored = stored.groupBy("campaign_id", "oneid").agg(F.max("arm").alias("arm"))
    stored = stored.withColumn("arm", F.when(F.col("arm") == "treatment", "treatment").otherwise("control"))
    if not ctx.lake.exists(MEMBERS):
        return stored
    missing = campaigns.join(stored.select("campaign_id").distinct(), "campaign_id", "left_anti")
    fallback = (
        missing.select("campaign_id", "audience_id", "version")
        .join(ctx.lake.read(MEMBERS).select("audience_id", "version", "oneid"), ["audience_id", "version"])
        .select("campaign_id", F.col("oneid").cast("string").alias("oneid"), F.lit("treatment").alias("arm"))
    )
    return stored.unionByName(fallback).distinct()


def _issues(ctx: RunContext, inputs: _Inputs) -> list[dict]:
    """Bad input of the date (``gold.effect_issues``), returned for the report."""
    window = inputs.delivery.where(F.to_date("event_time") >= F.lit(inputs.since))
    found = delivery_issues(window, inputs.campaigns)
    packs = _exported_packs(ctx)
    no_pack = [
        (
            "campaign_without_pack",
            r["campaign_id"],
            0,
            None,
            f"no pack of {r['audience_id']}/v{r['version']}/{r['destination']} was exported; export it "
            "(cdp campaign register with --holdout, or cdp audience export) to measure the campaign",
        )
        for r in inputs.campaigns.collect()
        if (r["audience_id"], r["version"], r["destination"]) not in packs
    ]
    rows = found.unionByName(ctx.spark.createDataFrame(no_pack, ISSUE_COLUMNS))
    rows = ctx.checkpoint(rows, "issues")
    ctx.lake.replace_dt(ISSUES, rows, ctx.dt)
    return sorted((r.asDict() for r in rows.collect()), key=lambda r: (r["kind"], r["campaign_id"] or ""))


def _exported_packs(ctx: RunContext) -> set[tuple[str, int, str]]:
    found = set()
    if ctx.lake.exists(EXPORTS):
        for r in ctx.lake.read(EXPORTS).select("audience_id", "version", "destination").distinct().collect():
            found.add((r[0], r[1], r[2]))
    if ctx.lake.exists(HOLDOUTS):
        for r in ctx.lake.read(HOLDOUTS).select("audience_id", "version", "destination").distinct().collect():
            found.add((r[0], r[1], r[2]))
    return found


def _summaries(ctx: RunContext, inputs: _Inputs, issues: list[dict]) -> list[dict]:
    """``gold.effect_daily`` and ``gold.effect_summary`` of the registered campaigns."""
    c = inputs.campaigns
    valid = inputs.delivery.join(c.select("campaign_id"), "campaign_id").withColumn(
        "cost", F.when(F.col("cost") >= 0, F.col("cost")).otherwise(F.lit(0.0))
    )
    daily = valid.transform(daily_delivery).withColumn("revenue", F.lit(None).cast("double"))
    daily = daily.transform(with_cost_figures).drop("revenue", "cpa", "cvr", "roas", "roi")
    ctx.lake.replace_dt(DAILY, daily, ctx.dt)
    exposed = ctx.checkpoint(valid.transform(exposures), "exposures")
    bought = (
        exposed.transform(purchases_after_exposure(c, inputs.orders, ctx.dt))
        .groupBy("campaign_id")
        .agg(F.count("*").alias("buyers"), F.sum("orders").alias("orders"), F.sum("revenue").alias("revenue"))
    )
    steps = exposed.transform(funnel(c, inputs.events, inputs.orders, ctx.dt))
    groups = inputs.members.groupBy("campaign_id").agg(
        F.sum((F.col("arm") == "treatment").cast("long")).alias("members"),
        F.sum((F.col("arm") == "control").cast("long")).alias("control"),
    )
    window_end = F.least(F.date_add("end_date", F.col("attribution_window_days")), F.lit(ctx.dt))
    zero = [
        "impressions",
        "clicks",
        "conversions",
        "cost",
        "reach",
        "clickers",
        "unmatched_impressions",
        "buyers",
        "orders",
        "revenue",
        "members",
        "control",
        "exposed",
        "clicked",
        "visited",
        "carted",
        "purchased",
    ]
    summary = (
        c.select(
            "campaign_id",
            "name",
            "media",
            "audience_id",
            "version",
            "destination",
            "start_date",
            "end_date",
            window_end.alias("window_end"),
            "budget",
        )
        .join(valid.transform(campaign_delivery), "campaign_id", "left")
        .join(bought, "campaign_id", "left")
        .join(steps, "campaign_id", "left")
        .join(groups, "campaign_id", "left")
        .fillna(0, subset=zero)
        .transform(with_cost_figures)
    )
    notes: dict[str, list[str]] = {}
    for i in issues:
        notes.setdefault(i["campaign_id"], []).append(f"{i['kind']}: {i['rows']:,} rows; {i['detail']}")
    by_id = ctx.spark.createDataFrame(
        [(k, "\n".join(v)) for k, v in notes.items() if k], "campaign_id string, issues string"
    )
    summary = ctx.checkpoint(summary.join(by_id, "campaign_id", "left"), "summary")
    ctx.lake.replace_dt(SUMMARY, summary, ctx.dt)
    return sorted((r.asDict() for r in summary.collect()), key=lambda r: r["campaign_id"])


def _lifts(ctx: RunContext, inputs: _Inputs, summaries: list[dict]) -> list[dict]:
    """``gold.effect_lift``: conversion and revenue lift of every campaign with a control group."""
    sums = inputs.members.transform(group_outcomes(inputs.campaigns, inputs.orders, ctx.dt)).collect()
    by: dict[str, dict[str, Any]] = {}
    for r in sums:
        by.setdefault(r["campaign_id"], {})[r["arm"]] = r.asDict()
    cost = {s["campaign_id"]: s["cost"] for s in summaries}
    reach = _order_identity_reach(ctx, inputs)
    rows: list[dict] = []
    for campaign_id in sorted(by):
        t = by[campaign_id].get("treatment") or {"people": 0, "buyers": 0, "revenue": 0.0, "revenue_sq": 0.0}
        k = by[campaign_id].get("control") or {"people": 0, "buyers": 0, "revenue": 0.0, "revenue_sq": 0.0}
        results = (
            conversion_lift(t["buyers"], t["people"], k["buyers"], k["people"]),
            revenue_lift(
                t["revenue"],
                t["revenue_sq"],
                t["people"],
                k["revenue"],
                k["revenue_sq"],
                k["people"],
                cost.get(campaign_id),
            ),
        )
        rows += [
            {"campaign_id": campaign_id, **x.to_row()} | _identity_gap(x.to_row(), reach.get(campaign_id))
            for x in results
        ]
    contract = ctx.lake.contracts[LIFT]
    names = [c.name for c in contract.columns if c.name != "dt"]
    frame = ctx.spark.createDataFrame([tuple(r[n] for n in names) for r in rows], _ddl(ctx, LIFT))
    ctx.lake.replace_dt(LIFT, frame, ctx.dt)
    return [r for r in rows if r["metric"] == "conversion_rate"] + [
        r for r in rows if r["metric"] == "revenue_per_person"
    ]


IDENTITY_REACH_WARNING = 0.8
"""Below this share of a campaign's people with an identifier orders carry, its lift is a lower bound."""


def _order_identity_reach(ctx: RunContext, inputs: _Inputs) -> dict[str, float]:
    """Per campaign, the share of its people (treatment and control) whose OneID holds an identifier of a
    type orders carry (member id, phone): a purchase counts for the lift only through one of those."""
    from jobs.tags import view_specs

    if inputs.oneid_map is None:
        return {}
    types = sorted({t for _, t in view_specs(ctx.settings)["orders"].identifiers})
    buyers = (
        inputs.oneid_map.where(F.col("id_type").isin(*types))
        .select(F.col("oneid").cast("string").alias("oneid"), F.lit(1).alias("_r"))
        .dropDuplicates(["oneid"])
    )
    reach = (
        inputs.members.join(buyers, "oneid", "left")
        .groupBy("campaign_id")
        .agg(F.avg(F.coalesce(F.col("_r"), F.lit(0))).alias("reach"))
        .collect()
    )
    return {r["campaign_id"]: float(r["reach"]) for r in reach}


def _identity_gap(row: dict, reach: float | None) -> dict:
    """The row's warning and sentence, saying the lift is a lower bound when few of the campaign's people
    can be followed to their orders."""
    if reach is None or reach >= IDENTITY_REACH_WARNING:
        return {}
    gap = (
        f"only {reach:.0%} of this campaign's people have a member id or phone their orders could carry; "
        "purchases made under identifiers not linked to them are not seen, so the lift is a lower bound"
    )
    warning = f"{row['warning']}; {gap}" if row.get("warning") else gap
    return {"warning": warning, "sentence": f"{row['sentence']} Warning: {gap}."}


def _ddl(ctx: RunContext, table: str) -> str:
    return ", ".join(f"{c.name} {c.spark_type}" for c in ctx.lake.contracts[table].columns if c.name != "dt")


def _aipl(ctx: RunContext, inputs: _Inputs) -> None:
    """``gold.effect_aipl``: both groups' AIPL stages on the profile before each campaign and on dt."""
    if not ctx.lake.exists(PROFILE) or "aipl_stage" not in ctx.lake.read(PROFILE).columns:
        ctx.lake.replace_dt(AIPL, _empty(ctx, AIPL), ctx.dt)
        return
    after_dt = ctx.latest_dt(PROFILE)
    parts = []
    for r in inputs.campaigns.select("campaign_id", "start_date").collect():
        before_dt = ctx.lake.latest_dt(PROFILE, before=r["start_date"])
        if before_dt is None or after_dt is None:
            continue
        stage = {
            d: ctx.read_dt(PROFILE, d).select(
                F.col("oneid").cast("string").alias("oneid"), F.col("aipl_stage").alias("stage")
            )
            for d in (before_dt, after_dt)
        }
        members = inputs.members.where(F.col("campaign_id") == r["campaign_id"])
        parts.append(
            members.transform(aipl_transitions(stage[before_dt], stage[after_dt])).withColumn(
                "before_dt", F.lit(before_dt)
            )
        )
    frame = parts[0] if parts else _empty(ctx, AIPL)
    for p in parts[1:]:
        frame = frame.unionByName(p)
    ctx.lake.replace_dt(AIPL, frame, ctx.dt)


def _attribution(ctx: RunContext, inputs: _Inputs, lookback: int, half_life: float, markov: bool) -> int:
    """``gold.attribution`` of the orders since ``inputs.since``; returns the orders attributed."""
    touch = ctx.checkpoint(touches(inputs.delivery), "touches")
    orders = inputs.orders
    # every model starts from the same order x touch pairs: joined once, not once per model and read
    joined = ctx.checkpoint(orders.transform(order_touches(touch, lookback)), "order_touches")
    credits = orders.transform(
        rule_credits(touch, lookback_days=lookback, half_life_days=half_life, joined=joined)
    )
    if markov:
        paths = markov_paths(touch, orders, lookback_days=lookback, joined=joined).collect()
        effects = markov_removal_effects(
            (collapse(r["path"]), int(r["conversions"]), int(r["nulls"])) for r in paths
        )
        rows = [(*_split(k), float(v)) for k, v in effects.items()]
        frame = ctx.spark.createDataFrame(rows, "media string, campaign_id string, effect double")
        credits = credits.unionByName(
            orders.transform(markov_credits(touch, frame, lookback_days=lookback, joined=joined))
        )
    credits = ctx.checkpoint(credits.withColumn("revenue", F.col("credit") * F.col("amount")), "attribution")
    ctx.lake.replace_dt(ATTRIBUTION, credits, ctx.dt)
    return credits.where(F.col("media").isNotNull()).select("order_id").distinct().count()


def _split(key: str) -> tuple[str | None, str | None]:
    media, _, campaign = key.partition("|")
    return (None if media == "None" else media), (None if campaign == "None" else campaign)


# ---- reading the report ----------------------------------------------------------------------------------


def report(
    spark: SparkSession, settings: Settings, key: str, *, dt: str | _dt.date | None = None
) -> dict[str, Any]:
    """The effect report of a campaign, or of every campaign of an audience, at the latest run on or before
    ``dt``: the summary rows, lifts, daily trend, AIPL transitions and issues.

    Raises:
        UnknownCampaignError: ``key`` is neither a registered campaign nor an audience with one.
        EffectError: the effect stage has not run yet.
    """
    lake = Lake.from_settings(spark, settings)
    campaigns = list_campaigns(spark, settings)
    chosen = [c for c in campaigns if c.campaign_id == key] or [
        c for c in campaigns if c.pack.audience_id == key
    ]
    if not chosen:
        known = ", ".join(
            sorted({c.campaign_id for c in campaigns} | {c.pack.audience_id for c in campaigns})
        )
        raise UnknownCampaignError(
            f"{key!r} is neither a registered campaign nor an audience with one"
            + (f"; registered: {known}" if known else "; register one with cdp campaign register")
        )
    if not lake.exists(SUMMARY):
        raise EffectError("the effect stage has not run yet; run cdp effect run --dt YYYY-MM-DD")
    day = lake.latest_dt(SUMMARY, on_or_before=parse_dt(dt) if dt else None)
    if day is None:
        raise EffectError(f"no effect run on or before {dt}; run cdp effect run --dt {dt}")
    ids = [c.campaign_id for c in chosen]

    def rows(table: str, order: list[str]) -> list[dict]:
        if not lake.exists(table):
            return []
        df = lake.read(table).where((F.col("dt") == F.lit(day)) & F.col("campaign_id").isin(*ids))
        return [r.asDict() for r in df.orderBy(*order).collect()]

    return {
        "key": key,
        "dt": day.isoformat(),
        "campaigns": [dataclasses.asdict(c) for c in chosen],
        "summary": rows(SUMMARY, ["campaign_id"]),
        "lift": rows(LIFT, ["campaign_id", "metric"]),
        "daily": rows(DAILY, ["campaign_id", "day"]),
        "aipl": rows(AIPL, ["campaign_id", "arm", "stage_before", "stage_after"]),
        "issues": rows(ISSUES, ["kind"]),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.effect --dt YYYY-MM-DD`` (for spark-submit and schedulers)."""
    from cdp.engine import get_spark

    parser = argparse.ArgumentParser(prog="jobs.effect")
    parser.add_argument("--dt", required=True, help="logical date, YYYY-MM-DD")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        for line in run(get_spark(settings), settings, parse_dt(args.dt)).lines():
            print(line)
    except (EffectError, CampaignError, LakeError) as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    from cdp.run import exit_with

    exit_with(main)
