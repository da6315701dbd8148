"""Every stage on a real Postgres, for both task types, in the order the DAG runs them."""

import json

import pytest
import yaml

from helpers import query, run_stages, trigger_for
from pipeline import flow
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.spec import load_spec

pytestmark = pytest.mark.integration

JOBS = [
    ("customer_churn", "demo.customers", 6_000),
    ("delivery_delay", "demo.deliveries", 4_000),
]


@pytest.mark.parametrize(("job", "table", "rows"), JOBS)
def test_stages_publish_one_prediction_per_key(warehouse, jobs, job, table, rows):
    seed_table(warehouse, table, rows)
    spec = load_spec(jobs / f"{job}.yaml")
    result = run_stages(warehouse, spec, demo_as_of(), "run-1")

    assert result["snapshot_training"]["row_count"] > 0
    assert result["snapshot_scoring"]["row_count"] == rows
    assert all(
        check["success"] for check in [result["validate_training"], result["validate_scoring"]]
    )
    assert result["register"]["decision"]["status"] == "champion"

    latest = f"scoring.{spec.latest_view}"
    count, distinct = query(warehouse, f"SELECT count(*), count(DISTINCT key) FROM {latest}")[0]
    assert count == distinct == rows
    missing = query(
        warehouse,
        f"SELECT count(*) FROM {table} t LEFT JOIN {latest} l ON l.key = t.{spec.source.key}"
        " WHERE l.key IS NULL",
    )[0][0]
    assert missing == 0
    status, rows_scored, version = query(
        warehouse,
        "SELECT status, rows_scored, model_version FROM scoring.scoring_runs"
        " WHERE job = %s AND run_id = 'run-1'",
        (job,),
    )[0]
    assert (status, rows_scored) == ("published", rows)
    champions = query(
        warehouse,
        "SELECT version FROM scoring.model_versions WHERE job = %s AND status = 'champion'",
        (job,),
    )
    assert champions == [(version,)]


def test_republishing_a_run_replaces_its_rows(warehouse, jobs):
    seed_table(warehouse, "demo.deliveries", 3_000)
    spec = load_spec(jobs / "delivery_delay.yaml")
    run_stages(warehouse, spec, demo_as_of(), "run-1")
    run_stages(warehouse, spec, demo_as_of(), "run-1")

    rows = query(warehouse, "SELECT count(*) FROM scoring.delivery_delay_predictions")[0][0]
    versions = query(warehouse, "SELECT count(*) FROM scoring.model_versions")[0][0]
    assert rows == 3_000
    assert versions == 1


def test_a_rejected_candidate_is_not_used_for_scoring(warehouse, jobs):
    seed_table(warehouse, "demo.deliveries", 3_000)
    spec = load_spec(jobs / "delivery_delay.yaml")
    run_stages(warehouse, spec, demo_as_of(), "run-1")
    second = run_stages(warehouse, spec, demo_as_of(), "run-2")

    assert second["register"]["decision"]["status"] == "rejected"  # same data: no gain
    assert second["register"]["version"] == 1
    used = query(
        warehouse,
        "SELECT DISTINCT model_version FROM scoring.delivery_delay_predictions"
        " WHERE run_id = 'run-2'",
    )
    assert used == [(1,)]


def test_drift_is_recorded_per_feature_and_alerts_on_a_shift(warehouse, jobs):
    seed_table(warehouse, "demo.deliveries", 3_000)
    spec = load_spec(jobs / "delivery_delay.yaml")
    first = run_stages(warehouse, spec, demo_as_of(), "run-1")
    assert first["monitor"]["features"] == len(spec.features.all)
    assert first["monitor"]["alerts"] == [] and first["monitor"]["performance_alerts"] == []

    query(warehouse, "UPDATE demo.deliveries SET distance_km = distance_km * 3 + 10")
    second = run_stages(warehouse, spec, demo_as_of(), "run-2", retrain=False)
    # the shifted feature, and the score it moves (distance drives minutes late)
    assert second["monitor"]["alerts"] == ["(score)", "distance_km"]
    rows = query(
        warehouse,
        "SELECT feature, bool_or(alert), array_agg(statistic ORDER BY statistic)"
        " FROM scoring.drift_reports WHERE run_id = 'run-2' GROUP BY 1 ORDER BY 1",
    )
    kinds = {"numeric": ["ks", "null_rate_change", "psi"], "boolean": ["null_rate_change", "psi"]}
    kinds["categorical"] = ["null_rate_change", "psi", "unseen_share"]
    expected = [("(score)", True, ["psi"])] + [
        (f, f == "distance_km", kinds[kind]) for kind in kinds for f in getattr(spec.features, kind)
    ]
    assert rows == sorted(expected)


def test_an_in_place_change_under_an_old_timestamp_never_overwrites_a_snapshot(warehouse, jobs):
    from pipeline.datafiles.snapshots import read_snapshot
    from pipeline.stages.snapshot import take_snapshot

    seed_table(warehouse, "demo.deliveries", 2_000)
    spec = load_spec(jobs / "delivery_delay.yaml")
    first = take_snapshot(spec, "scoring", demo_as_of(), warehouse)
    query(warehouse, "UPDATE demo.deliveries SET items = items + 1")  # updated_at untouched
    second = take_snapshot(spec, "scoring", demo_as_of(), warehouse)

    assert first.sha256 != second.sha256
    assert first.uri != second.uri
    before, after = read_snapshot(first)["items"], read_snapshot(second)["items"]  # both verified
    assert before.notna().sum() > 0
    assert (after.dropna() == before.dropna() + 1).all()


def test_a_spec_or_suite_edited_mid_run_does_not_change_that_run(warehouse, jobs):
    """start_run freezes the spec and suites: later stages never read the files again."""
    seed_table(warehouse, "demo.deliveries", 2_000)
    path = jobs / "delivery_delay.yaml"
    spec = load_spec(path)
    trigger = trigger_for(spec, demo_as_of(), "run-1")
    started = flow.run_stages(warehouse, trigger, until="start_run")

    edited = yaml.safe_load(path.read_text())
    edited["model"]["seed"] = 99
    edited["features"]["numeric"] = ["distance_km"]
    path.write_text(yaml.safe_dump(edited))
    suite_file = jobs.parent / "expectations" / "delivery_delay" / "scoring.json"
    suite = json.loads(suite_file.read_text())
    suite["expectations"].append(
        {"type": "expect_column_to_exist", "kwargs": {"column": "no_such_column"}}
    )
    suite_file.write_text(json.dumps(suite))

    results = flow.run_stages(warehouse, trigger, given=started)
    run = started["start_run"]
    assert results["validate_scoring"]["success"] is True  # the frozen suite, not the edit
    seed, features = query(
        warehouse,
        "SELECT params->>'seed', params->'estimator_params' IS NOT NULL"
        " FROM scoring.model_versions WHERE run_id = 'run-1'",
    )[0]
    assert (seed, features) == ("7", True)
    recorded = query(
        warehouse,
        "SELECT spec->'model'->>'seed', spec_sha256, suites_sha256, status"
        " FROM scoring.scoring_runs WHERE run_id = 'run-1'",
    )[0]
    assert recorded == ("7", run["spec_sha256"], run["suites_sha256"], "published")

    following = flow.run_stages(
        warehouse, trigger_for(spec, demo_as_of(), "run-2"), until="start_run"
    )
    assert following["start_run"]["spec_sha256"] != run["spec_sha256"]
    assert following["start_run"]["suites_sha256"] != run["suites_sha256"]
    assert following["start_run"]["spec"]["model"]["seed"] == 99
