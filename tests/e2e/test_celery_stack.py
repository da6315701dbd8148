"""`make airflow WORKERS=2` as a test: the CeleryExecutor with Redis and two workers spreads the
scoring partitions of a run triggered through the REST API, and the run publishes exactly.

The test owns every process the stack starts (one process group) and always stops them.
"""

import json
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from helpers import query
from pipeline.ops import airflow_stack
from pipeline.ops.demo_data import seed_table

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

AS_OF = "2026-09-01T00:00:00Z"
DEADLINE_S = 600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Api:
    """The REST API the UI uses, with the admin's token."""

    def __init__(self, login: airflow_stack.Login):
        self.base = login.url
        token = self.call(
            "POST", "/auth/token", {"username": login.user, "password": login.password}
        )
        self.token = token["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        return json.loads(self.text(path, method, body))

    def text(self, path: str, method: str = "GET", body=None, authenticated=True) -> str:
        headers = {"Content-Type": "application/json"}
        if authenticated and getattr(self, "token", None):
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            f"{self.base}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers=headers,
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read().decode()


def wait_for(what: str, probe, deadline: float):
    while time.monotonic() < deadline:
        try:
            value = probe()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def celery_stack(warehouse, jobs, tmp_path, monkeypatch):
    """Airflow with two Celery workers in this test's own home, on this test's warehouse."""
    assert redis_answers(), "Redis must run on 127.0.0.1:6379 (the Celery broker)"
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    try:
        yield airflow_stack.start(warehouse, workers=2, port=free_port())
    finally:
        airflow_stack.stop()


def test_partitions_of_a_triggered_run_spread_over_two_celery_workers(
    celery_stack, warehouse, jobs
):
    seed_table(warehouse, "demo.customers", 8_000)
    path = jobs / "customer_churn.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["scoring"] = {"partitions": 4, "batch_rows": 1_000}
    path.write_text(yaml.safe_dump(spec))

    api = Api(celery_stack)
    deadline = time.monotonic() + DEADLINE_S
    wait_for(
        "the DAG to be parsed",
        lambda: api.call("GET", "/api/v2/dags/customer_churn").get("dag_id"),
        deadline,
    )
    run = api.call(
        "POST",
        "/api/v2/dags/customer_churn/dagRuns",
        {"logical_date": None, "conf": {"as_of": AS_OF, "retrain": "always"}},
    )
    runs_path = f"/api/v2/dags/customer_churn/dagRuns/{run['dag_run_id']}"
    state = wait_for(
        "the run to finish",
        lambda: (s := api.call("GET", runs_path)["state"]) in ("success", "failed") and s,
        deadline,
    )
    tasks = api.call("GET", f"{runs_path}/taskInstances")["task_instances"]
    assert state == "success", [(t["task_id"], t["state"]) for t in tasks]

    expected = query(
        warehouse, "SELECT count(*) FROM demo.customers WHERE updated_at < %s", (AS_OF,)
    )[0][0]
    published = query(
        warehouse,
        "SELECT status, rows_scored FROM scoring.scoring_runs WHERE run_id = %s",
        (run["dag_run_id"],),
    )
    assert published == [("published", expected)]
    rows = query(
        warehouse,
        "SELECT count(*), count(DISTINCT key) FROM scoring.customer_churn_predictions"
        " WHERE run_id = %s",
        (run["dag_run_id"],),
    )
    assert rows == [(expected, expected)]

    scored = [t for t in tasks if t["task_id"] == "score"]
    assert len(scored) == 4 and all(t["state"] == "success" for t in scored)
    assert {t["hostname"] for t in scored} == {"worker-1", "worker-2"}  # both took partitions

    # What a person reaches from the UI: the summary at the end of the last task's log, the
    # run's Data Docs behind Airflow's login, and the Asset that publishing updated.
    log = api.call("GET", f"{runs_path}/taskInstances/monitor/logs/1?full_content=true")
    text = json.dumps(log)
    assert f"rows scored {expected:,}" in text and "scoring.customer_churn_latest" in text
    docs = query(
        warehouse,
        "SELECT docs_uri FROM scoring.validation_results WHERE run_id = %s",
        (run["dag_run_id"],),
    )
    root = Path(os.environ["SCORING_DATA_ROOT"]).resolve()
    for (uri,) in docs:
        page = f"/scoring-files/{Path(uri).resolve().relative_to(root)}"
        assert "Expectation Validation Result" in api.text(page)
        with pytest.raises(urllib.error.HTTPError) as refused:
            api.text(page, authenticated=False)
        assert refused.value.code in (401, 403)
    with pytest.raises(urllib.error.HTTPError) as outside:
        api.text("/scoring-files/%2e%2e/%2e%2e/%2e%2e/etc/passwd")
    assert outside.value.code == 404
    events = api.call("GET", "/api/v2/assets/events?source_dag_id=customer_churn")
    assert any(e["source_run_id"] == run["dag_run_id"] for e in events["asset_events"])
