"""A job whose spec asks for approval gets an approval DAG (a Required Action for the spec's
approvers, with its timeout) and a nightly task that starts it; other jobs get neither."""

from datetime import timedelta

import yaml

from pipeline.orchestration.dags import build_dags


def test_an_approval_spec_adds_the_approval_dag_and_the_request_task(jobs):
    path = jobs / "customer_churn.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["governance"] = {
        "approval": {"when": ["force_promote", "small_gain"], "approvers": ["alice", "bob"]}
        | {"timeout_hours": 6}
    }
    path.write_text(yaml.safe_dump(spec))

    dags = build_dags(jobs)

    assert set(dags) == {"customer_churn", "customer_churn_approval", "delivery_delay"}
    nightly = dags["customer_churn"]
    request = nightly.get_task("request_approval")
    assert request.upstream_task_ids == {"register"} and not request.downstream_task_ids
    assert request.trigger_rule == "all_done"
    assert [a.name for a in request.outlets] == ["scoring.customer_churn_approval"]
    assert "request_approval" not in {t.task_id for t in dags["delivery_delay"].tasks}

    approval = dags["customer_churn_approval"]
    assert [a.name for a in approval.timetable.asset_condition.objects] == [
        "scoring.customer_churn_approval"
    ]
    assert {t.task_id: t.upstream_task_ids for t in approval.tasks} == {
        "evidence": set(),
        "approve": {"evidence"},
        "record": {"approve"},
        "rescores": {"record"},
        "rescore": {"rescores"},
    }
    approve = approval.get_task("approve")
    assert approve.options == ["Approve", "Reject"] and approve.defaults is None
    assert approve.assigned_users == [
        {"id": "alice", "name": "alice"},
        {"id": "bob", "name": "bob"},
    ]
    assert approve.response_timeout == timedelta(hours=6)
    reason = approve.params.get_param("reason")
    assert reason.schema["type"] == "string" and reason.value == ""  # required in the form
    assert approval.get_task("record").trigger_rule == "all_done"
    assert approval.get_task("rescore").trigger_dag_id == "customer_churn"
    assert "alice, bob" in approval.doc_md
