"""The FastAPI application: JSON API under ``/api`` (OpenAPI at ``/docs``), the web UI at ``/`` and its static
files at ``/static`` (all served from this package: nothing comes from a CDN).

Routes (:mod:`apps.web.routes`) only check access, validate input and translate domain errors into 4xx answers
with a reason; the work is done by the tag catalog (``tags``), the audience package (``audiences``,
``jobs.audiences``) and the lake catalog, reached through :mod:`apps.web.backend`. This module builds the app,
its shared state (:mod:`apps.web.state`) and its error answers (:mod:`apps.web.errors`); nothing imports it
but the package and ``cdp serve``.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from apps.web.auth import TokenStore
from apps.web.errors import expected_errors, status_of
from apps.web.routes import router
from apps.web.state import WebState
from cdp.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"

TAGS_METADATA = [
    {"name": "session", "description": "Who am I (role and permissions); health."},
    {"name": "tags", "description": "The tag catalog: search, layers, coverage and distributions."},
    {"name": "audiences", "description": "Estimate, save, version, insight, overlap and lookalike."},
    {
        "name": "packs",
        "description": "Export audience packs (人群包) for a destination, manifest, zip download.",
    },
    {"name": "tasks", "description": "Status of long tasks (lookalike, export) started by other endpoints."},
    {"name": "sql", "description": "Analyst SQL over every lake table (DuckDB over Delta snapshots)."},
    {"name": "admin", "description": "The audit log."},
]


def create_app(
    settings: Settings | None = None,
    *,
    tokens: TokenStore | None = None,
    spark: SparkSession | None = None,
) -> FastAPI:
    """Build the web application.

    Args:
        settings: lake, packs and engine settings; ``Settings.from_env()`` when omitted.
        tokens: the token store; ``TokenStore.from_settings(settings)`` (the token file and the injected
            ``CDP_WEB_TOKENS``) when omitted.
        spark: the engine session; started on the first request that needs it when omitted.

    Returns:
        The FastAPI app (serve it with uvicorn, or test it with ``fastapi.testclient.TestClient``).
    """
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        app.state.web.tasks.shutdown()

    app = FastAPI(
        lifespan=lifespan,
        title="CDP audiences",
        version="1.0",
        summary="Tag catalog, audiences, lookalike and audience packs (人群包); analyst SQL over the lake.",
        description=(
            "Every `/api` route needs `Authorization: Bearer <token>` (create tokens with "
            "`cdp serve --init-tokens` or `cdp token create --role admin|marketer|analyst`). "
            'Errors are JSON `{"detail": reason}`: 401 missing or unknown token, 403 role not allowed, '
            "404 unknown object, 409 the lake lacks data the action needs, 422 invalid input."
        ),
        openapi_tags=TAGS_METADATA,
    )
    app.state.tokens = tokens or TokenStore.from_settings(settings)
    app.state.web = WebState(settings, spark)
    _add_error_answers(app)
    app.include_router(router, prefix="/api")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return app


def _add_error_answers(app: FastAPI) -> None:
    """Every error as JSON ``{"detail": reason}``: invalid requests and domain errors with their reason,
    anything unexpected as a 500 whose details stay in the service log."""
    expected = expected_errors()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            reasons.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return JSONResponse({"detail": "; ".join(reasons) or "invalid request"}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, expected):
            return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; the service log has the details"}, status_code=500)

    # Domain errors raised in sync routes arrive here through the generic handler above; registering the
    # classes explicitly keeps them out of the server error log.
    async def _domain(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))

    for cls in expected:
        app.add_exception_handler(cls, _domain)
