"""The audience registry: versions of audiences as stored, read back (list, show, members) and written (a
new version: its members first, then the registry row that makes it visible).

    gold.audiences -> list_audiences / show (latest or given version)
    gold.audience_members (version) -> consent filter (latest gold.oneid_map date) -> members
    matched OneIDs -> consent filter -> gold.audience_members (new version, under its lock)
                                     -> gold.audiences (registry row, written last)

Writes happen under the lake's lock of each table (Sail does not detect conflicting Delta commits).

An audience's id is given once, when its name is first saved, and never changes (a name is looked up in
the registry, never turned into an id again): the lower_snake_case slug of an ASCII name
(``Female A`` -> ``female_a``), with a hash of the whole name appended when the slug would lose the name's
script (``女性一线城市或P阶段`` -> ``aud_p_3f2c1b9e``) or another name holds it already (``female-a`` ->
``female_a_8e1f0a2b``). Saving a name that already exists makes a new version only when the caller asks for
one (``new_version=True``).
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from audiences.consent import without_optouts
from audiences.errors import AudienceError, UnknownAudienceError
from audiences.spec import AudienceSpec
from cdp.run import RunContext
from jobs.audiences.context import AUDIENCES, MAP, MEMBERS, AudienceContext

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

    from cdp.settings import Settings


class AudienceExistsError(AudienceError):
    """An audience with this name exists and the caller did not ask for a new version of it."""

    status = 409  # the web app answers 409 Conflict


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


def _row_to_version(r: Row | dict[str, Any]) -> AudienceVersion:
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


# ---- reading -----------------------------------------------------------------------------------------------


def list_versions(ctx: AudienceContext, *, all_versions: bool = False) -> list[AudienceVersion]:
    """The latest version of each audience (or every version), by id then version."""
    if not ctx.lake.exists(AUDIENCES):
        return []
    rows = [_row_to_version(r) for r in ctx.lake.read(AUDIENCES).collect()]
    rows.sort(key=lambda v: (v.audience_id, v.version))
    if all_versions:
        return rows
    latest: dict[str, AudienceVersion] = {}
    for v in rows:
        latest[v.audience_id] = v
    return list(latest.values())


def find_version(ctx: AudienceContext, audience_id: str, version: int | None = None) -> AudienceVersion:
    """One audience version, the latest when ``version`` is None.

    Raises:
        UnknownAudienceError: no such audience or version (the message lists what exists).
    """
    key = audience_id.strip()
    rows = []
    if ctx.lake.exists(AUDIENCES):
        table = ctx.lake.read(AUDIENCES)
        rows = [_row_to_version(r) for r in table.where(F.col("audience_id") == key).collect()]
        if not rows:  # the audience's name instead of its id
            rows = [_row_to_version(r) for r in table.where(F.col("name") == key).collect()]
            rows = [v for v in rows if v.audience_id == rows[0].audience_id] if rows else []
    if not rows:
        known = sorted({v.audience_id for v in list_versions(ctx)})
        hint = f"; known audiences: {', '.join(known[:20])}" if known else "; none has been created yet"
        raise UnknownAudienceError(f"no audience {audience_id!r}{hint}")
    if version is None:
        return max(rows, key=lambda v: v.version)
    for v in rows:
        if v.version == version:
            return v
    raise UnknownAudienceError(
        f"audience {rows[0].audience_id} has no version {version}; versions: "
        + ", ".join(str(v.version) for v in sorted(rows, key=lambda v: v.version))
    )


def find_ref(ctx: AudienceContext, ref: str) -> AudienceVersion:
    """The version named by ``id`` (latest) or ``id@version``.

    Raises:
        UnknownAudienceError: no such audience or version.
    """
    name, _, ver = ref.partition("@")
    return find_version(ctx, name, int(ver) if ver else None)


def list_audiences(
    spark: SparkSession, settings: Settings, *, all_versions: bool = False
) -> list[AudienceVersion]:
    """Audiences in the registry.

    Args:
        spark: the session.
        settings: the deployment's settings.
        all_versions: every version instead of the latest of each audience.

    Returns:
        The versions, by audience id then version.
    """
    return list_versions(AudienceContext.open(spark, settings), all_versions=all_versions)


def show(
    spark: SparkSession, settings: Settings, audience_id: str, version: int | None = None
) -> AudienceVersion:
    """One audience version.

    Args:
        spark: the session.
        settings: the deployment's settings.
        audience_id: the audience id (or its name, which gives the id).
        version: the version; the latest when omitted.

    Raises:
        UnknownAudienceError: no such audience or version.
    """
    return find_version(AudienceContext.open(spark, settings), audience_id, version)


def members(
    spark: SparkSession, settings: Settings, audience_id: str, version: int | None = None
) -> DataFrame:
    """The members of an audience version, consent-filtered at the latest OneID map date.

    Args:
        spark: the session.
        settings: the deployment's settings.
        audience_id: the audience id.
        version: the version; the latest when omitted.

    Returns:
        ``(oneid, score)``; ``score`` is NULL except for lookalikes.

    Raises:
        UnknownAudienceError: no such audience or version.
        MissingDataError: no OneID map yet.
    """
    ctx = AudienceContext.open(spark, settings)
    v = find_version(ctx, audience_id, version)
    latest = ctx.latest_dt(MAP)
    rows = ctx.version_members(v.audience_id, v.version).select("oneid", "score")
    return rows.transform(without_optouts(ctx.optouts(latest)))


# ---- writing -----------------------------------------------------------------------------------------------


def new_audience_id(name: str, *, hashed: bool = False, digits: int = 8) -> str:
    """The id for a new audience named ``name``: the lower_snake_case slug of its ASCII letters and digits
    (prefixed ``aud_`` unless it starts with a letter), followed by ``digits`` hex of the SHA-256 of the whole
    name when ``hashed`` or when the name has characters outside ASCII (the slug alone would lose them)."""
    name = name.strip()
    slug = re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")[:40].strip("_")
    if not re.match(r"^[a-z]", slug):
        slug = f"aud_{slug}".strip("_")
    if hashed or not name.isascii():
        slug = f"{slug}_{hashlib.sha256(name.encode('utf-8')).hexdigest()[:digits]}"
    return slug


def _audience_id_for(ctx: AudienceContext, name: str, new_version: bool | None) -> str:
    """The id to write a version of the audience named ``name`` under (call under the registry's lock).

    Raises:
        AudienceExistsError: the name exists and ``new_version`` is False.
        UnknownAudienceError: ``new_version`` is True and no audience has this name.
    """
    name = name.strip()
    ids: dict[str, str] = {}  # audience id -> name
    if ctx.lake.exists(AUDIENCES):
        ids = {
            r["audience_id"]: r["name"]
            for r in ctx.lake.read(AUDIENCES).select("audience_id", "name").collect()
        }
    existing = sorted(i for i, n in ids.items() if (n or "").strip() == name)
    if existing:
        if new_version is False:
            raise AudienceExistsError(
                f"an audience named {name!r} exists ({existing[0]}); save it as a new version explicitly "
                "(new_version: true, or --new-version on the command line), or choose another name"
            )
        return existing[0]
    if new_version:
        raise UnknownAudienceError(
            f"no audience named {name!r} to add a version to; save it as a new audience"
        )
    audience_id = new_audience_id(name)
    if audience_id in ids:  # another name has this slug: 'female-a' after 'Female A'
        audience_id = new_audience_id(name, hashed=True)
    if audience_id in ids:
        audience_id = new_audience_id(name, hashed=True, digits=16)
    if audience_id in ids:
        raise AudienceExistsError(f"the id {audience_id} of {name!r} is taken; choose another name")
    return audience_id


def _next_version(ctx: AudienceContext, audience_id: str) -> int:
    if not ctx.lake.exists(AUDIENCES):
        return 1
    found = ctx.lake.read(AUDIENCES).where(F.col("audience_id") == audience_id).agg(F.max("version"))
    return int(found.collect()[0][0] or 0) + 1


def _coverage(ctx: AudienceContext, members_df: DataFrame, day: _dt.date) -> dict[str, int]:
    """People per ID type among ``members_df``."""
    ids = ctx.oneid_map(day).select(F.col("oneid").cast("string").alias("oneid"), "id_type")
    rows = (
        ids.join(members_df.select("oneid"), "oneid")
        .groupBy("id_type")
        .agg(F.countDistinct("oneid").alias("n"))
    )
    return {r["id_type"]: int(r["n"]) for r in rows.collect()}


def _append_members(
    ctx: AudienceContext, audience_id: str, version: int, kept: DataFrame, day: _dt.date
) -> DataFrame:
    """Write the members of a new version (replacing rows a crashed attempt left) and read them back."""
    with ctx.lake.lock(MEMBERS):
        if ctx.lake.exists(MEMBERS):
            ctx.lake.delete(MEMBERS, f"audience_id = '{audience_id}' AND version = {version}")
        ctx.lake.append(
            MEMBERS,
            kept.select(
                F.lit(audience_id).alias("audience_id"),
                F.lit(version).alias("version"),
                "oneid",
                "score",
                F.lit(day).alias("dt"),
            ),
        )
    return ctx.version_members(audience_id, version)


def write_version(
    ctx: AudienceContext,
    spec: AudienceSpec,
    matched: DataFrame,
    optouts: DataFrame,
    day: _dt.date,
    *,
    details: dict[str, Any] | None = None,
    created_by: str | None = None,
    started: float | None = None,
    new_version: bool | None = None,
) -> AudienceVersion:
    """Write a new version of ``spec``'s audience: consented members first, then the registry row.

    Args:
        ctx: the operation's context.
        spec: the audience (id, name, kind, definition).
        matched: the OneIDs selected (``oneid``, and ``score`` for lookalikes), before consent.
        optouts: opted-out OneIDs to remove.
        day: the profile date the version was made from.
        details: kind-specific facts kept with the version (seed-list matches, lookalike evaluation).
        created_by: the author (the OS user by default).
        started: ``time.perf_counter()`` when the operation began, for the version's ``seconds``.
        new_version: True to add a version to the audience of that name (which must exist), False to create
            a new audience only (refused when the name exists), None for either (the daily refresh).

    Returns:
        The new version.

    Raises:
        AudienceExistsError: ``new_version`` is False and an audience of that name exists.
        UnknownAudienceError: ``new_version`` is True and no audience has that name.
    """
    started = started or time.perf_counter()
    score = F.col("score") if "score" in matched.columns else F.lit(None).cast("double").alias("score")
    run = RunContext.open(ctx.spark, ctx.settings, day, stage="audiences", lake=ctx.lake)
    with run.scratch_space(), ctx.lake.lock(AUDIENCES):
        audience_id = _audience_id_for(ctx, spec.name, new_version)
        # Materialised once: a lookalike's matched rows are a scoring of the whole population, which the
        # members write and the opt-out count would otherwise each recompute.
        matched = run.checkpoint(matched.select("oneid", score), "matched")
        kept = matched.transform(without_optouts(optouts))
        version = _next_version(ctx, audience_id)
        written = _append_members(ctx, audience_id, version, kept, day)
        size = written.count()
        opted_out = matched.select("oneid").distinct().count() - size
        now = _dt.datetime.now(_dt.UTC).replace(tzinfo=None, microsecond=0)
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
            "id_type_counts_json": json.dumps(_coverage(ctx, written, day), sort_keys=True),
            "details_json": json.dumps(details or {}, ensure_ascii=False, default=str),
            "created_at": now,
            "created_by": created_by or getpass.getuser(),
        }
        ctx.lake.append(AUDIENCES, ctx.spark.createDataFrame([row], ctx.lake.contracts[AUDIENCES].ddl))
    out = _row_to_version(row)
    out.seconds = round(time.perf_counter() - started, 3)
    return out
