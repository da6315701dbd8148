"""Classification targets as a new user brings them: three text classes, and a binary text
target whose positive class the spec names. Small generated tables, whole runs, real Postgres."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from helpers import query, run_stages
from pipeline.errors import DataValidationError
from pipeline.maintenance.reproduce import reproduce_run
from pipeline.reports.summary import run_summary
from pipeline.spec import load_spec
from pipeline.validation.suites import suite_path
from pipeline.warehouse.runs import fetch_run_at

pytestmark = pytest.mark.integration

ROWS = 1500
# A species from two measurements, with some overlap, so no model is perfect.
FLOWERS = f"""
DROP SCHEMA IF EXISTS garden CASCADE; CREATE SCHEMA garden;
CREATE TABLE garden.flowers AS
SELECT g AS flower_id, now() - interval '1 day' AS seen_at,
       (g % 3) * 1.5 + (g * 7919 % 100) / 40.0 AS petal_cm,
       (g % 5) + (g * 104729 % 100) / 50.0 AS sepal_cm,
       (ARRAY['shade', 'sun'])[1 + g % 2] AS bed,
       (ARRAY['setosa', 'versicolor', 'virginica'])[1 + g % 3] AS species
FROM generate_series(1, {ROWS}) AS g;
"""
FLOWERS_SPEC = {
    "source": {"table": "garden.flowers", "key": "flower_id", "timestamp": "seen_at"},
    "features": {"numeric": ["petal_cm", "sepal_cm"], "categorical": ["bed"]},
    "target": "species",
    "task": "classification",
    "model": {"params": {"max_iter": 30}},
}
# Members who stay or leave: a text target with no obvious positive class.
MEMBERS = f"""
DROP SCHEMA IF EXISTS club CASCADE; CREATE SCHEMA club;
CREATE TABLE club.members AS
SELECT g AS member_id, now() - interval '1 day' AS seen_at,
       g % 17 AS visits, (g * 7919 % 1000) / 10.0 AS spend,
       CASE WHEN g % 17 < 5 OR g % 11 = 0 THEN 'left' ELSE 'stayed' END AS outcome
FROM generate_series(1, {ROWS}) AS g;
"""
MEMBERS_SPEC = {
    "source": {"table": "club.members", "key": "member_id", "timestamp": "seen_at"},
    "features": {"numeric": ["visits", "spend"]},
    "target": "outcome",
    "task": "classification",
    "model": {"params": {"max_iter": 30}},
}


def onboard(url: str, jobs, name: str, table_sql: str, raw: dict):
    """The table, the job's YAML and a minimal suite pair (row count only)."""
    query(url, table_sql)
    (jobs / f"{name}.yaml").write_text(yaml.safe_dump(raw))
    for kind in ("training", "scoring"):
        path = suite_path(name, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        expectation = {
            "type": "expect_table_row_count_to_be_between",
            "kwargs": {"min_value": 1},
            "meta": {"severity": "critical", "notes": "the source is not empty"},
        }
        path.write_text(json.dumps({"name": f"{name}.{kind}", "expectations": [expectation]}))
    return load_spec(jobs / f"{name}.yaml")


def test_three_text_classes_publish_labels_and_probabilities_and_reproduce(warehouse, jobs):
    spec = onboard(warehouse, jobs, "flowers", FLOWERS, FLOWERS_SPEC)
    as_of = datetime.now(UTC) - timedelta(minutes=1)
    run_stages(warehouse, spec, as_of, "run-1")

    rows = query(
        warehouse,
        "SELECT key, score, label, probabilities FROM scoring.flowers_latest ORDER BY key",
    )
    assert len(rows) == ROWS
    classes = ["setosa", "versicolor", "virginica"]
    for _, score, label, probabilities in rows:
        assert sorted(probabilities) == classes
        assert abs(sum(probabilities.values()) - 1) < 1e-9
        assert label == max(probabilities, key=probabilities.get)
        assert score == probabilities[label]  # the stored text round-trips exactly
    truth = dict(query(warehouse, "SELECT flower_id, species FROM garden.flowers"))
    accuracy = sum(truth[key] == label for key, _, label, _ in rows) / ROWS
    assert accuracy > 0.6  # the classes are learnable from petal_cm, so labels mean something

    metrics = query(warehouse, "SELECT metrics FROM scoring.model_versions WHERE version = 1")[0][0]
    assert {"roc_auc", "log_loss", "accuracy"} <= set(metrics)
    assert 0.5 < metrics["roc_auc"] <= 1 and metrics["log_loss"] > 0

    result = reproduce_run(warehouse, "flowers", "run-1")
    assert result.exact and result.compared == ROWS, result.differences

    comment = query(
        warehouse,
        "SELECT col_description('scoring.flowers_latest'::regclass, attnum)"
        " FROM pg_attribute WHERE attrelid = 'scoring.flowers_latest'::regclass"
        " AND attname = 'probabilities'",
    )[0][0]
    assert "probabilities->>" in comment


def test_the_summary_shows_this_runs_decision_against_the_rescored_champion(warehouse, jobs):
    spec = onboard(warehouse, jobs, "flowers", FLOWERS, FLOWERS_SPEC)
    as_of = datetime.now(UTC) - timedelta(minutes=2)
    run_stages(warehouse, spec, as_of, "run-1")
    first = "\n".join(run_summary(warehouse, spec, fetch_run_at(warehouse, "flowers", as_of), 1.0))
    assert "model: candidate v1 holdout roc_auc" in first and "first model, champion" in first

    later = as_of + timedelta(minutes=1)
    run_stages(warehouse, spec, later, "run-2")  # same data, same seed: an exact tie
    second = "\n".join(run_summary(warehouse, spec, fetch_run_at(warehouse, "flowers", later), 1.0))
    champion, candidate = query(
        warehouse,
        "SELECT champion_metrics->>'roc_auc', metrics->>'roc_auc' FROM scoring.model_versions"
        " WHERE version = 2",
    )[0]
    assert champion == candidate  # the champion was re-scored on this run's holdout
    expected = (
        f"model: champion v1 roc_auc {float(champion):.4f} on this holdout vs candidate v2 "
        f"{float(candidate):.4f}: kept v1"
    )
    assert expected in second
    assert "not better than the champion" in second and "below the margin" not in second
    assert "first model" not in second
    assert "scored with model v1" in second

    later = later + timedelta(minutes=1)
    run_stages(warehouse, spec, later, "run-3", retrain="never")
    third = "\n".join(run_summary(warehouse, spec, fetch_run_at(warehouse, "flowers", later), 1.0))
    assert "model: no candidate this run (retrain=never set at trigger time)" in third


def test_a_binary_text_target_needs_its_positive_class_named(warehouse, jobs):
    spec = onboard(warehouse, jobs, "members", MEMBERS, MEMBERS_SPEC)
    as_of = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(DataValidationError, match="positive_class") as caught:
        run_stages(warehouse, spec, as_of, "run-1")
    assert "['left', 'stayed']" in str(caught.value) and "members.yaml" in str(caught.value)

    spec = onboard(warehouse, jobs, "members", MEMBERS, {**MEMBERS_SPEC, "positive_class": "left"})
    run_stages(warehouse, spec, as_of + timedelta(seconds=1), "run-2")
    rows = query(warehouse, "SELECT score, label, probabilities FROM scoring.members_latest")
    assert len(rows) == ROWS
    for score, label, probabilities in rows:
        assert score == probabilities["left"]  # score is P(left), not P(the class sorting last)
        assert label == ("left" if score >= 0.5 else "stayed")
    truth = query(
        warehouse,
        "SELECT avg(l.score) FILTER (WHERE m.outcome = 'left'),"
        " avg(l.score) FILTER (WHERE m.outcome = 'stayed')"
        " FROM scoring.members_latest l JOIN club.members m ON m.member_id = l.key",
    )[0]
    assert truth[0] > truth[1]  # members who left got the higher scores
    comment = query(
        warehouse,
        "SELECT col_description('scoring.members_latest'::regclass, attnum)"
        " FROM pg_attribute WHERE attrelid = 'scoring.members_latest'::regclass"
        " AND attname = 'score'",
    )[0][0]
    assert comment.startswith("the probability that outcome is left")
    result = reproduce_run(warehouse, "members", "run-2")
    assert result.exact, result.differences
