"""API routes under ``/api``: access checks, request models and answers. The work is in
:mod:`apps.web.backend` (tags, audiences, packs) and :mod:`cdp.sql` (analyst SQL); the application's shared
state comes from :mod:`apps.web.state`. Routes never import the app that includes them."""

from __future__ import annotations

import shutil
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

# Named by module, not ``from apps.web import backend``: the package's __init__ imports the app, which
# imports these routes.
import apps.web.backend as backend
from apps.web.auth import ROLES, Principal
from apps.web.models import (
    MAX_LOOKALIKE_SIZE,
    AudienceListOut,
    AudienceOut,
    AudiencePageOut,
    ErrorOut,
    EstimateOut,
    ManifestOut,
    SqlOut,
    TaskOut,
    jsonable,
)
from apps.web.security import ADMINS, ANY, EDITORS, EXPORTERS, SQL_USERS, client_of
from apps.web.state import web_state

router = APIRouter(
    responses={
        401: {"model": ErrorOut, "description": "Missing or unknown token"},
        403: {"model": ErrorOut, "description": "The token's role may not do this"},
        422: {"model": ErrorOut, "description": "Invalid input, with the reason"},
    }
)

PERMISSIONS = {
    "admin": ["catalog", "audiences.read", "audiences.write", "packs.export", "packs.raw", "sql", "audit"],
    "marketer": ["catalog", "audiences.read", "audiences.write", "packs.export"],
    "analyst": ["catalog", "audiences.read", "sql"],
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- session ---------------------------------------------------------------------------------------------


@router.get("/health", tags=["session"], summary="Liveness (no token needed, no data)")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/me", tags=["session"], summary="The caller's name, role and permissions")
def me(principal: Annotated[Principal, Depends(ANY)]) -> dict[str, Any]:
    return {
        "name": principal.name,
        "role": principal.role,
        "token_id": principal.token_id,
        "permissions": PERMISSIONS[principal.role],
        "roles": list(ROLES),
    }


# ---- tags ------------------------------------------------------------------------------------------------


@router.get("/tags", tags=["tags"], summary="Search the tag catalog (Chinese or English name, id, layer)")
def list_tags(
    request: Request,
    principal: Annotated[Principal, Depends(ANY)],
    q: Annotated[
        str | None, Query(max_length=100, description="Part of the id, name or Chinese name")
    ] = None,
    layer: Annotated[str | None, Query(description="raw, fact, model or predictive")] = None,
) -> dict[str, Any]:
    return jsonable(backend.list_tags(web_state(request), q=q, layer=layer))


@router.get("/tags/{tag_id}", tags=["tags"], summary="One tag: definition, coverage and value distribution")
def get_tag(tag_id: str, request: Request, principal: Annotated[Principal, Depends(ANY)]) -> dict[str, Any]:
    return jsonable(backend.get_tag(web_state(request), tag_id))


# ---- audiences -------------------------------------------------------------------------------------------


class EstimateBody(_Body):
    rule: dict[str, Any] | list[Any] = Field(
        description='A rule, e.g. {"all": [{"tag": "gender", "op": "=", "value": "F"}]}',
        examples=[{"all": [{"tag": "gender", "op": "=", "value": "F"}]}],
    )
    dt: str | None = Field(default=None, description="Profile date YYYY-MM-DD (latest when omitted)")


class AudienceBody(EstimateBody):
    name: str = Field(min_length=1, max_length=120, description="Audience name (人群名称)")
    description: str = Field(default="", max_length=2000)
    audience_id: str | None = Field(
        default=None, description="Save as a new version of this audience instead of a new audience"
    )
    new_version: bool = Field(
        default=False,
        description="Save as a new version of the audience with this name; without it an existing name is "
        "refused with 409",
    )


@router.post(
    "/audiences/estimate",
    tags=["audiences"],
    summary="Size of a rule's audience, without saving",
    response_model=EstimateOut,
)
def estimate(body: EstimateBody, request: Request, principal: Annotated[Principal, Depends(ANY)]):
    return jsonable(backend.estimate(web_state(request), body.rule, dt=body.dt))


@router.get(
    "/audiences",
    tags=["audiences"],
    summary="Saved audiences with their latest version",
    response_model=AudienceListOut,
)
def list_audiences(request: Request, principal: Annotated[Principal, Depends(ANY)]) -> dict[str, Any]:
    return jsonable(backend.list_audiences(web_state(request)))


@router.post(
    "/audiences",
    tags=["audiences"],
    status_code=201,
    summary="Save a rule as an audience (or new version)",
    response_model=AudienceOut,
    responses={409: {"model": ErrorOut, "description": "The name exists: ask for new_version"}},
)
def create_audience(body: AudienceBody, request: Request, principal: Annotated[Principal, Depends(EDITORS)]):
    out = jsonable(
        backend.create_audience(
            web_state(request),
            name=body.name,
            rule=body.rule,
            description=body.description,
            audience_id=body.audience_id,
            dt=body.dt,
            principal=principal,
            new_version=body.new_version,
        )
    )
    # A size below the minimum group size is "< k" in the answer; the audit row then records no row count.
    request.state.audit_rows = out["size"] if isinstance(out["size"], int) else None
    return out


@router.get(
    "/audiences/{audience_id}",
    tags=["audiences"],
    summary="An audience: versions and size over time",
    response_model=AudiencePageOut,
)
def get_audience(audience_id: str, request: Request, principal: Annotated[Principal, Depends(ANY)]):
    return jsonable(backend.get_audience(web_state(request), audience_id))


@router.get(
    "/audiences/{audience_id}/insight", tags=["audiences"], summary="TGI per tag value and ID-type coverage"
)
def insight(
    audience_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(ANY)],
    version: Annotated[int | None, Query(ge=1)] = None,
):
    return jsonable(backend.insight(web_state(request), audience_id, version=version))


@router.get("/audiences/{audience_id}/overlap", tags=["audiences"], summary="Overlap with another audience")
def overlap(
    audience_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(ANY)],
    other: Annotated[str, Query(min_length=1, description="The other audience's id")],
):
    return jsonable(backend.overlap(web_state(request), audience_id, other))


class LookalikeBody(_Body):
    size: int = Field(
        ge=1,
        le=MAX_LOOKALIKE_SIZE,
        description="How many people the expanded audience should hold (at most the consented people left)",
    )
    version: int | None = Field(default=None, ge=1, description="Seed version (latest when omitted)")
    name: str | None = Field(default=None, max_length=120, description="Name of the expanded audience")


@router.post(
    "/audiences/{audience_id}/lookalike",
    tags=["audiences"],
    status_code=202,
    summary="Start a lookalike expansion in the background; poll /api/tasks/{task_id}",
    response_model=TaskOut,
)
def lookalike(
    audience_id: str, body: LookalikeBody, request: Request, principal: Annotated[Principal, Depends(EDITORS)]
):
    web = web_state(request)
    backend.check_lookalike(web, audience_id, body.size, version=body.version)
    task = web.tasks.submit(
        "lookalike",
        (principal.token_id, principal.name),
        backend.lookalike,
        web,
        audience_id,
        size=body.size,
        version=body.version,
        name=body.name,
        principal=principal,
    )
    return task.as_dict()


class SeedBody(_Body):
    name: str = Field(min_length=1, max_length=120)
    id_type: str = Field(description="ID type of every line: phone, email, oaid, idfa, imei, member_id, ...")
    identifiers: str = Field(
        description="One identifier per line (a seed list: 种子人群)", max_length=20_000_000
    )


@router.post(
    "/audiences/seed",
    tags=["audiences"],
    status_code=201,
    summary="Create an audience from an identifier list",
    response_model=AudienceOut,
)
def seed_audience(body: SeedBody, request: Request, principal: Annotated[Principal, Depends(EDITORS)]):
    return jsonable(
        backend.seed_audience(
            web_state(request),
            name=body.name,
            id_type=body.id_type,
            text=body.identifiers,
            principal=principal,
        )
    )


# ---- packs -----------------------------------------------------------------------------------------------


@router.get("/destinations", tags=["packs"], summary="Destinations and the ID types each accepts")
def destinations(request: Request, principal: Annotated[Principal, Depends(ANY)]):
    return jsonable(backend.destinations(web_state(request), principal))


class ExportBody(_Body):
    destination: str = Field(min_length=1, description="Ad platform or channel, see /api/destinations")
    id_types: list[str] = Field(min_length=1, description="ID types to include (hashed forms for marketers)")
    version: int | None = Field(default=None, ge=1)


@router.post(
    "/audiences/{audience_id}/packs",
    tags=["packs"],
    status_code=201,
    summary="Export an audience pack (人群包) for a destination; audited",
    response_model=ManifestOut,
)
def export_pack(
    audience_id: str, body: ExportBody, request: Request, principal: Annotated[Principal, Depends(EXPORTERS)]
):
    return jsonable(
        backend.export_pack(
            web_state(request),
            audience_id,
            destination=body.destination,
            id_types=body.id_types,
            version=body.version,
            principal=principal,
            client=client_of(request),
        )
    )


@router.get("/packs", tags=["packs"], summary="Exported packs, newest first")
def list_packs(
    request: Request,
    principal: Annotated[Principal, Depends(ANY)],
    audience_id: Annotated[str | None, Query()] = None,
):
    out = jsonable(backend.list_packs(web_state(request), audience_id=audience_id))
    request.state.audit_rows = len(out["packs"])
    return out


@router.get(
    "/packs/{pack_id:path}/manifest",
    tags=["packs"],
    summary="A pack's manifest (counts, checksums)",
    response_model=ManifestOut,
)
def pack_manifest(pack_id: str, request: Request, principal: Annotated[Principal, Depends(ANY)]):
    return jsonable(backend.pack_manifest(web_state(request), pack_id))


@router.get(
    "/packs/{pack_id:path}/download",
    tags=["packs"],
    summary="Download a pack's zip; audited",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
def download_pack(pack_id: str, request: Request, principal: Annotated[Principal, Depends(EXPORTERS)]):
    path = backend.pack_zip(web_state(request), pack_id, principal=principal, client=client_of(request))
    cleanup = BackgroundTask(shutil.rmtree, path.parent, ignore_errors=True)
    return FileResponse(path, media_type="application/zip", filename=path.name, background=cleanup)


# ---- tasks -----------------------------------------------------------------------------------------------


@router.get("/tasks", tags=["tasks"], summary="Background tasks (yours; every task for admins)")
def list_tasks(request: Request, principal: Annotated[Principal, Depends(ANY)]):
    token_id = None if principal.role == "admin" else principal.token_id
    return {"tasks": [jsonable(t.as_dict()) for t in web_state(request).tasks.list(token_id)]}


@router.get(
    "/tasks/{task_id}",
    tags=["tasks"],
    summary="Status, progress and result of a background task",
    response_model=TaskOut,
)
def get_task(task_id: str, request: Request, principal: Annotated[Principal, Depends(ANY)]):
    task = web_state(request).tasks.get(task_id, None if principal.role == "admin" else principal.token_id)
    if task is None:
        raise HTTPException(404, f"no task {task_id!r}")
    return jsonable(task.as_dict())


# ---- sql -------------------------------------------------------------------------------------------------


class SqlBody(_Body):
    query: str = Field(min_length=1, max_length=100_000, examples=["SELECT count(*) FROM gold.oneid_map"])
    limit: int = Field(
        default=1000, ge=1, le=100_000, description="At most this many rows come back (and CDP_SQL_MAX_ROWS)"
    )


@router.get("/sql/tables", tags=["sql"], summary="Lake tables visible to SQL, with their columns")
def sql_tables(request: Request, principal: Annotated[Principal, Depends(SQL_USERS)]):
    from cdp.sql import LakeSQL

    with LakeSQL.from_settings(web_state(request).settings, principal.role) as lake_sql:
        return {
            "tables": [
                {"table": t, "columns": [{"name": n, "type": k} for n, k in lake_sql.describe(t)]}
                for t in lake_sql.tables
            ]
        }


@router.post(
    "/sql",
    tags=["sql"],
    summary="Run one read-only SQL query over the tables and columns the role may read (DuckDB); audited",
    response_model=SqlOut,
)
def run_sql(body: SqlBody, request: Request, principal: Annotated[Principal, Depends(SQL_USERS)]):
    """The same sandbox and access rules as ``cdp sql`` (``cdp.sql``, ``cdp.access``); a refused or failed
    query answers 4xx with the reason and is audited with it."""
    from cdp.sql import LakeSQL, SqlError, SqlRefused

    web = web_state(request)
    try:
        with LakeSQL.from_settings(web.settings, principal.role, memory_limit="1GB") as lake_sql:
            result = lake_sql.query(body.query, limit=body.limit)
    except SqlError as exc:
        web.audit.record(
            principal,
            "sql",
            status="refused" if isinstance(exc, SqlRefused) else "failed",
            detail={"query": body.query[:4000], "reason": str(exc)},
            client=client_of(request),
        )
        raise
    web.audit.record(
        principal,
        "sql",
        rows=result.table.num_rows,
        detail={"query": body.query[:4000], "truncated": result.truncated},
        client=client_of(request),
    )
    return {
        "columns": result.table.column_names,
        "rows": jsonable([list(r.values()) for r in result.table.to_pylist()]),
        "truncated": result.truncated,
        "seconds": round(result.seconds, 4),
    }


# ---- admin -----------------------------------------------------------------------------------------------


@router.get("/audit", tags=["admin"], summary="The latest audit log rows (gold.audit_log)")
def audit(
    request: Request,
    principal: Annotated[Principal, Depends(ADMINS)],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    action: Annotated[
        str | None, Query(max_length=40, description="Filter by action: pack_export, pack_download, sql")
    ] = None,
):
    rows = jsonable(web_state(request).audit.recent(limit, action=action))
    request.state.audit_rows = len(rows)
    return {"rows": rows}
