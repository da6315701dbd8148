"""Settings from the environment, with defaults that work in a fresh checkout."""

import os
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def jobs_dir() -> Path:
    """Folder of job specs (`SCORING_JOBS_DIR`, default `dags/jobs`)."""
    return Path(os.environ.get("SCORING_JOBS_DIR", PROJECT_ROOT / "dags" / "jobs"))


def expectations_dir() -> Path:
    """Folder of Great Expectations suites (`SCORING_EXPECTATIONS_DIR`, default `expectations`)."""
    return Path(os.environ.get("SCORING_EXPECTATIONS_DIR", PROJECT_ROOT / "expectations"))


def data_root() -> str:
    """Where snapshots, models and run outputs live: a local folder or a pyarrow URI (s3://...)."""
    return os.environ.get("SCORING_DATA_ROOT", str(PROJECT_ROOT / "data"))


def data_root_shown() -> str:
    """The data root as it may be printed: a URI without its query (an endpoint, keys)."""
    return data_root().split("?", 1)[0]


def warehouse_url(fallback: Callable[[], str] | None = None) -> str:
    """The warehouse: `DATABASE_URL`, else `AIRFLOW_CONN_WAREHOUSE`, else `fallback()`.

    The CLI's fallback starts the embedded Postgres; the Airflow adapter's reads the Airflow
    connection `warehouse` from wherever Airflow keeps it.
    """
    url = os.environ.get("DATABASE_URL") or os.environ.get("AIRFLOW_CONN_WAREHOUSE")
    if not url and fallback is not None:
        url = fallback()
    if not url:
        raise ConfigError(
            "no warehouse configured: set DATABASE_URL (or the Airflow connection 'warehouse', "
            "AIRFLOW_CONN_WAREHOUSE), or use `python -m pipeline demo`, which starts an embedded "
            "Postgres"
        )
    return normalize_url(url)


def normalize_url(url: str) -> str:
    """Accept Airflow's `postgres://` spelling as well as `postgresql://`."""
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    return url


def airflow_ui_url() -> str | None:
    """The Airflow UI's address (`[api] base_url`: from the environment, else from Airflow's
    configuration when Airflow is installed), for links a person can open; None if unset."""
    base = os.environ.get("AIRFLOW__API__BASE_URL")
    if base is None:
        try:
            from airflow.sdk.configuration import conf

            base = conf.get("api", "base_url", fallback="")
        except Exception:  # no Airflow here, or no configuration: links are paths then
            return None
    return base.rstrip("/") or None
