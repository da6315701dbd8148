"""The whole customer_churn DAG through real Airflow task execution (`dag.test`), small table."""

from datetime import UTC, datetime

import pytest
import yaml

from helpers import query
from pipeline.local.demo_data import seed_table

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

ROWS = 3_000


@pytest.fixture
def small_churn(warehouse, jobs, airflow_db):
    """demo.customers with a few thousand rows, scored in three partitions."""
    seed_table(warehouse, "demo.customers", ROWS)
    path = jobs / "customer_churn.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["scoring"] = {"partitions": 3, "batch_rows": 1_000}
    spec["retries"] = 1
    path.write_text(yaml.safe_dump(spec))
    return warehouse


def run(logical_date: datetime, **conf) -> str:
    from pipeline.orchestration.dags import run_once

    return run_once("customer_churn", logical_date, {"as_of": None, **conf})


def test_dag_run_publishes_every_key(small_churn):
    url = small_churn
    logical_date = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    assert run(logical_date) == "success"

    run_id, status, rows, as_of, logical, version = query(
        url,
        "SELECT run_id, status, rows_scored, as_of, logical_date, model_version"
        " FROM scoring.scoring_runs WHERE job = 'customer_churn'",
    )[0]
    assert status == "published" and rows == ROWS
    assert as_of == logical == logical_date
    assert run_id.startswith("manual__")
    latest = query(
        url,
        "SELECT count(*), count(DISTINCT key), min(run_id), max(model_version)"
        " FROM scoring.customer_churn_latest",
    )[0]
    assert latest == (ROWS, ROWS, run_id, version)
    checks = query(url, "SELECT suite, success FROM scoring.validation_results ORDER BY suite")
    assert checks == [("customer_churn.scoring", True), ("customer_churn.training", True)]


def test_critical_validation_failure_stops_the_run_and_keeps_the_last_good_one(small_churn):
    url = small_churn
    assert run(datetime(2026, 11, 1, 2, 0, tzinfo=UTC)) == "success"
    before = query(url, "SELECT run_id, count(*) FROM scoring.customer_churn_latest GROUP BY 1")

    query(url, "UPDATE demo.customers SET monthly_charges = 'Infinity' WHERE customer_id <= 5")
    assert run(datetime(2026, 11, 2, 2, 0, tzinfo=UTC)) == "failed"

    after = query(url, "SELECT run_id, count(*) FROM scoring.customer_churn_latest GROUP BY 1")
    assert after == before
    status, error = query(
        url,
        "SELECT status, error FROM scoring.scoring_runs WHERE job = 'customer_churn'"
        " ORDER BY as_of DESC LIMIT 1",
    )[0]
    assert status == "failed"
    assert "monthly_charges" in error and "critical" in error
    versions = query(url, "SELECT count(*) FROM scoring.model_versions")[0][0]
    assert versions == 1  # nothing was trained after the failed validation


def test_a_run_without_retraining_skips_train_and_scores_with_the_champion(small_churn):
    """The retrain branch through Airflow: `train` skipped, `register` serves the champion."""
    url = small_churn
    assert run(datetime(2026, 11, 1, 2, 0, tzinfo=UTC)) == "success"
    assert run(datetime(2026, 11, 2, 2, 0, tzinfo=UTC), retrain="never") == "success"

    runs = query(
        url,
        "SELECT status, model_version, training_snapshot_sha256 IS NULL, rows_scored"
        " FROM scoring.scoring_runs WHERE job = 'customer_churn' ORDER BY as_of",
    )
    assert runs == [("published", 1, False, ROWS), ("published", 1, True, ROWS)]
    assert query(url, "SELECT count(*) FROM scoring.model_versions")[0][0] == 1
    tries = task_tries("customer_churn", datetime(2026, 11, 2, 2, 0, tzinfo=UTC))
    assert tries["train"][0] == "skipped"
    assert {tries[t][0] for t in ("register", "score", "publish", "monitor")} == {"success"}


def test_an_error_no_retry_can_fix_fails_at_once_with_one_message(small_churn, monkeypatch):
    """A data root nothing may write to: one attempt, one clear error, not three tracebacks."""
    url = small_churn
    monkeypatch.setenv("SCORING_DATA_ROOT", "/sys/scoring-data")  # EPERM, even for root
    logical_date = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    assert run(logical_date) == "failed"

    tries = task_tries("customer_churn", logical_date)
    assert tries["snapshot_training"] == ("failed", 1)
    status, error = query(url, "SELECT status, error FROM scoring.scoring_runs")[0]
    assert status == "failed"
    assert "/sys/scoring-data" in error and "SCORING_DATA_ROOT" in error


def task_tries(dag_id: str, logical_date: datetime) -> dict[str, tuple[str, int]]:
    """Task id -> (state, attempts) of the DAG run at `logical_date`."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        dag_run = session.query(DagRun).filter_by(dag_id=dag_id, logical_date=logical_date).one()
        return {
            ti.task_id: (str(ti.state), ti.try_number)
            for ti in dag_run.get_task_instances(session=session)
        }
