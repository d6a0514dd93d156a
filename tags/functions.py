"""Packaged model functions a tag definition can name (``function:`` + ``params:``): RFM scores and the
eight RFM segments. Each returns a Column over the wide frame (population-wide windows, no Python UDFs).
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

RFM_SEGMENTS = {
    "HHH": "重要价值",
    "LHH": "重要保持",
    "HLH": "重要发展",
    "LLH": "重要挽留",
    "HHL": "一般价值",
    "LHL": "一般保持",
    "HLL": "一般发展",
    "LLL": "一般挽留",
}
"""RFM code (R, F, M each High/Low; R high = bought recently) -> segment name."""
RFM_SEGMENTS_EN = {
    "重要价值": "important value",
    "重要保持": "important retain",
    "重要发展": "important develop",
    "重要挽留": "important win-back",
    "一般价值": "general value",
    "一般保持": "general retain",
    "一般发展": "general develop",
    "一般挽留": "general win-back",
}


def build_rfm_score(of: str, order: str, *, bins: int = 5, scope: str | None = None) -> Column:
    """Quantile score 1..``bins`` of tag ``of`` among the OneIDs in ``scope`` (NULL outside).

    The score is ``ceil(bins * cume_dist)``: equal values share a score, the best gets ``bins``. ``order``
    ``asc`` makes larger values better (frequency, monetary); ``desc`` makes smaller values better
    (recency in days: bought most recently scores 5).
    """
    scope_sql = scope or f"`{of}` IS NOT NULL"
    direction = "ASC" if order == "asc" else "DESC"
    window = f"cume_dist() OVER (PARTITION BY {scope_sql} ORDER BY `{of}` {direction})"
    return F.when(F.expr(scope_sql), F.ceil(F.lit(bins) * F.expr(window)))


def build_rfm_segment(
    recency: str, frequency: str, monetary: str, *, split: str = "mean", scope: str | None = None
) -> Column:
    """The RFM segment name of each OneID in ``scope`` (buyers: ``recency`` not NULL by default).

    Each of R, F and M is High when at least as good as the ``split`` (mean or median) of the scope:
    recency (days since the last purchase) at or below it, frequency and monetary at or above it.
    """
    scope_sql = scope or f"`{recency}` IS NOT NULL"
    agg = "avg" if split == "mean" else "percentile"

    def centre(tag: str) -> Column:
        arg = f"`{tag}`" if agg == "avg" else f"`{tag}`, 0.5"
        return F.expr(f"{agg}({arg}) OVER (PARTITION BY {scope_sql})")

    r = F.when(F.col(recency) <= centre(recency), "H").otherwise("L")
    f = F.when(F.col(frequency) >= centre(frequency), "H").otherwise("L")
    m = F.when(F.col(monetary) >= centre(monetary), "H").otherwise("L")
    code = F.concat(r, f, m)
    names = F.create_map(*[F.lit(x) for kv in RFM_SEGMENTS.items() for x in kv])
    return F.when(F.expr(scope_sql), names[code])


def build_function(name: str, params: dict[str, Any]) -> Column:
    """The Column of a packaged function named in a tag definition (params validated by the catalog)."""
    if name == "rfm_score":
        return build_rfm_score(
            params["of"], params["order"], bins=int(params.get("bins", 5)), scope=params.get("scope")
        )
    if name == "rfm_segment":
        return build_rfm_segment(
            params["recency"],
            params["frequency"],
            params["monetary"],
            split=params.get("split", "mean"),
            scope=params.get("scope"),
        )
    raise ValueError(f"unknown tag function {name!r}")
