"""A promotion that waits for a person (governance.approval): each condition pauses it, the
run still publishes with the champion, and the answer (or none) decides what is champion."""

from pathlib import Path

import pytest
import yaml

from helpers import query, run_stages
from pipeline import cli
from pipeline.datafiles.layout import report_path
from pipeline.datafiles.root import DataRoot
from pipeline.errors import PipelineError
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.reports.dossier import gather_dossier
from pipeline.spec import load_spec
from pipeline.stages import approve
from pipeline.warehouse import models

pytestmark = pytest.mark.integration

JOB = "delivery_delay"


def edit(jobs, **changes):
    """Rewrite the job's spec file with `changes` merged into its sections; the spec again."""
    path = jobs / f"{JOB}.yaml"
    data = yaml.safe_load(path.read_text())
    for section, values in changes.items():
        data[section] = {**data.get(section, {}), **values}
    path.write_text(yaml.safe_dump(data))
    return load_spec(path)


def weak_model(jobs):
    return edit(jobs, model={"params": {"max_iter": 1}})


def strong_model(jobs, **approval):
    governance = {"approval": {"approvers": ["alice"], **approval}}
    return edit(jobs, model={"params": {"max_iter": 150}}, governance=governance)


@pytest.fixture
def champion(warehouse, jobs):
    """v1, a weak champion (no approval asked), and a spec whose next candidate beats it."""
    seed_table(warehouse, "demo.deliveries", 3_000)
    run_stages(warehouse, weak_model(jobs), demo_as_of(), "run-1")
    assert models.champion(warehouse, JOB).version == 1
    return warehouse


def statuses(url) -> dict[int, str]:
    return dict(query(url, "SELECT version, status FROM scoring.model_versions ORDER BY 1"))


def answer(option: str, reason: str, user: str = "alice") -> dict:
    """What the approval DAG's `approve` task returns (HITLOperator's XCom)."""
    return {
        "chosen_options": [option],
        "params_input": {"reason": reason},
        "responded_at": "2026-12-03T10:00:00+00:00",
        "responded_by_user": {"id": user, "name": user},
    }


@pytest.mark.parametrize(
    "when, options",
    [
        ("always", {}),
        (["small_gain"], {}),
        (["force_promote"], {"force_promote": True}),
        (["alert"], {}),
    ],
)
def test_each_condition_pauses_and_the_run_publishes_with_the_champion(
    champion, jobs, when, options, capsys
):
    url = champion
    if when == ["alert"]:
        query(
            url,
            "INSERT INTO scoring.alerts (job, run_id, kind, subject, message)"
            " VALUES (%s, 'run-1', 'drift', 'distance_km', 'psi 0.4 over 0.2')",
            (JOB,),
        )
    spec = strong_model(jobs, when=when, small_gain=1000.0)

    results = run_stages(url, spec, demo_as_of(), "run-2", **options)

    decision = results["register"]["decision"]
    assert decision["status"] == "awaiting_approval"
    assert decision["reason"].startswith("awaits approval (")
    assert statuses(url) == {1: "champion", 2: "awaiting_approval"}
    assert results["register"]["version"] == 1  # tonight scores with the champion
    assert query(
        url, "SELECT status, model_version FROM scoring.scoring_runs WHERE run_id = 'run-2'"
    ) == [("published", 1)]
    assert query(url, f"SELECT DISTINCT model_version FROM scoring.{JOB}_latest") == [(1,)]
    assert cli.main(["approvals", JOB]) == 0
    listed = capsys.readouterr().out
    assert f"{JOB} v2 (run run-2): " in listed and f"trigger the DAG {JOB}_approval" in listed


def test_no_condition_met_promotes_at_once(champion, jobs):
    spec = strong_model(jobs, when=["first_model", "force_promote"])
    results = run_stages(champion, spec, demo_as_of(), "run-2")
    assert results["register"]["decision"]["status"] == "champion"
    assert statuses(champion) == {1: "retired", 2: "champion"}


def test_approve_promotes_for_the_next_run_with_the_record(champion, jobs, capsys):
    url = champion
    spec = strong_model(jobs, when="always")
    run_stages(url, spec, demo_as_of(), "run-2")

    asked = approve.request(url, spec)
    assert asked["version"] == 2 and asked["subject"] == f"{JOB}: promote model v2?"
    assert "| rmse (primary, lower is better) |" in asked["body"]
    assert "champion v1" in asked["body"] and "[Run report](" in asked["body"]
    settled = approve.settle(url, spec, 2, answer("Approve", "holdout gain is real"))

    assert settled == {"version": 2, "verdict": "approved", "status": "champion", "rescore": False}
    assert statuses(url) == {1: "retired", 2: "champion"}
    v2 = models.fetch_version(url, JOB, version=2)
    record = v2.approval
    assert record["verdict"] == "approved" and record["reason"] == "holdout gain is real"
    assert record["answered_by"] == {"id": "alice", "name": "alice"}
    assert record["evidence"]["champion_version"] == 1
    assert record["evidence"]["candidate_metrics"] == v2.metrics
    assert record["evidence"]["champion_metrics"] == v2.champion_metrics
    assert v2.decision_reason.endswith(
        "; approved by alice at 2026-12-03T10:00 UTC: holdout gain is real"
    )
    assert v2.promoted_at is not None
    card = (DataRoot().path_of(v2.artifact_uri).rsplit("/", 1)[0]) + "/MODEL_CARD.md"
    section = Path(card).read_text().split("## Approval\n", 1)[1]
    assert section.startswith("**Approved** by alice (2026-12-03T10:00 UTC): holdout gain is real.")
    assert "Asked because: governance.approval.when is always." in section
    assert f"vs champion v1 {v2.champion_metrics['rmse']:.5f} on the same holdout" in section
    assert len(section.splitlines()) == 1  # one section, written once

    facts = gather_dossier(url, JOB, 2).facts["approval"]
    assert facts["recorded"] and facts["verdict"] == "approved"
    assert facts["answered_by"] == {"id": "alice", "name": "alice"}
    assert facts["evidence"]["candidate_metrics"] == v2.metrics

    third = run_stages(url, spec, demo_as_of(), "run-3", retrain=False)
    assert third["register"]["version"] == 2
    assert query(url, f"SELECT DISTINCT model_version FROM scoring.{JOB}_latest") == [(2,)]
    root = DataRoot()
    page = root.read_bytes(report_path(root, JOB, "run-3")).decode()
    assert "v2 was approved by alice at 2026-12-03T10:00 UTC: holdout gain is real" in page
    key = query(url, f"SELECT min(key) FROM scoring.{JOB}_latest")[0][0]
    assert cli.main(["lineage", JOB, str(key)]) == 0
    assert "approved by alice at 2026-12-03T10:00 UTC: holdout gain is real" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    "given, verdict",
    [
        (answer("Reject", "gain too small to trust"), "rejected"),
        (None, "timed_out"),
        (answer("Approve", "  "), "rejected"),  # an approval needs a reason
    ],
)
def test_reject_and_timeout_keep_the_champion(champion, jobs, given, verdict):
    url = champion
    spec = strong_model(jobs, when="always")
    run_stages(url, spec, demo_as_of(), "run-2")
    approve.request(url, spec)
    if given is None:  # Airflow ends the wait at the deadline
        past_deadline(url)

    settled = approve.settle(url, spec, 2, given)

    assert (settled["verdict"], settled["status"]) == (verdict, "rejected")
    assert statuses(url) == {1: "champion", 2: "rejected"}
    assert models.fetch_version(url, JOB, version=2).approval["verdict"] == verdict
    with pytest.raises(PipelineError, match="v2 no longer awaits approval \\(rejected\\)"):
        approve.settle(url, spec, 2, answer("Approve", "late"))


def past_deadline(url) -> None:
    query(
        url,
        "UPDATE scoring.model_versions SET approval = approval"
        " || jsonb_build_object('deadline', (now() - interval '1 minute')::text)"
        " WHERE status = 'awaiting_approval'",
    )


def test_no_answer_before_the_deadline_leaves_the_request_waiting(champion, jobs):
    url = champion
    spec = strong_model(jobs, when="always")
    run_stages(url, spec, demo_as_of(), "run-2")
    approve.request(url, spec)

    with pytest.raises(PipelineError, match="ended without an answer before its deadline"):
        approve.settle(url, spec, 2, None)  # the approval task failed some other way

    assert statuses(url) == {1: "champion", 2: "awaiting_approval"}


def test_an_approval_after_the_champion_changed_is_not_promoted(champion, jobs):
    url = champion
    spec = strong_model(jobs, when=["small_gain"], small_gain=1000.0)
    run_stages(url, spec, demo_as_of(), "run-2")
    query(url, "UPDATE scoring.model_versions SET status = 'retired' WHERE version = 1")

    settled = approve.settle(url, spec, 2, answer("Approve", "looks good"))

    assert settled["status"] == "rejected"
    reason = models.fetch_version(url, JOB, version=2).decision_reason
    assert "the champion changed since it was judged (now none): not promoted" in reason


def test_a_newer_candidate_supersedes_the_waiting_one(champion, jobs):
    url = champion
    spec = strong_model(jobs, when="always")
    run_stages(url, spec, demo_as_of(), "run-2")
    spec = edit(jobs, model={"params": {"max_iter": 120}})
    run_stages(url, spec, demo_as_of(), "run-3")

    assert statuses(url) == {1: "champion", 2: "rejected", 3: "awaiting_approval"}
    assert models.fetch_version(url, JOB, version=2).approval["verdict"] == "superseded"
    assert [v.version for v in models.awaiting_approval(url, JOB)] == [3]


def test_a_first_model_that_waits_fails_the_run_with_the_way_out(warehouse, jobs):
    seed_table(warehouse, "demo.deliveries", 3_000)
    spec = strong_model(jobs, when=["first_model"])
    with pytest.raises(PipelineError, match="the job's first model, awaits approval"):
        run_stages(warehouse, spec, demo_as_of(), "run-1")
    assert statuses(warehouse) == {1: "awaiting_approval"}
    assert query(warehouse, "SELECT status FROM scoring.scoring_runs") == [("failed",)]

    approve.request(warehouse, spec)
    approve.settle(warehouse, spec, 1, answer("Approve", "first model reviewed"))
    run_stages(warehouse, spec, demo_as_of(), "run-2", retrain=False)
    assert query(warehouse, f"SELECT DISTINCT model_version FROM scoring.{JOB}_latest") == [(1,)]
