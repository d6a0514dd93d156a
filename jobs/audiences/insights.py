"""Who is in an audience: insight (size, coverage per ID type, tag values by TGI against the population) and
the overlap of two audiences.

    gold.audience_members (version) + gold.profile (the version's dt) -> tag values by TGI -> Insight
    gold.audience_members (version a) + (version b) -> sizes, intersection, union -> Overlap
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from audiences.insight import build_insight, insight_columns, numeric_edges, overlap_counts
from cdp.lake import parse_dt
from jobs.audiences.context import AudienceContext
from jobs.audiences.registry import find_ref, find_version

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from cdp.settings import Settings


@dataclass
class InsightRow:
    """One tag value: its count and share in the audience and in the population, and its TGI."""

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
    """Two audience versions (``id@version``), their sizes, intersection and union."""

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
        spark: the session.
        settings: the deployment's settings.
        audience_id: the audience id.
        version: the version; the latest when omitted.
        max_values: values kept per tag (the most frequent in the population).
        top: keep only the first ``top`` rows (defining traits first).

    Raises:
        UnknownAudienceError: no such audience or version.
        MissingDataError: no profile on or before the version's dt.
    """
    started = time.perf_counter()
    ctx = AudienceContext.open(spark, settings)
    v = find_version(ctx, audience_id, version)
    profile = ctx.profile(parse_dt(v.dt))
    mem = ctx.version_members(v.audience_id, v.version).select("oneid")
    kinds = insight_columns(profile.columns)
    edges = numeric_edges(profile.frame, kinds)
    pdf = profile.frame.transform(build_insight(mem, kinds, edges, max_values=max_values)).toPandas()
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
    return Insight(
        audience_id=v.audience_id,
        version=v.version,
        dt=profile.dt.isoformat(),
        size=v.size,
        population=profile.frame.count(),
        coverage=v.id_type_counts,
        rows=rows[:top] if top else rows,
        seconds=round(time.perf_counter() - started, 3),
    )


def overlap(spark: SparkSession, settings: Settings, a: str, b: str) -> Overlap:
    """Overlap of two audiences.

    Args:
        spark: the session.
        settings: the deployment's settings.
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
    return Overlap(
        f"{va.audience_id}@{va.version}",
        f"{vb.audience_id}@{vb.version}",
        counts["a"],
        counts["b"],
        counts["both"],
        counts["either"],
    )
