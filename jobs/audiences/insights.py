"""Who is in an audience: insight (size, coverage per ID type, tag values by TGI against the population) and
the overlap of two audiences.

    gold.audience_members (version) + gold.profile (the version's dt) -> tag values by TGI
        -> cells below settings.min_group_size shown as "< k" -> Insight (refused below k people)
    gold.audience_members (version a) + (version b) -> sizes, intersection, union
        -> groups below settings.min_group_size shown as "< k" or withheld -> Overlap

Counts leave this module in their public form (:func:`audiences.insight.public_count`): a number, ``"< k"``,
or None when withheld.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from audiences.insight import (
    GroupTooSmallError,
    PublicCount,
    build_insight,
    insight_columns,
    numeric_edges,
    overlap_counts,
    public_coverage,
    public_insight_rows,
    public_overlap,
    public_share,
)
from cdp.lake import parse_dt
from jobs.audiences.context import AudienceContext
from jobs.audiences.registry import find_ref, find_version

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from cdp.settings import Settings


@dataclass
class InsightRow:
    """One tag value: its count and share in the audience and in the population, and its TGI; a count below
    the minimum group size is ``"< k"`` (or None, withheld) and its share and TGI are None."""

    tag: str
    value: str
    audience_count: PublicCount
    audience_share: float | None
    population_count: PublicCount
    population_share: float | None
    tgi: float | None


@dataclass
class Insight:
    """Who is in an audience: size, coverage per ID type, tag values with their TGI (defining traits
    first, then the values whose counts are hidden)."""

    audience_id: str
    version: int
    dt: str
    size: int
    population: int
    coverage: dict[str, PublicCount]
    rows: list[InsightRow]
    seconds: float = 0.0


@dataclass
class Overlap:
    """Two audience versions (``id@version``), their sizes, intersection and union, in public form
    (:func:`audiences.insight.public_overlap`); the shares are None when a count they need is hidden."""

    a: str
    b: str
    a_size: PublicCount
    b_size: PublicCount
    both: PublicCount
    either: PublicCount

    @property
    def jaccard(self) -> float | None:
        return public_share(self.both, self.either)

    @property
    def share_of_a(self) -> float | None:
        return public_share(self.both, self.a_size)

    @property
    def share_of_b(self) -> float | None:
        return public_share(self.both, self.b_size)


def _totals(profile: DataFrame, members: DataFrame) -> tuple[int, int]:
    """People in the profile, and members of the audience among them (one query)."""
    flagged = (
        members.select(F.col("oneid").cast("string").alias("oneid")).distinct().withColumn("_in", F.lit(1))
    )
    row = (
        profile.select("oneid")
        .join(flagged, "oneid", "left")
        .agg(F.count("*").alias("population"), F.count("_in").alias("members"))
        .collect()[0]
    )
    return int(row["population"]), int(row["members"] or 0)


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

    Counts below ``settings.min_group_size`` (k) are shown as ``"< k"`` and lose their share and TGI; counts
    that would give such a cell away are withheld (:func:`audiences.insight.public_insight_rows`).

    Args:
        spark: the session.
        settings: the deployment's settings (``min_group_size``).
        audience_id: the audience id.
        version: the version; the latest when omitted.
        max_values: values kept per tag (the most frequent in the population).
        top: keep only the first ``top`` rows (defining traits first).

    Raises:
        UnknownAudienceError: no such audience or version.
        GroupTooSmallError: the version holds fewer than ``settings.min_group_size`` people.
        MissingDataError: no profile on or before the version's dt.
    """
    started = time.perf_counter()
    ctx = AudienceContext.open(spark, settings)
    v = find_version(ctx, audience_id, version)
    k = settings.min_group_size
    if v.size < k:
        raise GroupTooSmallError(
            f"{v.audience_id}@{v.version} holds fewer than {k:,} people: insight describes groups of at "
            f"least {k:,} (CDP_MIN_GROUP_SIZE) so that no one person can be singled out. Widen the audience."
        )
    profile = ctx.profile(parse_dt(v.dt))
    mem = ctx.version_members(v.audience_id, v.version).select("oneid")
    kinds = insight_columns(profile.columns)
    edges = numeric_edges(profile.frame, kinds)
    population, in_profile = _totals(profile.frame, mem)
    pdf = profile.frame.transform(build_insight(mem, kinds, edges, max_values=max_values)).toPandas()
    shown = public_insight_rows(pdf.to_dict("records"), k, in_profile, population)
    rows = [
        InsightRow(
            r["tag"],
            r["value"],
            r["audience_count"],
            r["audience_share"],
            r["population_count"],
            r["population_share"],
            r["tgi"],
        )
        for r in shown
    ]
    return Insight(
        audience_id=v.audience_id,
        version=v.version,
        dt=profile.dt.isoformat(),
        size=v.size,
        population=population,
        coverage=public_coverage(v.id_type_counts, v.size, k),
        rows=rows[:top] if top else rows,
        seconds=round(time.perf_counter() - started, 3),
    )


def overlap(spark: SparkSession, settings: Settings, a: str, b: str) -> Overlap:
    """Overlap of two audiences, each group shown only from ``settings.min_group_size`` people up.

    Args:
        spark: the session.
        settings: the deployment's settings (``min_group_size``).
        a: the first audience, ``id`` (latest version) or ``id@version``.
        b: the second, likewise.

    Raises:
        UnknownAudienceError: no such audience or version.
    """
    ctx = AudienceContext.open(spark, settings)
    va, vb = find_ref(ctx, a), find_ref(ctx, b)
    counts = overlap_counts(
        ctx.version_members(va.audience_id, va.version), ctx.version_members(vb.audience_id, vb.version)
    )
    shown = public_overlap(counts, settings.min_group_size)
    return Overlap(
        f"{va.audience_id}@{va.version}",
        f"{vb.audience_id}@{vb.version}",
        shown["a"],
        shown["b"],
        shown["both"],
        shown["either"],
    )
