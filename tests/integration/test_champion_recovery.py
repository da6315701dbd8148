"""A champion whose model file is missing or tampered: retire it, or force a new one in."""

import pytest

from helpers import query, run_stages
from pipeline import cli
from pipeline.datafiles.root import DataRoot
from pipeline.errors import ModelIntegrityError, PipelineError
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.model import registry
from pipeline.spec import load_spec
from pipeline.stages.run import retrain_due
from pipeline.warehouse import models

pytestmark = pytest.mark.integration


@pytest.fixture
def deliveries(warehouse, jobs):
    seed_table(warehouse, "demo.deliveries", 3_000)
    return warehouse, load_spec(jobs / "delivery_delay.yaml")


def tamper(url: str, version: int) -> None:
    """Flip one byte of a version's model file, as a bad copy or an attacker would."""
    row = models.fetch_version(url, "delivery_delay", version=version)
    root = DataRoot()
    path = root.path_of(row.artifact_uri)
    payload = bytearray(root.read_bytes(path))
    payload[len(payload) // 2] ^= 0xFF
    root.write_bytes(path, bytes(payload))


def delete_file(url: str, version: int) -> None:
    row = models.fetch_version(url, "delivery_delay", version=version)
    root = DataRoot()
    root.fs.delete_file(root.path_of(row.artifact_uri))


def versions(url: str) -> list[tuple]:
    return query(
        url,
        "SELECT version, status, forced, decision_reason FROM scoring.model_versions"
        " WHERE job = 'delivery_delay' ORDER BY version",
    )


def test_retiring_a_tampered_champion_brings_back_the_previous_one(deliveries):
    url, spec = deliveries
    run_stages(url, spec, demo_as_of(), "run-1")
    second = run_stages(url, spec, demo_as_of(), "run-2", force_promote=True)
    assert second["register"]["version"] == 2
    tamper(url, 2)

    result = registry.retire_champion(url, "delivery_delay", "model file tampered")

    assert result == {"job": "delivery_delay", "retired": 2, "champion": 1, "skipped": []}
    (v1, status1, _, reason1), (v2, status2, _, reason2) = versions(url)
    assert (status1, status2) == ("champion", "retired")
    assert reason2.endswith("; retired: model file tampered")
    assert "; champion again: v2 was retired (model file tampered)" in reason1
    promoted = dict(query(url, "SELECT version, promoted_at FROM scoring.model_versions"))
    assert promoted[1] > promoted[2]

    third = run_stages(url, spec, demo_as_of(), "run-3", retrain=False)
    assert third["train"] is None and third["register"]["version"] == 1
    assert query(
        url, "SELECT model_version, status FROM scoring.scoring_runs WHERE run_id = 'run-3'"
    ) == [(1, "published")]
    assert query(url, "SELECT DISTINCT model_version FROM scoring.delivery_delay_latest") == [(1,)]


def test_retire_leaves_no_champion_when_no_earlier_file_verifies(deliveries, capsys):
    url, spec = deliveries
    run_stages(url, spec, demo_as_of(), "run-1")
    run_stages(url, spec, demo_as_of(), "run-2", force_promote=True)
    delete_file(url, 1)
    tamper(url, 2)

    assert cli.main(["retire", "delivery_delay", "--reason", "both files broken"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "delivery_delay: v2 retired (both files broken)"
    assert lines[1].startswith("delivery_delay: v1 passed over: ModelIntegrityError: model")
    assert "is missing" in lines[1]
    assert lines[2] == "delivery_delay: no champion now; the next run trains one"
    assert [r[1] for r in versions(url)] == ["retired", "retired"]
    assert models.champion(url, "delivery_delay") is None
    with pytest.raises(PipelineError, match="no champion to retire"):
        registry.retire_champion(url, "delivery_delay", "again")

    assert retrain_due(url, spec, demo_as_of(), "never") == (True, "no champion yet")
    third = run_stages(url, spec, demo_as_of(), "run-3", retrain=False)
    assert third["decide_retrain"]["reason"] == "no champion yet"
    assert third["register"]["version"] == 3
    assert models.champion(url, "delivery_delay").version == 3


def test_a_version_retired_by_hand_is_not_brought_back(deliveries):
    url, spec = deliveries
    run_stages(url, spec, demo_as_of(), "run-1")
    run_stages(url, spec, demo_as_of(), "run-2", force_promote=True)
    assert registry.retire_champion(url, "delivery_delay", "bad predictions")["champion"] == 1
    run_stages(url, spec, demo_as_of(), "run-3", force_promote=True)
    tamper(url, 3)

    result = registry.retire_champion(url, "delivery_delay", "tampered")

    assert (result["retired"], result["champion"]) == (3, 1)  # v2's file is fine, but retired


def test_the_gate_names_the_ways_out_and_force_promote_takes_one(deliveries):
    url, spec = deliveries
    run_stages(url, spec, demo_as_of(), "run-1")
    tamper(url, 1)

    with pytest.raises(ModelIntegrityError) as refused:
        run_stages(url, spec, demo_as_of(), "run-2")
    message = str(refused.value)
    assert "champion v1's model file is missing or modified" in message
    assert "python -m pipeline retire delivery_delay" in message
    assert "--force-promote" in message
    assert [r[:2] for r in versions(url)] == [(1, "champion")]
    status, error = query(
        url, "SELECT status, error FROM scoring.scoring_runs WHERE run_id = 'run-2'"
    )[0]
    assert status == "failed" and error.startswith("register: job delivery_delay: the champion")

    forced = run_stages(url, spec, demo_as_of(), "run-3", force_promote=True)

    assert forced["register"]["version"] == 2
    (_, status1, _, _), (_, status2, was_forced, reason) = versions(url)
    assert (status1, status2, was_forced) == ("retired", "champion", True)
    assert reason.startswith(
        "force_promote set at trigger time; champion v1 could not be loaded: refusing to load"
    )
