"""Lineage a data platform can read: a run as a user starts it (`python -m pipeline run`, every
task through Airflow's task execution) sends OpenLineage events, through Airflow's OpenLineage
provider (a file transport here), that name what each stage read and wrote: the source table as
input of the snapshots, the snapshot and model files, the partitions, and the predictions table
as the output of publish, each event with the run's ids, and no login anywhere."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from helpers import query
from pipeline.local.demo_data import seed_table
from pipeline.orchestration.lineage import table_uri

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

AS_OF = "2026-10-01T00:00:00Z"
# where the session's tasks write their events (tests/conftest.py), one file per event
OPENLINEAGE_EVENTS = Path(
    json.loads(os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"])["log_file_path"]
)


def completed_tasks(dag_run_id: str) -> dict[str, list[dict]]:
    """The COMPLETE events of a DAG run's tasks, by task id."""
    found: dict[str, list[dict]] = {}
    for path in OPENLINEAGE_EVENTS.parent.glob(f"{OPENLINEAGE_EVENTS.name}-*.json"):
        event = json.loads(path.read_text())
        facets = event.get("run", {}).get("facets", {})
        run = (facets.get("airflow") or {}).get("dagRun") or {}
        if event.get("eventType") == "COMPLETE" and run.get("run_id") == dag_run_id:
            task = event["job"]["name"].split(".", 1)[-1]
            found.setdefault(task, []).append(event)
    return found


def datasets(events: list[dict], side: str) -> set[str]:
    return {f"{d['namespace']}/{d['name']}" for e in events for d in e.get(side, [])}


def test_a_dag_run_sends_what_each_stage_read_and_wrote(warehouse, jobs, airflow_db):
    seed_table(warehouse, "demo.deliveries", 2_000)
    path = jobs / "delivery_delay.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["scoring"] = {"partitions": 2, "batch_rows": 1_000}
    path.write_text(yaml.safe_dump(spec))
    # as a user runs it, in a process of its own (this session's settings in its environment)
    command = [sys.executable, "-m", "pipeline", "run", "delivery_delay", "--as-of", AS_OF]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [(run_id,)] = query(warehouse, "SELECT run_id FROM scoring.scoring_runs")
    tasks = completed_tasks(run_id)

    def dataset(table: str) -> str:
        """A table as the provider names it: namespace postgres://host:port, name db.schema.t."""
        server, _, dotted = table_uri(warehouse, table).removeprefix("postgres://").partition("/")
        return f"postgres://{server}/{dotted.replace('/', '.')}"

    source = dataset("demo.deliveries")
    snapshots = {uri for (uri,) in query(warehouse, "SELECT uri FROM scoring.snapshots")}
    for stage in ("snapshot_training", "snapshot_scoring"):
        assert datasets(tasks[stage], "inputs") == {source}, tasks[stage]
        [written] = datasets(tasks[stage], "outputs")
        assert written.removeprefix("file/") in snapshots, written
    [(artifact,)] = query(warehouse, "SELECT artifact_uri FROM scoring.model_versions")
    assert f"file/{artifact}" in datasets(tasks["register"], "outputs")
    assert len(tasks["score"]) == 2
    parts = datasets(tasks["score"], "outputs")
    assert len(parts) == 2 and all(p.endswith(".parquet") for p in parts)
    assert datasets(tasks["publish"], "inputs") == parts
    predictions = dataset("scoring.delivery_delay_predictions")
    assert datasets(tasks["publish"], "outputs") == {predictions}
    password = urlsplit(warehouse).password
    assert not password or password not in json.dumps(tasks)
    assert Path(artifact).exists()
