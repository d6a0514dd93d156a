"""Audiences for one lake: estimate, create (materialise a version), list/show, insight, overlap,
lookalike, export packs (人群包) and the daily refresh: the entry points the CLI, the pipeline stage and the
web app call.

    gold.profile (dt) + silver.* behaviour + gold.oneid_map
        -> rule / engagement / seed-list audience -> consent filter (gold.consent_optouts)
        -> gold.audience_members (new version) + gold.audiences (registry row, written last)
    gold.audience_members -> lookalike (train on the driver, score with mapInPandas) -> new audience
    gold.audience_members -> consent filter -> identifiers -> destination hashing -> packs/<id>/v<n>/<dest>/
                                                                                -> gold.audience_exports

Every function takes ``(spark, settings, ...)``, returns a dataclass and raises an
:class:`audiences.AudienceError` subclass with a message for the user. Writes to one table happen under the
lake's lock for that table (Sail does not detect conflicting Delta commits).

Run as ``cdp audience ...`` or ``python -m jobs.audiences refresh --dt YYYY-MM-DD`` (also under
spark-submit).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import getpass
import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from audiences.consent import build_optouts, without_optouts
from audiences.errors import (
    AudienceError,
    MissingDataError,
    PackTooSmallError,
    RuleError,
    SeedListError,
    SeedTooSmallError,
    UnknownAudienceError,
)
from audiences.export import build_member_identifiers, build_pack_lines, get_destination, validate_id_types
from audiences.insight import build_insight, insight_columns, numeric_edges, overlap_counts
from audiences.lookalike import (
    Evaluation,
    build_scores,
    combine,
    evaluate,
    feature_columns,
    fit_feature_spec,
    fold_of,
    make_encoder,
    train_crossfit,
)
from audiences.packs import Manifest, write_pack
from audiences.rules import (
    Rule,
    behaviour_column,
    build_rule_column,
    load_rule_text,
    parse_rule,
    validate_rule,
)
from audiences.seeds import build_seed_matches, validate_seed_id_type
from audiences.sources import build_behaviour_set, build_platform_hashes, silver_table
from audiences.spec import AudienceSpec, ExportSchedule, audience_id_of, load_audience, parse_audience
from cdp.lake import Lake, parse_dt
from cdp.settings import Settings
from schemas import load_sources

PROFILE, MAP = "gold.profile", "gold.oneid_map"
AUDIENCES, MEMBERS, EXPORTS, OPTOUTS = (
    "gold.audiences",
    "gold.audience_members",
    "gold.audience_exports",
    "gold.consent_optouts",
)
CONSENT_SOURCE = "consent"
MIN_PACK_SIZE = 1_000
"""Default k-anonymity minimum of a pack (people); ``CDP_MIN_PACK_SIZE`` overrides it."""
MIN_SEED_SIZE = 50
"""Default smallest lookalike seed (consented, profiled members); ``CDP_MIN_SEED_SIZE`` overrides it."""
SAMPLE_ROWS = 200_000
"""Population rows brought to the driver for lookalike training and evaluation."""
SEED_ROWS = 50_000
"""Seed rows brought to the driver at most."""


def min_pack_size() -> int:
    """The configured minimum pack size (``CDP_MIN_PACK_SIZE``, default 1,000)."""
    return int(os.environ.get("CDP_MIN_PACK_SIZE", MIN_PACK_SIZE))


def min_seed_size() -> int:
    """The configured minimum lookalike seed (``CDP_MIN_SEED_SIZE``, default 50)."""
    return int(os.environ.get("CDP_MIN_SEED_SIZE", MIN_SEED_SIZE))


# ---- results -----------------------------------------------------------------------------------------------


@dataclass
class Estimate:
    """The size of a rule audience at ``dt`` (consented people only)."""

    size: int
    population: int
    opted_out: int
    dt: str
    seconds: float

    @property
    def share(self) -> float:
        return self.size / self.population if self.population else 0.0


@dataclass
class AudienceVersion:
    """One materialised version of an audience (a row of ``gold.audiences``)."""

    audience_id: str
    version: int
    name: str
    kind: str
    description: str
    definition: dict[str, Any]
    dt: str
    size: int
    opted_out: int
    id_type_counts: dict[str, int]
    details: dict[str, Any]
    created_at: str
    created_by: str
    seconds: float = 0.0


@dataclass
class InsightRow:
    tag: str
    value: str
    audience_count: int
    audience_share: float
    population_count: int
    population_share: float
    tgi: float


@dataclass
class Insight:
    """Who is in an audience: size, coverage per ID type, tag values with their TGI (defining traits
    first)."""

    audience_id: str
    version: int
    dt: str
    size: int
    population: int
    coverage: dict[str, int]
    rows: list[InsightRow]
    seconds: float = 0.0


@dataclass
class Overlap:
    a: str
    b: str
    a_size: int
    b_size: int
    both: int
    either: int

    @property
    def jaccard(self) -> float:
        return self.both / self.either if self.either else 0.0

    @property
    def share_of_a(self) -> float:
        return self.both / self.a_size if self.a_size else 0.0

    @property
    def share_of_b(self) -> float:
        return self.both / self.b_size if self.b_size else 0.0


@dataclass
class LookalikeResult:
    audience: AudienceVersion
    evaluation: Evaluation | None
    seed_size: int
    train_seconds: float
    score_seconds: float


@dataclass
class RefreshReport:
    dt: str
    optouts: int = 0
    refreshed: list[str] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
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


# ---- reading the lake -------------------------------------------------------------------------------------


def _lake(spark: SparkSession, settings: Settings) -> Lake:
    return Lake.from_settings(spark, settings)


def _latest_dt(lake: Lake, table: str, dt: _dt.date | None) -> _dt.date:
    if not lake.exists(table):
        raise MissingDataError(f"{table} does not exist yet; run the pipeline stage that builds it first")
    df = lake.read(table)
    if dt is not None:
        df = df.where(F.col("dt") <= F.lit(dt))
    found = df.agg(F.max("dt")).collect()[0][0]
    if found is None:
        raise MissingDataError(f"{table} has no data on or before {dt}; run the pipeline for that date first")
    return found


def _profile(lake: Lake, dt: _dt.date | None) -> tuple[DataFrame, dict[str, str], _dt.date]:
    """The profile snapshot at the latest dt <= ``dt`` (oneid as string) and its column types."""
    day = _latest_dt(lake, PROFILE, dt)
    df = lake.read(PROFILE).where(F.col("dt") == F.lit(day))
    columns = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    df = df.withColumn("oneid", F.col("oneid").cast("string"))
    return df, columns, day


def _oneid_map(lake: Lake, dt: _dt.date | None) -> DataFrame:
    day = _latest_dt(lake, MAP, dt)
    return lake.read(MAP).where(F.col("dt") == F.lit(day)).select("id_type", "id_value", "oneid")


def _sources(settings: Settings):
    return load_sources(settings.contract_paths)


def _optouts(lake: Lake, settings: Settings, dt: _dt.date) -> DataFrame:
    """Opted-out OneIDs at ``dt``: the stored snapshot when the refresh wrote one, else computed now."""
    if lake.exists(OPTOUTS):
        stored = lake.read(OPTOUTS).where(F.col("dt") == F.lit(dt))
        if stored.limit(1).count():
            return stored.select("oneid")
    return _compute_optouts(lake, settings, dt).select("oneid")


def _compute_optouts(lake: Lake, settings: Settings, dt: _dt.date) -> DataFrame:
    spark = lake.spark
    sources = _sources(settings)
    contract = sources.get(CONSENT_SOURCE)
    empty = spark.createDataFrame([], "oneid string, purposes string, since timestamp")
    if contract is None or not lake.exists(silver_table(contract)) or not lake.exists(MAP):
        return empty
    return lake.read(silver_table(contract)).transform(build_optouts(contract, _oneid_map(lake, dt), dt))


def _platform_hashes(lake: Lake, settings: Settings) -> DataFrame | None:
    parts = []
    for contract in _sources(settings).values():
        table = silver_table(contract)
        if any(c.pii == "direct" and c.id_type for c in contract.columns) and lake.exists(table):
            part = lake.read(table).transform(build_platform_hashes(contract))
            if part is not None:
                parts.append(part)
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


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


def _rule_members(
    lake: Lake, settings: Settings, rule: Rule, dt: _dt.date | None
) -> tuple[DataFrame, DataFrame, _dt.date]:
    """(members before consent, profile, profile dt) of a rule."""
    profile, columns, day = _profile(lake, dt)
    sources = _sources(settings)
    validate_rule(rule, columns, sources)
    behaviours = rule.behaviours()
    if behaviours:
        oneid_map = _oneid_map(lake, day)
        for i, b in enumerate(behaviours):
            contract = sources[b.source]
            table = silver_table(contract)
            if lake.exists(table):
                found = lake.read(table).transform(build_behaviour_set(contract, b, oneid_map, day))
                flags = found.select("oneid", F.lit(True).alias(behaviour_column(i)))
                profile = profile.join(flags, "oneid", "left")
            else:
                profile = profile.withColumn(behaviour_column(i), F.lit(False))
    members = profile.where(build_rule_column(rule, columns)).select("oneid")
    return members, profile, day


def estimate(
    spark: SparkSession, settings: Settings, rule: Rule | str | dict | list, dt: str | _dt.date | None = None
) -> Estimate:
    """The number of consented people a rule selects, without writing anything.

    Args:
        rule: a parsed rule, or a rule as JSON/YAML text, a file path, or loaded JSON.
        dt: the profile date; the latest when omitted.

    Raises:
        RuleError: the rule is malformed (UnknownTagError for a tag not in the profile).
        MissingDataError: no profile for the date.
    """
    started = time.perf_counter()
    lake = _lake(spark, settings)
    members, profile, day = _rule_members(lake, settings, _parse_rule(rule), parse_dt(dt) if dt else None)
    optouts = _optouts(lake, settings, day)
    row = (
        profile.select("oneid")
        .join(members.withColumn("_m", F.lit(1)), "oneid", "left")
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
    return Estimate(
        size=int(row["size"] or 0),
        population=int(row["population"] or 0),
        opted_out=int(row["opted_out"] or 0),
        dt=day.isoformat(),
        seconds=round(time.perf_counter() - started, 3),
    )


# ---- registry ---------------------------------------------------------------------------------------------


def _row_to_version(r) -> AudienceVersion:
    return AudienceVersion(
        audience_id=r["audience_id"],
        version=int(r["version"]),
        name=r["name"],
        kind=r["kind"],
        description=r["description"] or "",
        definition=json.loads(r["definition_json"]),
        dt=r["dt"].isoformat(),
        size=int(r["size"]),
        opted_out=int(r["opted_out"] or 0),
        id_type_counts=json.loads(r["id_type_counts_json"] or "{}"),
        details=json.loads(r["details_json"] or "{}"),
        created_at=str(r["created_at"]),
        created_by=r["created_by"] or "",
    )


def list_audiences(
    spark: SparkSession, settings: Settings, *, all_versions: bool = False
) -> list[AudienceVersion]:
    """Audiences in the registry: the latest version of each (or every version), by id."""
    lake = _lake(spark, settings)
    if not lake.exists(AUDIENCES):
        return []
    rows = [_row_to_version(r) for r in lake.read(AUDIENCES).collect()]
    rows.sort(key=lambda v: (v.audience_id, v.version))
    if all_versions:
        return rows
    latest: dict[str, AudienceVersion] = {}
    for v in rows:
        latest[v.audience_id] = v
    return list(latest.values())


def show(
    spark: SparkSession, settings: Settings, audience_id: str, version: int | None = None
) -> AudienceVersion:
    """One audience version (the latest when ``version`` is omitted).

    Raises:
        UnknownAudienceError: no such audience or version.
    """
    lake = _lake(spark, settings)
    key = audience_id_of(audience_id)
    rows = []
    if lake.exists(AUDIENCES):
        rows = [_row_to_version(r) for r in lake.read(AUDIENCES).where(F.col("audience_id") == key).collect()]
    if not rows:
        known = sorted({v.audience_id for v in list_audiences(spark, settings)})
        hint = f"; known audiences: {', '.join(known[:20])}" if known else "; none has been created yet"
        raise UnknownAudienceError(f"no audience {audience_id!r}{hint}")
    if version is None:
        return max(rows, key=lambda v: v.version)
    for v in rows:
        if v.version == version:
            return v
    raise UnknownAudienceError(
        f"audience {key} has no version {version}; versions: "
        + ", ".join(str(v.version) for v in sorted(rows, key=lambda v: v.version))
    )


def members(
    spark: SparkSession, settings: Settings, audience_id: str, version: int | None = None
) -> DataFrame:
    """The members (``oneid``, ``score``) of an audience version, consent-filtered at the latest date."""
    lake = _lake(spark, settings)
    v = show(spark, settings, audience_id, version)
    df = lake.read(MEMBERS).where((F.col("audience_id") == v.audience_id) & (F.col("version") == v.version))
    latest = _latest_dt(lake, MAP, None)
    return df.select("oneid", "score").transform(without_optouts(_optouts(lake, settings, latest)))


def _next_version(lake: Lake, audience_id: str) -> int:
    if not lake.exists(AUDIENCES):
        return 1
    found = (
        lake.read(AUDIENCES).where(F.col("audience_id") == audience_id).agg(F.max("version")).collect()[0][0]
    )
    return int(found or 0) + 1


def _coverage(lake: Lake, members_df: DataFrame, day: _dt.date) -> dict[str, int]:
    ids = _oneid_map(lake, day).select(F.col("oneid").cast("string").alias("oneid"), "id_type")
    rows = (
        ids.join(members_df.select("oneid"), "oneid")
        .groupBy("id_type")
        .agg(F.countDistinct("oneid").alias("n"))
    )
    return {r["id_type"]: int(r["n"]) for r in rows.collect()}


def _materialise(
    lake: Lake,
    spec: AudienceSpec,
    matched: DataFrame,
    optouts: DataFrame,
    day: _dt.date,
    *,
    details: dict[str, Any] | None = None,
    created_by: str | None = None,
    started: float | None = None,
) -> AudienceVersion:
    """Write a new version: members (consented) first, then the registry row that makes it visible."""
    started = started or time.perf_counter()
    audience_id = spec.audience_id
    has_score = "score" in matched.columns
    matched = matched.select(
        "oneid", F.col("score") if has_score else F.lit(None).cast("double").alias("score")
    )
    kept = matched.transform(without_optouts(optouts))
    with lake.lock(AUDIENCES):
        version = _next_version(lake, audience_id)
        with lake.lock(MEMBERS):
            if lake.exists(MEMBERS):  # a crashed earlier attempt may have left rows of this version
                lake.delete(MEMBERS, f"audience_id = '{audience_id}' AND version = {version}")
            lake.append(
                MEMBERS,
                kept.select(
                    F.lit(audience_id).alias("audience_id"),
                    F.lit(version).alias("version"),
                    "oneid",
                    "score",
                    F.lit(day).alias("dt"),
                ),
            )
        written = lake.read(MEMBERS).where(
            (F.col("audience_id") == audience_id) & (F.col("version") == version)
        )
        size = written.count()
        opted_out = matched.select("oneid").distinct().count() - size
        coverage = _coverage(lake, written, day)
        now = _dt.datetime.now(_dt.UTC).replace(tzinfo=None, microsecond=0)
        who = created_by or getpass.getuser()
        row = {
            "audience_id": audience_id,
            "version": version,
            "name": spec.name,
            "kind": spec.kind,
            "description": spec.description,
            "definition_json": json.dumps(spec.document(), ensure_ascii=False, sort_keys=True),
            "dt": day,
            "size": size,
            "opted_out": max(opted_out, 0),
            "id_type_counts_json": json.dumps(coverage, sort_keys=True),
            "details_json": json.dumps(details or {}, ensure_ascii=False, default=str),
            "created_at": now,
            "created_by": who,
        }
        schema = lake.contracts[AUDIENCES].ddl
        lake.append(AUDIENCES, lake.spark.createDataFrame([row], schema))
    out = _row_to_version(row | {"dt": day, "created_at": now})
    out.seconds = round(time.perf_counter() - started, 3)
    return out


def _read_seed_file(spark: SparkSession, path: str) -> DataFrame:
    file = Path(path).expanduser()
    if not file.is_file():
        raise SeedListError(f"seed list {path} does not exist")
    values = []
    for line in file.read_text(encoding="utf-8-sig").splitlines():
        value = line.split(",")[0].strip().strip('"')
        if value:
            values.append((value,))
    if values and values[0][0].lower() in (
        "phone",
        "email",
        "imei",
        "idfa",
        "oaid",
        "id",
        "value",
        "android_id",
    ):
        values = values[1:]  # a header line
    if not values:
        raise SeedListError(f"seed list {path} holds no identifiers (one per line, first column)")
    return spark.createDataFrame(values, "value string")


def create(
    spark: SparkSession,
    settings: Settings,
    definition: AudienceSpec | str | dict,
    *,
    name: str | None = None,
    description: str = "",
    dt: str | _dt.date | None = None,
    created_by: str | None = None,
) -> AudienceVersion:
    """Materialise an audience as a new version in ``gold.audience_members`` and ``gold.audiences``.

    Args:
        definition: an :class:`AudienceSpec`, or a definition/rule as a file path, JSON/YAML text or a dict.
        name: the audience name when the definition is a bare rule.
        description: a description when the definition has none.
        dt: the profile date; the latest when omitted.
        created_by: the author recorded (the OS user by default).

    Raises:
        RuleError, UnknownTagError: the definition is malformed.
        SeedListError: the seed list cannot be read or matches nobody.
        MissingDataError: no profile or OneID map for the date.
    """
    started = time.perf_counter()
    spec = (
        definition
        if isinstance(definition, AudienceSpec)
        else (
            load_audience(definition, name=name, description=description)
            if isinstance(definition, str)
            else parse_audience(definition, name=name, description=description)
        )
    )
    lake = _lake(spark, settings)
    day = parse_dt(dt) if dt else None
    details: dict[str, Any] = {}
    if spec.kind == "seed":
        assert spec.seed is not None
        validate_seed_id_type(spec.seed.id_type)
        day = _latest_dt(lake, MAP, day)
        matches = _read_seed_file(spark, spec.seed.path).transform(
            build_seed_matches(
                spec.seed.id_type,
                _oneid_map(lake, day),
                _platform_hashes(lake, settings),
                settings.require_pii_key(),
            )
        )
        counts = {
            r["status"]: int(r["n"])
            for r in matches.groupBy("status").agg(F.countDistinct("value").alias("n")).collect()
        }
        details = {"seed_list": {"path": spec.seed.path, "id_type": spec.seed.id_type, **counts}}
        if not counts.get("matched"):
            raise SeedListError(
                f"none of the {sum(counts.values()):,} identifiers in {spec.seed.path} matched a OneID "
                f"({counts.get('invalid', 0):,} invalid for ID type {spec.seed.id_type}); check the ID type"
            )
        matched = matches.where(F.col("oneid").isNotNull()).select("oneid").distinct()
    else:
        assert spec.rule is not None
        matched, _, day = _rule_members(lake, settings, spec.rule, day)
    return _materialise(
        lake,
        spec,
        matched,
        _optouts(lake, settings, day),
        day,
        details=details,
        created_by=created_by,
        started=started,
    )


# ---- insight and overlap -----------------------------------------------------------------------------------


def insight(
    spark: SparkSession,
    settings: Settings,
    audience_id: str,
    version: int | None = None,
    *,
    max_values: int = 20,
    top: int | None = None,
) -> Insight:
    """Size, coverage per ID type and tag values by TGI of an audience version, against the profile of its dt.

    Args:
        max_values: values kept per tag (the most frequent in the population).
        top: keep only the first ``top`` rows (defining traits first).
    """
    started = time.perf_counter()
    lake = _lake(spark, settings)
    v = show(spark, settings, audience_id, version)
    profile, columns, day = _profile(lake, parse_dt(v.dt))
    mem = (
        lake.read(MEMBERS)
        .where((F.col("audience_id") == v.audience_id) & (F.col("version") == v.version))
        .select("oneid")
    )
    kinds = insight_columns(columns)
    edges = numeric_edges(profile, kinds)
    table = profile.transform(build_insight(mem, kinds, edges, max_values=max_values))
    pdf = table.toPandas()
    rows = [
        InsightRow(
            r.tag,
            r.value,
            int(r.audience_count),
            float(r.audience_share),
            int(r.population_count),
            float(r.population_share),
            float(r.tgi),
        )
        for r in pdf.itertuples()
    ]
    population = profile.count()
    return Insight(
        audience_id=v.audience_id,
        version=v.version,
        dt=day.isoformat(),
        size=v.size,
        population=population,
        coverage=v.id_type_counts,
        rows=rows[:top] if top else rows,
        seconds=round(time.perf_counter() - started, 3),
    )


def overlap(spark: SparkSession, settings: Settings, a: str, b: str) -> Overlap:
    """Overlap of the latest versions of two audiences (``id`` or ``id@version``)."""
    lake = _lake(spark, settings)

    def resolve(ref: str) -> AudienceVersion:
        name, _, ver = ref.partition("@")
        return show(spark, settings, name, int(ver) if ver else None)

    va, vb = resolve(a), resolve(b)
    read = lake.read(MEMBERS)
    counts = overlap_counts(
        read.where((F.col("audience_id") == va.audience_id) & (F.col("version") == va.version)),
        read.where((F.col("audience_id") == vb.audience_id) & (F.col("version") == vb.version)),
    )
    return Overlap(
        f"{va.audience_id}@{va.version}",
        f"{vb.audience_id}@{vb.version}",
        counts["a"],
        counts["b"],
        counts["both"],
        counts["either"],
    )


# ---- lookalike --------------------------------------------------------------------------------------------


def _with_derived(tags: Sequence[str]) -> list[str]:
    """The given tags and every catalog tag computed from them (a lookalike of a seed made by a rule on
    ``gender`` must not learn ``inferred_gender`` instead)."""
    from tags.catalog import load_catalog

    return list(dict.fromkeys([*tags, *load_catalog().derived(tags)]))


def lookalike(
    spark: SparkSession,
    settings: Settings,
    seed: str,
    *,
    size: int | None = None,
    top_percent: float | None = None,
    name: str | None = None,
    exclude_tags: list[str] | tuple[str, ...] = (),
    include_seed: bool = False,
    evaluation: bool = True,
    splits: int = 3,
    dt: str | _dt.date | None = None,
    created_by: str | None = None,
    sample_rows: int = SAMPLE_ROWS,
) -> LookalikeResult:
    """Expand a seed audience: train on the seed against the population, score everyone, keep the top.

    Args:
        seed: the seed audience (``id`` or ``id@version``).
        size: people to keep (besides the seed); or ``top_percent`` of the population.
        name: the new audience's name (``<seed>_lookalike`` by default).
        exclude_tags: tags left out of the features, on top of those the seed's rule reads.
        include_seed: also put the seed members in the new audience.
        evaluation: run the hide-and-recover evaluation and store it with the version.
        splits: random splits of the evaluation.
        dt: the profile date; the seed version's dt by default.

    Raises:
        SeedTooSmallError: fewer consented, profiled seed members than the minimum (``CDP_MIN_SEED_SIZE``).
        AudienceError: neither or both of ``size`` and ``top_percent``.
    """
    started = time.perf_counter()
    if (size is None) == (top_percent is None):
        raise AudienceError("give either --size N or --top-percent P for a lookalike")
    if (size is not None and size < 1) or (top_percent is not None and not 0 < top_percent <= 100):
        raise AudienceError("size must be positive and top-percent between 0 and 100")
    lake = _lake(spark, settings)
    ref, _, ver = seed.partition("@")
    sv = show(spark, settings, ref, int(ver) if ver else None)
    profile, columns, day = _profile(lake, parse_dt(dt) if dt else parse_dt(sv.dt))
    optouts = _optouts(lake, settings, day)
    seed_ids = (
        lake.read(MEMBERS)
        .where((F.col("audience_id") == sv.audience_id) & (F.col("version") == sv.version))
        .select("oneid")
        .distinct()
        .transform(without_optouts(optouts))
    )
    rule_tags = parse_rule(sv.definition["rule"]).tags() if sv.definition.get("rule") else []
    excluded = _with_derived([*rule_tags, *exclude_tags])
    kinds = feature_columns(columns, excluded)
    if not kinds:
        raise AudienceError("no profile tags are left as features after the exclusions; exclude fewer tags")
    wanted = ["oneid", *kinds]
    seed_rows = profile.select(*wanted).join(seed_ids, "oneid")
    n_seed = seed_rows.count()
    minimum = min_seed_size()
    if n_seed < minimum:
        raise SeedTooSmallError(
            f"seed {sv.audience_id}@{sv.version} has {n_seed:,} consented members with a profile on {day}; "
            f"a lookalike needs at least {minimum:,}. Widen the seed audience."
        )
    population = profile.count()
    t0 = time.perf_counter()
    seed_pdf = (
        (seed_rows.sample(fraction=min(1.0, SEED_ROWS / n_seed), seed=7) if n_seed > SEED_ROWS else seed_rows)
        .toPandas()
        .sort_values("oneid", ignore_index=True)
    )  # OneID order: the same lake, the same model
    flagged = profile.select(*wanted).join(seed_ids.withColumn("_seed", F.lit(True)), "oneid", "left")
    fraction = min(1.0, sample_rows / max(population, 1))
    sample_pdf = (
        (flagged.sample(fraction=fraction, seed=11) if fraction < 1 else flagged)
        .toPandas()
        .sort_values("oneid", ignore_index=True)
    )
    is_seed = sample_pdf["_seed"].fillna(False).astype(bool).to_numpy()
    spec = fit_feature_spec(sample_pdf, kinds, day)
    encode = make_encoder(spec)
    x_seed, x_sample = encode(seed_pdf), encode(sample_pdf)
    report = None
    if evaluation:
        report = evaluate(
            x_seed, x_sample, is_seed, spec, population=population, splits=splits, excluded=excluded
        )

    unlabelled = ~is_seed
    folds = fold_of(sample_pdf.loc[unlabelled, "oneid"])
    model = train_crossfit(x_seed, x_sample[unlabelled], folds, spec)
    train_seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    scores = profile.select(*wanted).mapInPandas(build_scores(model), "oneid string, score double")
    candidates = scores if include_seed else scores.join(seed_ids, "oneid", "left_anti")
    keep = size if size is not None else round(population * float(top_percent) / 100)
    chosen = (
        candidates.transform(without_optouts(optouts))
        .orderBy(F.col("score").desc(), F.col("oneid"))
        .limit(keep)
    )
    new_name = name or f"{sv.audience_id}_lookalike"
    spec_out = AudienceSpec(new_name, "lookalike", f"lookalike of {sv.audience_id}@{sv.version}")
    details = {
        "seed": {"audience_id": sv.audience_id, "version": sv.version, "members": n_seed},
        "size": size,
        "top_percent": top_percent,
        "include_seed": include_seed,
        "excluded_tags": excluded,
        "features": spec["names"],
        "evaluation": report.as_dict() if report else None,
    }
    out = _materialise(
        lake, spec_out, chosen, optouts, day, details=details, created_by=created_by, started=started
    )
    score_seconds = time.perf_counter() - t1
    return LookalikeResult(out, report, n_seed, round(train_seconds, 2), round(score_seconds, 2))


# ---- export -----------------------------------------------------------------------------------------------


def export(
    spark: SparkSession,
    settings: Settings,
    audience_id: str,
    destination: str,
    *,
    version: int | None = None,
    id_types: list[str] | None = None,
    min_size: int | None = None,
    created_by: str | None = None,
    max_file_bytes: int | None = None,
) -> Manifest:
    """Write a pack of an audience version for a destination under
    ``<packs root>/<audience_id>/v<version>/<destination>/`` and log it in ``gold.audience_exports``.

    Members are consent-filtered again with the latest consent, identifiers are put in the destination's form
    (identifiers that cannot be are skipped and counted), and the pack is refused below the minimum size.

    Raises:
        DestinationError: unknown destination or an ID type it does not accept.
        PackTooSmallError: fewer people with a line than ``min_size`` (``CDP_MIN_PACK_SIZE``, 1,000).
    """
    dest = get_destination(destination)
    types = validate_id_types(dest, id_types)
    lake = _lake(spark, settings)
    v = show(spark, settings, audience_id, version)
    latest = _latest_dt(lake, MAP, None)
    raw = (
        lake.read(MEMBERS)
        .where((F.col("audience_id") == v.audience_id) & (F.col("version") == v.version))
        .select("oneid")
    )
    kept = raw.transform(without_optouts(_optouts(lake, settings, latest)))
    lines = kept.transform(
        build_member_identifiers(_oneid_map(lake, latest), _platform_hashes(lake, settings), types)
    ).transform(build_pack_lines(dest, types))
    pdf = lines.toPandas()
    total_members = raw.count()
    removed = total_members - kept.count()
    ok = pdf[pdf["line"].notna()]
    people = int(ok["oneid"].nunique())
    minimum = min_pack_size() if min_size is None else min_size
    if people < minimum:
        raise PackTooSmallError(
            f"pack of {v.audience_id}@{v.version} for {dest.name} would hold {people:,} people "
            f"(ID types {', '.join(types)}); the minimum is {minimum:,} to keep people anonymous "
            "(k-anonymity). "
            "Widen the audience or add ID types."
        )
    by_type: dict[str, Any] = {}
    lines_by_type: dict[tuple[str, str], list[str]] = {}
    for id_type in types:
        spec = dest.lines[id_type]
        part = pdf[pdf["id_type"] == id_type]
        good = part[part["line"].notna()]
        distinct = sorted(set(good["line"]))
        lines_by_type[(id_type, spec.platform_type)] = distinct
        by_type[id_type] = {
            "platform_type": spec.platform_type,
            "identifiers": len(part),
            "lines": len(distinct),
            "people": int(good["oneid"].nunique()),
            "skipped": {
                str(k): int(n) for k, n in part["reason"].dropna().value_counts().sort_index().items()
            },
        }
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    manifest = Manifest(
        audience_id=v.audience_id,
        audience_name=v.name,
        version=v.version,
        dt=v.dt,
        destination=dest.name,
        destination_label=dest.label,
        definition=v.definition,
        id_types=by_type,
        people=people,
        lines=sum(t["lines"] for t in by_type.values()),
        skipped=sum(sum(t["skipped"].values()) for t in by_type.values()),
        opted_out_removed=int(removed),
        min_pack_size=minimum,
        created_at=now.isoformat(),
        created_by=created_by or getpass.getuser(),
    )
    folder = Path(settings.packs_root) / v.audience_id / f"v{v.version}" / dest.name
    manifest = write_pack(folder, dest, lines_by_type, manifest, max_file_bytes=max_file_bytes, when=now)
    row = {
        "export_id": uuid.uuid4().hex[:16],
        "audience_id": v.audience_id,
        "version": v.version,
        "destination": dest.name,
        "path": manifest.path,
        "people": people,
        "lines": manifest.lines,
        "skipped": manifest.skipped,
        "manifest_json": manifest.to_json(),
        "created_at": now.replace(tzinfo=None),
        "created_by": manifest.created_by,
    }
    with lake.lock(EXPORTS):
        lake.append(EXPORTS, spark.createDataFrame([row], lake.contracts[EXPORTS].ddl))
    return manifest


# ---- lookalike quality on the demo truth ------------------------------------------------------------------

SEGMENT_DEFINING_TAGS: dict[str, tuple[str, ...]] = {
    # The latent traits each demo segment is drawn from (demo/population.py), as profile tags: they are
    # left out of the model so that hide-and-recover measures lookalike, not the rule that made the segment.
    "seg_mom_baby": ("gender", "tp_gender", "tp_gender_confidence", "age", "age_band", "tp_age_band",
                     "tp_age_band_confidence"),
    "seg_young_trendsetter": ("age", "age_band", "tp_age_band", "tp_age_band_confidence", "city_tier",
                              "tp_city_tier", "city", "province"),
    "seg_premium_skincare": ("income_band", "gender", "tp_gender", "tp_gender_confidence", "age", "age_band",
                             "tp_age_band", "tp_age_band_confidence"),
}  # fmt: skip


@dataclass
class TruthEvaluation:
    """Hide-and-recover on a demo segment, per seed size."""

    segment: str
    population: int
    segment_oneids: int
    excluded: list[str]
    by_seed_size: dict[int, Evaluation]

    def lines(self) -> list[str]:
        out = [
            f"{self.segment}: {self.segment_oneids:,} OneIDs of {self.population:,} "
            f"({self.segment_oneids / max(self.population, 1):.1%}); excluded {', '.join(self.excluded)}"
        ]
        for evaluation in self.by_seed_size.values():
            out += evaluation.lines()
        return out


def _truth_oneids(lake: Lake, settings: Settings, day: _dt.date) -> Any:
    """Each demo person's primary OneID: the OneID holding most of the person's unshared identifiers.

    Other OneIDs of a person (a lone cookie, an ad-log device never seen with a login) stay in the population
    as non-members: a marketer's known segment is made of identified customers, not of such fragments."""
    import hashlib
    import hmac

    import pandas as pd

    truth = Path(settings.truth_root)
    ids = pd.read_parquet(truth / "identifiers.parquet")
    ids = ids[~ids["shared"]]
    key = settings.require_pii_key().encode()
    direct = ids["id_type"].isin(["phone", "email"])
    ids.loc[direct, "id_value"] = [
        hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in ids.loc[direct, "id_value"]
    ]
    mapped = _oneid_map(lake, day).toPandas()
    joined = mapped.merge(ids, on=["id_type", "id_value"])
    votes = joined.groupby(["oneid", "person_id"]).size().reset_index(name="n")
    # Ties broken by id, so the same lake gives the same segment on every run.
    owner = votes.sort_values(["oneid", "n", "person_id"], ascending=[True, False, True]).drop_duplicates(
        "oneid"
    )
    primary = owner.sort_values(["person_id", "n", "oneid"], ascending=[True, False, True]).drop_duplicates(
        "person_id"
    )
    return primary.assign(oneid=primary["oneid"].astype(str))[["oneid", "person_id"]]


def evaluate_on_truth(
    spark: SparkSession,
    settings: Settings,
    segment: str,
    *,
    seed_sizes: tuple[int, ...] = (100, 1_000, 10_000),
    splits: int = 3,
    draws: int = 1,
    dt: str | _dt.date | None = None,
    random_state: int = 7,
) -> TruthEvaluation:
    """Lookalike quality on a demo population: seeds drawn from a ground-truth segment, 30 % of each hidden,
    recovered from the rest of the population; the segment's defining tags are excluded.

    Reads the demo truth (``settings.truth_root``), so it is for tests and benchmarks only. Seed sizes larger
    than the segment allows are skipped. ``draws`` seeds of each size are drawn and their figures averaged
    (with 100 members, which 100 matters more than how they are split).
    """
    import numpy as np
    import pandas as pd

    lake = _lake(spark, settings)
    profile, columns, day = _profile(lake, parse_dt(dt) if dt else None)
    persons = pd.read_parquet(Path(settings.truth_root) / "persons.parquet", columns=["person_id", segment])
    owners = _truth_oneids(lake, settings, day).merge(persons, on="person_id")
    in_segment = set(owners.loc[owners[segment], "oneid"])
    excluded = [c for c in _with_derived(SEGMENT_DEFINING_TAGS.get(segment, ())) if c in columns]
    kinds = feature_columns(columns, excluded)
    # In OneID order: the engine returns rows in any order, and seeds are drawn by position.
    pdf = profile.select("oneid", *kinds).toPandas().sort_values("oneid", ignore_index=True)
    spec = fit_feature_spec(pdf, kinds, day)
    x = make_encoder(spec)(pdf)
    members_idx = np.flatnonzero(pdf["oneid"].isin(in_segment).to_numpy())
    rng = np.random.default_rng(random_state)
    results: dict[int, Evaluation] = {}
    for size in seed_sizes:
        if size > len(members_idx):
            continue
        runs = []
        for draw in range(draws):
            chosen = rng.choice(members_idx, size=size, replace=False)
            is_seed = np.zeros(len(pdf), bool)
            is_seed[chosen] = True
            runs.append(evaluate(
                x[chosen], x, is_seed, spec, population=len(pdf), splits=splits, excluded=excluded,
                random_state=random_state + draw, with_lightgbm_alone=True,
            ))  # fmt: skip
        results[size] = combine(runs)
    return TruthEvaluation(segment, len(pdf), len(members_idx), excluded, results)


# ---- refresh ----------------------------------------------------------------------------------------------


def refresh(
    spark: SparkSession, settings: Settings, dt: str | _dt.date, *, created_by: str = "pipeline"
) -> RefreshReport:
    """Daily step after tags: store the opted-out OneIDs of ``dt``, re-evaluate every rule and engagement
    audience on the new profile (a new version each; older versions stay), and write their scheduled packs.
    Idempotent: rerunning a date reuses the version it made for that date and does not write its packs again.

    A pack refused for its size is reported, not raised: one small audience does not stop the pipeline.
    """
    started = time.perf_counter()
    day = parse_dt(dt)
    report = RefreshReport(day.isoformat())
    lake = _lake(spark, settings)
    if lake.exists(MAP):
        optouts = _compute_optouts(lake, settings, day)
        with lake.lock(OPTOUTS):
            lake.replace_dt(OPTOUTS, optouts, day)
        report.optouts = lake.read(OPTOUTS).where(F.col("dt") == F.lit(day)).count()
    has_profile = (
        lake.exists(PROFILE) and lake.read(PROFILE).where(F.col("dt") == F.lit(day)).limit(1).count() > 0
    )
    # A rerun of a date (an Airflow clear, a backfill) reuses the versions and packs that date already made.
    of_day: dict[str, AudienceVersion] = {}
    for x in list_audiences(spark, settings, all_versions=True):
        if x.dt == day.isoformat() and x.version > getattr(of_day.get(x.audience_id), "version", 0):
            of_day[x.audience_id] = x
    written = set()
    if lake.exists(EXPORTS):
        written = {
            (r["audience_id"], r["version"], r["destination"])
            for r in lake.read(EXPORTS).select("audience_id", "version", "destination").distinct().collect()
        }
    for v in list_audiences(spark, settings):
        if v.kind not in ("rule", "engagement"):
            continue
        if not has_profile:
            report.skipped.append(f"{v.audience_id}: no gold.profile for {day}")
            continue
        if v.audience_id in of_day:
            v = of_day[v.audience_id]
            if v.created_by != created_by:
                continue  # made by hand for this date after its refresh: its packs are exported by hand
        elif v.dt != day.isoformat():
            spec = parse_audience(v.definition | {"name": v.name}) if "rule" in v.definition else None
            if spec is None:
                continue
            spec = AudienceSpec(v.name, v.kind, v.description, rule=spec.rule, exports=spec.exports)
            try:
                v = create(spark, settings, spec, dt=day, created_by=created_by)
            except RuleError as exc:  # a tag removed from the catalog: keep the old version, say why
                report.skipped.append(f"{v.audience_id}: {exc}")
                continue
            report.refreshed.append(f"{v.audience_id}@{v.version}: {v.size:,} people")
        for schedule in _schedules(v):
            if (v.audience_id, v.version, get_destination(schedule.destination).name) in written:
                report.exports.append(f"{v.audience_id}@{v.version} -> {schedule.destination}: done")
                continue
            try:
                m = export(spark, settings, v.audience_id, schedule.destination, version=v.version,
                           id_types=list(schedule.id_types) or None, created_by=created_by)  # fmt: skip
                report.exports.append(
                    f"{v.audience_id}@{v.version} -> {schedule.destination}: {m.lines:,} lines"
                )
            except PackTooSmallError as exc:
                report.refused.append(str(exc))
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _schedules(v: AudienceVersion) -> list[ExportSchedule]:
    return [
        ExportSchedule(e["destination"], tuple(e.get("id_types") or ()))
        for e in v.definition.get("exports") or []
    ]


def _as_dict(obj: Any) -> dict[str, Any]:
    return asdict(obj)


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.audiences refresh --dt YYYY-MM-DD`` (for spark-submit and schedulers)."""
    from cdp.engine import get_spark

    parser = argparse.ArgumentParser(prog="jobs.audiences")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("refresh", help="re-evaluate rule audiences and write scheduled packs for a date")
    r.add_argument("--dt", required=True)
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


if __name__ == "__main__":
    raise SystemExit(main())
