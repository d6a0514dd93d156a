"""The FastAPI application: JSON API under ``/api`` (OpenAPI at ``/docs``), the web UI at ``/`` and its static
files at ``/static`` (all served from this package, Swagger UI's files from the ``swagger-ui-py`` package:
nothing comes from a CDN).

Around every request, outermost first: security headers on every answer (a Content-Security-Policy allowing
only this origin, no framing, no MIME sniffing, no referrer, ``Cache-Control: no-store`` on the API); the
audit log (:class:`apps.web.audit.AuditMiddleware`: refused requests and people data); a request body limit
(``Settings.max_request_bytes``, 413 from ``Content-Length`` or while the body streams, before any token is
checked).

Routes (:mod:`apps.web.routes`) only check access, validate input and translate domain errors into 4xx answers
with a reason; the work is done by the tag catalog (``tags``), the audience package (``audiences``,
``jobs.audiences``) and the lake catalog, reached through :mod:`apps.web.backend`. This module builds the app,
its shared state (:mod:`apps.web.state`) and its error answers (:mod:`apps.web.errors`); nothing imports it
but the package and ``cdp serve``.
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from apps.web.audit import AuditMiddleware
from apps.web.auth import TokenStore
from apps.web.creators import router as creators_router
from apps.web.effect import router as effect_router
from apps.web.errors import expected_errors, status_of
from apps.web.routes import router
from apps.web.state import WebState
from cdp.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    # The UI's script and style files come from /static; its elements carry style attributes and its charts
    # are inline SVG, hence 'unsafe-inline' for styles only. Swagger UI draws its icons from data: URIs.
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
DOCS_ASSETS = "/docs/assets"

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
    {"name": "effect", "description": "Campaigns on packs: cost, funnel, attribution and incremental lift."},
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
        app.state.web.open()
        yield
        app.state.web.tasks.shutdown()
        app.state.web.close()  # the buffered audit rows

    app = FastAPI(
        lifespan=lifespan,
        title="CDP audiences",
        version="1.0",
        summary="Tag catalog, audiences, lookalike and audience packs (人群包); analyst SQL over the lake.",
        description=(
            "Every `/api` route needs `Authorization: Bearer <token>` (create tokens with "
            "`cdp serve --init-tokens` or `cdp token create --role admin|marketer|analyst`). "
            'Errors are JSON `{"detail": reason}`: 401 missing or unknown token, 403 role not allowed, '
            "404 unknown object, 409 the lake lacks data the action needs or another run is writing its "
            "tables (try again later), 422 invalid input."
        ),
        openapi_tags=TAGS_METADATA,
        docs_url=None,  # served below from the installed Swagger UI files, not a CDN
        redoc_url=None,  # ReDoc has no offline build installed
    )
    app.state.tokens = tokens or TokenStore.from_settings(settings)
    app.state.web = WebState(settings, spark)
    _add_error_answers(app)
    app.include_router(router, prefix="/api")
    app.include_router(effect_router, prefix="/api")
    app.include_router(creators_router, prefix="/api")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_docs(app)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    # Added innermost first: the body limit runs before the audit. The security headers wrap the whole stack,
    # Starlette's server-error answer (500) included, which sits outside every added middleware.
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(
        AuditMiddleware, audit=lambda: app.state.web.audit, authenticate=app.state.tokens.authenticate
    )
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: SecurityHeaders(build())  # type: ignore[method-assign]
    return app


def _add_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` from the files of the ``swagger-ui-py`` package (Swagger UI 5, which reads
    OpenAPI 3.1), started by a script file: the Content-Security-Policy forbids inline scripts."""
    import swagger_ui

    assets = Path(swagger_ui.__file__).parent / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{app.title} - API docs</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{DOCS_ASSETS}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{DOCS_ASSETS}/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>
"""
    init = "window.ui = SwaggerUIBundle(%s);\n" % json.dumps(  # noqa: UP031 (a JS object, not text)
        {"url": app.openapi_url, "dom_id": "#swagger-ui", "deepLinking": True, "persistAuthorization": False}
    )

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/docs/init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(init, media_type="text/javascript")


class _TooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit:,} bytes; send less (split a seed list into parts)")


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413: at once from ``Content-Length``
    (nothing read), or as soon as a streamed body passes the limit."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or ()).get(b"content-length")
        try:
            declared = int(length) if length is not None else None
        except ValueError:
            declared = -1
        if declared is not None and not 0 <= declared <= self.max_bytes:
            detail = _TooLarge(self.max_bytes).detail if declared > 0 else "invalid Content-Length"
            answer = JSONResponse({"detail": detail}, status_code=413 if declared > 0 else 400)
            await answer(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)  # answered 413 by the app's HTTPException handler
            return message

        await self.app(scope, limited, send)


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every answer, and ``Cache-Control: no-store`` to the
    API's (people data must not stay in browser or proxy caches)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/") or scope["path"] == "/openapi.json"

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in _OURS]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                if api:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


_OURS = {*SECURITY_HEADERS, "cache-control"}


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
