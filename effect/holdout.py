"""Holdout at export: a stable, reproducible control group kept out of a campaign's packs.

A OneID is in the control group of a campaign when a hash of the campaign id and the OneID falls below
the campaign's holdout share. The hash depends on nothing else, so the same person is held out of every
pack of the same campaign (a later version of the audience, another day's refresh) and never reaches the
platform through it; a person's assignment differs between campaigns, so no one is held out of everything.
The exporting job also keeps OneIDs already stored as control of the campaign out (a share raised later
cannot move them into the pack).

:func:`holdout_score` (Python, for the pack lines on the driver) and :func:`build_holdout_score` (a Spark
column) give the same number for the same OneID and campaign.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pyspark.sql import Column
from pyspark.sql import functions as F

_HEX_DIGITS = 15
_SCALE = float(16**_HEX_DIGITS)


def _key(campaign_id: str, oneid: object) -> str:
    return f"holdout:{campaign_id}:{oneid}"


def holdout_score(oneid: object, campaign_id: str) -> float:
    """A number in [0, 1) fixed by the campaign and the OneID: the OneID is control below the share."""
    digest = hashlib.sha256(_key(campaign_id, oneid).encode("utf-8")).hexdigest()
    return int(digest[:_HEX_DIGITS], 16) / _SCALE


def build_holdout_score(oneid: Column, campaign_id: str) -> Column:
    """:func:`holdout_score` as a Spark column over ``oneid`` (cast to string)."""
    digest = F.sha2(F.concat(F.lit(f"holdout:{campaign_id}:"), oneid.cast("string")), 256)
    return F.conv(F.substring(digest, 1, _HEX_DIGITS), 16, 10).cast("double") / F.lit(_SCALE)


def control_oneids(
    oneids: Iterable[object], campaign_id: str, share: float, already: Iterable[object] = ()
) -> set[str]:
    """The OneIDs of ``oneids`` held out of a pack of ``campaign_id`` (as strings).

    Args:
        oneids: the people who would be in the pack (consent-filtered, with at least one line).
        campaign_id: the campaign.
        share: the holdout share, 0 <= share < 1 (0: nobody held out).
        already: OneIDs stored as control of this campaign by earlier exports; they stay out.
    """
    kept_out = {str(o) for o in already}
    if share <= 0:
        return {str(o) for o in oneids if str(o) in kept_out}
    return {str(o) for o in oneids if str(o) in kept_out or holdout_score(o, campaign_id) < share}
