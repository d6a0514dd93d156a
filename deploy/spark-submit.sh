#!/usr/bin/env bash
# The daily pipeline for one date on a Spark 4 cluster with Delta Lake (classic mode, JVM Spark):
#   ingest (one job per source) -> identity -> tags -> audiences refresh,
# each a job module run through deploy/run_job.py, in the order the cdp_daily DAG runs them.
#
#   deploy/spark-submit.sh 2026-11-01
#
# Needs on the machine that submits (the driver runs here, client mode): this package installed with its
# pins (pip install -c constraints.txt .), Java 17 and spark-submit of Spark 4.0 (pyspark 4.0.1 ships one).
# The executors run the jobs' pandas UDFs and mapInPandas steps, so they need the same Python environment:
# pack it once (venv-pack) and ship it with --archives, as Spark's Python package management guide shows
# (https://spark.apache.org/docs/latest/api/python/tutorial/python_packaging.html); set CDP_PYTHON_ARCHIVE
# to that archive, or leave it empty when every node already has the package installed.
#
# Environment (defaults in brackets):
#   SPARK_MASTER        the cluster master URL, e.g. spark://host:7077, yarn, k8s://https://host:443 [local[2]]
#   CDP_DATA_ROOT       lake, scratch checkpoints, packs: a URI every executor reads and writes, e.g.
#                       s3a://bucket/cdp (then also set CDP_LANDING_ROOT if landing files live elsewhere)
#   CDP_PII_KEY         the deployment's secret for keyed hashes and bronze encryption (required)
#   CDP_SHUFFLE_PARTITIONS  spark.sql.shuffle.partitions of the jobs' sessions [8]; see deploy/README.md
#   EXECUTOR_MEMORY / EXECUTOR_CORES / NUM_EXECUTORS  [8g / 4 / 2]
#   DELTA_VERSION       io.delta:delta-spark_2.13 version matching Spark 4.0 and the delta-spark pin [4.0.1]
#
# Not run on a cluster in this repository (the classic mode's own test runs a local JVM without Delta).
set -euo pipefail

DT="${1:?usage: deploy/spark-submit.sh YYYY-MM-DD}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${CDP_PII_KEY:?set CDP_PII_KEY (the deployment secret)}"

export CDP_ENGINE=classic  # the jobs reuse the session spark-submit configures (cdp.engine.get_spark)
unset SPARK_REMOTE CDP_SPARK_MASTER  # --master below decides where the jobs run

SUBMIT=(
  spark-submit
  --master "${SPARK_MASTER:-local[2]}"
  --deploy-mode client
  --packages "io.delta:delta-spark_2.13:${DELTA_VERSION:-4.0.1}"
  --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension
  --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog
  --conf spark.sql.session.timeZone=UTC
  --conf spark.sql.adaptive.enabled=true
  --executor-memory "${EXECUTOR_MEMORY:-8g}"
  --executor-cores "${EXECUTOR_CORES:-4}"
  --num-executors "${NUM_EXECUTORS:-2}"
)
if [[ -n "${CDP_PYTHON_ARCHIVE:-}" ]]; then
  # As in Spark's guide: the driver keeps the local Python, the executors use the unpacked archive.
  SUBMIT+=(--archives "${CDP_PYTHON_ARCHIVE}#environment")
  export PYSPARK_DRIVER_PYTHON=python PYSPARK_PYTHON=./environment/bin/python
fi

job() {
  echo "== $* (dt ${DT})"
  "${SUBMIT[@]}" "${HERE}/run_job.py" "$@"
}

# Sources are the contract files, read at run time like the DAG's list_sources task (one writer per table:
# the sources run one after another here; run them in parallel only as separate applications).
SOURCES=$(python -c 'from cdp.settings import Settings
from schemas import load_sources
print(" ".join(sorted(load_sources(Settings.from_env().contract_paths))))')
for source in ${SOURCES}; do
  job jobs.ingest "${source}" --dt "${DT}"
done
job jobs.identity --dt "${DT}"
job jobs.tags --dt "${DT}"
job jobs.audiences refresh --dt "${DT}"
