"""Reproducibility and lineage: point-in-time snapshots, the gate, artifact integrity, reproduce."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from helpers import query, run_stages
from pipeline.datafiles.root import DataRoot
from pipeline.datafiles.snapshots import read_snapshot
from pipeline.errors import ModelIntegrityError
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.maintenance.lineage import format_lineage, key_lineage
from pipeline.maintenance.reproduce import reproduce_run
from pipeline.maintenance.retention import prune_snapshots
from pipeline.model import files, fitting
from pipeline.spec import load_spec
from pipeline.stages import train as candidate
from pipeline.stages.snapshot import take_snapshot
from pipeline.warehouse import models
from pipeline.warehouse.snapshots import previous_row_count

pytestmark = pytest.mark.integration

CUTOFF = datetime(2026, 8, 1, tzinfo=UTC)


@pytest.fixture
def deliveries(warehouse, jobs):
    seed_table(warehouse, "demo.deliveries", 3_000)
    return warehouse, load_spec(jobs / "delivery_delay.yaml")


@pytest.fixture
def churn(warehouse, jobs):
    seed_table(warehouse, "demo.customers", 8_000)
    return warehouse, load_spec(jobs / "customer_churn.yaml")


def test_snapshot_excludes_rows_updated_after_as_of_and_repeats_its_hash(deliveries):
    url, spec = deliveries
    first = take_snapshot(spec, "scoring", CUTOFF, url)
    moved = query(
        url,
        "UPDATE demo.deliveries SET updated_at = %s, items = 99 WHERE delivery_id <= 50"
        " AND updated_at < %s RETURNING delivery_id",
        (datetime(2026, 9, 1, tzinfo=UTC), CUTOFF),
    )
    later = take_snapshot(spec, "scoring", CUTOFF, url)
    keys = set(read_snapshot(later)["delivery_id"])
    assert moved and keys.isdisjoint(k for (k,) in moved)
    assert later.row_count == first.row_count - len(moved)

    again = take_snapshot(spec, "scoring", CUTOFF, url)
    assert again.sha256 == later.sha256
    assert again.uri == later.uri


def test_a_row_count_is_compared_with_the_last_snapshot_taken_at_its_as_of(deliveries):
    url, spec = deliveries
    next_night = (CUTOFF + timedelta(days=1)).isoformat()
    first = take_snapshot(spec, "scoring", CUTOFF, url)
    query(
        url,
        "CREATE TABLE demo.kept AS SELECT * FROM demo.deliveries WHERE delivery_id % 2 = 0;"
        " DELETE FROM demo.deliveries WHERE delivery_id % 2 = 0",
    )
    halved = take_snapshot(spec, "scoring", CUTOFF, url)  # changed under old timestamps
    assert halved.row_count < first.row_count
    assert previous_row_count(url, spec.name, "scoring", next_night) == halved.row_count

    query(url, "INSERT INTO demo.deliveries SELECT * FROM demo.kept; DROP TABLE demo.kept")
    again = take_snapshot(spec, "scoring", CUTOFF, url)  # the first content: its row, its id
    assert (again.sha256, again.snapshot_id) == (first.sha256, first.snapshot_id)
    assert previous_row_count(url, spec.name, "scoring", next_night) == first.row_count


def test_reproduce_is_exact_after_the_source_table_changed(deliveries):
    url, spec = deliveries
    run_stages(url, spec, demo_as_of(), "run-1")
    query(url, "UPDATE demo.deliveries SET distance_km = distance_km + 1 WHERE delivery_id < 500")
    query(url, "DELETE FROM demo.deliveries WHERE delivery_id BETWEEN 500 AND 700")
    query(
        url,
        "INSERT INTO demo.deliveries (delivery_id, updated_at, items, minutes_late)"
        " VALUES (999001, now(), 3, 12.5)",
    )
    result = reproduce_run(url, "delivery_delay", "latest")
    assert result.run_id == "run-1"
    assert result.exact and result.matched == result.compared == 3_000


def test_reproduce_reports_a_changed_prediction(deliveries):
    url, spec = deliveries
    run_stages(url, spec, demo_as_of(), "run-1")
    query(
        url,
        "UPDATE scoring.delivery_delay_predictions SET score = score + 1e-9 WHERE key = 42",
    )
    result = reproduce_run(url, "delivery_delay", "run-1")
    assert not result.exact
    assert result.compared - result.matched == 1
    assert [d["key"] for d in result.differences] == ["42"]


def worse_candidate(url, spec, run_id):
    """A candidate fitted on shuffled labels, judged like any other on the true holdout."""
    manifest = take_snapshot(spec, "training", demo_as_of(), url)
    frame = read_snapshot(manifest)
    shuffled = frame.assign(
        **{spec.target: np.random.default_rng(0).permutation(frame[spec.target].to_numpy())}
    )
    model, _, seconds, _ = fitting.fit(spec, shuffled)
    _, _, x_hold, y_hold = fitting.split(frame, spec)
    judged = fitting.predict(model, x_hold, spec)
    fitted = fitting.Fitted(model, fitting.judge(judged, y_hold, spec), seconds, judged.score)
    return candidate.save_candidate(spec, manifest, run_id, fitted)


def test_a_worse_candidate_is_not_promoted_and_the_reason_is_stored(churn):
    url, spec = churn
    run_stages(url, spec, demo_as_of(), "run-1")
    decision = candidate.gate(url, spec, worse_candidate(url, spec, "run-2"), "run-2", False)

    assert decision.version == 1  # scoring keeps the champion
    assert decision.decision["status"] == "rejected"
    status, reason, metrics, champion_metrics, forced = query(
        url,
        "SELECT status, decision_reason, metrics, champion_metrics, forced"
        " FROM scoring.model_versions WHERE version = 2",
    )[0]
    assert (status, forced) == ("rejected", False)
    assert metrics["roc_auc"] < champion_metrics["roc_auc"]
    assert reason.startswith("kept champion v1: roc_auc")
    assert "not better than the champion" in reason


def test_force_promote_promotes_a_worse_candidate_and_says_so(churn):
    url, spec = churn
    run_stages(url, spec, demo_as_of(), "run-1")
    decision = candidate.gate(url, spec, worse_candidate(url, spec, "run-2"), "run-2", True)

    assert decision.version == 2
    rows = query(
        url,
        "SELECT version, status, forced, decision_reason FROM scoring.model_versions ORDER BY 1",
    )
    assert [r[:3] for r in rows] == [(1, "retired", False), (2, "champion", True)]
    assert rows[1][3].startswith("force_promote set at trigger time; the gate said: kept")


def test_a_tampered_artifact_refuses_to_load(deliveries):
    url, spec = deliveries
    run_stages(url, spec, demo_as_of(), "run-1")
    champion = models.champion(url, "delivery_delay")
    root = DataRoot()
    path = root.path_of(champion.artifact_uri)
    payload = bytearray(root.read_bytes(path))
    payload[len(payload) // 2] ^= 0xFF
    root.write_bytes(path, bytes(payload))

    with pytest.raises(ModelIntegrityError, match="refusing to load .*sha256"):
        files.load_model(champion.artifact_uri, champion.artifact_sha256)


def test_a_backfill_for_an_earlier_date_excludes_rows_updated_after_it(deliveries):
    url, spec = deliveries
    later = query(
        url,
        "UPDATE demo.deliveries SET updated_at = %s WHERE delivery_id %% 10 = 0 RETURNING 1",
        (datetime(2026, 9, 15, tzinfo=UTC),),
    )
    before_cutoff = query(
        url, "SELECT count(*) FROM demo.deliveries WHERE updated_at < %s", (CUTOFF,)
    )[0][0]
    run_stages(url, spec, CUTOFF, "backfill-2026-08-01")

    keys = query(
        url,
        "SELECT count(*), count(*) FILTER (WHERE key % 10 = 0), min(as_of)"
        " FROM scoring.delivery_delay_predictions WHERE run_id = 'backfill-2026-08-01'",
    )[0]
    assert len(later) == 300
    assert keys == (before_cutoff, 0, CUTOFF)


def test_lineage_names_the_data_model_and_code_of_a_prediction(deliveries):
    url, spec = deliveries
    result = run_stages(url, spec, demo_as_of(), "run-1")
    row = key_lineage(url, spec, "7")
    assert row["run_id"] == "run-1" and row["model_version"] == 1
    assert row["scoring_snapshot_sha256"] == result["snapshot_scoring"]["sha256"]
    assert row["training_snapshot_sha256"] == result["snapshot_training"]["sha256"]
    assert row["artifact_sha256"] == result["register"]["artifact_sha256"]
    text = format_lineage(spec, row)
    assert "delivery_delay key 7" in text and result["snapshot_scoring"]["uri"] in text
    assert query(url, "SELECT count(*) FROM scoring.delivery_delay_lineage") == [(3_000,)]


def test_retention_prunes_old_snapshots_but_never_those_runs_and_champions_use(deliveries):
    url, spec = deliveries
    result = run_stages(url, spec, demo_as_of(), "run-1")
    orphan = take_snapshot(spec, "scoring", CUTOFF, url)  # no run points to it
    root = DataRoot()

    pruned = prune_snapshots(url, "delivery_delay", days=0, now=datetime(2030, 1, 1, tzinfo=UTC))

    assert pruned == [orphan.uri]
    assert not root.exists(root.path_of(orphan.uri))
    for kept in (result["snapshot_training"], result["snapshot_scoring"]):
        assert root.exists(root.path_of(kept["uri"]))
    assert query(url, "SELECT count(*) FROM scoring.snapshots") == [(2,)]
    assert reproduce_run(url, "delivery_delay", "run-1").exact


@pytest.mark.parametrize(
    ("retrain", "override", "days_after", "due"),
    [
        ({"policy": "always"}, "auto", 1, True),
        ({"policy": "never"}, "auto", 1, False),
        ({"policy": "never"}, "always", 1, True),
        ({"policy": "always"}, "never", 1, False),
        ({"policy": "interval", "every_days": 7}, "auto", 1, False),
        ({"policy": "interval", "every_days": 7}, "auto", 8, True),
    ],
)
def test_retrain_policy_and_trigger_override(deliveries, retrain, override, days_after, due):
    from pipeline.spec import Retrain
    from pipeline.stages.run import retrain_due

    url, spec = deliveries
    assert retrain_due(url, spec, CUTOFF, "never")[0] is True  # no champion yet
    run_stages(url, spec, demo_as_of(), "run-1")
    created = query(url, "SELECT created_at FROM scoring.model_versions")[0][0]
    spec = spec.model_copy(update={"retrain": Retrain(**retrain)})
    decided, reason = retrain_due(url, spec, created + timedelta(days=days_after), override)
    assert decided is due, reason


def test_weekday_policy_retrains_on_its_days_only(deliveries):
    from pipeline.spec import Retrain
    from pipeline.stages.run import retrain_due

    url, spec = deliveries
    run_stages(url, spec, demo_as_of(), "run-1")
    spec = spec.model_copy(update={"retrain": Retrain(policy="weekdays", weekdays=["mon"])})
    monday, tuesday = datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    assert retrain_due(url, spec, monday, "auto") == (
        True,
        "retrain.policy weekdays ['mon']; as_of is a mon",
    )
    assert retrain_due(url, spec, tuesday, "auto")[0] is False
