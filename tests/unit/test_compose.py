"""docker-compose.yaml cannot start here (no Docker engine): check its shape statically."""

from pathlib import Path

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


def load_compose() -> dict:
    return yaml.safe_load((PROJECT / "docker-compose.yaml").read_text())


def test_every_airflow_process_of_airflow_3_is_a_service():
    services = load_compose()["services"]
    assert {"postgres", "redis", *AIRFLOW_SERVICES} <= set(services)
    for name, command in AIRFLOW_SERVICES.items():
        service = services[name]
        assert service["image"] == "nightly-scoring:latest", name
        if command:
            assert service["command"] == command, name


def test_airflow_settings_are_shared_and_safe_for_small_machines():
    services = load_compose()["services"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert int(env["AIRFLOW__CORE__PARALLELISM"]) <= 16, name
        assert env["AIRFLOW_CONN_WAREHOUSE"].startswith("postgresql://scoring:"), name
        assert "${SCORING_DB_PASSWORD" in env["AIRFLOW_CONN_WAREHOUSE"], name


def test_services_wait_for_healthy_dependencies():
    services = load_compose()["services"]
    for name in ("postgres", "redis", "airflow-apiserver"):
        assert "healthcheck" in services[name], name
    assert services["airflow-scheduler"]["depends_on"]["airflow-init"] == {
        "condition": "service_completed_successfully"
    }
    assert services["airflow-worker"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_files_the_stack_needs_exist():
    compose = load_compose()
    init_mount = compose["services"]["postgres"]["volumes"][1].split(":")[0]
    assert (PROJECT / init_mount).is_file()
    dockerfile = (PROJECT / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    for path in ("requirements.txt", "pipeline", "sql", "expectations", "dags"):
        assert f"COPY --chown=airflow:root {path}" in dockerfile
