"""Layered tags (raw -> fact -> model -> predictive) from a declarative catalog: definitions in
``tags/catalog/*.yaml``, validated into an ordered plan without an engine, built by ``jobs.tags``."""

from tags.catalog import (
    LAYERS,
    VIEWS,
    Catalog,
    CatalogError,
    TagDefinition,
    load_catalog,
    load_definitions,
    plan_catalog,
)
from tags.functions import RFM_SEGMENTS, build_rfm_score, build_rfm_segment

__all__ = [
    "LAYERS",
    "RFM_SEGMENTS",
    "VIEWS",
    "Catalog",
    "CatalogError",
    "TagDefinition",
    "build_rfm_score",
    "build_rfm_segment",
    "load_catalog",
    "load_definitions",
    "plan_catalog",
]
