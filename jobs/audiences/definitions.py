"""From a definition to people: estimate the size of a rule, and create an audience version from a rule, an
engagement or an uploaded seed list.

    gold.profile (dt) + silver.* behaviour sets + gold.oneid_map -> rule / engagement members
    seed list (a file or values in memory) -> normalise, keyed hash or platform hash -> gold.oneid_map
        -> seed members (refused below settings.min_group_size people)
        -> consent filter (gold.consent_optouts) -> size (estimate) | new version (registry.write_version)

An estimate's counts are in public form (:func:`audiences.insight.public_count`: ``"< k"`` below
``settings.min_group_size``). A seed list is matched in memory and never copied: the version records the
list's file name (no folder) and ID type, and counts per match status.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from audiences.errors import SeedListError
from audiences.insight import PublicCount, public_count, public_share
from audiences.rules import (
    Rule,
    behaviour_column,
    build_rule_column,
    load_rule_text,
    parse_rule,
    validate_rule,
)
from audiences.seeds import build_seed_matches, validate_seed_id_type
from audiences.sources import build_behaviour_set, silver_table
from audiences.spec import AudienceSpec, SeedList, load_audience, parse_audience
from jobs.audiences.context import MAP, AudienceContext, ProfileSnapshot, as_day
from jobs.audiences.registry import AudienceVersion, write_version

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from cdp.settings import Settings

SEED_HEADERS = ("phone", "email", "imei", "idfa", "oaid", "id", "value", "android_id")
"""First lines of a seed list taken as a header, not an identifier."""


@dataclass
class Estimate:
    """The size of a rule audience at ``dt`` (consented people only); ``size`` and ``opted_out`` are
    ``"< k"`` below the minimum group size, and ``share`` is then None."""

    size: PublicCount
    population: int
    opted_out: PublicCount
    dt: str
    seconds: float

    @property
    def share(self) -> float | None:
        return public_share(self.size, self.population)


# ---- rules -> members -------------------------------------------------------------------------------------


def _parse_rule(rule: Rule | str | dict | list) -> Rule:
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, str):
        doc = load_rule_text(rule)
        if isinstance(doc, dict) and "rule" in doc:
            doc = doc["rule"]
        elif isinstance(doc, dict) and "engaged" in doc and "name" in doc:
            doc = {"engaged": doc["engaged"]}
        return parse_rule(doc)
    return parse_rule(rule)


def rule_members(ctx: AudienceContext, rule: Rule, dt: _dt.date | None) -> tuple[DataFrame, ProfileSnapshot]:
    """The OneIDs a rule selects (before consent) and the profile they were selected from.

    Args:
        ctx: the operation's context.
        rule: a parsed rule.
        dt: the profile date; the latest when None.

    Returns:
        ``(members (oneid), profile snapshot with one boolean column per behaviour of the rule)``.

    Raises:
        RuleError, UnknownTagError: the rule does not fit the profile or the sources.
        MissingDataError: no profile on or before ``dt``.
    """
    snapshot = ctx.profile(dt)
    profile = snapshot.frame
    validate_rule(rule, snapshot.columns, ctx.sources)
    behaviours = rule.behaviours()
    if behaviours:
        oneid_map = ctx.oneid_map(snapshot.dt)
        for i, b in enumerate(behaviours):
            contract = ctx.sources[b.source]
            table = silver_table(contract)
            if ctx.lake.exists(table):
                found = ctx.lake.read_silver(contract).transform(
                    build_behaviour_set(contract, b, oneid_map, snapshot.dt)
                )
                flags = found.select("oneid", F.lit(True).alias(behaviour_column(i)))
                profile = profile.join(flags, "oneid", "left")
            else:
                profile = profile.withColumn(behaviour_column(i), F.lit(False))
    members = profile.where(build_rule_column(rule, snapshot.columns)).select("oneid")
    return members, ProfileSnapshot(profile, snapshot.columns, snapshot.dt)


def estimate(
    spark: SparkSession, settings: Settings, rule: Rule | str | dict | list, dt: str | _dt.date | None = None
) -> Estimate:
    """The number of consented people a rule selects, without writing anything.

    Sizes below ``settings.min_group_size`` (k) are given as ``"< k"``: a rule that picks out one device id
    says neither 1 nor 0. Two estimates of large, nearly equal rules still differ by their exact difference
    (a rule and the same rule minus one person); only packs and insight refuse small groups outright.

    Args:
        spark: the session.
        settings: the deployment's settings.
        rule: a parsed rule, or a rule as JSON/YAML text, a file path, or loaded JSON.
        dt: the profile date; the latest when omitted.

    Returns:
        The size, the population and the people the rule selects who opted out (public counts).

    Raises:
        RuleError: the rule is malformed (UnknownTagError for a tag not in the profile).
        MissingDataError: no profile for the date.
    """
    started = time.perf_counter()
    ctx = AudienceContext.open(spark, settings)
    members_df, profile = rule_members(ctx, _parse_rule(rule), as_day(dt))
    optouts = ctx.optouts(profile.dt)
    row = (
        profile.frame.select("oneid")
        .join(members_df.withColumn("_m", F.lit(1)), "oneid", "left")
        .join(optouts.withColumn("_o", F.lit(1)), "oneid", "left")
        .agg(
            F.count("*").alias("population"),
            F.sum(F.when(F.col("_m").isNotNull() & F.col("_o").isNull(), 1).otherwise(0)).alias("size"),
            F.sum(F.when(F.col("_m").isNotNull() & F.col("_o").isNotNull(), 1).otherwise(0)).alias(
                "opted_out"
            ),
        )
        .collect()[0]
    )
    k = settings.min_group_size
    return Estimate(
        size=public_count(row["size"], k),
        population=int(row["population"] or 0),
        opted_out=public_count(row["opted_out"], k),
        dt=profile.dt.isoformat(),
        seconds=round(time.perf_counter() - started, 3),
    )


# ---- seed lists -> members --------------------------------------------------------------------------------


def seed_values(lines: Sequence[str]) -> list[str]:
    """The identifiers of a seed list's lines: the first column of each non-blank line, a header dropped.

    Raises:
        SeedListError: no identifier is left.
    """
    values = [v for v in (line.split(",")[0].strip().strip('"') for line in lines) if v]
    if values and values[0].lower() in SEED_HEADERS:
        values = values[1:]
    if not values:
        raise SeedListError("the seed list holds no identifiers: one per line (first column of a CSV)")
    return values


def _read_seed_file(path: str) -> list[str]:
    """The identifiers of a seed list file, read into memory.

    Raises:
        SeedListError: the file does not exist or holds no identifier.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise SeedListError(f"seed list {path} does not exist")
    return seed_values(file.read_text(encoding="utf-8-sig").splitlines())


def seed_members(
    ctx: AudienceContext, seed: SeedList, dt: _dt.date | None, values: Sequence[str] | None = None
) -> tuple[DataFrame, _dt.date, dict[str, Any]]:
    """The OneIDs a seed list matches, matched in memory (the list is never written anywhere).

    Args:
        ctx: the operation's context.
        seed: the list's file and ID type.
        dt: the OneID map date; the latest when None.
        values: the list's identifiers when they are already in memory (a web upload); ``seed.path`` is then
            only the list's name.

    Returns:
        ``(members (oneid), OneID map date, details)``; the details name the list (file name only) and
        count values by status (``matched``, ``unmatched``, ``invalid``).

    Raises:
        SeedListError: unknown ID type, unreadable file, or fewer than ``settings.min_group_size`` people
            matched (one message for none and for a few: it never tells whether one identifier is known).
        MissingDataError: no OneID map on or before ``dt``.
    """
    validate_seed_id_type(seed.id_type)
    day = ctx.latest_dt(MAP, dt)
    listed = list(values) if values is not None else _read_seed_file(seed.path)
    frame = ctx.spark.createDataFrame([(v,) for v in listed], "value string")
    matches = frame.transform(
        build_seed_matches(
            seed.id_type, ctx.oneid_map(day), ctx.platform_hashes(), ctx.settings.require_pii_key()
        )
    )
    counts = {
        r["status"]: int(r["n"])
        for r in matches.groupBy("status").agg(F.countDistinct("value").alias("n")).collect()
    }
    matched = matches.where(F.col("oneid").isNotNull()).select("oneid").distinct()
    k = ctx.settings.min_group_size
    if not counts.get("matched") or matched.count() < k:
        raise SeedListError(
            f"the seed list matched fewer than {k:,} people; a seed audience needs at least {k:,} "
            f"(CDP_MIN_GROUP_SIZE) so that no one person can be singled out. Upload a longer list, or check "
            f"that every line is a {seed.id_type}"
        )
    statuses = {status: counts.get(status, 0) for status in ("matched", "unmatched", "invalid")}
    return matched, day, {"seed_list": {"name": Path(seed.path).name, "id_type": seed.id_type, **statuses}}


# ---- create -----------------------------------------------------------------------------------------------


def _spec_of(definition: AudienceSpec | str | dict, name: str | None, description: str) -> AudienceSpec:
    if isinstance(definition, AudienceSpec):
        return definition
    if isinstance(definition, str):
        return load_audience(definition, name=name, description=description)
    return parse_audience(definition, name=name, description=description)


def create(
    spark: SparkSession,
    settings: Settings,
    definition: AudienceSpec | str | dict,
    *,
    name: str | None = None,
    description: str = "",
    dt: str | _dt.date | None = None,
    created_by: str | None = None,
    new_version: bool | None = None,
    seed_values: Sequence[str] | None = None,
) -> AudienceVersion:
    """Materialise an audience as a new version in ``gold.audience_members`` and ``gold.audiences``.

    Args:
        spark: the session.
        settings: the deployment's settings.
        definition: an :class:`AudienceSpec`, or a definition/rule as a file path, JSON/YAML text or a dict.
        name: the audience name when the definition is a bare rule.
        description: a description when the definition has none.
        dt: the profile date; the latest when omitted.
        created_by: the author recorded (the OS user by default).
        new_version: True adds a version to the audience of that name, False refuses a name that exists
            (``AudienceExistsError``), None does either (``registry.write_version``).
        seed_values: a seed list's identifiers already in memory (a web upload); the definition's seed
            ``path`` is then only the list's name.

    Returns:
        The new version. A seed definition is stored with the list's file name, never its folder.

    Raises:
        RuleError, UnknownTagError: the definition is malformed.
        SeedListError: the seed list cannot be read or matches fewer than ``settings.min_group_size``
            people.
        MissingDataError: no profile or OneID map for the date.
    """
    started = time.perf_counter()
    spec = _spec_of(definition, name, description)
    ctx = AudienceContext.open(spark, settings)
    details: dict[str, Any] = {}
    if spec.kind == "seed":
        assert spec.seed is not None
        matched, day, details = seed_members(ctx, spec.seed, as_day(dt), seed_values)
        spec = dataclasses.replace(
            spec, seed=dataclasses.replace(spec.seed, path=details["seed_list"]["name"])
        )
    else:
        assert spec.rule is not None
        matched, profile = rule_members(ctx, spec.rule, as_day(dt))
        day = profile.dt
    return write_version(
        ctx,
        spec,
        matched,
        ctx.optouts(day),
        day,
        details=details,
        created_by=created_by,
        started=started,
        new_version=new_version,
    )
