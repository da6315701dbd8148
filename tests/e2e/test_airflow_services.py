"""`make airflow` (api-server, scheduler, dag-processor, triggerer; LocalExecutor) runs a job
triggered the way the UI's Trigger button does: POST /api/v2/dags/<dag>/dagRuns with the form's
params. Its task logs show the work, not library noise.

The test owns the process group of every Airflow process it starts and ends it, even on failure.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import query
from pipeline.local import airflow_home, airflow_stack
from pipeline.local.demo_data import seed_table

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

DEADLINE_S = 600
# A task log shows the work; a few warnings are news, more is noise burying it.
MAX_WARNINGS_PER_TASK = 5
# Library noise seen by the thousand in task logs before: skops walking Airflow's deprecation
# shims (pipeline.model.registry.quiet_skops), GX's import chatter (validate.GX_CHATTER).
NOISE = ("DeprecatedImportWarning", "Skipping registering function")


def task_logs(home: Path, dag_id: str, run_id: str) -> dict[str, list[dict]]:
    """Each task's log of one DAG run (its last attempt) as records: `score[0]` for map index 0.

    Airflow 3 writes JSON lines; a line that is not JSON is kept as {"event": line}.
    """
    run = home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    assert run.is_dir(), f"no task logs at {run}: {sorted(run.parent.glob('*'))}"
    found: dict[str, list[dict]] = {}
    for path in sorted(run.rglob("attempt=*.log"), key=lambda p: int(p.stem.split("=")[1])):
        parts = dict(part.split("=", 1) for part in path.relative_to(run).parent.parts)
        name = parts["task_id"] + (f"[{parts['map_index']}]" if "map_index" in parts else "")
        records = []
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            records.append(record if isinstance(record, dict) else {"event": line})
        found[name] = records  # a later attempt replaces an earlier one
    return found


def log_problems(name: str, records: list[dict]) -> list[str]:
    """What is wrong with one task's log: library noise, too many warnings, no work shown."""
    problems = []
    noise = [r for r in records if any(n in json.dumps(r) for n in NOISE)]
    if noise:
        problems.append(f"{name}: {len(noise)} noise lines, e.g. {str(noise[0])[:300]}")
    warned = [r for r in records if str(r.get("level")).lower() in ("warning", "error", "critical")]
    if len(warned) > MAX_WARNINGS_PER_TASK:
        problems.append(
            f"{name}: {len(warned)} WARNING-or-worse lines (at most {MAX_WARNINGS_PER_TASK}), "
            f"e.g. {[str(r.get('event'))[:200] for r in warned[:3]]}"
        )
    if not any(str(r.get("logger", "")).startswith("pipeline.") for r in records):
        problems.append(f"{name}: no line from the pipeline package among {len(records)} lines")
    return problems


@pytest.fixture
def airflow_services(warehouse, jobs, tmp_path, monkeypatch):
    """The `make airflow` stack in this test's own Airflow home, on this test's warehouse."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    (jobs / "customer_churn.yaml").unlink()  # its scheduled run would only add load here
    try:
        login = airflow_stack.start(warehouse, workers=0, port=airflow_stack.free_port())
        yield airflow_stack.Client(login), tmp_path / "airflow"
    finally:
        airflow_stack.stop()


def test_trigger_with_params_runs_the_dag_on_real_airflow(airflow_services, jobs):
    api, home = airflow_services
    url = os.environ["DATABASE_URL"]
    seed_table(url, "demo.deliveries", 5_000)
    spec = yaml.safe_load((jobs / "delivery_delay.yaml").read_text())
    spec["scoring"] = {"partitions": 2, "batch_rows": 1_000}  # two mapped score tasks
    (jobs / "delivery_delay.yaml").write_text(yaml.safe_dump(spec))
    conf = {"as_of": "2026-06-01T00:00:00Z", "retrain": "always"}
    run = api.run_to_end("delivery_delay", conf, DEADLINE_S)
    scheduler_log = home / "logs" / "scheduler.log"
    assert run["state"] == "success", scheduler_log.read_text()[-3000:]
    path = f"/api/v2/dags/delivery_delay/dagRuns/{run['dag_run_id']}"

    as_of, status, rows = query(
        url,
        "SELECT as_of::text, status, rows_scored FROM scoring.scoring_runs WHERE run_id = %s",
        (run["dag_run_id"],),
    )[0]
    expected = query(
        url, "SELECT count(*) FROM demo.deliveries WHERE updated_at < '2026-06-01T00:00:00Z'"
    )[0][0]
    assert (as_of, status, rows) == ("2026-06-01 00:00:00+00", "published", expected)
    tasks = api.call("GET", f"{path}/taskInstances")["task_instances"]
    scored = [t for t in tasks if t["task_id"] == "score"]
    assert len(scored) == 2 and all(t["state"] == "success" for t in tasks)

    # Every task's log shows the work, not library noise.
    logged = task_logs(home, "delivery_delay", run["dag_run_id"])
    expected_logs = {
        t["task_id"] + (f"[{t['map_index']}]" if t["map_index"] >= 0 else "") for t in tasks
    }
    assert set(logged) == expected_logs
    problems = [p for name, records in sorted(logged.items()) for p in log_problems(name, records)]
    assert not problems, "\n".join(problems)

    a_request_nobody_answers_keeps_the_champion(api, jobs, url)


def a_request_nobody_answers_keeps_the_champion(api, jobs, url: str) -> None:
    """A forced promotion waits for an approver who never answers: at the deadline Airflow ends
    the Required Action, and the approval DAG records the request as timed out."""
    path = jobs / "delivery_delay.yaml"
    spec = yaml.safe_load(path.read_text())
    approval = {"when": ["force_promote"], "approvers": ["nobody"], "timeout_hours": 0.005}
    spec["governance"] = {"approval": approval}  # 18 s
    path.write_text(yaml.safe_dump(spec))
    deadline = time.monotonic() + DEADLINE_S
    while "request_approval" not in {  # the dag-processor has parsed the spec again
        t["task_id"] for t in api.call("GET", "/api/v2/dags/delivery_delay/tasks")["tasks"]
    } or not api.try_call("GET", "/api/v2/dags/delivery_delay_approval").get("dag_id"):
        api.check(deadline, "the approval DAG to be parsed")
    champion = query(url, "SELECT version FROM scoring.model_versions WHERE status = 'champion'")
    conf = {"as_of": "2026-06-02T00:00:00Z", "retrain": "always", "force_promote": True}
    run = api.run_to_end("delivery_delay", conf, DEADLINE_S)
    assert run["state"] == "success", run
    ((version, status),) = query(
        url,
        "SELECT version, status FROM scoring.model_versions WHERE run_id = %s",
        (run["dag_run_id"],),
    )
    assert status == "awaiting_approval"
    runs = "/api/v2/dags/delivery_delay_approval/dagRuns"
    while not (asked := api.call("GET", runs)["dag_runs"]) or asked[0]["state"] not in (
        "success",
        "failed",
    ):
        api.check(deadline, "the approval request to time out")
    tasks = api.call("GET", f"{runs}/{asked[0]['dag_run_id']}/taskInstances")["task_instances"]
    states = {t["task_id"]: t["state"] for t in tasks}
    assert states["approve"] == "failed" and states["record"] == "success", states
    ((status, verdict, reason),) = query(
        url,
        "SELECT status, approval->>'verdict', approval->>'reason' FROM scoring.model_versions"
        " WHERE version = %s",
        (version,),
    )
    assert (status, verdict, reason) == ("rejected", "timed_out", "no answer before the deadline")
    assert (
        query(url, "SELECT version FROM scoring.model_versions WHERE status = 'champion'")
        == champion
    )


def test_airflow_backfill_create_runs_the_cut_offs_through_the_scheduler(airflow_services, jobs):
    """The deployment's way to backfill, as docs/operations.md shows it: `airflow backfill
    create` makes one run per cron time in the range, which the scheduler runs oldest first;
    each run's cut-off is its logical date."""
    api, home = airflow_services
    url = os.environ["DATABASE_URL"]
    seed_table(url, "demo.deliveries", 3_000)
    spec = yaml.safe_load((jobs / "delivery_delay.yaml").read_text())
    spec["schedule"] = {"cron": "0 0 1 * *"}  # monthly: two cut-offs in the range below
    (jobs / "delivery_delay.yaml").write_text(yaml.safe_dump(spec))
    dates = ("2026-03-01T00:00:00+00:00", "2026-04-01T00:00:00+00:00")
    airflow = str(Path(sys.executable).parent / "airflow")
    # the stack's own settings, from its airflow.cfg (not this test session's)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(AIRFLOW_HOME=str(home), **airflow_home.as_env(airflow_home.sqlite_settings()))
    deadline = time.monotonic() + DEADLINE_S
    while "0 0 1 * *" not in json.dumps(api.try_call("GET", "/api/v2/dags/delivery_delay")):
        assert time.monotonic() < deadline, "the DAG was not parsed with its new schedule"
        time.sleep(5)  # the dag-processor re-reads the folder every 30 s
    while query(url, "SELECT count(*) FROM scoring.scoring_runs WHERE status = 'running'")[0][0]:
        assert time.monotonic() < deadline, "the scheduled run did not end"
        time.sleep(3)  # the run the scheduler starts when the DAG first appears ends first
    created = subprocess.run(
        [airflow, "backfill", "create", "--dag-id", "delivery_delay", "--from-date", dates[0],
         "--to-date", dates[1], "--max-active-runs", "1",
         "--dag-run-conf", json.dumps({"retrain": "always"})],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr[-3000:]
    while True:
        done = query(
            url,
            "SELECT as_of::text, status FROM scoring.scoring_runs WHERE job = 'delivery_delay'"
            " AND run_id LIKE 'backfill%%' AND status IN ('published', 'failed') ORDER BY as_of",
        )
        if len(done) == len(dates):
            break
        assert time.monotonic() < deadline, (home / "logs" / "scheduler.log").read_text()[-3000:]
        time.sleep(5)
    assert done == [
        ("2026-03-01 00:00:00+00", "published"),
        ("2026-04-01 00:00:00+00", "published"),
    ]
    started = query(
        url,
        "SELECT as_of FROM scoring.scoring_runs WHERE job = 'delivery_delay'"
        " AND run_id LIKE 'backfill%%' ORDER BY started_at",
    )
    assert [row[0].isoformat() for row in started] == list(dates)  # oldest first
