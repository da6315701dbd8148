"""Monitoring on real runs: drift on exactly the features that moved, none on a re-sample,
realised performance as a hand computation gives it, and what an alert makes the job do."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from helpers import query, run_stages
from pipeline.datafiles.layout import eligible_path
from pipeline.datafiles.root import DataRoot
from pipeline.errors import DataValidationError
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.monitoring.performance import measure_performance
from pipeline.spec import load_spec

pytestmark = pytest.mark.integration

ROWS = 6_000


def churn_spec(jobs, **changes):
    """customer_churn's spec with top-level keys replaced."""
    path = jobs / "customer_churn.yaml"
    raw = yaml.safe_load(path.read_text())
    raw.update(changes)
    path.write_text(yaml.safe_dump(raw))
    return load_spec(path)


def feature_alerts(url: str, run_id: str) -> list[str]:
    return [
        row[0]
        for row in query(
            url,
            "SELECT DISTINCT feature FROM scoring.drift_reports WHERE run_id = %s AND alert"
            " ORDER BY 1",
            (run_id,),
        )
    ]


def run_after_drift_on_two_features(url: str, spec) -> dict:
    """Run `run-2` (the champion kept) after region got a category the model never saw in 30%
    of rows and has_partner lost 40% of its values; its stage results."""
    query(
        url,
        "UPDATE demo.customers SET region = 'arctic' WHERE customer_id % 10 < 3;"
        " UPDATE demo.customers SET has_partner = NULL WHERE customer_id % 5 < 2",
    )
    return run_stages(url, spec, demo_as_of() + timedelta(seconds=1), "run-2", retrain=False)


def test_drift_on_two_features_alerts_on_exactly_those(warehouse, jobs):
    seed_table(warehouse, "demo.customers", ROWS)
    spec = churn_spec(jobs)
    run_stages(warehouse, spec, demo_as_of(), "run-1")
    result = run_after_drift_on_two_features(warehouse, spec)

    assert result["monitor"]["alerts"] == ["has_partner", "region"]
    assert feature_alerts(warehouse, "run-2") == ["has_partner", "region"]
    figures = dict(
        (stat, value)
        for stat, value in query(
            warehouse,
            "SELECT feature || '.' || statistic, value FROM scoring.drift_reports"
            " WHERE run_id = 'run-2' AND level = 'alert'",
        )
    )
    assert figures["region.unseen_share"] == pytest.approx(0.3, abs=0.01)
    assert figures["has_partner.null_rate_change"] == pytest.approx(0.4 - 0.05, abs=0.03)
    assert figures["region.psi"] > 0.25 and figures["has_partner.psi"] > 0.25
    assert query(warehouse, "SELECT monitoring FROM scoring.scoring_runs WHERE run_id = 'run-2'")[
        0
    ][0]["alerts"] == ["has_partner", "region"]


def test_an_undrifted_resample_raises_no_alert(warehouse, jobs):
    seed_table(warehouse, "demo.customers", ROWS, seed=7)
    # a re-seed puts other customers behind the same keys: their labels say nothing about the
    # earlier runs' predictions, so realised performance is not judged here
    spec = churn_spec(jobs, monitoring={"performance": {"min_labelled": ROWS + 1}})
    run_stages(warehouse, spec, demo_as_of(), "run-0")
    for i, seed in enumerate((11, 12, 13), start=1):
        seed_table(warehouse, "demo.customers", ROWS, seed=seed)  # same process, new rows
        result = run_stages(
            warehouse, spec, demo_as_of() + timedelta(seconds=i), f"run-{i}", retrain=False
        )
        assert result["monitor"]["alerts"] == [], (seed, feature_alerts(warehouse, f"run-{i}"))
        assert result["monitor"]["performance_alerts"] == []
    statistics = query(
        warehouse,
        "SELECT count(DISTINCT statistic), count(*) FILTER (WHERE feature = '(score)')"
        " FROM scoring.drift_reports WHERE run_id = 'run-3'",
    )[0]
    assert statistics == (4, 1)  # psi, ks, null_rate_change, unseen_share; the score's psi


PEOPLE = """
DROP SCHEMA IF EXISTS perf CASCADE; CREATE SCHEMA perf;
CREATE TABLE perf.people AS
SELECT g AS person_id, timestamptz '2026-01-01' + g * interval '1 minute' AS seen_at,
       (g * 7919 % 1000) / 100.0 AS x,
       CASE WHEN g % 4 = 0 THEN NULL ELSE (g * 7919 % 1000) / 100.0 + (g % 7) > 8 END AS bought
FROM generate_series(1, 2000) AS g;
"""
PEOPLE_SPEC = {
    "source": {"table": "perf.people", "key": "person_id", "timestamp": "seen_at"},
    "features": {"numeric": ["x"]},
    "target": "bought",
    "task": "classification",
    "model": {"estimator": "logistic_regression"},
    "monitoring": {"performance": {"min_labelled": 50, "top_k": 40, "tolerance": 0.05}},
}


def people_job(url: str, jobs, **monitoring):
    query(url, PEOPLE)
    raw = {**PEOPLE_SPEC}
    raw["monitoring"] = {"performance": {**PEOPLE_SPEC["monitoring"]["performance"], **monitoring}}
    (jobs / "people.yaml").write_text(yaml.safe_dump(raw))
    for kind in ("training", "scoring"):
        folder = jobs.parent / "expectations" / "people"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{kind}.json").write_text(
            json.dumps({"name": f"people.{kind}", "expectations": []})
        )
    return load_spec(jobs / "people.yaml")


def test_realised_performance_is_the_hand_computation_over_late_labels_only(warehouse, jobs):
    spec = people_job(warehouse, jobs)
    as_of = datetime(2026, 3, 1, tzinfo=UTC)
    run_stages(warehouse, spec, as_of, "run-1")
    assert measure_performance(warehouse, spec) == []  # no label arrived yet
    assert query(warehouse, "SELECT count(*) FROM scoring.model_performance")[0][0] == 0

    # labels arrive for the keys unknown at as_of, and one known label is corrected
    query(
        warehouse,
        "UPDATE perf.people SET bought = (x + (person_id % 7) > 8) WHERE bought IS NULL;"
        " UPDATE perf.people SET bought = NOT bought WHERE person_id = 1",
    )
    measure_performance(warehouse, spec)

    late = query(
        warehouse,
        "SELECT p.score, s.bought FROM scoring.people_predictions p"
        " JOIN perf.people s ON s.person_id = p.key WHERE p.run_id = 'run-1'"
        " AND p.key % 4 = 0 ORDER BY p.key",
    )
    score = np.array([r[0] for r in late])
    truth = np.array([r[1] for r in late])
    hand = {
        "roc_auc": roc_auc_score(truth, score),
        "log_loss": -np.mean(np.log(np.where(truth, score, 1 - score))),
        "precision_at_k": truth[np.argsort(-score, kind="stable")[:40]].mean(),
    }
    bins = np.minimum((score * 10).astype(int), 9)
    hand["calibration_error"] = sum(
        (bins == b).mean() * abs(score[bins == b].mean() - truth[bins == b].mean())
        for b in np.unique(bins)
    )
    stored = {
        metric: (value, labelled, trusted)
        for metric, value, labelled, trusted in query(
            warehouse,
            "SELECT metric, value, labelled, trusted FROM scoring.model_performance"
            " WHERE run_id = 'run-1'",
        )
    }
    assert set(stored) == set(hand)
    for metric, expected in hand.items():
        value, labelled, trusted = stored[metric]
        assert value == pytest.approx(expected, rel=1e-9), metric
        assert labelled == 500 and trusted  # the 500 late labels; person 1's is not counted
    # the keys unlabelled at as_of were worked out once, and are kept beside the run: a later
    # night judges it by them, without reading its snapshots again
    root = DataRoot()
    with root.open_input(eligible_path(root, "people", "run-1")) as source:
        assert pq.read_table(source).column("key").to_pylist() == list(range(4, 2001, 4))
    root.discard(root.path("snapshots", "people"))
    measure_performance(warehouse, spec)
    again = query(
        warehouse,
        "SELECT metric, value, labelled, trusted FROM scoring.model_performance"
        " WHERE run_id = 'run-1'",
    )
    assert {metric: tuple(rest) for metric, *rest in again} == stored
    holdout = query(
        warehouse,
        "SELECT holdout FROM scoring.model_performance WHERE metric = 'roc_auc'",
    )[0][0]
    assert (
        holdout
        == query(
            warehouse,
            "SELECT (metrics->>'roc_auc')::float FROM scoring.model_versions WHERE version = 1",
        )[0][0]
    )


def test_a_performance_drop_alerts_once_enough_labels_arrived(warehouse, jobs):
    spec = people_job(warehouse, jobs, min_labelled=400)
    as_of = datetime(2026, 3, 1, tzinfo=UTC)
    run_stages(warehouse, spec, as_of, "run-1")
    # the world changed: late labels are the opposite of what the model learned
    query(
        warehouse,
        "UPDATE perf.people SET bought = NOT (x + (person_id % 7) > 8)"
        " WHERE bought IS NULL AND person_id <= 1200",
    )
    assert measure_performance(warehouse, spec) == []  # 300 labelled: not trusted yet
    assert query(warehouse, "SELECT bool_and(NOT trusted) FROM scoring.model_performance")[0][0]
    query(
        warehouse,
        "UPDATE perf.people SET bought = NOT (x + (person_id % 7) > 8) WHERE bought IS NULL",
    )
    alerts = measure_performance(warehouse, spec)
    assert len(alerts) == 1 and alerts[0].message.startswith("run run-1 (v1) roc_auc ")
    assert "(labelled 500 of 500 eligible)" in alerts[0].message


def test_on_drift_makes_the_next_run_retrain_and_fail_stops_before_publishing(warehouse, jobs):
    seed_table(warehouse, "demo.customers", ROWS)
    spec = churn_spec(jobs, retrain={"policy": "on_drift"})
    as_of = demo_as_of()
    run_stages(warehouse, spec, as_of, "run-1", retrain="auto")  # no champion: trains
    run_stages(warehouse, spec, as_of + timedelta(seconds=1), "run-2", retrain="auto")
    query(warehouse, "UPDATE demo.customers SET region = 'arctic' WHERE customer_id % 2 = 0")
    third = run_stages(warehouse, spec, as_of + timedelta(seconds=2), "run-3", retrain="auto")
    assert third["monitor"]["alerts"] == ["region"]
    fourth = run_stages(warehouse, spec, as_of + timedelta(seconds=3), "run-4", retrain="auto")
    decisions = dict(query(warehouse, "SELECT run_id, retrain FROM scoring.scoring_runs"))
    assert decisions["run-2"] == {
        "due": False,
        "reason": "retrain.policy on_drift: no alert since the last published run",
    }
    assert not decisions["run-3"]["due"]
    assert decisions["run-4"] == {
        "due": True,
        "reason": "retrain.policy on_drift: alerts since run run-3: region (drift)",
    }
    assert fourth["train"] is not None

    spec = churn_spec(jobs, retrain={"policy": "never"}, monitoring={"on_alert": "fail"})
    with pytest.raises(DataValidationError, match="monitoring.on_alert is fail"):
        run_stages(warehouse, spec, as_of + timedelta(seconds=4), "run-5", retrain="auto")
    assert query(warehouse, "SELECT status FROM scoring.scoring_runs WHERE run_id = 'run-5'") == [
        ("failed",)
    ]
    assert query(warehouse, "SELECT DISTINCT run_id FROM scoring.customer_churn_latest") == [
        ("run-4",)
    ]


def test_runs_published_before_class_probabilities_are_not_judged(warehouse, jobs):
    spec = people_job(warehouse, jobs)
    run_stages(warehouse, spec, datetime(2026, 3, 1, tzinfo=UTC), "run-1")
    query(warehouse, "UPDATE scoring.people_predictions SET probabilities = NULL")  # as before
    query(warehouse, "UPDATE perf.people SET bought = (x > 5) WHERE bought IS NULL")
    assert measure_performance(warehouse, spec) == []
    assert query(warehouse, "SELECT count(*) FROM scoring.model_performance") == [(0,)]
