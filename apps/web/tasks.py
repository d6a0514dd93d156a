"""Background tasks of the web service (lookalike, pack export): run in a worker thread, polled by id.

One worker by default: the engine is shared by every request and long tasks are engine-bound, so running
two at once would only slow both down. A task belongs to the token that started it (its id, never its holder's
name: two tokens may carry the same name).
"""

from __future__ import annotations

import datetime as _dt
import inspect
import logging
import threading
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Task:
    """The state of one background task, as the status endpoint reports it."""

    task_id: str
    kind: str
    owner: str
    owner_token_id: str
    status: str = "queued"  # queued -> running -> done | failed
    progress: float = 0.0
    message: str = "waiting for a worker"
    result: Any = None
    error: str | None = None
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    finished: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "kind": self.kind,
            "owner": self.owner,
            "status": self.status,
            "progress": round(self.progress, 3),
            "message": self.message,
            "result": self.result,
            "error": self.error,
            "created": self.created,
            "finished": self.finished,
        }


class TaskRunner:
    """Runs callables in a small thread pool and keeps their state in memory.

    Args:
        workers: threads running tasks.
        expected_errors: exception types whose message is shown to the user as the task's error; any
            other exception is logged with its traceback and reported as an internal error.
    """

    def __init__(self, workers: int = 1, expected_errors: tuple[type[BaseException], ...] = ()) -> None:
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()
        self.expected_errors = expected_errors

    def submit(
        self, kind: str, owner: tuple[str, str], fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Task:
        """Queue ``fn(*args, **kwargs)``; ``fn`` gets a ``progress(fraction, message)`` callback when it takes
        a ``progress`` argument.

        Args:
            kind: what the task does (``lookalike``, ``export``).
            owner: ``(token id, holder name)`` of the token that started it; the id decides who sees it.
        """
        token_id, name = owner
        task = Task(task_id=uuid.uuid4().hex[:12], kind=kind, owner=name, owner_token_id=token_id)
        with self._lock:
            self._tasks[task.task_id] = task

        def progress(fraction: float, message: str = "") -> None:
            task.progress = max(0.0, min(1.0, float(fraction)))
            if message:
                task.message = message

        if "progress" in inspect.signature(fn).parameters:
            kwargs["progress"] = progress

        def run() -> None:
            task.status, task.message = "running", "running"
            try:
                task.result = fn(*args, **kwargs)
                task.status, task.progress, task.message = "done", 1.0, "done"
            except self.expected_errors as exc:
                task.status, task.error, task.message = "failed", str(exc), "failed"
            except Exception:
                log.error("task %s (%s) failed:\n%s", task.task_id, kind, traceback.format_exc())
                task.status, task.message = "failed", "failed"
                task.error = f"internal error in task {task.task_id}; the service log has the details"
            finally:
                task.finished = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")

        with self._lock:
            if self._pool is None:  # first task, or the app was shut down and started again (tests)
                self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="cdp-task")
            self._pool.submit(run)
        return task

    def get(self, task_id: str, token_id: str | None = None) -> Task | None:
        """The task, or None when unknown or (with ``token_id``) started by another token."""
        task = self._tasks.get(task_id)
        if task is None or (token_id is not None and task.owner_token_id != token_id):
            return None
        return task

    def list(self, token_id: str | None = None) -> list[Task]:
        """Tasks newest first: every task, or those started by the token ``token_id``."""
        with self._lock:
            tasks = list(self._tasks.values())
        return [t for t in tasks if token_id is None or t.owner_token_id == token_id][::-1]

    def shutdown(self) -> None:
        """Cancel queued tasks; a running one finishes in its thread."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
