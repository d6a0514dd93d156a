"""Creator (达人/KOL) marketing: features from the creator statistics and the 2P engagement, the audience of
each creator and its TGI, matching creators to a target audience, and the high-potential model.

Pure DataFrame transforms and driver-side models; ``jobs.creators`` reads and writes the tables.
"""

from creators.audience import PROFILE_TAGS, build_audience_sizes, build_audience_tags, build_engagers
from creators.content import (
    CONTENT_FEATURES,
    ContentEvaluation,
    ContentSignalError,
    build_content_rows,
    build_content_scores,
    evaluate_content,
    extrapolation_ratio,
    fit_content_model,
)
from creators.features import (
    MODEL_FEATURES,
    build_day_number,
    latest_snapshots,
    with_daily_features,
    with_future_growth,
)
from creators.match import CreatorMatch, build_match_counts, match_reasons, rank_creators
from creators.potential import (
    PotentialError,
    PotentialEvaluation,
    build_scores,
    evaluate,
    fit_model,
    precision_at_k,
    top_k,
    training_rows,
)

__all__ = [
    "CONTENT_FEATURES",
    "MODEL_FEATURES",
    "PROFILE_TAGS",
    "ContentEvaluation",
    "ContentSignalError",
    "CreatorMatch",
    "PotentialError",
    "PotentialEvaluation",
    "build_audience_sizes",
    "build_audience_tags",
    "build_content_rows",
    "build_content_scores",
    "build_day_number",
    "build_engagers",
    "build_match_counts",
    "build_scores",
    "evaluate",
    "evaluate_content",
    "extrapolation_ratio",
    "fit_content_model",
    "fit_model",
    "latest_snapshots",
    "match_reasons",
    "precision_at_k",
    "rank_creators",
    "top_k",
    "training_rows",
    "with_daily_features",
    "with_future_growth",
]
