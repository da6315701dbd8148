"""Faults a hostile or unlucky user causes, each ending in a clear state on a real Postgres:
analysts holding locks, future cut-offs, killed and concurrent runs, unbounded history."""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
import yaml

from helpers import query, run_stages, trigger_for
from pipeline import cli, flow
from pipeline.errors import PipelineError
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.spec import load_spec

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deliveries(warehouse, jobs):
    seed_table(warehouse, "demo.deliveries", 3_000)
    return warehouse, load_spec(jobs / "delivery_delay.yaml")


def reader_session(url: str, autocommit: bool = False):
    """An analyst's connection as scoring_reader: one open transaction, or one per query."""
    conn = psycopg2.connect(url)
    conn.autocommit = autocommit
    with conn.cursor() as cur:
        cur.execute("SET ROLE scoring_reader")
    return conn


def test_analysts_holding_locks_never_delay_a_publish_nor_each_other(deliveries):
    url, spec = deliveries
    run_stages(url, spec, demo_as_of(), "run-1")

    holder = reader_session(url)  # reads the view, keeps its transaction open, and takes
    with holder.cursor() as cur:  # every lock a reader can: the old publish lock included
        cur.execute("SELECT count(*) FROM scoring.delivery_delay_latest")
        cur.execute("LOCK TABLE scoring.delivery_delay_latest IN ACCESS SHARE MODE")
        cur.execute("LOCK TABLE scoring.jobs, scoring.scoring_runs IN ACCESS SHARE MODE")
        cur.execute("SELECT pg_advisory_lock(hashtext('publish:delivery_delay'))")
        cur.execute("SELECT pg_advisory_lock(hashtext('registry:delivery_delay'))")

    lock_waits, reader_errors, reads, samples, stop = [], [], [], [], threading.Event()

    def watch() -> None:
        """Any backend of the pipeline waiting on a lock, sampled every 20 ms."""
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute(
                    "SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND application_name = 'nightly-scoring'"
                )
                lock_waits.extend(row[0] for row in cur.fetchall())
                samples.append(1)
                time.sleep(0.02)
        conn.close()

    def read() -> None:
        """A second analyst querying throughout, each query allowed one second."""
        conn = reader_session(url, autocommit=True)
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = '1s'")
            while not stop.is_set():
                try:
                    cur.execute("SELECT count(*) FROM scoring.delivery_delay_latest")
                    reads.append(cur.fetchone()[0])
                except psycopg2.Error as exc:
                    reader_errors.append(str(exc))
                time.sleep(0.02)
        conn.close()

    threads = [threading.Thread(target=watch), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    try:
        started = time.perf_counter()
        second = run_stages(url, spec, demo_as_of() + timedelta(days=1), "run-2")
        seconds = time.perf_counter() - started
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        holder.close()

    assert second["publish"]["rows"] > 0
    assert lock_waits == [] and reader_errors == [], (lock_waits, reader_errors, seconds)
    assert (
        len(samples) > 10 and len(reads) > 10 and set(reads) == {second["publish"]["rows"]}
    )  # never a half run
    latest = query(url, "SELECT DISTINCT run_id FROM scoring.delivery_delay_latest")
    assert latest == [("run-2",)]


def test_a_future_as_of_is_refused_and_no_run_can_freeze_the_latest_view(deliveries, capsys):
    url, spec = deliveries
    future = datetime.now(UTC) + timedelta(days=3)
    with pytest.raises(PipelineError, match="is in the future"):
        run_stages(url, spec, future, "from-the-future")
    assert cli.main(["run", "delivery_delay", "--as-of", "2030-01-01"]) == 2
    assert "2030-01-01T00:00:00+00:00 is in the future" in capsys.readouterr().err

    run_stages(url, spec, demo_as_of(), "run-1")
    run_stages(url, spec, demo_as_of() + timedelta(days=1), "run-2")
    query(  # a run published in the future before this check existed
        url, "UPDATE scoring.scoring_runs SET as_of = '2030-01-01' WHERE run_id = 'run-1'"
    )
    latest = query(url, "SELECT DISTINCT run_id FROM scoring.delivery_delay_latest")
    assert latest == [("run-2",)]


KILLED_RUN = """
import sys
from helpers import run_stages
from pipeline.local.demo_data import demo_as_of
from pipeline.spec import load_spec
run_stages(sys.argv[1], load_spec(sys.argv[2]), demo_as_of(), "killed-run")
"""


def test_a_killed_run_is_marked_abandoned_and_its_files_removed(warehouse, jobs, monkeypatch):
    seed_table(warehouse, "demo.deliveries", 400_000)
    spec_path = jobs / "delivery_delay.yaml"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, warehouse, str(spec_path)],
        cwd=PROJECT / "tests",
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    root = Path(os.environ["SCORING_DATA_ROOT"])
    deadline = time.monotonic() + 120
    while not list(root.rglob(".incoming-*")):  # killed while writing its first snapshot
        assert process.poll() is None and time.monotonic() < deadline, "the run never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert query(warehouse, "SELECT status FROM scoring.scoring_runs") == [("running",)]

    spec = load_spec(spec_path)
    with pytest.raises(PipelineError, match="run killed-run .* is still running"):
        run_stages(warehouse, spec, demo_as_of(), "next-run")

    monkeypatch.setenv("SCORING_STALE_RUN_MINUTES", "0.01")
    time.sleep(1)
    assert cli.main(["runs", "delivery_delay"]) == 0
    status, error = query(
        warehouse, "SELECT status, error FROM scoring.scoring_runs WHERE run_id = 'killed-run'"
    )[0]
    assert status == "abandoned"
    assert "no stage reported since" in error and "found by run runs command" in error

    flow.run_stages(warehouse, trigger_for(spec, demo_as_of(), "next-run"), until="start_run")
    assert list(root.rglob(".incoming-*")) == []


def test_a_second_run_of_a_job_is_refused_while_one_is_active(deliveries):
    url, spec = deliveries
    flow.run_stages(url, trigger_for(spec, demo_as_of(), "first"), until="snapshot_training")
    with pytest.raises(PipelineError, match="run first .* is still running"):
        run_stages(url, spec, demo_as_of(), "second")
    runs = dict(query(url, "SELECT run_id, status FROM scoring.scoring_runs"))
    assert runs == {"first": "running", "second": "failed"}  # the refused run is on record
    [(error,)] = query(url, "SELECT error FROM scoring.scoring_runs WHERE run_id = 'second'")
    assert error.startswith("start_run: ") and "run first" in error


def test_retention_keeps_the_newest_runs_and_always_the_one_analysts_see(deliveries, jobs):
    url, _ = deliveries
    path = jobs / "delivery_delay.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["retention"] = {"keep_runs": 2}
    path.write_text(yaml.safe_dump(raw))
    spec = load_spec(path)
    for day in range(4):
        run_stages(url, spec, demo_as_of() + timedelta(days=day), f"run-{day}", retrain=day == 0)

    kept = query(url, "SELECT DISTINCT run_id FROM scoring.delivery_delay_predictions ORDER BY 1")
    assert kept == [("run-2",), ("run-3",)]
    pruned = query(
        url,
        "SELECT run_id FROM scoring.scoring_runs WHERE predictions_pruned_at IS NOT NULL"
        " ORDER BY 1",
    )
    assert pruned == [("run-0",), ("run-1",)]

    raw["retention"] = {"keep_runs": 1}
    path.write_text(yaml.safe_dump(raw))
    query(url, "UPDATE scoring.scoring_runs SET as_of = '2030-01-01' WHERE run_id = 'run-2'")
    assert cli.main(["prune", "delivery_delay"]) == 0  # run-2 is newest, run-3 is what is shown
    kept = query(url, "SELECT DISTINCT run_id FROM scoring.delivery_delay_predictions ORDER BY 1")
    assert kept == [("run-2",), ("run-3",)]
    assert query(url, "SELECT DISTINCT run_id FROM scoring.delivery_delay_latest") == [("run-3",)]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://scorer:hunter2@127.0.0.1:1/warehouse",
        "postgresql://scorer@127.0.0.1:1/warehouse?password=hunter2&sslmode=disable",
        "host=127.0.0.1 port=1 user=scorer password=hunter2 dbname=warehouse",
        "postgres://scorer:hunter2@127.0.0.1:1/warehouse?__extra__=%7B%7D",
    ],
)
def test_no_password_form_reaches_the_output_of_a_failing_command(url, jobs):
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "-v", "runs", "delivery_delay"],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env={**os.environ, "DATABASE_URL": url},
        timeout=60,
    )
    assert done.returncode == 2
    assert "cannot connect to the warehouse" in done.stderr
    assert "hunter2" not in done.stdout + done.stderr


def test_a_failing_run_with_a_password_in_its_url_leaves_it_nowhere(deliveries, caplog):
    """Logs, run records and files of a run that fails validation hold no password."""
    url, spec = deliveries
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}:hunter2@{parts.netloc.rsplit('@', 1)[-1]}"
    query_string = "&".join(filter(None, [parts.query, "password=hunter2"]))
    secret_url = urlunsplit(parts._replace(netloc=netloc, query=query_string))
    query(url, "UPDATE demo.deliveries SET distance_km = 'Infinity' WHERE delivery_id <= 5")
    with caplog.at_level("DEBUG"), pytest.raises(PipelineError, match="critical"):
        run_stages(secret_url, spec, demo_as_of(), "failing-run")

    assert "hunter2" not in caplog.text
    records = query(url, "SELECT row_to_json(r)::text FROM scoring.scoring_runs r")
    assert records and all("hunter2" not in text for (text,) in records)
    root = Path(os.environ["SCORING_DATA_ROOT"])
    written = [p for p in root.rglob("*") if p.is_file()]
    assert written and all(b"hunter2" not in p.read_bytes() for p in written)
