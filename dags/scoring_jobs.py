"""Airflow DAGs for nightly scoring: one DAG per job spec in `dags/jobs/*.yaml`.

Wiring only; the tasks and their logic live in the `pipeline` package. The project root goes
first on the import path, so `pipeline` is this project's even where a deployment has another
module of that name.
"""

import sys
from pathlib import Path

PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
if sys.path[:1] != [PROJECT_ROOT]:
    sys.path.insert(0, PROJECT_ROOT)

from pipeline.orchestration.dags import build_dags  # noqa: E402  (after the path is set)

globals().update(build_dags())
