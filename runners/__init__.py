"""Runners: the local one-process pipeline (``runners.local``), the functions the Airflow DAGs call
(``runners.orchestration``) and a local Airflow for laptops (``runners.airflow_local``)."""
