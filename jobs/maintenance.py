"""Maintenance of one lake table (compaction, vacuum) as a run that holds the table's lease, so it never
rewrites a table a stage is writing (Sail and delta-rs do not detect each other's conflicting commits).

    cdp lake compact <table> / the maintenance DAG's compact task
      -> lease <table> (refused beside a stage writing it, or when a dead run left it half-written)
      -> delta-rs optimize.compact (Lake.compact)
    cdp lake vacuum <table> --apply / the maintenance DAG's vacuum task
      -> lease <table> -> delta-rs vacuum (Lake.vacuum); a dry run only lists, without a lease

Erasure vacuums (``cdp privacy vacuum``) are :func:`jobs.privacy.vacuum_due`.
"""

from __future__ import annotations

from typing import Any

from cdp.lake import Lake
from cdp.leases import Holder
from cdp.run import lease_in_place


def compact(lake: Lake, table: str) -> dict[str, Any]:
    """Rewrite the small files of ``table`` into larger ones, holding its lease and lock.

    Returns:
        delta-rs's metrics (``numFilesRemoved``, ``numFilesAdded``, ...).

    Raises:
        cdp.leases.LeaseError: another run writes the table.
        cdp.leases.PartialTableError: the table was left half-written by a run that died.
        LakeError: no such table.
    """
    holder = Holder(job=f"compact {table}", rerun=f"cdp lake compact {table}")
    with lease_in_place(lake, [table], holder), lake.lock(table):
        return lake.compact(table)


def vacuum(lake: Lake, table: str, *, retention_hours: int = 168, dry_run: bool = True) -> list[str]:
    """Delete (or list) the files of ``table`` that no version younger than ``retention_hours`` needs; a
    deletion holds the table's lease and lock (see :meth:`cdp.lake.Lake.vacuum` for the retention floor).

    Returns:
        The files removed (or, in a dry run, that would be removed).

    Raises:
        cdp.leases.LeaseError: another run writes the table (not for a dry run).
        cdp.leases.PartialTableError: the table was left half-written by a run that died (not for a dry run).
        LakeError: no such table, or a retention below 7 days without a dry run.
    """
    if dry_run:
        return lake.vacuum(table, retention_hours=retention_hours, dry_run=True)
    holder = Holder(job=f"vacuum {table}", rerun=f"cdp lake vacuum {table} --apply")
    with lease_in_place(lake, [table], holder), lake.lock(table):
        return lake.vacuum(table, retention_hours=retention_hours, dry_run=False)
