"""Job entry points: each reads lake tables or landed files, calls the domain packages, and writes.

Each job has ``run(spark, settings, ...)`` for Airflow tasks and the CLI, and ``main(argv)`` for
``spark-submit`` / ``python -m jobs.<name>`` on a cluster.
"""
