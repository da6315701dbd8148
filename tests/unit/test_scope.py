"""`decide_scope`: an incremental run only when nothing a score depends on moved; each reason
to run in full named."""

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.logic.scope import State, decide_scope

AS_OF = datetime(2021, 6, 10, 2, tzinfo=UTC)
PREVIOUS = State(
    run_id="night-9",
    as_of=AS_OF - timedelta(days=1),
    model_version=3,
    features_sha256="f" * 64,
    base_run_id="night-5",
    base_as_of=AS_OF - timedelta(days=5),
)


def scope(**changes):
    args = {
        "as_of": AS_OF,
        "features_sha256": "f" * 64,
        "full_asked": False,
        "state": PREVIOUS,
        "champion_version": 3,
        "retrain": (False, "policy never"),
        "lookback": timedelta(hours=6),
        "full_every_days": 7,
        **changes,
    }
    return decide_scope(**args)


def test_nothing_moved_scores_the_change_since_the_previous_as_of_less_lookback():
    found = scope()
    assert found.mode == "incremental"
    assert found.since == (PREVIOUS.as_of - timedelta(hours=6)).isoformat()
    assert (found.previous_run_id, found.base_run_id) == ("night-9", "night-5")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"full_asked": True}, "full: true"),
        ({"state": None}, "no published run yet"),
        ({"as_of": PREVIOUS.as_of}, "a backfill runs in full"),
        ({"as_of": PREVIOUS.as_of - timedelta(days=30)}, "a backfill runs in full"),
        ({"features_sha256": "e" * 64}, "features or the code that builds them changed"),
        ({"champion_version": 4}, "the champion is model v4, run night-9 scored with v3"),
        ({"retrain": (True, "drift on amount")}, "retraining is due (drift on amount)"),
        ({"full_every_days": 5}, "5 days old: scoring.full_every_days is 5"),
    ],
)
def test_each_reason_to_run_in_full(changes, reason):
    found = scope(**changes)
    assert found.mode == "full" and reason in found.reason, found.reason
    assert found.since is None
