"""The state one web application shares between its requests: settings, the engine session (started on the
first request that needs it), the lake catalog, the audit log, background tasks, and a small cache of
values that are slow to load but rarely change (the tag catalog, the latest tag statistics).

``apps.web.app`` builds one :class:`WebState` per application; routes reach it with :func:`web_state` and
pass it to ``apps.web.backend``, which never imports the app or the routes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

from apps.web.errors import expected_errors
from apps.web.tasks import TaskRunner
from cdp.settings import Settings

if TYPE_CHECKING:
    from fastapi import Request
    from pyspark.sql import SparkSession

    from apps.web.audit import AuditLog
    from cdp.lake import Lake

T = TypeVar("T")


class WebState:
    """What the routes share: settings, the engine session (started on first use), tasks and the audit log.

    Args:
        settings: lake, packs, engine and catalog folders.
        spark: the engine session; started on first use when omitted.
    """

    def __init__(self, settings: Settings, spark: SparkSession | None = None) -> None:
        self.settings = settings
        self._spark = spark
        self._lock = threading.Lock()
        self._lake: Lake | None = None
        self._audit: AuditLog | None = None
        self._cache: dict[str, tuple[Hashable, Any]] = {}
        self._cache_lock = threading.Lock()
        self.tasks = TaskRunner(workers=1, expected_errors=expected_errors())

    @property
    def spark(self) -> SparkSession:
        with self._lock:
            if self._spark is None:
                from cdp.engine import get_spark

                self._spark = get_spark(self.settings)
            return self._spark

    @property
    def lake(self) -> Lake:
        from cdp.lake import Lake

        if self._lake is None:
            self._lake = Lake(self.spark, self.settings.lake_root)
        return self._lake

    @property
    def audit(self) -> AuditLog:
        from apps.web.audit import AuditLog

        with self._lock:
            if self._audit is None:
                # The lake (and the engine) is reached at the first write, not at the first refused request.
                self._audit = AuditLog(lambda: self.lake)
            return self._audit

    def open(self) -> None:
        """Buffer audit rows (the app's start-up; again after a shutdown in tests)."""
        if self._audit is not None:
            self._audit.open()

    def close(self) -> None:
        """Write the buffered audit rows (the app's shutdown)."""
        if self._audit is not None:
            self._audit.close()

    def cached(self, name: str, signature: Hashable, load: Callable[[], T]) -> T:
        """``load()``'s value, kept under ``name`` and loaded again only when ``signature`` changes (a file's
        modification times, a table's version).

        Two requests may both load a stale value at once; the later one is kept, which is harmless for
        values that depend only on the signature.
        """
        with self._cache_lock:
            hit = self._cache.get(name)
        if hit is not None and hit[0] == signature:
            return hit[1]
        value = load()
        with self._cache_lock:
            self._cache[name] = (signature, value)
        return value


def web_state(request: Request) -> WebState:
    """The state of the application serving ``request``."""
    return request.app.state.web
