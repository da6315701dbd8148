"""Probe: each role holds the least it needs, and a deploy an analyst's open transaction holds
up stops the next run at its start, not after all its work."""

import psycopg2
import pytest
import yaml
from psycopg2 import errors

from helpers import as_role, query, run_stages
from pipeline import cli
from pipeline.errors import PipelineError
from pipeline.local.demo_data import demo_as_of
from pipeline.spec import load_spec

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM scoring.scoring_runs",
        "DELETE FROM scoring.model_versions",
        "UPDATE scoring.model_versions SET version = 99",
        "UPDATE scoring.model_versions SET run_id = 'someone else'",
        "UPDATE scoring.model_versions SET created_at = now()",
        "DELETE FROM scoring.schema_migrations",
        "INSERT INTO scoring.schema_migrations (name) VALUES ('999_fake.sql')",
    ],
)
def test_the_writer_cannot_erase_history_or_rewrite_who_made_a_model(published, statement):
    with pytest.raises(errors.InsufficientPrivilege):
        as_role(published, "scoring_writer", statement)


def test_the_writer_still_does_what_runs_and_retire_need(published):
    for statement in (
        "UPDATE scoring.model_versions SET status = 'retired', decision_reason ="
        " decision_reason || '; retired: probe', promoted_at = now() WHERE version = 1",
        "UPDATE scoring.scoring_runs SET heartbeat_at = now() WHERE run_id = 'run-1'",
        "DELETE FROM scoring.delivery_delay_predictions WHERE run_id = 'run-1'",
        "DELETE FROM scoring.alerts WHERE run_id = 'run-1'",
    ):
        as_role(published, "scoring_writer", statement)  # no error


def test_a_deploy_held_up_by_an_analyst_stops_the_next_run_at_its_start(published, jobs):
    analyst = psycopg2.connect(published)
    try:
        with analyst.cursor() as cur:  # an analyst's open transaction that read the view
            cur.execute("SET ROLE scoring_reader")
            cur.execute("SELECT count(*) FROM scoring.delivery_delay_latest")
        # a spec change that changes the job's views (what `score` means, in their comments)
        path = jobs / "delivery_delay.yaml"
        raw = yaml.safe_load(path.read_text())
        raw["target"], raw["features"]["numeric"] = "items", ["distance_km"]
        path.write_text(yaml.safe_dump(raw))
        spec = load_spec(path)
        assert cli.main(["migrate"]) == 1  # waited its lock timeout, applied nothing
        with pytest.raises(PipelineError, match="could not update its views"):
            run_stages(published, spec, demo_as_of(), "run-2")
    finally:
        analyst.close()
    [(status, error, timings)] = query(
        published,
        "SELECT status, error, timings FROM scoring.scoring_runs WHERE run_id = 'run-2'",
    )
    assert status == "failed" and error.startswith("start_run: ")
    assert timings is None  # no stage ran: nothing was snapshotted, validated or scored
