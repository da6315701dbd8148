"""A running Airflow (api-server, scheduler, dag-processor, LocalExecutor) triggers a job the
way the UI's Trigger button does: POST /api/v2/dags/<dag>/dagRuns with the form's params.

The test owns the process group of every Airflow process it starts and ends it, even on failure.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from helpers import query
from pipeline.ops import airflow_stack
from pipeline.ops.demo_data import seed_table

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parents[2]
PROCESSES = ("api-server", "scheduler", "dag-processor")
DEADLINE_S = 600
# A task log shows the work; a few warnings are news, more is noise burying it.
MAX_WARNINGS_PER_TASK = 5
# Library noise seen by the thousand in task logs before: skops walking Airflow's deprecation
# shims (pipeline.model.registry.quiet_skops), GX's import chatter (validate.GX_CHATTER).
NOISE = ("DeprecatedImportWarning", "Skipping registering function")


def call(base: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{base}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


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


def wait_for(what: str, probe, deadline: float):
    """Poll `probe` until it returns a truthy value or the deadline passes."""
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
def airflow_services(warehouse, jobs, tmp_path):
    """Airflow's processes in their own process group, with this test's warehouse and jobs.

    Yields the api-server's URL, the folder of the processes' own logs, the jobs folder and
    AIRFLOW_HOME (task logs are under its logs/).
    """
    port = airflow_stack.free_port()
    home = tmp_path / "airflow"
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    }
    subprocess.run(
        [str(bin_dir / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    leader = subprocess.Popen(
        [
            "bash",
            "-c",
            " & ".join(f"airflow {p} > {logs}/{p}.log 2>&1" for p in PROCESSES) + " & wait",
        ],
        env=env,
        start_new_session=True,  # its own process group: killed as a whole below
    )
    try:
        yield f"http://127.0.0.1:{port}", logs, jobs, home
    finally:
        os.killpg(leader.pid, signal.SIGTERM)
        try:
            leader.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(leader.pid, signal.SIGKILL)
        time.sleep(2)
        try:
            os.killpg(leader.pid, signal.SIGKILL)  # stragglers that ignored SIGTERM
        except ProcessLookupError:
            pass


def test_trigger_with_params_runs_the_dag_on_real_airflow(airflow_services):
    base, logs, jobs, home = airflow_services
    url = os.environ["DATABASE_URL"]
    seed_table(url, "demo.deliveries", 5_000)
    spec = yaml.safe_load((jobs / "delivery_delay.yaml").read_text())
    spec["scoring"] = {"partitions": 2, "batch_rows": 1_000}  # two mapped score tasks
    (jobs / "delivery_delay.yaml").write_text(yaml.safe_dump(spec))
    deadline = time.monotonic() + DEADLINE_S
    wait_for("the api-server", lambda: call(base, "GET", "/api/v2/version"), deadline)
    wait_for(
        "the DAG to be parsed",
        lambda: call(base, "GET", "/api/v2/dags/delivery_delay").get("dag_id"),
        deadline,
    )
    # Trigger as the UI does, with the form's params; the DAG stays paused, so the scheduler
    # creates no scheduled run of its own and only this manual one runs.
    run = call(
        base,
        "POST",
        "/api/v2/dags/delivery_delay/dagRuns",
        {"logical_date": None, "conf": {"as_of": "2026-06-01T00:00:00Z", "retrain": "always"}},
    )
    call(base, "PATCH", "/api/v2/dags/delivery_delay", {"is_paused": False})
    path = f"/api/v2/dags/delivery_delay/dagRuns/{run['dag_run_id']}"
    state = wait_for(
        "the run to finish",
        lambda: (s := call(base, "GET", path)["state"]) in ("success", "failed") and s,
        deadline,
    )
    assert state == "success", (logs / "scheduler.log").read_text()[-3000:]

    as_of, status, rows = query(
        url,
        "SELECT as_of::text, status, rows_scored FROM scoring.scoring_runs WHERE run_id = %s",
        (run["dag_run_id"],),
    )[0]
    expected = query(
        url, "SELECT count(*) FROM demo.deliveries WHERE updated_at < '2026-06-01T00:00:00Z'"
    )[0][0]
    assert (as_of, status, rows) == ("2026-06-01 00:00:00+00", "published", expected)
    tasks = call(base, "GET", f"{path}/taskInstances")["task_instances"]
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
