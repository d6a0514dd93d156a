"""One run of one stage for one logical date: the date (parsed once, at the edge), the lake, a run-scoped
scratch folder with Parquet checkpoints, and the date lookups every stage needs (previous, latest).

Jobs open a ``RunContext`` at their entry point and pass it inward::

    ctx = RunContext.open(spark, settings, dt, stage="tags")
    with ctx.scratch_space():
        profile = ctx.checkpoint(build_profile(...), "profile")
        prev = ctx.previous_dt("gold.profile")

The scratch folder is ``<data root>/_scratch/<stage>/<dt>/<run id>``: owned by this run alone, so two runs
never delete each other's files, and removed when the block ends (also on error).
"""

from __future__ import annotations

import datetime as _dt
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING

from cdp.lake import Lake, LakeError, parse_dt

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from cdp.settings import Settings

__all__ = ["RunContext", "parse_dt", "union_all"]


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


def _remove(folder: str) -> None:
    # Object stores keep the files; checkpoints overwrite them label by label, so nothing stale is read.
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
        lake: the lake catalog at ``settings.lake_root``.
        run_id: a fresh id for this run (scratch folder, run logs).
    """

    spark: SparkSession
    settings: Settings
    dt: _dt.date
    stage: str
    lake: Lake
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

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

        Raises:
            LakeError: ``dt`` is not a date.
        """
        return cls(spark, settings, parse_dt(dt), stage, lake or Lake.from_settings(spark, settings))

    # ---- scratch ----------------------------------------------------------------------------------------

    @property
    def scratch(self) -> str:
        """This run's scratch folder (a local path or an object-store URI); nobody else writes there."""
        return f"{self.settings.data_root}/_scratch/{self.stage}/{self.dt.isoformat()}/{self.run_id}"

    def checkpoint(self, df: DataFrame, label: str) -> DataFrame:
        """Write ``df`` to ``<scratch>/<label>`` as Parquet and read it back lazily.

        Sail ignores ``cache()``, so a result read twice is materialised this way. The schema is passed back
        explicitly because an empty result writes no files. Keep the scratch until the results are written.
        """
        path = f"{self.scratch}/{label}"
        schema = df.schema
        df.write.mode("overwrite").parquet(path)
        return self.spark.read.schema(schema).parquet(path)

    @contextmanager
    def scratch_space(self) -> Iterator[str]:
        """Hold this run's scratch folder for the block and remove it afterwards, also on error."""
        _remove(self.scratch)
        try:
            yield self.scratch
        finally:
            _remove(self.scratch)

    def clear_scratch(self) -> None:
        """Remove this run's scratch folder now."""
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
