"""The FastAPI application: JSON API under ``/api`` (OpenAPI at ``/docs``), the web UI at ``/`` and its static
files at ``/static`` (all served from this package: nothing comes from a CDN).

Routes only check access, validate input and translate domain errors into 4xx answers with a reason; the
work is done by the tag catalog (``tags``), the audience package (``audiences``, ``jobs.audiences``) and the
lake catalog, reached through :mod:`apps.web.backend`.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from apps.web.auth import TokenStore
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


class WebState:
    """What the routes share: settings, the engine session (started on first use), tasks and the audit log."""

    def __init__(self, settings: Settings, spark: SparkSession | None = None) -> None:
        from apps.web.tasks import TaskRunner

        self.settings = settings
        self._spark = spark
        self._lock = threading.Lock()
        self._lake = None
        self._audit = None
        self.tasks = TaskRunner(workers=1, expected_errors=_expected_errors())

    @property
    def spark(self) -> SparkSession:
        with self._lock:
            if self._spark is None:
                from cdp.engine import get_spark

                self._spark = get_spark(self.settings)
            return self._spark

    @property
    def lake(self):
        from cdp.lake import Lake

        if self._lake is None:
            self._lake = Lake(self.spark, self.settings.lake_root)
        return self._lake

    @property
    def audit(self):
        from apps.web.audit import AuditLog

        if self._audit is None:
            self._audit = AuditLog(self.lake)
        return self._audit


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Domain errors whose message is meant for the user (shown as a 4xx reason or a task's error)."""
    from apps.web.backend import WebError
    from cdp.lake import LakeError
    from cdp.sql import SqlError

    errors: list[type[BaseException]] = [LakeError, SqlError, WebError]
    try:
        from audiences.errors import AudienceError

        errors.append(AudienceError)
    except ImportError:  # the audience package is optional for the SQL and catalog endpoints
        pass
    try:
        from tags.catalog import CatalogError

        errors.append(CatalogError)
    except ImportError:
        pass
    return tuple(errors)


def _status_of(exc: BaseException) -> int:
    """The HTTP status of a domain error: 404 for things that do not exist, 409 for missing upstream data,
    422 for everything the caller can fix in the request."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    name = type(exc).__name__
    if name == "UnknownAudienceError":
        return 404
    if name in ("MissingDataError", "CatalogError"):
        return 409
    return 422


def create_app(
    settings: Settings | None = None,
    *,
    tokens: TokenStore | None = None,
    spark: SparkSession | None = None,
) -> FastAPI:
    """Build the web application.

    Args:
        settings: lake, packs and engine settings; ``Settings.from_env()`` when omitted.
        tokens: the token store; ``<data root>/web/tokens.json`` and ``CDP_WEB_TOKENS`` when omitted.
        spark: the engine session; started on the first request that needs it when omitted.

    Returns:
        The FastAPI app (serve it with uvicorn, or test it with ``fastapi.testclient.TestClient``).
    """
    from apps.web import routes

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
    expected = _expected_errors()

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
            return JSONResponse({"detail": str(exc)}, status_code=_status_of(exc))
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; the service log has the details"}, status_code=500)

    # Domain errors raised in sync routes arrive here through the generic handler above; registering the
    # classes explicitly keeps them out of the server error log.
    for cls in expected:

        async def _domain(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=_status_of(exc))

        app.add_exception_handler(cls, _domain)

    app.include_router(routes.router, prefix="/api")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return app


def client_of(request: Request) -> str | None:
    """The client address, for the audit log."""
    return request.client.host if request.client else None


def jsonable(value: Any) -> Any:
    """Dates, decimals and numpy scalars as plain JSON values."""
    import datetime as _dt
    import decimal

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    if isinstance(value, bytes):
        return value.hex()
    return value
