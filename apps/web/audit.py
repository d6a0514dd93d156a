"""The audit log of the web service: one row in ``gold.audit_log`` per export, download, SQL query or refusal.

Rows are appended through the lake catalog under the table's lock (Sail does not detect conflicting Delta
commits, and several requests or processes may record at once).
"""

from __future__ import annotations

import datetime as _dt
import json
import threading
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apps.web.auth import Principal
    from cdp.lake import Lake

TABLE = "gold.audit_log"


class AuditLog:
    """Appends audit rows to ``gold.audit_log`` and reads the latest ones.

    Args:
        lake: the lake catalog (its session writes the rows).
    """

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._lock = threading.Lock()

    def record(
        self,
        principal: Principal,
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
    ) -> str:
        """Append one audit row and return its ``event_id``.

        Args:
            principal: who acted.
            action: ``pack_export``, ``pack_download``, ``sql`` ...
            status: ``ok``, ``refused`` or ``failed``.
            detail: anything else worth keeping (counts per ID type, the SQL text, the refusal reason).
        """
        now = _dt.datetime.now(_dt.UTC)
        event_id = uuid.uuid4().hex
        row = {
            "event_id": event_id,
            "at": now.replace(tzinfo=None),
            "actor": principal.name,
            "token_id": principal.token_id,
            "role": principal.role,
            "action": action,
            "audience_id": audience_id,
            "audience_version": audience_version,
            "pack_id": pack_id,
            "destination": destination,
            "id_types": ",".join(id_types) if id_types else None,
            "rows": rows,
            "bytes": bytes_sent,
            "status": status,
            "detail_json": json.dumps(detail, ensure_ascii=False, default=str) if detail else None,
            "client": client,
            "dt": now.date(),
        }
        contract = self.lake.contracts[TABLE]
        df = self.lake.spark.createDataFrame([tuple(row[c.name] for c in contract.columns)], contract.ddl)
        with self._lock, self.lake.lock(TABLE):
            self.lake.append(TABLE, df)
        return event_id

    def recent(self, limit: int = 100, *, actor: str | None = None, action: str | None = None) -> list[dict]:
        """The latest rows, newest first (read with delta-rs: no engine round trip)."""
        if not self.lake.exists(TABLE):
            return []
        rows = self.lake.to_arrow(TABLE).to_pylist()
        rows = [
            r
            for r in rows
            if (actor is None or r["actor"] == actor) and (action is None or r["action"] == action)
        ]
        rows.sort(key=lambda r: r["at"], reverse=True)
        return rows[:limit]
