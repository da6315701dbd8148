"""When a promotion the gate allows waits for a person, and what an answer stands for."""

import pytest

from pipeline.logic.approval import approval_needs, verdict_of
from pipeline.spec import JobSpec

BASE = {
    "name": "churn",
    "source": {"table": "demo.customers", "key": "id", "timestamp": "updated_at"},
    "features": {"numeric": ["x"]},
    "target": "y",
    "task": "classification",
}


def spec(approval) -> JobSpec:
    return JobSpec.model_validate({**BASE, "governance": {"approval": approval}})


FACTS = {"gain": 0.05, "first": False, "forced": False, "alerted": False}


@pytest.mark.parametrize(
    "approval, facts, needs",
    [
        ("never", {"first": True, "forced": True, "alerted": True, "gain": 0.0}, []),
        ({"when": "always", "approvers": ["a"]}, {}, ["governance.approval.when is always"]),
        (
            {"when": ["first_model"], "approvers": ["a"]},
            {"first": True},
            ["first model of the job"],
        ),
        ({"when": ["first_model"], "approvers": ["a"]}, {}, []),
        (
            {"when": ["force_promote"], "approvers": ["a"]},
            {"forced": True},
            ["force_promote set at trigger time"],
        ),
        (
            {"when": ["alert"], "approvers": ["a"]},
            {"alerted": True},
            ["the last published run raised a drift or performance alert"],
        ),
        (
            {"when": ["small_gain"], "approvers": ["a"], "small_gain": 0.1},
            {},
            ["gain +0.05000 is below small_gain 0.1"],
        ),
        ({"when": ["small_gain"], "approvers": ["a"], "small_gain": 0.05}, {}, []),  # at it: no
        ({"when": ["small_gain"], "approvers": ["a"]}, {"gain": None, "first": True}, []),
        (
            {"when": ["force_promote", "small_gain"], "approvers": ["a"], "small_gain": 1},
            {"forced": True},
            ["force_promote set at trigger time", "gain +0.05000 is below small_gain 1.0"],
        ),
    ],
)
def test_each_condition_asks_only_when_it_holds(approval, facts, needs):
    assert approval_needs(spec(approval), **{**FACTS, **facts}) == needs


def test_a_shorthand_string_is_the_when():
    assert spec("never").governance.approval.when == "never"
    assert spec({"when": "always", "approvers": ["a"]}).governance.approval.timeout_hours == 24


@pytest.mark.parametrize(
    "chosen, by, reason, verdict",
    [
        (["Approve"], {"id": "a"}, "fine", "approved"),
        (["Approve"], {"id": "a"}, " ", "rejected"),  # an approval needs a reason
        (["Reject"], {"id": "a"}, "no", "rejected"),
        (["Reject"], None, "", "timed_out"),  # Airflow's defaults at the deadline: nobody answered
        (None, None, None, "timed_out"),
    ],
)
def test_an_answer_stands_for_a_verdict(chosen, by, reason, verdict):
    assert verdict_of(chosen, by, reason) == verdict
