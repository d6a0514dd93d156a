"""API routes of the effect analysis under ``/api``: register and list campaigns, run the effect stage, read
a campaign's or an audience's report (side by side with another). The work is in :mod:`jobs.effect`.

Counts of people below the minimum group size (``CDP_MIN_GROUP_SIZE``) come back as ``"< k"``, the rule of
every other people count of the service (:func:`audiences.insight.public_count`).
"""

from __future__ import annotations

import datetime as _dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from apps.web.auth import Principal
from apps.web.models import jsonable
from apps.web.security import ANY, EDITORS
from apps.web.state import web_state

router = APIRouter(tags=["effect"])

PEOPLE = (
    "members",
    "control",
    "reach",
    "clickers",
    "buyers",
    "exposed",
    "clicked",
    "visited",
    "carted",
    "purchased",
)


class CampaignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: str = Field(description="The platform's campaign id (campaign_id of the delivery logs)")
    media: str = Field(description="oceanengine / tencent / kuaishou / baidu / ...")
    pack: str = Field(
        description="<audience>/v<N>/<destination>", examples=["interested_not_bought/v1/oceanengine"]
    )
    start: _dt.date
    end: _dt.date
    budget: float | None = None
    holdout: float = Field(default=0.0, description="Share of the audience kept out of the pack as control")
    attribution_window_days: int = 7
    name: str | None = None
    export_pack: bool = Field(default=True, description="Write the pack with the holdout now (False: later)")


class RunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dt: _dt.date


def _errors(call):
    """Run a job call; its domain errors become 404 (unknown), 409 (no data yet) or 422 (invalid input)."""
    from audiences.errors import AudienceError
    from effect import CampaignError, EffectError, UnknownCampaignError

    try:
        return call()
    except UnknownCampaignError as exc:
        raise HTTPException(404, str(exc)) from None
    except CampaignError as exc:
        raise HTTPException(422, str(exc)) from None
    except EffectError as exc:
        raise HTTPException(409, str(exc)) from None
    except AudienceError:
        raise  # the app answers audience errors with their own status


def public_report(report: dict[str, Any], k: int) -> dict[str, Any]:
    """A report with every people count below ``k`` shown as ``"< k"``."""
    from audiences.insight import public_count

    out = dict(report)
    out["summary"] = [
        {c: public_count(v, k) if c in PEOPLE else v for c, v in s.items()} for s in report["summary"]
    ]
    out["lift"] = [
        x | {"treatment_n": public_count(x["treatment_n"], k), "control_n": public_count(x["control_n"], k)}
        for x in report["lift"]
    ]
    out["aipl"] = [a | {"people": public_count(a["people"], k)} for a in report["aipl"]]
    out["daily"] = [
        d | {"reach": public_count(d["reach"], k), "clickers": public_count(d["clickers"], k)}
        for d in report["daily"]
    ]
    return out


@router.get("/campaigns", summary="Registered campaigns (gold.campaigns)")
def list_campaigns(request: Request, principal: Annotated[Principal, Depends(ANY)]) -> dict[str, Any]:
    import dataclasses

    from jobs import effect

    state = web_state(request)
    campaigns = effect.list_campaigns(state.spark, state.settings)
    return jsonable({"campaigns": [dataclasses.asdict(c) | {"pack": str(c.pack)} for c in campaigns]})


@router.post("/campaigns", status_code=201, summary="Register a campaign on a pack (with its holdout)")
def register_campaign(
    body: CampaignBody, request: Request, principal: Annotated[Principal, Depends(EDITORS)]
) -> dict[str, Any]:
    from jobs import effect

    state = web_state(request)
    document = body.model_dump(exclude={"export_pack"})
    result = _errors(
        lambda: effect.register(
            state.spark, state.settings, document, registered_by=principal.name, export_pack=body.export_pack
        )
    )
    return jsonable(
        {
            "campaign_id": result.campaign.campaign_id,
            "exported": result.exported,
            "pack_path": result.pack_path,
            "lines": result.lines(),
        }
    )


@router.post("/effect/run", summary="Measure every campaign up to a date (the daily effect stage)")
def run_effect(
    body: RunBody, request: Request, principal: Annotated[Principal, Depends(EDITORS)]
) -> dict[str, Any]:
    from jobs import effect

    state = web_state(request)
    report = _errors(lambda: effect.run(state.spark, state.settings, body.dt))
    return jsonable({"dt": report.dt, "campaigns": report.campaigns, "lines": report.lines()})


@router.get(
    "/effect/{key}", summary="A campaign's (or an audience's) report: cost, funnel, lift, daily trend"
)
def effect_report(
    key: str,
    request: Request,
    principal: Annotated[Principal, Depends(ANY)],
    compare: Annotated[str | None, Query(max_length=200, description="Another campaign or audience")] = None,
    dt: Annotated[_dt.date | None, Query(description="The run date; the latest when omitted")] = None,
) -> dict[str, Any]:
    from jobs import effect

    state = web_state(request)
    k = state.settings.min_group_size
    reports = [
        public_report(_errors(lambda x=x: effect.report(state.spark, state.settings, x, dt=dt)), k)
        for x in [key, *([compare] if compare else [])]
    ]
    return jsonable({"reports": reports, "min_group_size": k})
