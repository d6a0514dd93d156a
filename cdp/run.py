"""One run of one stage for one logical date: the date (parsed once, at the edge), the lake, a run-scoped
scratch folder with Parquet checkpoints, step timings, and the date lookups every stage needs.

Jobs open a ``RunContext`` at their entry point and pass it inward::

    ctx = RunContext.open(spark, settings, dt, stage="tags")
    with ctx.scratch_space():
        profile = ctx.checkpoint(build_profile(...), "profile")
        prev = ctx.previous_dt("gold.profile")
        ctx.step("profile")

The scratch folder is ``<data root>/_scratch/<stage>/<dt>/<run id>``: owned by this run alone, so two runs
never delete each other's files, and removed when the block ends (also on error). The run holds a lock on
``<scratch>/.owner`` while it lives; the next run of any stage removes the scratch folders whose owner died
(a ``kill -9`` leaves its checkpoints, plaintext included, only until then).

A run that writes tables holds their leases for the whole run (``ctx.lease(...)``, :mod:`cdp.leases`): a
second run of the same job, from the CLI or a DAG task, waits for or refuses the first with one line naming
it, and a run that died half-way is known to the next one, which repairs its tables.

Checkpoints are the one way this project cuts lineage: Sail ignores ``cache()``/``persist()``, so a result
read twice is written to Parquet and read back (``parquet_checkpoint``). Code that checkpoints under its own
labels (the rounds of connected components) gets a sub-folder of the scratch with ``ctx.checkpoints(name)``.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import logging
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from cdp.lake import Lake, LakeError, parse_dt

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from cdp.leases import Holder
    from cdp.settings import Settings

__all__ = [
    "REFUSED",
    "Checkpoint",
    "RunContext",
    "exit_with",
    "lease_in_place",
    "parquet_checkpoint",
    "parse_dt",
    "union_all",
]

log = logging.getLogger(__name__)

Checkpoint = Callable[["DataFrame", str], "DataFrame"]
"""Given a DataFrame and a label unique in its folder, return an equivalent DataFrame with short lineage."""


def union_all(frames: Iterable[DataFrame], *, allow_missing: bool = False) -> DataFrame:
    """Union DataFrames by column name, in order.

    Args:
        frames: at least one DataFrame.
        allow_missing: fill columns missing on one side with NULL (``unionByName(allowMissingColumns)``).

    Raises:
        LakeError: ``frames`` is empty (there is no schema to give back).
    """
    frames = list(frames)
    if not frames:
        raise LakeError("nothing to union: no DataFrames were given")
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=allow_missing), frames)


def parquet_checkpoint(spark: SparkSession, folder: str | Path) -> Checkpoint:
    """Write each DataFrame to ``<folder>/<label>`` as Parquet and read it back lazily.

    The returned DataFrames read those files, so keep the folder until the results are written. Jobs use
    ``RunContext.checkpoint``; this is the same mechanism for code without a run (benchmarks, tests).

    Args:
        spark: the session used to read the files back.
        folder: a scratch folder (local path or object-store URI) owned by one run; existing labels are
            overwritten.

    Returns:
        A ``Checkpoint`` callable.
    """
    root = str(folder).rstrip("/")

    def checkpoint(df: DataFrame, label: str) -> DataFrame:
        path = f"{root}/{label}"
        schema = df.schema
        df.write.mode("overwrite").parquet(path)
        # Sail writes no file at all for an empty DataFrame, so the schema cannot come from the files.
        return spark.read.schema(schema).parquet(path)

    return checkpoint


def _remove(folder: str) -> None:
    # Object stores keep the files; the folder is this run's alone, so nothing stale is ever read.
    if "://" not in folder:
        shutil.rmtree(folder, ignore_errors=True)


REFUSED = 3
"""Exit code of a run refused because another run holds the lease of a table it writes, or a table it reads
was left half-written by a run that died: the ``cdp`` CLI and every ``python -m jobs.<job>`` alike, so a
scheduler can tell "try again later" from a failure (1) and a usage error (2)."""


def exit_with(main: Callable[[], int | None]) -> NoReturn:
    """Run a job's command-line entry point and exit with its code; a lease refusal or a half-written table
    ends it with its one-line message on stderr and exit code :data:`REFUSED`, not a traceback.

    Every ``jobs/*`` module ends with ``if __name__ == "__main__": exit_with(main)``.
    """
    from cdp.leases import LeaseError, PartialTableError

    try:
        code = main()
    except (LeaseError, PartialTableError) as exc:
        print(exc, file=sys.stderr)
        code = REFUSED
    raise SystemExit(code or 0)


@contextmanager
def lease_in_place(
    lake: Lake, tables: Iterable[str], holder: Holder, *, fall_back: bool = True, reruns: str | None = None
) -> Iterator[None]:
    """Hold the leases of ``tables`` for a run that changes them in place without rebuilding them
    (compaction, vacuum, an erasure): no stage writes them meanwhile, and none of them is taken from a run
    that died half-way: taking its lease would clear the mark that keeps readers on the last complete
    version without repairing the table, and the change would land on top of half a run.

    Args:
        lake: the lake.
        tables: what the run changes.
        holder: who runs.
        fall_back: see :meth:`cdp.lake.Lake.lease` (False for an erasure).
        reruns: a dead holder whose job starts with this (``holder.job`` when omitted) was an earlier try of
            this same run, which this one repeats and so repairs: its tables are taken over, not refused.

    Raises:
        cdp.leases.PartialTableError: one of them was left half-written; its own rerun comes first.
        cdp.leases.LeaseError: another live run holds one of them.
    """
    from cdp.leases import dead_holder, half_written

    names = sorted(set(tables))
    same = holder.job if reruns is None else reruns
    for name in names:
        if (dead := dead_holder(lake.root, name)) is not None and not dead.job.startswith(same):
            raise half_written(name, dead)
    with lake.lease(names, holder, fall_back=fall_back):
        yield


CHAOS_KILL_AT = "CDP_CHAOS_KILL_AT"
"""Fault injection: ``<stage>:<step>`` at which a run kills itself (see ``RunContext.step``)."""
OWNER = ".owner"
STALE_UNOWNED_SECONDS = 600
"""A scratch entry without an owner file (an older layout, a run just starting) is removed after this age."""


def _owner_alive(folder: Path) -> bool:
    owner = folder / OWNER
    if not owner.exists():
        try:
            return time.time() - folder.stat().st_mtime < STALE_UNOWNED_SECONDS
        except FileNotFoundError:
            return True
    try:
        fd = os.open(owner, os.O_RDONLY)
    except FileNotFoundError:
        return True  # removed meanwhile by its owner
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True  # locked: the owner lives
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def sweep_scratch(base: str | Path) -> list[str]:
    """Remove the scratch folders under ``base`` (``<data root>/_scratch``) whose run is gone: a run killed
    before it could clean up (its checkpoints may hold plaintext), and files of older layouts. Folders of
    live runs stay. Local folders only.

    Returns:
        The paths removed.
    """
    root = Path(base)
    if "://" in str(base) or not root.is_dir():
        return []
    removed: list[str] = []

    def entries(folder: Path) -> list[Path]:
        try:
            return list(folder.iterdir()) if folder.is_dir() else [folder]
        except FileNotFoundError:  # removed meanwhile by the run that owned it
            return []

    for stage in entries(root):
        for day in entries(stage):
            for run in [day] if (day / OWNER).exists() else entries(day):
                try:
                    if run.is_dir() and _owner_alive(run):
                        continue
                    if not run.is_dir() and time.time() - run.stat().st_mtime < STALE_UNOWNED_SECONDS:
                        continue
                    shutil.rmtree(run, ignore_errors=True) if run.is_dir() else run.unlink(missing_ok=True)
                except FileNotFoundError:
                    continue
                removed.append(str(run))
    if removed:
        log.warning("removed %d scratch folder(s) of runs that did not finish: %s", len(removed), removed)
    return removed


@dataclass
class RunContext:
    """What one stage run for one date shares between its steps.

    Attributes:
        spark: the session that runs every read and write.
        settings: the deployment's settings.
        dt: the logical date, a ``datetime.date``.
        stage: the stage name (``ingest``, ``identity``, ``tags``, ``audiences``): names the scratch folder.
        lake: the lake catalog at ``settings.lake_root`` (or the one given to ``open``).
        run_id: a fresh id for this run (scratch folder, run reports).
        steps: seconds since the run opened at the end of each named step (``step``).
        started: ``time.perf_counter()`` when the run opened.
    """

    spark: SparkSession
    settings: Settings
    dt: _dt.date
    stage: str
    lake: Lake
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    steps: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def open(
        cls,
        spark: SparkSession,
        settings: Settings,
        dt: _dt.date | str,
        *,
        stage: str,
        lake: Lake | None = None,
    ) -> RunContext:
        """A context for ``stage`` on ``dt``; the only place a job turns a date string into a date.

        Args:
            spark: the engine session.
            settings: the deployment's settings (lake and data roots).
            dt: the logical date, a ``datetime.date`` or ``YYYY-MM-DD``.
            stage: the stage name.
            lake: a lake catalog with other table contracts; ``Lake.from_settings`` when omitted.

        Raises:
            LakeError: ``dt`` is not a date.
        """
        return cls(spark, settings, parse_dt(dt), stage, lake or Lake.from_settings(spark, settings))

    # ---- time -------------------------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the run opened."""
        return time.perf_counter() - self.started

    def step(self, name: str) -> float:
        """Record that step ``name`` is done: ``steps[name]`` is the seconds since the run opened.

        Fault injection: with ``CDP_CHAOS_KILL_AT=<stage>:<step>`` (e.g. ``ingest:merge``, right after the
        silver commit) the process kills itself with SIGKILL here, as a crash would (``tests/chaos``)."""
        self.steps[name] = round(self.elapsed(), 2)
        log.info("%s %s: %s done at %.1f s", self.stage, self.dt, name, self.steps[name])
        if os.environ.get(CHAOS_KILL_AT) == f"{self.stage}:{name}":
            os.kill(os.getpid(), signal.SIGKILL)
        return self.steps[name]

    # ---- scratch ----------------------------------------------------------------------------------------

    @property
    def scratch(self) -> str:
        """This run's scratch folder (a local path or an object-store URI); nobody else writes there."""
        return f"{self.settings.data_root}/_scratch/{self.stage}/{self.dt.isoformat()}/{self.run_id}"

    def checkpoint(self, df: DataFrame, label: str) -> DataFrame:
        """Write ``df`` to ``<scratch>/<label>`` as Parquet and read it back lazily (see the module doc).

        Keep the scratch (stay inside ``scratch_space``) until the results are written.
        """
        return parquet_checkpoint(self.spark, self.scratch)(df, label)

    def checkpoints(self, folder: str) -> Checkpoint:
        """A ``Checkpoint`` writing under ``<scratch>/<folder>/``: for code that picks its own labels (the
        rounds of ``connected_components``), so they cannot collide with this run's other labels."""
        return parquet_checkpoint(self.spark, f"{self.scratch}/{folder}")

    @contextmanager
    def scratch_space(self) -> Iterator[str]:
        """Hold this run's scratch folder for the block and remove it afterwards, also on error; first remove
        the scratch left by runs that died (:func:`sweep_scratch`)."""
        base = f"{self.settings.data_root}/_scratch"
        if "://" in self.scratch:
            try:
                yield self.scratch
            finally:
                _remove(self.scratch)
            return
        sweep_scratch(base)
        Path(self.scratch).mkdir(parents=True, exist_ok=True)
        fd = os.open(Path(self.scratch) / OWNER, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, json.dumps({"pid": os.getpid(), "stage": self.stage, "dt": str(self.dt)}).encode())
            yield self.scratch
        finally:
            _remove(self.scratch)
            os.close(fd)

    @contextmanager
    def lease(self, *tables: str, job: str | None = None, rerun: str = "") -> Iterator[dict]:
        """Hold the leases of the ``tables`` this run writes for the block (see the module doc).

        Args:
            tables: the tables (or lake-wide names) this run writes.
            job: what runs, for the message another run gets; the stage name when omitted.
            rerun: the command that repairs the tables should this run die half-way.

        Yields:
            The runs that died holding one of these leases (table -> holder); this run repairs them.

        Raises:
            cdp.leases.LeaseError: another live run holds one of them (``CDP_LEASE_WAIT`` seconds waited).
        """
        from cdp.leases import Holder

        holder = Holder(job=job or self.stage, dt=self.dt.isoformat(), run_id=self.run_id, rerun=rerun)
        with self.lake.lease(tables, holder) as dead:
            for table, who in dead.items():
                log.warning("%s: repairing %s, left half-written by %s", self.stage, table, who.describe())
            yield dead

    # ---- dates ------------------------------------------------------------------------------------------

    def previous_dt(self, table: str, *, column: str = "dt") -> _dt.date | None:
        """The latest date of ``table`` before this run's date, or None (no table or no earlier date)."""
        return self.lake.latest_dt(table, before=self.dt, column=column)

    def latest_dt(self, table: str, *, column: str = "dt") -> _dt.date | None:
        """The latest date of ``table`` on or before this run's date, or None."""
        return self.lake.latest_dt(table, on_or_before=self.dt, column=column)

    def has_later_dt(self, table: str, *, column: str = "dt") -> bool:
        """Whether ``table`` already holds a date after this run's (a later date built on this one)."""
        if not self.lake.exists(table):
            return False
        from pyspark.sql import functions as F

        return self.lake.read(table).where(F.col(column) > F.lit(self.dt)).limit(1).count() > 0

    def read_dt(self, table: str, dt: _dt.date | None = None, *, column: str = "dt") -> DataFrame:
        """The rows of one date of ``table``: this run's date, or ``dt``.

        Raises:
            LakeError: the table does not exist.
        """
        return self.lake.read_dt(table, self.dt if dt is None else dt, column=column)

    def read_up_to(self, table: str, *, column: str = "_dt", source: str | None = None) -> DataFrame:
        """The rows of ``table`` whose ``column`` is on or before this run's date (silver records ingested
        up to ``dt``: a rerun of an earlier date does not see later batches); with ``source``, only the rows
        that source wrote (:meth:`cdp.lake.Lake.read_source`).

        Raises:
            LakeError: the table does not exist.
        """
        from pyspark.sql import functions as F

        rows = self.lake.read(table) if source is None else self.lake.read_source(table, source)
        return rows.where(F.col(column) <= F.lit(self.dt))
