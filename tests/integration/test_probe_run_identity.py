"""Probe: a run's files are its own, and a run refused at its start is still on record."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpers import query, run_stages, trigger_for
from pipeline import flow
from pipeline.datafiles.layout import run_folder
from pipeline.errors import PipelineError
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.spec import load_spec

pytestmark = pytest.mark.integration

# a run id as Airflow makes it, and one an API caller chose to be its old folder's name
REAL = "manual__2026-12-01T19:18:04.543132+00:00"
IMPOSTOR = "manual__2026-12-01T19_18_04.543132_00_00"


@pytest.fixture
def deliveries(warehouse, jobs):
    seed_table(warehouse, "demo.deliveries", 2_000)
    return warehouse, load_spec(jobs / "delivery_delay.yaml")


def test_run_folders_are_one_to_one_with_run_ids():
    ids = [REAL, IMPOSTOR, "a/b", "a_b", "a~2fb", "..", ".", "", "é", "run 1", "run_1"]
    folders = [run_folder(i) for i in ids]
    assert len(set(folders)) == len(ids)
    assert all("/" not in f and f not in ("", ".", "..") for f in folders)


def test_a_run_named_after_another_runs_folder_writes_files_of_its_own(deliveries):
    url, spec = deliveries
    run_stages(url, spec, demo_as_of(), REAL)
    run_stages(url, spec, demo_as_of() + timedelta(seconds=1), IMPOSTOR, retrain=False)
    reports = dict(
        query(
            url, "SELECT run_id, report_uri FROM scoring.scoring_runs WHERE job = %s", (spec.name,)
        )
    )
    assert reports[REAL] != reports[IMPOSTOR]
    for run_id, uri in reports.items():
        assert f">{run_id}<" in Path(uri).read_text()  # each report is its own run's
        parts = sorted((Path(uri).parent / "predictions").glob("part-*.parquet"))
        assert parts, run_id
    both = query(url, "SELECT run_id, count(*) FROM scoring.delivery_delay_predictions GROUP BY 1")
    assert dict(both) == {IMPOSTOR: 2_000, REAL: 2_000}


def test_a_run_refused_at_its_start_is_recorded_failed_with_its_reason_and_report(deliveries):
    url, spec = deliveries
    future = datetime.now(UTC) + timedelta(days=3)
    trigger = trigger_for(spec, future, "api-run-in-the-future")
    with pytest.raises(PipelineError, match="is in the future"):
        flow.run_stages(url, trigger)
    [(status, error, report)] = query(
        url,
        "SELECT status, error, report_uri FROM scoring.scoring_runs WHERE run_id = %s",
        ("api-run-in-the-future",),
    )
    assert status == "failed" and error.startswith("start_run: as_of ")
    assert "is in the future" in error and Path(report).is_file()
    assert "is in the future" in Path(report).read_text()
    assert query(url, "SELECT count(*) FROM scoring.scoring_runs WHERE status <> 'failed'") == [
        (0,)
    ]
