"""Export an audience version as a pack (人群包) for a destination, and log it.

gold.audience_members (version) -> consent filter (latest consent) -> identifiers of the ID types
    (gold.oneid_map; phones and emails: their vault.identifiers rows decrypted and hashed in the platform
    forms, masks from silver) -> the destination's normalisation and hashing
    -> at least min_pack_size people, else refused -> packs/<audience_id>/v<version>/<destination>/
    (zipped ID files + manifest.json, audiences.packs.PackStore) -> a row of gold.audience_exports
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import getpass
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audiences.consent import without_optouts
from audiences.errors import PackTooSmallError
from audiences.export import (
    Destination,
    build_member_identifiers,
    build_pack_lines,
    get_destination,
    validate_id_types,
)
from audiences.packs import Manifest, PackStore, write_pack
from jobs.audiences.context import EXPORTS, MAP, AudienceContext, guarded_export
from jobs.audiences.registry import AudienceVersion, find_version
from jobs.effect_groups import hold_out, store_groups

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

    from cdp.settings import Settings


@dataclass
class _Lines:
    """The pack lines of a version on the driver, the people they reach and the members consent removed."""

    frame: pd.DataFrame
    """``(oneid, id_type, platform_type, line, reason)``; ``line`` is NULL when skipped for ``reason``."""
    people: int
    opted_out_removed: int


def _pack_lines(ctx: AudienceContext, v: AudienceVersion, dest: Destination, types: list[str]) -> _Lines:
    """Consent-filter the members with the latest consent; put their identifiers in the destination's form."""
    latest = ctx.latest_dt(MAP)
    raw = ctx.version_members(v.audience_id, v.version).select("oneid")
    kept = raw.transform(without_optouts(ctx.optouts(latest)))
    lines = kept.transform(
        build_member_identifiers(ctx.oneid_map(latest), ctx.with_platform_hashes(), types)
    ).transform(build_pack_lines(dest, types))
    pdf = lines.toPandas()
    people = int(pdf.loc[pdf["line"].notna(), "oneid"].nunique())
    return _Lines(pdf, people, raw.count() - kept.count())


def _hold_out(ctx: AudienceContext, lines: _Lines, campaign_id: str, share: float) -> tuple[_Lines, set[str]]:
    """The lines without the campaign's control group, and the control OneIDs."""
    frame, control = hold_out(ctx.lake, lines.frame, campaign_id, share)
    people = int(frame.loc[frame["line"].notna(), "oneid"].nunique())
    return dataclasses.replace(lines, frame=frame, people=people), control


def _check_size(lines: _Lines, v: AudienceVersion, dest: Destination, types: list[str], minimum: int) -> None:
    if lines.people < minimum:
        raise PackTooSmallError(
            f"pack of {v.audience_id}@{v.version} for {dest.name} would hold {lines.people:,} people "
            f"(ID types {', '.join(types)}); the minimum is {minimum:,} to keep people anonymous "
            "(k-anonymity). "
            "Widen the audience or add ID types."
        )


def _by_type(
    lines: _Lines, dest: Destination, types: list[str]
) -> tuple[dict[str, Any], dict[tuple[str, str], list[str]]]:
    """Counts per ID type for the manifest, and the distinct sorted lines per (ID type, platform type)."""
    pdf = lines.frame
    counts: dict[str, Any] = {}
    lines_by_type: dict[tuple[str, str], list[str]] = {}
    for id_type in types:
        spec = dest.lines[id_type]
        part = pdf[pdf["id_type"] == id_type]
        good = part[part["line"].notna()]
        distinct = sorted(set(good["line"]))
        lines_by_type[(id_type, spec.platform_type)] = distinct
        counts[id_type] = {
            "platform_type": spec.platform_type,
            "identifiers": len(part),
            "lines": len(distinct),
            "people": int(good["oneid"].nunique()),
            "skipped": {
                str(k): int(n) for k, n in part["reason"].dropna().value_counts().sort_index().items()
            },
        }
    return counts, lines_by_type


def _log_export(ctx: AudienceContext, manifest: Manifest, now: _dt.datetime) -> None:
    """Append the export to ``gold.audience_exports`` (under its lock)."""
    row = {
        "export_id": uuid.uuid4().hex[:16],
        "audience_id": manifest.audience_id,
        "version": manifest.version,
        "destination": manifest.destination,
        "path": manifest.path,
        "people": manifest.people,
        "lines": manifest.lines,
        "skipped": manifest.skipped,
        "manifest_json": manifest.to_json(),
        "created_at": now.replace(tzinfo=None),
        "created_by": manifest.created_by,
    }
    with ctx.lake.lock(EXPORTS):
        ctx.lake.append(EXPORTS, ctx.spark.createDataFrame([row], ctx.lake.contracts[EXPORTS].ddl))


@guarded_export  # one export of an audience at a time; refused while a consent batch is not applied
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
    campaign_id: str | None = None,
    holdout: float = 0.0,
) -> Manifest:
    """Write a pack of an audience version for a destination and log it in ``gold.audience_exports``.

    Members are consent-filtered again with the latest consent, identifiers are put in the destination's form
    (identifiers that cannot be are skipped and counted), and the pack is refused below the minimum size.

    Args:
        spark: the session.
        settings: the deployment's settings (``packs_root``, ``min_pack_size``).
        audience_id: the audience id.
        destination: the destination's name (``tencent``, ``oceanengine``, ``google``, ``meta``, ``csv``).
        version: the version; the latest when omitted.
        id_types: the ID types to export; all the destination takes when omitted.
        min_size: the minimum people; ``settings.min_pack_size`` when omitted.
        created_by: the author recorded in the manifest (the OS user by default).
        max_file_bytes: overrides the destination's file size limit.
        campaign_id: the campaign the pack is for: its groups are stored for the effect analysis
            (``gold.campaign_holdouts``) and ``holdout`` of the people are kept out as its control group.
        holdout: the share of the people held out (a hash of campaign and OneID, :mod:`effect.holdout`).

    Returns:
        The manifest written at ``<packs root>/<audience_id>/v<version>/<destination>/manifest.json``.

    Raises:
        DestinationError: unknown destination or an ID type it does not accept.
        PackTooSmallError: fewer people with a line than the minimum.
        UnknownAudienceError: no such audience or version.
    """
    dest = get_destination(destination)
    types = validate_id_types(dest, id_types)
    ctx = AudienceContext.open(spark, settings)
    v = find_version(ctx, audience_id, version)
    lines = _pack_lines(ctx, v, dest, types)
    control: set[str] = set()
    if campaign_id:  # the campaign's control group stays out of the pack (jobs.effect_groups)
        lines, control = _hold_out(ctx, lines, campaign_id, holdout)
    minimum = settings.min_pack_size if min_size is None else min_size
    _check_size(lines, v, dest, types, minimum)
    counts, lines_by_type = _by_type(lines, dest, types)
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    manifest = Manifest(
        audience_id=v.audience_id,
        audience_name=v.name,
        version=v.version,
        dt=v.dt,
        destination=dest.name,
        destination_label=dest.label,
        definition=v.definition,
        id_types=counts,
        people=lines.people,
        lines=sum(t["lines"] for t in counts.values()),
        skipped=sum(sum(t["skipped"].values()) for t in counts.values()),
        opted_out_removed=int(lines.opted_out_removed),
        min_pack_size=minimum,
        created_at=now.isoformat(),
        created_by=created_by or getpass.getuser(),
    )
    if campaign_id:
        manifest.holdout = {"campaign_id": campaign_id, "share": holdout, "control_people": len(control)}
    folder = PackStore(settings.packs_root).folder(v.audience_id, v.version, dest.name)
    manifest = write_pack(folder, dest, lines_by_type, manifest, max_file_bytes=max_file_bytes, when=now)
    _log_export(ctx, manifest, now)
    if campaign_id:
        members = set(lines.frame.loc[lines.frame["line"].notna(), "oneid"].astype(str))
        store_groups(ctx.lake, campaign_id, (v.audience_id, v.version, dest.name), members, control, holdout)
    return manifest
