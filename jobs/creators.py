"""Creators (达人) for one logical date, and the creator operations the CLI and the web app call.

    silver.creators (snapshots up to dt)   -> daily features, 30-day future growth where known
    silver.kol_engagement (30 days) + gold.oneid_map (dt)  -> engagers (creator_id, oneid) [scratch only]
        -> gold.creator_features   one row per creator: followers, growth, engagement, price, cost per
                                   engagement, engaged OneIDs (count)
        -> gold.creator_audience   per creator, tag and value: counts, shares, TGI against gold.profile (dt)
    weekly snapshots with a known 30-day future -> time-based holdout (model vs "current followers" and
        "last 30 days growth", precision@k) -> refit -> score the creators of dt (mapInPandas)
        -> gold.creator_potential  predicted 30-day growth and rank
    silver.creator_content (cumulative statistics per content and day) -> early shape of each content
        -> time-based holdout (model vs extrapolation of the first 3 days) -> refit -> score live contents
        -> gold.creator_content    predicted 14-day engagement of live contents and rank (what to boost)
    -> gold.creator_models         both holdout evaluations, or why a model was not trained

    match(audience): saved audience members (consent-filtered) x engagers x customers (gold.profile)
        -> per creator: engaged, in target, new (not customers), TGI, cost per target person -> ranking with
           reasons; every count of people shown follows the minimum group size k
    seed(creators): an engagement audience of the chosen creators (jobs.audiences.create) and its pack

The engagers are people: they stay in the run's scratch and in the query of a match; only counts are
written. A deployment without creator statistics still gets the audience tables (engagement only); one
without engagement still gets features and the potential model; the content signal needs creator_content.
Run as ``cdp creators build --dt D``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from audiences.insight import public_count, public_counts
from audiences.sources import identifier_columns
from cdp.lake import Lake, parse_dt
from cdp.run import RunContext
from cdp.settings import Settings
from creators import (
    CONTENT_FEATURES,
    MODEL_FEATURES,
    PROFILE_TAGS,
    ContentSignalError,
    PotentialError,
    build_audience_sizes,
    build_audience_tags,
    build_content_rows,
    build_content_scores,
    build_engagers,
    build_match_counts,
    build_scores,
    evaluate,
    evaluate_content,
    extrapolation_ratio,
    fit_content_model,
    fit_model,
    latest_snapshots,
    match_reasons,
    rank_creators,
    training_rows,
    with_daily_features,
    with_future_growth,
)
from schemas import load_sources

log = logging.getLogger(__name__)

STATS, ENGAGEMENT, MAP, PROFILE = "silver.creators", "silver.kol_engagement", "gold.oneid_map", "gold.profile"
FEATURES, AUDIENCE = "gold.creator_features", "gold.creator_audience"
POTENTIAL, MODELS = "gold.creator_potential", "gold.creator_models"
CONTENT_STATS, CONTENT = "silver.creator_content", "gold.creator_content"
ENGAGEMENT_SOURCE = "kol_engagement"
WINDOW_DAYS = 30
CUSTOMER_TAG = "lifetime_order_count"
"""A profile tag counting a person's orders: above zero is a customer (match's "new people")."""
STATS_COLUMNS = (
    "creator_id", "snapshot_date", "_dt", "creator_name", "platform", "category", "followers", "posts",
    "views", "likes", "comments", "shares", "price_per_post",
)  # fmt: skip
"""The columns of silver.creators the daily features read (``_dt`` picks the latest of a day sent twice)."""
FEATURE_COLUMNS = (
    "creator_id", "creator_name", "platform", "category", "snapshot_date", "followers", "growth_7d",
    "growth_30d", "engagement_rate_7d", "engagement_rate_30d", "share_rate_7d", "views_per_follower_7d",
    "posts_30d", "engagements_per_post_30d", "price_per_post", "cost_per_engagement",
)  # fmt: skip


class CreatorsError(ValueError):
    """A creator operation cannot run as asked; the message says what is missing and what to do.

    ``status`` is the HTTP status the web app answers with: 409 (the lake lacks data), 404 (no such creator)
    or 422 (the request is wrong)."""

    status = 409

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class BuildReport:
    """What one ``build`` wrote."""

    dt: str
    creators: int = 0
    engaged_creators: int = 0
    audience_rows: int = 0
    potential: dict[str, Any] = field(default_factory=dict)
    content: dict[str, Any] = field(default_factory=dict)
    model_rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    """The date's rows of gold.creator_models, written together at the end of the build."""
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)

    def summary(self) -> list[str]:
        """Human-readable lines for the CLI."""
        lines = [
            f"creators {self.dt}: {self.creators:,} creators with features, {self.engaged_creators:,} "
            f"with an engaged audience ({self.audience_rows:,} tag rows), {self.seconds:.1f} s"
        ]
        lines += [f"  missing: {m}" for m in self.missing]
        p = self.potential
        if p.get("status") == "published":
            pr = p["precision"]
            lines.append(
                f"  potential model: precision@{p['k']} on the holdout of {p['holdout_dt']} = "
                f"{pr['model']:.2f} (current followers {pr['current_followers']:.2f}, "
                f"last 30 days growth {pr['growth_last_30d']:.2f})"
            )
        elif p:
            lines.append(f"  potential model not trained: {p.get('reason')}")
        c = self.content
        if c.get("status") == "published":
            pr, ape = c["precision"], c["median_ape"]
            lines.append(
                f"  content signal: {c['live']:,} live contents scored; holdout precision@{c['k']} = "
                f"{pr['model']:.2f} (extrapolation {pr['extrapolation']:.2f}), median error "
                f"{ape['model']:.0%} (extrapolation {ape['extrapolation']:.0%})"
            )
        elif c:
            lines.append(f"  content signal not trained: {c.get('reason')}")
        return lines


# ---- build ---------------------------------------------------------------------------------------------


def build(spark: SparkSession, settings: Settings, dt: str | _dt.date) -> BuildReport:
    """Build the creator tables of ``dt`` (see the module doc); reruns replace the date's rows."""
    ctx = RunContext.open(spark, settings, dt, stage="creators")
    report = BuildReport(ctx.dt.isoformat())
    with ctx.scratch_space():
        daily = _daily(ctx, report)
        engagers = _engagers(ctx, report)
        ctx.step("inputs")
        if daily is None and engagers is None:
            report.seconds = round(ctx.elapsed(), 2)
            return report
        _write_features(ctx, report, daily, engagers)
        ctx.step("features")
        if engagers is not None:
            _write_audience(ctx, report, engagers)
            ctx.step("audience")
        if daily is not None:
            _write_potential(ctx, report, daily)
            ctx.step("potential")
        if ctx.lake.exists(CONTENT_STATS):
            _write_content(ctx, report)
            ctx.step("content")
        _write_models(ctx, report)
    report.steps, report.seconds = dict(ctx.steps), round(ctx.elapsed(), 2)
    return report


def _daily(ctx: RunContext, report: BuildReport) -> DataFrame | None:
    """Daily features of every creator up to dt (checkpointed), or None without creator statistics."""
    if not ctx.lake.exists(STATS):
        report.missing.append(f"{STATS}: no creator statistics ingested (source creator_stats)")
        return None
    stats = ctx.read_up_to(STATS).where(F.col("snapshot_date") <= F.lit(ctx.dt))
    # only what the features and the tables read: the ingest columns would ride through every sort
    stats = stats.select(*[c for c in stats.columns if c in STATS_COLUMNS])
    # the features read the snapshots twice (the calendar of their days, then the rows)
    snapshots = ctx.checkpoint(latest_snapshots(stats), "snapshots")
    daily = snapshots.transform(with_daily_features()).transform(with_future_growth())
    return ctx.checkpoint(daily, "daily")


def _engagers(ctx: RunContext, report: BuildReport) -> DataFrame | None:
    """``(creator_id, oneid, engagements)`` of the 30 days up to dt (checkpointed), or None."""
    contract = load_sources(ctx.settings.contract_paths).get(ENGAGEMENT_SOURCE)
    if contract is None or not ctx.lake.exists(ENGAGEMENT) or not ctx.lake.exists(MAP):
        report.missing.append(f"{ENGAGEMENT} or {MAP}: no engaged audiences for the date")
        return None
    day = ctx.latest_dt(MAP)
    if day is None:
        report.missing.append(f"{MAP}: no OneID map on or before {ctx.dt}; run identity first")
        return None
    oneid_map = ctx.read_dt(MAP, day).select("id_type", "id_value", "oneid")
    engagement = ctx.read_up_to(ENGAGEMENT)
    engagers = engagement.transform(
        build_engagers(identifier_columns(contract), oneid_map, ctx.dt, within_days=WINDOW_DAYS)
    )
    return ctx.checkpoint(engagers, "engagers")


def _shaped(ctx: RunContext, table: str, df: DataFrame) -> DataFrame:
    """``df`` with exactly the contract's columns: the ones it lacks as NULL, the others left out."""
    names = [c.name for c in ctx.lake.contracts[table].columns]
    return df.select(*[F.col(n) if n in df.columns else F.lit(None).alias(n) for n in names])


def _write_features(
    ctx: RunContext, report: BuildReport, daily: DataFrame | None, engagers: DataFrame | None
) -> None:
    built = F.lit(_dt.datetime.now(_dt.UTC).replace(tzinfo=None)).cast("timestamp")
    current = None
    if daily is not None:
        latest = daily.groupBy("creator_id").agg(F.max("day").alias("day"))
        current = daily.join(latest, ["creator_id", "day"]).select(*FEATURE_COLUMNS)
    if engagers is not None:
        sizes = build_audience_sizes(engagers)
        current = sizes if current is None else current.join(sizes, "creator_id", "full")
    out = current.withColumn("built_at", built).withColumn("dt", F.lit(ctx.dt))
    ctx.lake.replace_dt(FEATURES, _shaped(ctx, FEATURES, out), ctx.dt)
    row = ctx.read_dt(FEATURES).agg(F.count("*").alias("n"), F.count("engaged_oneids").alias("e")).first()
    report.creators, report.engaged_creators = int(row["n"]), int(row["e"])


def _write_audience(ctx: RunContext, report: BuildReport, engagers: DataFrame) -> None:
    day = ctx.latest_dt(PROFILE)
    if day is None:
        report.missing.append(f"{PROFILE}: no profile on or before {ctx.dt}; run tags first")
        return
    profile = ctx.read_dt(PROFILE, day)
    tags = [t for t in PROFILE_TAGS if t in profile.columns]
    rows = profile.transform(build_audience_tags(engagers, tags)).withColumn("dt", F.lit(ctx.dt))
    rows = _shaped(ctx, AUDIENCE, rows)
    ctx.lake.replace_dt(AUDIENCE, rows, ctx.dt)
    report.audience_rows = ctx.read_dt(AUDIENCE).count()


def _write_potential(ctx: RunContext, report: BuildReport, daily: DataFrame) -> None:
    day = (ctx.dt - _dt.date(1970, 1, 1)).days
    columns = ["creator_id", "day", "followers", "growth_30d", "future_growth", *MODEL_FEATURES]
    # Sorted: the engine returns rows in any order, and the model's bagging must see the same data each run.
    rows = training_rows(daily, day).select(*dict.fromkeys(columns)).toPandas()
    rows = rows.sort_values(["day", "creator_id"], ignore_index=True)
    built = _dt.datetime.now(_dt.UTC).replace(tzinfo=None)
    try:
        ev = evaluate(rows, day)
    except PotentialError as exc:
        report.potential = {"status": "not_trained", "reason": str(exc)}
        _add_model_row(ctx, report, "potential", report.potential, built)
        return
    model = fit_model(rows[rows["day"] <= day - 30])
    latest = daily.groupBy("creator_id").agg(F.max("day").alias("day"))
    current = daily.join(latest, ["creator_id", "day"]).where(F.col("day") > F.lit(day - 7))
    keep = ["creator_id", "creator_name", "platform", "category", "followers", "engagement_rate_7d",
            "price_per_post", *MODEL_FEATURES]  # fmt: skip
    frame = current.select(*dict.fromkeys(keep))
    schema = T.StructType([*frame.schema.fields, T.StructField("predicted_growth_30d", T.DoubleType())])
    scored = frame.mapInPandas(build_scores(model), schema)
    ranked = scored.withColumn("rank", F.row_number().over(_rank_window()).cast("int")).withColumn(
        "dt", F.lit(ctx.dt)
    )
    ctx.lake.replace_dt(POTENTIAL, _shaped(ctx, POTENTIAL, ranked), ctx.dt)
    holdout = _dt.date(1970, 1, 1) + _dt.timedelta(days=ev.holdout_day)
    report.potential = {"status": "published", **asdict(ev), "holdout_dt": holdout.isoformat()}
    _add_model_row(ctx, report, "potential", report.potential, built)


def _write_content(ctx: RunContext, report: BuildReport) -> None:
    """The early content signal: holdout against extrapolation, then the live contents scored and ranked."""
    day = (ctx.dt - _dt.date(1970, 1, 1)).days
    snapshots = ctx.read_up_to(CONTENT_STATS)
    rows = ctx.checkpoint(snapshots.transform(build_content_rows(day)), "contents")
    columns = ["content_id", "published_day", "early_engagements", "final_engagements", *CONTENT_FEATURES]
    finished = rows.where(F.col("final_engagements").isNotNull()).select(*columns).toPandas()
    finished = finished.sort_values(["published_day", "content_id"], ignore_index=True)
    built = _dt.datetime.now(_dt.UTC).replace(tzinfo=None)
    try:
        ev = evaluate_content(finished, day)
    except ContentSignalError as exc:
        report.content = {"status": "not_trained", "reason": str(exc)}
        _add_model_row(ctx, report, "content", report.content, built)
        return
    model, ratio = fit_content_model(finished), extrapolation_ratio(finished)
    live = rows.where(F.col("final_engagements").isNull()).drop("final_engagements", "published_day")
    schema = T.StructType(
        [*live.schema.fields, *(T.StructField(n, T.DoubleType()) for n in ("predicted_final_engagements",
                                                                            "extrapolated_final_engagements"))]
    )  # fmt: skip
    scored = live.mapInPandas(build_content_scores(model, ratio), schema)
    order = Window.orderBy(F.col("predicted_final_engagements").desc(), F.col("content_id"))
    ranked = scored.withColumn("rank", F.row_number().over(order)).withColumn("dt", F.lit(ctx.dt))
    ctx.lake.replace_dt(CONTENT, _shaped(ctx, CONTENT, ranked), ctx.dt)
    report.content = {"status": "published", **asdict(ev), "live": ctx.read_dt(CONTENT).count()}
    _add_model_row(ctx, report, "content", report.content, built)


def _rank_window():
    return Window.orderBy(F.col("predicted_growth_30d").desc(), F.col("creator_id"))


def _add_model_row(
    ctx: RunContext, report: BuildReport, model: str, info: dict[str, Any], built: _dt.datetime
) -> None:
    """Record one model's row; every row of the date is written at once, at the end of the build."""
    precision = info.get("precision") or {}
    baselines = [v for k, v in precision.items() if k != "model"]
    row = {
        "model": model,
        "status": info["status"],
        "reason": info.get("reason"),
        "metric": "precision_at_k" if precision else None,
        "metric_value": precision.get("model"),
        "baseline_value": max(baselines) if baselines else None,
        "detail_json": json.dumps(info, default=str),
        "built_at": built,
        "dt": ctx.dt,
    }
    report.model_rows.append(row)


def _write_models(ctx: RunContext, report: BuildReport) -> None:
    if report.model_rows:
        frame = ctx.spark.createDataFrame(
            pd.DataFrame(report.model_rows), schema=ctx.lake.contracts[MODELS].ddl
        )
        ctx.lake.replace_dt(MODELS, frame, ctx.dt)


# ---- reads for the CLI and the web app --------------------------------------------------------------------


def _latest(lake: Lake, table: str, dt: _dt.date | None) -> _dt.date:
    if not lake.exists(table):
        raise CreatorsError(f"{table} does not exist yet: run `cdp creators build --dt YYYY-MM-DD` first")
    day = lake.latest_dt(table, on_or_before=dt) if dt else lake.latest_dt(table)
    if day is None:
        raise CreatorsError(
            f"{table} has no date on or before {dt}: run `cdp creators build --dt {dt}` first"
        )
    return day


def _records(df: DataFrame) -> list[dict[str, Any]]:
    return [r.asDict() for r in df.collect()]


@dataclass
class PotentialList:
    """The top high-potential creators of a date and the model's holdout evaluation."""

    dt: str
    creators: list[dict[str, Any]]
    evaluation: dict[str, Any]


def potential(
    spark: SparkSession, settings: Settings, *, top: int = 20, dt: str | _dt.date | None = None, category=()
) -> PotentialList:
    """The ``top`` creators by predicted 30-day follower growth at ``dt`` (the latest when omitted).

    Raises:
        CreatorsError: no potential scores yet.
    """
    lake = Lake.from_settings(spark, settings)
    day = _latest(lake, POTENTIAL, parse_dt(dt) if dt else None)
    rows = lake.read_dt(POTENTIAL, day)
    if category:
        rows = rows.where(F.lower(F.col("category")).isin(*[c.lower() for c in category]))
    out = _records(rows.orderBy("rank").limit(top))
    evaluation: dict[str, Any] = {}
    if lake.exists(MODELS):
        found = lake.read_dt(MODELS, day).where(F.col("model") == "potential").collect()
        evaluation = json.loads(found[0]["detail_json"]) if found else {}
    return PotentialList(day.isoformat(), out, evaluation)


@dataclass
class ContentList:
    """The live contents most worth boosting at a date and the signal's holdout evaluation."""

    dt: str
    contents: list[dict[str, Any]]
    evaluation: dict[str, Any]


def content(
    spark: SparkSession,
    settings: Settings,
    *,
    top: int = 20,
    creator_ids=(),
    dt: str | _dt.date | None = None,
) -> ContentList:
    """The ``top`` live contents by predicted final engagement at ``dt`` (the latest when omitted).

    Raises:
        CreatorsError: no content signal yet.
    """
    lake = Lake.from_settings(spark, settings)
    day = _latest(lake, CONTENT, parse_dt(dt) if dt else None)
    rows = lake.read_dt(CONTENT, day)
    if creator_ids:
        rows = rows.where(F.col("creator_id").isin(*creator_ids))
    out = _records(rows.orderBy("rank").limit(top))
    evaluation: dict[str, Any] = {}
    if lake.exists(MODELS):
        found = lake.read_dt(MODELS, day).where(F.col("model") == "content").collect()
        evaluation = json.loads(found[0]["detail_json"]) if found else {}
    return ContentList(day.isoformat(), out, evaluation)


@dataclass
class MatchResult:
    """A ranked creator list for a target audience, as the asking role may see it."""

    audience_id: str
    version: int
    dt: str
    k: int
    population: int | str
    target_in_population: int | str
    creators: list[dict[str, Any]]
    hidden: int
    """Creators left out of the ranking because their counts are below k."""


def engagers_at(spark: SparkSession, settings: Settings, dt: _dt.date) -> DataFrame:
    """``(creator_id, oneid, engagements)`` of the 30 days up to ``dt`` (for a match; never written)."""
    lake = Lake.from_settings(spark, settings)
    contract = load_sources(settings.contract_paths).get(ENGAGEMENT_SOURCE)
    if contract is None or not lake.exists(ENGAGEMENT) or not lake.exists(MAP):
        raise CreatorsError(
            f"no creator engagement yet ({ENGAGEMENT}, {MAP}): ingest kol_engagement and run identity"
        )
    day = lake.latest_dt(MAP, on_or_before=dt)
    if day is None:
        raise CreatorsError(f"{MAP} has no date on or before {dt}: run identity for that date")
    oneid_map = lake.read_dt(MAP, day).select("id_type", "id_value", "oneid")
    engagement = lake.read(ENGAGEMENT).where(F.col("_dt") <= F.lit(dt))
    return engagement.transform(
        build_engagers(identifier_columns(contract), oneid_map, dt, within_days=WINDOW_DAYS)
    )


def match_target(
    spark: SparkSession,
    settings: Settings,
    target: DataFrame,
    *,
    dt: _dt.date | None = None,
    categories=(),
    budget: float | None = None,
) -> tuple[_dt.date, list, dict[str, int]]:
    """Rank every creator against a target given as OneIDs (raw numbers, for the job and the tests).

    Returns:
        The date, the :class:`creators.CreatorMatch` list (best first) and the population totals.
    """
    lake = Lake.from_settings(spark, settings)
    day = _latest(lake, PROFILE, dt)
    profile = lake.read_dt(PROFILE, day)
    customers = (
        profile.where(F.coalesce(F.col(CUSTOMER_TAG), F.lit(0)) > 0)
        if CUSTOMER_TAG in profile.columns
        else profile.limit(0)
    )
    counts = _records(build_match_counts(engagers_at(spark, settings, day), target, customers, profile))
    info: dict[str, dict[str, Any]] = {}
    if lake.exists(FEATURES) and (fday := lake.latest_dt(FEATURES, on_or_before=day)) is not None:
        info = {r["creator_id"]: r for r in _records(lake.read_dt(FEATURES, fday))}
    totals = {"population": 0, "target_population": 0}
    if counts:
        totals = {k: int(counts[0][k]) for k in totals}
    return day, rank_creators(counts, info, categories=categories, budget=budget), totals


def match(
    spark: SparkSession,
    settings: Settings,
    audience: str,
    *,
    categories=(),
    budget: float | None = None,
    top: int = 20,
) -> MatchResult:
    """Rank creators for a saved audience (id, name or ``id@version``), as a marketer may see them.

    Every count of people is shown from k (``settings.min_group_size``) up; a creator whose engaged people
    in the target, or the rest of its engaged audience, fall below k cannot be ranked without giving those
    counts away and is left out (``hidden`` says how many).

    Raises:
        UnknownAudienceError: no such audience.
        CreatorsError: no engagement, OneID map or profile yet.
    """
    from jobs.audiences import members, show

    name, _, ver = audience.partition("@")
    v = show(spark, settings, name, int(ver) if ver else None)
    target = members(spark, settings, v.audience_id, v.version).select("oneid")
    day, ranked, totals = match_target(spark, settings, target, categories=categories, budget=budget)
    shown, hidden = public_matches(ranked, settings.min_group_size)
    return MatchResult(
        v.audience_id,
        v.version,
        day.isoformat(),
        settings.min_group_size,
        public_count(totals["population"], settings.min_group_size),
        public_count(totals["target_population"], settings.min_group_size),
        shown[:top],
        hidden,
    )


def public_matches(ranked: list, k: int) -> tuple[list[dict[str, Any]], int]:
    """The ranked creators a role may see, re-ranked from 1, and how many were left out.

    A creator is left out when its engaged people in the target, or the rest of its engaged audience, are
    between 1 and ``k - 1`` (0 in the target is below k too): its TGI and cost per target person would give
    those counts away. The counts shown, in the row and in its reasons, are :func:`public_count` values.
    """
    shown, hidden = [], 0
    for m in ranked:
        rest = m.engaged - m.in_target
        if m.in_target < k or 0 < rest < k:
            hidden += 1
            continue
        row = asdict(m)
        for column in ("engaged", "in_target", "new_in_target"):
            row[column] = public_count(row[column], k)
        row["reasons"] = match_reasons(m, lambda n: public_count(n, k))
        row["rank"] = len(shown) + 1
        shown.append(row)
    return shown, hidden


@dataclass
class CreatorProfile:
    """One creator for the web page: features, the TGI of its audience per tag value, follower trend."""

    creator_id: str
    dt: str
    features: dict[str, Any]
    audience: list[dict[str, Any]]
    trend: list[dict[str, Any]]


def creator(spark: SparkSession, settings: Settings, creator_id: str, *, days: int = 90) -> CreatorProfile:
    """The latest features of a creator, its audience's tag distribution (counts from k up) and followers.

    Raises:
        CreatorsError: no creator features yet, or no such creator.
    """
    lake = Lake.from_settings(spark, settings)
    day = _latest(lake, FEATURES, None)
    found = _records(lake.read_dt(FEATURES, day).where(F.col("creator_id") == creator_id))
    if not found:
        raise CreatorsError(
            f"no creator {creator_id!r} on {day}: see `cdp creators potential` for creator ids", 404
        )
    k = settings.min_group_size
    feats = found[0]
    feats["engaged_oneids"] = (
        public_count(feats.get("engaged_oneids"), k) if feats.get("engaged_oneids") is not None else None
    )
    audience: list[dict[str, Any]] = []
    if lake.exists(AUDIENCE):
        rows = _records(lake.read_dt(AUDIENCE, day).where(F.col("creator_id") == creator_id))
        for tag in sorted({r["tag"] for r in rows}):
            cells = sorted((r for r in rows if r["tag"] == tag), key=lambda r: -r["population_count"])
            counts = [r["audience_count"] for r in cells]
            # every engager in the profile has one value per tag: the cells add up to the audience shown
            shown = public_counts(counts, sum(counts), k)
            for r, c in zip(cells, shown, strict=True):
                visible = isinstance(c, int) and not isinstance(c, bool)
                audience.append({
                    "tag": tag, "value": r["value"], "audience_count": c,
                    "audience_share": r["audience_share"] if visible else None,
                    "population_share": r["population_share"] if r["population_count"] >= k else None,
                    "tgi": r["tgi"] if visible and r["population_count"] >= k else None,
                })  # fmt: skip
    trend = []
    if lake.exists(STATS):
        since = day - _dt.timedelta(days=days)
        series = (
            lake.read(STATS)
            .where((F.col("creator_id") == creator_id) & (F.col("snapshot_date") > F.lit(since)))
            .where(F.col("snapshot_date") <= F.lit(day))
            .groupBy("snapshot_date")
            .agg(F.max("followers").alias("followers"))
            .orderBy("snapshot_date")
        )
        trend = [
            {"date": r["snapshot_date"].isoformat(), "followers": int(r["followers"])}
            for r in series.collect()
        ]
    feats = {k2: (v.isoformat() if isinstance(v, _dt.date | _dt.datetime) else v) for k2, v in feats.items()}
    return CreatorProfile(creator_id, day.isoformat(), feats, audience, trend)


def seed(
    spark: SparkSession,
    settings: Settings,
    creator_ids: list[str],
    *,
    name: str,
    within_days: int = WINDOW_DAYS,
    destination: str | None = None,
    id_types: list[str] | None = None,
    created_by: str | None = None,
):
    """The seeding audience (种草人群) of chosen creators as a saved engagement audience, and its pack.

    Returns:
        ``(version, manifest or None)``.

    Raises:
        AudienceError: the audience or the pack cannot be made (too small, unknown destination).
    """
    from jobs.audiences import create, export

    if not creator_ids:
        raise CreatorsError("name at least one creator id to seed from", 422)
    definition = {
        "name": name,
        "description": f"engaged with {', '.join(creator_ids)} in the last {within_days} days (种草人群)",
        "engaged": {"creators": list(creator_ids), "within_days": within_days},
    }
    version = create(spark, settings, definition, created_by=created_by)
    manifest = None
    if destination:
        manifest = export(
            spark, settings, version.audience_id, destination, version=version.version, id_types=id_types,
            created_by=created_by,
        )  # fmt: skip
    return version, manifest


def main(argv: list[str] | None = None) -> None:
    """``python -m jobs.creators --dt YYYY-MM-DD``: build the creator tables of a date."""
    import argparse

    from cdp.engine import get_spark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dt", required=True)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    for line in build(get_spark(settings), settings, parse_dt(args.dt)).summary():
        print(line)


if __name__ == "__main__":
    from cdp.run import exit_with

    exit_with(main)
