"""The spark-submit entry point of the pipeline's jobs: ``spark-submit deploy/run_job.py jobs.ingest orders
--dt 2026-11-01`` runs ``python -m jobs.ingest orders --dt 2026-11-01`` in the driver.

spark-submit takes a file, not a module, and running a job file directly (``jobs/ingest.py``) puts ``jobs/``
first on ``sys.path``, where ``ingest.py`` and ``identity.py`` hide the ``ingest`` and ``identity`` packages
the jobs import. This file sits where no module name collides.
"""

from __future__ import annotations

import runpy
import sys

if __name__ == "__main__":
    if len(sys.argv) < 2 or not sys.argv[1].startswith("jobs."):
        raise SystemExit("usage: run_job.py jobs.<module> [job arguments ...]")
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
