"""A local Airflow for `python -m pipeline run|demo`: settings first, then the metadata DB.

Only environment variables are set here; Airflow itself is imported after, by the caller.
Anything already set in the environment (a real deployment's settings) wins.
"""

import logging
import os
import subprocess
import sys
from pathlib import Path

from pipeline.config import PROJECT_ROOT
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULTS = {
    "AIRFLOW_HOME": str(PROJECT_ROOT / ".airflow"),
    "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
    "GX_ANALYTICS_ENABLED": "False",
}


def configure() -> Path:
    """Point Airflow at this project's DAGs and a local home; returns AIRFLOW_HOME."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if paths[:1] != [str(PROJECT_ROOT)]:  # task processes import this project's `pipeline`
        os.environ["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *paths])
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    return home


def ensure_metadata_db() -> None:
    """Create or upgrade Airflow's metadata DB (`airflow db migrate`), once per home."""
    home = configure()
    marker = home / ".migrated"
    if marker.exists():
        return
    log.info("preparing Airflow's metadata database in %s (first run only)", home)
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise ConfigError(f"`airflow db migrate` failed:\n{done.stderr[-3000:]}")
    marker.touch()
