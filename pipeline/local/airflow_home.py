"""A local Airflow home (`.airflow/`): its airflow.cfg, then the metadata DB.

Used by `python -m pipeline run|demo` and by `make airflow`. Airflow itself is imported after,
by the caller. Anything already set in the environment (a real deployment's settings) wins.
"""

import configparser
import io
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

from pipeline.config import PROJECT_ROOT
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_HOME = PROJECT_ROOT / ".airflow"
# The local home's metadata DB is SQLite, shared by the api-server, scheduler, dag-processor and
# task processes: a writer waits up to a minute for the lock instead of failing after 5 s (a
# Trigger press answered "500: database is locked" while two tasks heartbeat on a busy machine).
SQLITE_CONNECT_ARGS = {"timeout": 60}
PASSWORDS_FILE = "passwords.json"


def settings(
    home: Path, executor: str, port: int, ui: bool, log_ports: tuple[int, int] = (8793, 8794)
) -> dict[str, dict[str, str]]:
    """The project's Airflow settings, by airflow.cfg section. `ui`: for the UI stack (`make
    airflow`), with DAGs unpaused and links to its pages; `log_ports` are where workers and
    the triggerer serve their task logs to the UI."""
    redis = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
    return {
        "core": {
            "dags_folder": str(PROJECT_ROOT / "dags"),
            "load_examples": "False",
            "executor": executor,
            "parallelism": "4",  # 2 cores: a few tasks at once, not 32 worker processes
            "dags_are_paused_at_creation": str(not ui),
            "simple_auth_manager_users": auth_users(),
            "simple_auth_manager_passwords_file": str(home / PASSWORDS_FILE),
            "hostname_callable": "pipeline.orchestration.workers.hostname",
            "execution_api_server_url": f"http://127.0.0.1:{port}/execution/",
        },
        "api": {
            "host": "127.0.0.1",
            "port": str(port),
            "workers": "1",
            **({"base_url": f"http://127.0.0.1:{port}"} if ui else {}),
        },
        "api_auth": {"jwt_secret": jwt_secret(home)},
        "dag_processor": {"refresh_interval": "30"},
        **sqlite_settings(),
        "logging": {
            "worker_log_server_port": str(log_ports[0]),
            "trigger_log_server_port": str(log_ports[1]),
        },
        "celery": {
            "broker_url": f"{redis}/0",
            "result_backend": f"{redis}/1",
            "worker_concurrency": "1",
        },
    }


def auth_users() -> str:
    """The local stack's users (Airflow's simple auth manager): `admin`, and each approver a
    job spec names (`governance.approval.approvers`), with the role `user`: it may answer a
    Required Action, and its password is made with the others in passwords.json."""
    from pipeline.config import jobs_dir
    from pipeline.spec import scan_specs

    specs, _ = scan_specs(jobs_dir())
    approvers = sorted({user for s in specs for user in s.governance.approval.approvers})
    return ",".join(["admin:admin", *(f"{user}:user" for user in approvers if user != "admin")])


def sqlite_settings() -> dict[str, dict[str, str]]:
    """The SQLite lock wait, unless a deployment set its own metadata database."""
    if os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        return {}
    return {
        "database": {"sql_alchemy_connect_args": "pipeline.local.airflow_home.SQLITE_CONNECT_ARGS"}
    }


def as_env(sections: dict[str, dict[str, str]]) -> dict[str, str]:
    """Settings as Airflow's environment variables (`AIRFLOW__SECTION__KEY`)."""
    return {
        f"AIRFLOW__{section.upper()}__{key.upper()}": value
        for section, values in sections.items()
        for key, value in values.items()
    }


def jwt_secret(home: Path) -> str:
    """One secret every process of this home signs and checks task tokens with."""
    path = home / "jwt_secret"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(64))
    return path.read_text()


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read, from its first byte (secrets live in it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as out:
        out.write(text)


def configure(
    executor: str = "LocalExecutor",
    port: int = 8080,
    ui: bool = False,
    log_ports: tuple[int, int] = (8793, 8794),
) -> Path:
    """Write the home's airflow.cfg with the project's settings and export them; returns the
    home. A setting already in the environment (a real deployment's) wins."""
    os.environ.setdefault("AIRFLOW_HOME", str(DEFAULT_HOME))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)  # its files hold the JWT secret, the passwords and the metadata DB
    sections = settings(home, executor, port, ui, log_ports)
    config = configparser.ConfigParser(interpolation=None)
    config.read_dict(sections)
    text = io.StringIO()
    text.write("# Written by pipeline.local.airflow_home: the project's settings.\n")
    config.write(text)
    write_private(home / "airflow.cfg", text.getvalue())  # it holds the JWT secret
    for name, value in as_env(sections).items():
        os.environ.setdefault(name, value)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if paths[:1] != [str(PROJECT_ROOT)]:  # task processes import this project's `pipeline`
        os.environ["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *paths])
    return home


def ensure_metadata_db() -> None:
    """Create or upgrade Airflow's metadata DB (`airflow db migrate`), once per home."""
    home = Path(os.environ["AIRFLOW_HOME"]) if "AIRFLOW_HOME" in os.environ else configure()
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
