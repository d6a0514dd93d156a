"""Leases: one writer per lake table across processes, CLI runs and DAG tasks alike, and a record of a
writer that died half-way.

A run takes the lease of every table it writes before it reads or writes anything::

    with lease(lake_root, ["gold.tags", "gold.profile"], Holder.now(job="tags", dt="2026-11-01")):
        ...

The lease of ``gold.tags`` is the file ``<lake root>/_leases/gold.tags.lease``. The holder takes an
exclusive ``flock`` on it (released by the kernel when the process ends, also on ``kill -9``) and writes who
it is (job, date, run id, pid, host, start time) into it; it empties the file when the block ends. So:

- a second run finds the lock taken and waits up to ``wait`` seconds (``CDP_LEASE_WAIT``, 0 by default),
  then refuses with one line naming the holder;
- a file that is not locked but not empty belongs to a holder that died half-way: its tables may show part
  of a run. The next holder takes the lease anyway (a rerun repairs the tables) and gets the dead holder
  back.
- each lease file also records the table's last complete version: the Delta version the table had when the
  lease was taken (``base_version``). While a dead holder's mark stands, readers read that version
  (:func:`readable_version`), so every table of a stage the dead run wrote shows the last complete run,
  together; a table the dead run created has no complete version and is refused until the rerun. A rerun
  that dies too keeps the first dead run's base version: the last complete version is still that one.

A thread holding a lease may take it again (nested jobs); another thread of the same process waits like
another process would. Local lake roots only: on an object store each table must have a single writer,
as :meth:`cdp.lake.Lake.lock` says.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

__all__ = [
    "Holder",
    "LeaseError",
    "PartialTableError",
    "dead_holder",
    "half_written",
    "lease",
    "readable_version",
    "recorded_holder",
    "wait_seconds",
]

FOLDER = "_leases"
BaseVersion = Callable[[str], "int | None"]
"""Given a lease name, the Delta version of that table now (None: no such table)."""
WAIT_ENV = "CDP_LEASE_WAIT"


class LeaseError(ValueError):
    """Another run holds the lease of a table this run must write (or ``CDP_LEASE_WAIT`` is not a number)."""


class PartialTableError(ValueError):
    """A table was left half-written by a run that died; rerun that run before reading it."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lease.

    Attributes:
        job: what runs (``ingest orders``, ``tags``, ``export aud_1``).
        dt: the logical date, when the run has one.
        run_id: the run's id.
        rerun: the command that repairs the tables after this holder died.
        pid: the process id.
        host: the host name.
        started: when the lease was taken, UTC, ISO format.
        base_version: the table's last complete Delta version when the lease was taken (None: the table did
            not exist, or the name is not a table); kept per lease file.
    """

    job: str
    dt: str = ""
    run_id: str = ""
    rerun: str = ""
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    started: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.UTC).replace(microsecond=0, tzinfo=None).isoformat()
    )
    base_version: int | None = None

    def describe(self) -> str:
        """``tags 2026-11-01 (run ab12, pid 4242 on host, since 2026-12-02T05:31:02 UTC)``."""
        what = f"{self.job} {self.dt}".strip()
        run = f"run {self.run_id}, " if self.run_id else ""
        return f"{what} ({run}pid {self.pid} on {self.host}, since {self.started} UTC)"

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (ValueError, TypeError, KeyError):
            return cls(job="unknown run") if text.strip() else None


def wait_seconds(default: float = 0.0) -> float:
    """How long a run waits for a lease: ``CDP_LEASE_WAIT`` seconds, else ``default``."""
    text = os.environ.get(WAIT_ENV, "").strip()
    try:
        return max(0.0, float(text)) if text else default
    except ValueError:
        raise LeaseError(f"{WAIT_ENV}={text!r} is not a number of seconds") from None


def _file(root: str | Path, name: str) -> Path:
    return Path(root) / FOLDER / (re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".lease")


# Leases this process holds: name -> (thread id, depth, file descriptor, holder).
_HELD: dict[str, tuple[int, int, int, Holder]] = {}
_GUARD = threading.Lock()


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 1 << 16).decode("utf-8", "replace")


def _acquire(
    root: str | Path, name: str, holder: Holder, wait: float, base_version: BaseVersion | None
) -> tuple[int, Holder | None]:
    """Lock one lease file; returns its descriptor and the dead holder it recorded, if any. The file records
    ``holder`` with the table's last complete version: the dead holder's, else the table's version now."""
    path = _file(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    # A reader checking for a dead holder holds the lock for an instant: always retry for a second.
    deadline = time.monotonic() + max(wait, 1.0)
    while not _try_lock(fd):
        if time.monotonic() >= deadline:
            other = Holder.parse(_read(fd))
            os.close(fd)
            hint = f"; set {WAIT_ENV}=<seconds> to wait for it" if not wait else f" (waited {wait:.0f} s)"
            who = other.describe() if other else "another run"
            raise LeaseError(f"{name} is being written by {who}; try again when it has finished{hint}")
        time.sleep(0.1)
    dead = Holder.parse(_read(fd))
    if dead is not None:  # the last complete version is still the one before the dead run
        base = dead.base_version
    elif base_version is not None:
        base = base_version(name)
    else:
        base = None
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(asdict(replace(holder, base_version=base))).encode())
    os.fsync(fd)
    return fd, dead


def _release(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)  # empty: the holder ended (normally or with an error it reported)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def lease(
    root: str | Path,
    names: Iterable[str],
    holder: Holder,
    *,
    wait: float | None = None,
    base_version: BaseVersion | None = None,
) -> Iterator[dict[str, Holder]]:
    """Hold the leases of ``names`` for the block, taken in name order (no deadlock between two runs).

    Args:
        root: the lake root (a local folder; on an object store nothing is locked).
        names: table names (``gold.tags``) or other lake-wide names (``pack.aud_1``).
        holder: who takes them.
        wait: seconds to wait for a busy lease; ``CDP_LEASE_WAIT`` (0) when omitted.
        base_version: gives each name's table version before this run writes it, recorded in the lease file
            for readers should this run die (:func:`readable_version`).

    Yields:
        The dead holders found (name -> holder): runs that died holding one of these leases, whose
        tables this run is about to repair.

    Raises:
        LeaseError: a lease is held by another live run after ``wait`` seconds (nothing was taken).
    """
    if "://" in str(root) and not str(root).startswith("file://"):
        yield {}
        return
    root = str(root).removeprefix("file://")
    wait = wait_seconds() if wait is None else wait
    me = threading.get_ident()
    taken: list[str] = []
    dead: dict[str, Holder] = {}
    try:
        for name in sorted(set(names)):
            deadline = time.monotonic() + wait
            while True:
                with _GUARD:
                    held = _HELD.get(name)
                    if held is None or held[0] == me:
                        break
                if time.monotonic() >= deadline:
                    raise LeaseError(
                        f"{name} is being written by {held[3].describe()} in this process; try again when "
                        "it has finished"
                    )
                time.sleep(0.1)
            if held is not None:
                with _GUARD:
                    _HELD[name] = (me, held[1] + 1, held[2], held[3])
            else:
                fd, previous = _acquire(root, name, holder, wait, base_version)
                with _GUARD:
                    _HELD[name] = (me, 1, fd, holder)
                if previous is not None:
                    dead[name] = previous
            taken.append(name)
        yield dead
    finally:
        for name in reversed(taken):
            with _GUARD:
                thread, depth, fd, who = _HELD[name]
                if depth > 1:
                    _HELD[name] = (thread, depth - 1, fd, who)
                    continue
                del _HELD[name]
            _release(fd)


def recorded_holder(root: str | Path, name: str) -> Holder | None:
    """The holder the lease file of ``name`` names now, alive or dead (what a refused run is told), or None:
    no lease file or an empty one. It reads without locking: a file caught being written reads as an
    ``unknown run`` (:meth:`Holder.parse`)."""
    try:
        return Holder.parse(_file(root, name).read_text())
    except FileNotFoundError:
        return None


def dead_holder(root: str | Path, name: str) -> Holder | None:
    """The holder that died holding the lease of ``name`` (its tables may be half-written), or None: no
    lease file, an empty one (the last holder finished), or a live holder."""
    if "://" in str(root) and not str(root).startswith("file://"):
        return None
    path = _file(str(root).removeprefix("file://"), name)
    try:
        if path.stat().st_size == 0:
            return None
    except FileNotFoundError:
        return None
    with _GUARD:
        if name in _HELD:
            return None
    fd = os.open(path, os.O_RDWR)
    try:
        if not _try_lock(fd):
            return None  # a live holder: it empties the file when it ends
        try:
            return Holder.parse(_read(fd))
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def readable_version(root: str | Path, table: str) -> int | None:
    """The version of ``table`` readers should read: None for the latest, or, when its last writer died
    half-way, the last complete version recorded in its lease (see the module doc).

    Raises:
        PartialTableError: the writer that died created the table (no complete version), or its lease
            recorded none; with the run that died and the command that repairs it.
    """
    dead = dead_holder(root, table)
    if dead is None:
        return None
    if dead.base_version is not None:
        return dead.base_version
    raise half_written(table, dead)


def half_written(table: str, dead: Holder) -> PartialTableError:
    """The refusal of ``table``, left half-written by ``dead``: the run that died and its rerun command."""
    fix = f"rerun it ({dead.rerun})" if dead.rerun else "rerun it"
    return PartialTableError(
        f"{table} may be half-written: {dead.describe()} stopped before it finished; {fix} first"
    )
