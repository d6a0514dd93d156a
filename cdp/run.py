"""One run of one stage for one logical date: the date (parsed once, at the edge), the lake, a run-scoped
scratch folder with Parquet checkpoints, step timings, and the date lookups every stage needs.

Jobs open a ``RunContext`` at their entry point and pass it inward::

    ctx = RunContext.open(spark, settings, dt, stage="tags")
    with ctx.scratch_space():
        profile = ctx.checkpoint(build_profile(...), "profile")
        prev = ctx.previous_dt("gold.profile")
        ctx.step("profile")

The scratch folder is ``<data root>/_scratch/<stage>/<dt>/<run id>``: owned by this run alone, so two runs
never delete each other's files, and removed when the block ends (also on error).

Checkpoints are the one way this project cuts lineage: Sail ignores ``cache()``/``persist()``, so a result
read twice is written to Parquet and read back (``parquet_checkpoint``). Code that checkpoints under its own
labels (the rounds of connected components) gets a sub-folder of the scratch with ``ctx.checkpoints(name)``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.lake import Lake, LakeError, parse_dt

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from cdp.settings import Settings

__all__ = ["Checkpoint", "RunContext", "parquet_checkpoint", "parse_dt", "union_all"]

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
        """Record that step ``name`` is done: ``steps[name]`` is the seconds since the run opened."""
        self.steps[name] = round(self.elapsed(), 2)
        log.info("%s %s: %s done at %.1f s", self.stage, self.dt, name, self.steps[name])
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
        """Hold this run's scratch folder for the block and remove it afterwards, also on error."""
        try:
            yield self.scratch
        finally:
            _remove(self.scratch)

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

    def read_up_to(self, table: str, *, column: str = "_dt") -> DataFrame:
        """The rows of ``table`` whose ``column`` is on or before this run's date (silver records ingested
        up to ``dt``: a rerun of an earlier date does not see later batches).

        Raises:
            LakeError: the table does not exist.
        """
        from pyspark.sql import functions as F

        return self.lake.read(table).where(F.col(column) <= F.lit(self.dt))
