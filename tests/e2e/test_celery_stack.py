"""`make airflow WORKERS=2` as a test: the CeleryExecutor with Redis and two workers spreads the
scoring partitions of a run triggered through the REST API, and the run publishes exactly. The
workers share no disk: each runs in a folder of its own, and the data root is on a real S3
server (SeaweedFS), so a snapshot one worker wrote is read by the other through the bucket.

The test owns every process the stack starts (one process group) and always stops them.
"""

import json
import os
import socket
import urllib.error

import pytest
import yaml

from helpers import query
from pipeline.datafiles.root import DataRoot
from pipeline.local import airflow_stack
from pipeline.local.demo_data import seed_table

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

AS_OF = "2026-09-01T00:00:00Z"
DEADLINE_S = 600


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def celery_stack(warehouse, s3_root, jobs, tmp_path, monkeypatch):
    """Airflow with two Celery workers in this test's own home, on this test's warehouse, each
    worker in a folder of its own, the data root in a bucket."""
    assert redis_answers(), "Redis must run on 127.0.0.1:6379 (the Celery broker)"
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    hosts = tmp_path / "hosts"
    try:
        yield airflow_stack.start(warehouse, workers=2, port=airflow_stack.free_port(), hosts=hosts)
    finally:
        airflow_stack.stop()


def test_partitions_of_a_triggered_run_spread_over_two_celery_workers(
    celery_stack, warehouse, jobs, tmp_path
):
    seed_table(warehouse, "demo.customers", 8_000)
    path = jobs / "customer_churn.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["scoring"] = {"partitions": 4, "batch_rows": 1_000}
    path.write_text(yaml.safe_dump(spec))

    api = airflow_stack.Client(celery_stack)
    run = api.run_to_end("customer_churn", {"as_of": AS_OF, "retrain": "always"}, DEADLINE_S)
    runs_path = f"/api/v2/dags/customer_churn/dagRuns/{run['dag_run_id']}"
    tasks = api.call("GET", f"{runs_path}/taskInstances")["task_instances"]
    assert run["state"] == "success", [(t["task_id"], t["state"]) for t in tasks]

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
    # run's report and Data Docs behind Airflow's login, and the Asset that publishing updated.
    log = api.call("GET", f"{runs_path}/taskInstances/publish/logs/1?full_content=true")
    text = json.dumps(log)
    assert f"rows scored {expected:,}" in text and "scoring.customer_churn_latest" in text
    [(report_uri,)] = query(
        warehouse,
        "SELECT report_uri FROM scoring.scoring_runs WHERE run_id = %s",
        (run["dag_run_id"],),
    )
    root = DataRoot()
    assert report_uri.startswith(f"{os.environ['SCORING_DATA_ROOT']}/runs/"), report_uri
    report_page = f"/scoring-files/{root.relative(report_uri)}"
    assert f"report: {api.base}{report_page}" in text  # the summary links it in the UI
    assert "Run report: customer_churn" in api.text(report_page)
    docs = query(
        warehouse,
        "SELECT docs_uri FROM scoring.validation_results WHERE run_id = %s",
        (run["dag_run_id"],),
    )
    for (uri,) in docs:
        page = f"/scoring-files/{root.relative(uri)}"
        assert "Expectation Validation Result" in api.text(page)
        with pytest.raises(urllib.error.HTTPError) as refused:
            api.text(page, authenticated=False)
        assert refused.value.code in (401, 403)
    with pytest.raises(urllib.error.HTTPError) as outside:
        api.text("/scoring-files/%2e%2e/%2e%2e/%2e%2e/etc/passwd")
    assert outside.value.code == 404
    events = api.call("GET", "/api/v2/assets/events?source_dag_id=customer_churn")
    assert any(e["source_run_id"] == run["dag_run_id"] for e in events["asset_events"])

    # Nothing of the run is on a local disk: no data root folder, and each worker's own folder
    # holds no file the pipeline wrote (its temporary folder emptied after each task).
    assert not (tmp_path / "data").exists()
    for host in (tmp_path / "hosts").iterdir():
        left = [p for p in host.rglob("*") if p.is_file()]
        assert not left, (host.name, left[:5])
