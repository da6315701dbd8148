"""A challenger in shadow (governance.shadow_runs): it scores beside the champion into
`<job>_shadow` for N runs, never in `<job>_latest`, then both are judged on the same late
labels; it is promoted only if it wins there, whatever the holdout said."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from helpers import query, run_stages
from pipeline.datafiles.layout import report_path
from pipeline.datafiles.root import DataRoot
from pipeline.reports.dossier import gather_dossier
from pipeline.spec import load_spec
from pipeline.stages import approve
from pipeline.warehouse import models

pytestmark = pytest.mark.integration

JOB = "buyers"
START = datetime(2019, 3, 1, tzinfo=UTC)  # years in the past: cut-offs are not "now"
# 2,000 people seen over January 2019; a quarter have no outcome yet when the runs start
BUYERS = """
DROP SCHEMA IF EXISTS shop CASCADE; CREATE SCHEMA shop;
CREATE TABLE shop.buyers AS
SELECT g AS buyer_id, timestamptz '2019-01-01' + g * interval '20 minutes' AS seen_at,
       (g * 7919 % 1000) / 100.0 AS x, (g * 104729 % 1000) / 100.0 AS y,
       CASE WHEN g % 4 = 0 THEN NULL
            ELSE (g * 7919 % 1000) / 100.0 + (g * 104729 % 1000) / 100.0 > 10 END AS bought
FROM generate_series(1, 2000) AS g;
"""
# the outcomes that arrive later: as the rule says, or (the world changed) its opposite
LABELS = {
    "as_before": "UPDATE shop.buyers SET bought = x + y > 10 WHERE bought IS NULL",
    "reversed": "UPDATE shop.buyers SET bought = x + y <= 10 WHERE bought IS NULL",
}
STUMP = {"max_iter": 1, "max_depth": 1}  # a weak champion: one split
FOREST = {"max_iter": 100}


def write_spec(jobs, params: dict, shadow_runs: int = 0):
    raw = {
        "source": {"table": "shop.buyers", "key": "buyer_id", "timestamp": "seen_at"},
        "features": {"numeric": ["x", "y"]},
        "target": "bought",
        "task": "classification",
        "model": {"estimator": "hist_gradient_boosting", "params": params},
        "retrain": {"policy": "always"},
        "monitoring": {"performance": {"min_labelled": 50}},
        "governance": {"shadow_runs": shadow_runs},
    }
    (jobs / f"{JOB}.yaml").write_text(yaml.safe_dump(raw))
    folder = jobs.parent / "expectations" / JOB
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("training", "scoring"):
        suite = {"name": f"{JOB}.{kind}", "expectations": []}
        (folder / f"{kind}.json").write_text(json.dumps(suite))
    return load_spec(jobs / f"{JOB}.yaml")


def day(n: int) -> datetime:
    return START + timedelta(days=n)


def report(url, run_id: str) -> str:
    """The run's report page, as it was written when the run published."""
    root = DataRoot()
    return root.read_bytes(report_path(root, JOB, run_id)).decode()


def statuses(url) -> dict[int, str]:
    return dict(query(url, "SELECT version, status FROM scoring.model_versions ORDER BY 1"))


@pytest.fixture
def in_shadow(warehouse, jobs):
    """v1 a stump champion; v2, a forest that beats it on the holdout, in shadow for 2 runs."""
    query(warehouse, BUYERS)
    run_stages(warehouse, write_spec(jobs, STUMP), day(0), "run-1")
    spec = write_spec(jobs, FOREST, shadow_runs=2)
    second = run_stages(warehouse, spec, day(1), "run-2")
    assert second["register"]["decision"]["status"] == "shadow"
    return warehouse, spec


def test_the_challenger_scores_beside_the_champion_never_in_latest(in_shadow):
    url, spec = in_shadow
    assert statuses(url) == {1: "champion", 2: "shadow"}
    third = run_stages(url, spec, day(2), "run-3", retrain="auto")

    assert third["train"] is None  # no new candidate while one is in shadow
    assert "challenger v2 is in shadow" in third["decide_retrain"]["reason"]
    assert third["register"]["version"] == 1 and third["register"]["shadow"]["version"] == 2
    assert query(url, f"SELECT DISTINCT model_version FROM scoring.{JOB}_latest") == [(1,)]
    shadow = query(
        url,
        f"SELECT run_id, model_version, count(*) FROM scoring.{JOB}_shadow"
        " GROUP BY 1, 2 ORDER BY 1",
    )
    assert shadow == [("run-2", 2, 2000), ("run-3", 2, 2000)]
    same_keys = query(
        url,
        f"SELECT count(*) FROM scoring.{JOB}_shadow AS s JOIN scoring.{JOB}_predictions AS p"
        " USING (run_id, key) WHERE s.run_id = 'run-3'",
    )
    assert same_keys == [(2000,)]
    assert statuses(url) == {1: "champion", 2: "shadow"}  # 2 runs scored, no label yet
    assert "Challenger v2 scores beside the champion</strong> (2 of 2 shadow run(s)" in report(
        url, "run-3"
    )


@pytest.mark.parametrize("labels, verdict", [("as_before", "promoted"), ("reversed", "lost")])
def test_promotion_is_decided_on_the_late_labels(in_shadow, labels, verdict):
    url, spec = in_shadow
    run_stages(url, spec, day(2), "run-3", retrain="auto")
    query(url, LABELS[labels])

    fourth = run_stages(url, spec, day(3), "run-4", retrain="auto")

    judged = models.fetch_version(url, JOB, version=2)
    assert judged.shadow["verdict"] == verdict
    assert [r["run_id"] for r in judged.shadow["runs"]] == ["run-2", "run-3"]
    assert all(r["labelled"] == 500 for r in judged.shadow["runs"])  # the same 500 late keys
    assert judged.shadow["labelled"] == 1000 and judged.shadow["metric"] == "roc_auc"
    champion, challenger = judged.shadow["champion"], judged.shadow["challenger"]
    if verdict == "promoted":
        assert challenger["roc_auc"] > champion["roc_auc"]
        assert statuses(url) == {1: "retired", 2: "champion"}
        assert fourth["register"]["version"] == 2 and fourth["register"]["shadow"] is None
        assert query(url, f"SELECT DISTINCT model_version FROM scoring.{JOB}_latest") == [(2,)]
        assert "; won in shadow: realised roc_auc" in judged.decision_reason
    else:
        assert challenger["roc_auc"] < champion["roc_auc"]  # it won the holdout, not the labels
        assert statuses(url) == {1: "champion", 2: "rejected"}
        assert fourth["register"]["version"] == 1
        assert "; lost in shadow: realised roc_auc" in judged.decision_reason
    assert query(url, f"SELECT count(*) FROM scoring.{JOB}_shadow WHERE run_id = 'run-4'") == [(0,)]
    page = report(url, "run-4")
    assert 'id="shadow-curves"' in page and page.count("<polyline") >= 2  # both curves
    assert f"scoring.{JOB}_shadow" in page
    facts = gather_dossier(url, JOB, 2).facts["shadow"]
    assert facts["recorded"] and facts["verdict"] == verdict
    assert facts["runs"] == judged.shadow["runs"]


def test_a_candidate_asked_for_supersedes_the_challenger(in_shadow):
    url, spec = in_shadow
    run_stages(url, spec, day(2), "run-3")  # retrain: always, as the trigger form can ask
    assert statuses(url) == {1: "champion", 2: "rejected", 3: "shadow"}
    assert models.fetch_version(url, JOB, version=2).shadow["verdict"] == "superseded"


def test_a_win_in_shadow_then_waits_for_approval_when_the_spec_asks(warehouse, jobs):
    query(warehouse, BUYERS)
    run_stages(warehouse, write_spec(jobs, STUMP), day(0), "run-1")
    spec = write_spec(jobs, FOREST, shadow_runs=1)
    raw = yaml.safe_load(Path(spec.path).read_text())
    raw["governance"]["approval"] = {"when": "always", "approvers": ["alice"]}
    Path(spec.path).write_text(yaml.safe_dump(raw))
    spec = load_spec(spec.path)
    second = run_stages(warehouse, spec, day(1), "run-2")
    assert second["register"]["decision"]["status"] == "shadow"  # asked after its shadow runs
    query(warehouse, LABELS["as_before"])

    third = run_stages(warehouse, spec, day(2), "run-3", retrain="auto")

    assert statuses(warehouse) == {1: "champion", 2: "awaiting_approval"}
    assert third["register"]["version"] == 1 and third["register"]["shadow"] is None
    waiting = models.fetch_version(warehouse, JOB, version=2)
    assert waiting.shadow["verdict"] == "awaiting_approval"
    assert waiting.approval == {
        "conditions": ["governance.approval.when is always"],
        "requested_by_run": "run-3",
    }
    asked = approve.request(warehouse, spec)
    assert asked["version"] == 2
    approve.settle(
        warehouse,
        spec,
        2,
        {
            "chosen_options": ["Approve"],
            "params_input": {"reason": "won on 500 real labels"},
            "responded_at": "2019-03-04T09:00:00+00:00",
            "responded_by_user": {"id": "alice", "name": "alice"},
        },
    )
    assert statuses(warehouse) == {1: "retired", 2: "champion"}


def test_a_forced_promotion_skips_the_shadow(warehouse, jobs):
    query(warehouse, BUYERS)
    run_stages(warehouse, write_spec(jobs, STUMP), day(0), "run-1")
    spec = write_spec(jobs, STUMP, shadow_runs=3)
    second = run_stages(warehouse, spec, day(1), "run-2", force_promote=True)
    assert second["register"]["decision"]["status"] == "champion"
    assert second["register"]["shadow"] is None
    assert statuses(warehouse) == {1: "retired", 2: "champion"}
