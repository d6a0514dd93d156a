"""The groups of a campaign's packs: the control group kept out of a pack at export, and both groups stored
for the lift (``gold.campaign_holdouts``). Called by the pack export (:mod:`jobs.audiences.exports`) when an
export names a campaign; :mod:`jobs.effect` reads the groups.

    pack lines (consent-filtered, one row per identifier) -- hash(campaign, OneID) < share, or stored as
        control of the campaign before --> control (left out of the pack)
    pack members and control --> gold.campaign_holdouts (replacing the rows of that pack of the campaign)
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from cdp.lake import Lake
from effect import control_oneids, holdout_score

if TYPE_CHECKING:
    import pandas as pd

HOLDOUTS = "gold.campaign_holdouts"


def hold_out(
    lake: Lake, frame: pd.DataFrame, campaign_id: str, share: float
) -> tuple[pd.DataFrame, set[str]]:
    """Keep a campaign's control group out of a pack's lines (:mod:`effect.holdout`).

    Args:
        lake: the lake (for the control already stored for the campaign, which stays out).
        frame: the pack lines ``(oneid, id_type, platform_type, line, reason)`` (consent-filtered).
        campaign_id: the campaign.
        share: the holdout share.

    Returns:
        The lines without the control group, and the control OneIDs (people with at least one line).
    """
    eligible = frame.loc[frame["line"].notna(), "oneid"].astype(str).unique()
    already: list[str] = []
    if lake.exists(HOLDOUTS):
        stored = lake.read(HOLDOUTS).where(
            (F.col("campaign_id") == campaign_id) & (F.col("arm") == "control")
        )
        already = [r[0] for r in stored.select("oneid").distinct().collect()]
    control = control_oneids(eligible, campaign_id, share, already)
    return frame[~frame["oneid"].astype(str).isin(control)], control


def store_groups(
    lake: Lake,
    campaign_id: str,
    pack: tuple[str, int, str],
    treatment: set[str],
    control: set[str],
    share: float,
) -> None:
    """Replace the groups of one pack of a campaign in ``gold.campaign_holdouts``.

    Args:
        lake: the lake.
        campaign_id: the campaign.
        pack: ``(audience_id, version, destination)``.
        treatment: OneIDs in the pack.
        control: OneIDs held out.
        share: the holdout share.
    """
    import pandas as pd

    audience_id, version, destination = pack
    now = _dt.datetime.now(_dt.UTC).replace(tzinfo=None, microsecond=0)
    people = [
        (o, arm) for arm, group in (("treatment", treatment), ("control", control)) for o in sorted(group)
    ]
    pdf = pd.DataFrame(
        {
            "campaign_id": campaign_id,
            "audience_id": audience_id,
            "version": int(version),
            "destination": destination,
            "oneid": [o for o, _ in people],
            "arm": [a for _, a in people],
            "holdout_share": float(share),
            "score": [holdout_score(o, campaign_id) for o, _ in people],
            "created_at": now,
        },
        index=range(len(people)),
    )
    frame = (
        lake.spark.createDataFrame(pdf, lake.contracts[HOLDOUTS].ddl)
        if people
        else lake.spark.createDataFrame([], lake.contracts[HOLDOUTS].ddl)
    )
    with lake.lock(HOLDOUTS):
        if lake.exists(HOLDOUTS):
            lake.delete(
                HOLDOUTS,
                f"campaign_id = '{_sql(campaign_id)}' AND audience_id = '{_sql(audience_id)}' "
                f"AND version = {int(version)} AND destination = '{_sql(destination)}'",
            )
        lake.append(HOLDOUTS, frame)


def _sql(text: str) -> str:
    return str(text).replace("'", "''")
