"""The audit log of the web service: one row in ``gold.audit_log`` per API request that reads people data or
is refused, and per export, download or SQL query.

:class:`AuditMiddleware` (installed by ``apps.web.app``) is the one place that decides what is audited: every
refused request under ``/api`` (4xx: no token, a role without the right, bad input, a body too large) and
every request to a route that reads people data (anything under ``/api`` but the few routes in
``NOT_PEOPLE_DATA``). It writes who (token id, holder, role), the route and method, the HTTP status, the
client, the bytes returned and, where the route knows one, the rows returned (``request.state.audit_rows``).
Domain code that knows more (an export's pack, a download's ID types, a query's text) calls
:meth:`AuditLog.record` during the request: its fields go into the same row, so a request makes one row.

Rows are buffered and appended in batches (one Delta commit per batch, not per request) by a background
thread every ``flush_seconds`` or ``flush_rows`` rows, before every read of the log, and at shutdown
(:meth:`AuditLog.close`, called by the app's lifespan); tests call :meth:`AuditLog.flush`. Appends run under
the table's lock (Sail does not detect conflicting Delta commits, and several processes may record at once).
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apps.web.auth import Principal
    from cdp.lake import Lake

log = logging.getLogger(__name__)
TABLE = "gold.audit_log"
NOT_PEOPLE_DATA = frozenset(
    {
        ("GET", "/api/health"),
        ("GET", "/api/me"),
        ("GET", "/api/tags"),
        ("GET", "/api/destinations"),
        ("GET", "/api/sql/tables"),
        ("GET", "/api/tasks"),
    }
)
"""Routes that return no data about people (the session, the catalog search, destinations, table names):
audited only when refused."""

# The row of the request being served, filled by AuditLog.record calls made while serving it.
_current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("audit_row", default=None)


class AuditLog:
    """Buffers audit rows and appends them to ``gold.audit_log``; reads the latest ones.

    Args:
        lake: the lake catalog, or a callable returning it (the engine starts at the first flush, not at the
            first refused request).
        flush_rows: rows that trigger a write at once.
        flush_seconds: longest time a row waits in the buffer (0: no background thread; flush by hand).
    """

    def __init__(
        self, lake: Lake | Callable[[], Lake], *, flush_rows: int = 200, flush_seconds: float = 5.0
    ) -> None:
        self._lake = lake
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # the buffer
        self._write_lock = threading.Lock()  # one append at a time from this process
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def lake(self) -> Lake:
        return self._lake if not callable(self._lake) else self._lake()

    # ---- writing -------------------------------------------------------------------------------------------

    def record(
        self,
        principal: Principal | None,
        action: str,
        *,
        status: str = "ok",
        audience_id: str | None = None,
        audience_version: int | None = None,
        pack_id: str | None = None,
        destination: str | None = None,
        id_types: list[str] | None = None,
        rows: int | None = None,
        bytes_sent: int | None = None,
        detail: dict[str, Any] | None = None,
        client: str | None = None,
        route: str | None = None,
        method: str | None = None,
        http_status: int | None = None,
    ) -> str:
        """Record one action and return its ``event_id``. Called while an API request is served, the fields
        go into that request's row (written when the answer is sent); otherwise a row of its own is queued.

        Args:
            principal: who acted (None: no valid token).
            action: ``pack_export``, ``pack_download``, ``sql``, or the route's name.
            status: ``ok``, ``refused`` or ``failed``.
            detail: anything else worth keeping (counts per ID type, the SQL text, the refusal reason).
        """
        fields = {
            "action": action,
            "status": status,
            "audience_id": audience_id,
            "audience_version": audience_version,
            "pack_id": pack_id,
            "destination": destination,
            "id_types": ",".join(id_types) if id_types else None,
            "rows": rows,
            "bytes": bytes_sent,
            "detail_json": json.dumps(detail, ensure_ascii=False, default=str) if detail else None,
            "client": client,
            "route": route,
            "method": method,
            "http_status": http_status,
        }
        fields = {k: v for k, v in fields.items() if v is not None}
        current = _current.get()
        if current is not None:
            current.update(fields)
            if principal is not None:
                current["principal"] = principal
            return current["event_id"]
        row = new_row()
        row.update(fields)
        self._queue(row, principal)
        return row["event_id"]

    def _queue(self, row: dict[str, Any], principal: Principal | None) -> None:
        now = _dt.datetime.now(_dt.UTC)
        row.pop("principal", None)
        row.update(
            at=now.replace(tzinfo=None),
            dt=now.date(),
            actor=principal.name if principal else "anonymous",
            token_id=principal.token_id if principal else None,
            role=principal.role if principal else "none",
        )
        with self._lock:
            if self._closed:  # after shutdown (a late background task): write at once, never drop
                self._buffer.append(row)
                full = True
            else:
                self._buffer.append(row)
                full = len(self._buffer) >= self.flush_rows
            self._start_thread()
        if full and self._closed:
            self.flush()
        elif full:
            self._wake.set()

    def _start_thread(self) -> None:
        if self._thread is None and self.flush_seconds > 0 and not self._closed:
            self._thread = threading.Thread(target=self._run, name="cdp-audit", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # kept in the buffer; the next flush tries again
                log.exception("could not write %s; the rows stay buffered", TABLE)

    def pending(self) -> int:
        """Rows waiting in the buffer."""
        with self._lock:
            return len(self._buffer)

    def flush(self) -> int:
        """Append every buffered row in one commit; return how many were written.

        Raises:
            Exception: the write failed (the rows are back in the buffer).
        """
        with self._write_lock:
            with self._lock:
                rows, self._buffer = self._buffer, []
            if not rows:
                return 0
            try:
                lake = self.lake
                contract = lake.contracts[TABLE]
                data = [tuple(r.get(c.name) for c in contract.columns) for r in rows]
                df = lake.spark.createDataFrame(data, contract.ddl)
                with lake.lock(TABLE):
                    lake.append(TABLE, df, merge_schema=True)  # rows written before route/http_status
            except BaseException:
                with self._lock:
                    self._buffer[:0] = rows
                raise
            return len(rows)

    def close(self) -> None:
        """Write what is buffered and stop the background thread (the app's shutdown); rows recorded later
        (a background task finishing) are written at once."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        self._wake.set()
        if thread is not None:
            thread.join(timeout=30)
        self.flush()

    def open(self) -> None:
        """Buffer rows again after :meth:`close` (the app started again, as tests do)."""
        with self._lock:
            self._closed = False

    # ---- reading -------------------------------------------------------------------------------------------

    def recent(
        self,
        limit: int = 100,
        *,
        actor: str | None = None,
        action: str | None = None,
        status: str | None = None,
    ) -> list[dict]:
        """The latest rows, newest first, buffered ones included (read with delta-rs: no engine query).

        The log only grows, so it is read a date partition at a time from the newest, with the filters pushed
        into the scan, until ``limit`` rows are found: the cost follows the rows shown, not the log's age."""
        from deltalake import DeltaTable

        self.flush()
        if not self.lake.exists(TABLE):
            return []
        table = DeltaTable(self.lake.path(TABLE))
        wanted = [(k, "=", v) for k, v in (("actor", actor), ("action", action), ("status", status)) if v]
        rows: list[dict] = []
        for day in sorted({p["dt"] for p in table.partitions()}, reverse=True):
            when = _dt.date.fromisoformat(day)
            found = table.to_pyarrow_table(filters=[("dt", "=", when), *wanted]).to_pylist()
            rows += sorted(found, key=lambda r: r["at"], reverse=True)
            if len(rows) >= limit:
                break
        return rows[:limit]


def new_row() -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex}


class AuditMiddleware:
    """ASGI middleware writing one audit row per API request that reads people data or is refused.

    Args:
        app: the application inside.
        audit: a callable returning the :class:`AuditLog` (created on first use).
        authenticate: ``token -> Principal | None``, to name the caller of a refused request (routes set
            ``request.state.principal`` only when access is granted).
    """

    def __init__(
        self,
        app: Any,
        audit: Callable[[], AuditLog],
        authenticate: Callable[[str | None], Principal | None],
    ) -> None:
        self.app = app
        self.audit = audit
        self.authenticate = authenticate

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        row = new_row()
        token = _current.set(row)
        answer: dict[str, Any] = {"status": 500, "bytes": 0}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            _current.reset(token)
            self._finish(scope, row, answer)

    def _finish(self, scope: dict[str, Any], row: dict[str, Any], answer: dict[str, Any]) -> None:
        status = answer["status"]
        method = scope["method"]
        route = getattr(scope.get("route"), "path", None)
        template = route or scope["path"]
        refused = 400 <= status < 500
        if not refused and status < 500 and (method, template) in NOT_PEOPLE_DATA:
            return
        state = scope.get("state") or {}
        principal = row.get("principal") or state.get("principal")
        if principal is None and refused:  # a route names its caller only once access is granted
            principal = self.authenticate(_bearer(scope))
        client = scope.get("client")
        unrouted = "request_too_large" if status == 413 else "unrouted"
        row.setdefault("action", getattr(scope.get("route"), "name", None) or unrouted)
        if status >= 500:
            row["status"] = "failed"
        elif refused and row.get("status") not in ("refused", "failed"):  # a route may say "failed" (bad SQL)
            row["status"] = "refused"
        else:
            row.setdefault("status", "ok")
        row.setdefault("client", client[0] if client else None)
        if row.get("rows") is None and state.get("audit_rows") is not None:
            row["rows"] = int(state["audit_rows"])
        row.setdefault("bytes", answer["bytes"])
        row.update(route=template, method=method, http_status=status)
        try:
            self.audit()._queue(row, principal)
        except Exception:  # never turn an answer already sent into an error
            log.exception("could not queue the audit row of %s %s", method, template)


def _bearer(scope: dict[str, Any]) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None
