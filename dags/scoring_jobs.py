"""Airflow DAGs for nightly scoring: one DAG per job spec in `dags/jobs/*.yaml`.

Wiring only; the tasks and their logic live in the `pipeline` package.
"""

from pipeline.airflow_dags import build_dags

globals().update(build_dags())
