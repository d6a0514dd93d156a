"""API routes under ``/api/creators``: creator (达人) marketing for marketers and analysts.

The work is in :mod:`jobs.creators`; these routes check the role, validate the input and turn a
``CreatorsError`` into its 4xx answer. Every count of people in an answer is shown from k
(``CDP_MIN_GROUP_SIZE``) up, as in the rest of the API, and the audit middleware records every request.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from apps.web.auth import Principal
from apps.web.models import ErrorOut, jsonable
from apps.web.security import ANY, EDITORS
from apps.web.state import web_state

router = APIRouter(
    prefix="/creators",
    tags=["creators"],
    responses={
        401: {"model": ErrorOut, "description": "Missing or unknown token"},
        403: {"model": ErrorOut, "description": "The token's role may not do this"},
        409: {
            "model": ErrorOut,
            "description": "The lake lacks the creator tables: run `cdp creators build`",
        },
        422: {"model": ErrorOut, "description": "Invalid input, with the reason"},
    },
)


def _call(function, *args: Any, **kwargs: Any) -> Any:
    from jobs.creators import CreatorsError

    try:
        return function(*args, **kwargs)
    except CreatorsError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.get("/potential", summary="High-potential creators (高潜达人): predicted 30-day follower growth")
def potential(
    request: Request,
    principal: Annotated[Principal, Depends(ANY)],
    top: Annotated[int, Query(ge=1, le=500)] = 20,
    category: Annotated[list[str] | None, Query(max_length=20)] = None,
) -> dict[str, Any]:
    from jobs import creators as job

    web = web_state(request)
    out = _call(job.potential, web.spark, web.settings, top=top, category=category or ())
    return jsonable(asdict(out))


@router.get("/content", summary="Live contents worth boosting (内容加热): final engagement from 3 days")
def content(
    request: Request,
    principal: Annotated[Principal, Depends(ANY)],
    top: Annotated[int, Query(ge=1, le=500)] = 20,
    creator: Annotated[list[str] | None, Query(max_length=50)] = None,
) -> dict[str, Any]:
    from jobs import creators as job

    web = web_state(request)
    return jsonable(asdict(_call(job.content, web.spark, web.settings, top=top, creator_ids=creator or ())))


@router.get("/match", summary="Creators ranked for a target audience, with reasons and costs (达人匹配)")
def match(
    request: Request,
    principal: Annotated[Principal, Depends(ANY)],
    audience: Annotated[
        str, Query(min_length=1, max_length=200, description="Audience id, name or id@version")
    ],
    category: Annotated[list[str] | None, Query(max_length=20)] = None,
    budget: Annotated[float | None, Query(gt=0, description="Total price of the posts, CNY")] = None,
    top: Annotated[int, Query(ge=1, le=500)] = 20,
) -> dict[str, Any]:
    from jobs import creators as job

    web = web_state(request)
    out = _call(
        job.match, web.spark, web.settings, audience, categories=category or (), budget=budget, top=top
    )
    request.state.audit_rows = len(out.creators)
    return jsonable(asdict(out))


@router.get("/{creator_id}", summary="One creator: features, audience TGI per tag value, follower trend")
def creator(
    creator_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(ANY)],
    days: Annotated[int, Query(ge=7, le=365)] = 90,
) -> dict[str, Any]:
    from jobs import creators as job

    web = web_state(request)
    return jsonable(asdict(_call(job.creator, web.spark, web.settings, creator_id, days=days)))


class SeedBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120, description="Name of the seeding audience (种草人群)")
    creators: list[str] = Field(min_length=1, max_length=200, description="Creator ids")
    within_days: int = Field(default=30, ge=1, le=365)


@router.post(
    "/seed",
    status_code=201,
    summary="Save the engaged people of chosen creators as an audience (export: /api/audiences/{id}/packs)",
)
def seed(
    body: SeedBody, request: Request, principal: Annotated[Principal, Depends(EDITORS)]
) -> dict[str, Any]:
    from apps.web.backend import _version_dict
    from jobs import creators as job

    web = web_state(request)
    version, _ = _call(
        job.seed,
        web.spark,
        web.settings,
        body.creators,
        name=body.name,
        within_days=body.within_days,
        created_by=principal.name,
    )
    return jsonable(_version_dict(version, web.settings.min_group_size))
