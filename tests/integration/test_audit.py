"""The audit dossier of a model version: every figure it shows is the stored record's, and a
changed record changes the dossier."""

import json
from datetime import timedelta

import pytest

from helpers import query, run_stages
from pipeline import cli
from pipeline.datafiles.root import DataRoot
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.spec import load_spec

pytestmark = pytest.mark.integration


@pytest.fixture
def audited(warehouse, jobs, tmp_path):
    """customer_churn: v1 fitted by run-1, a second night scored with it (run-2)."""
    seed_table(warehouse, "demo.customers", 6_000)
    spec = load_spec(jobs / "customer_churn.yaml")
    run_stages(warehouse, spec, demo_as_of() - timedelta(days=1), "run-1")
    run_stages(warehouse, spec, demo_as_of(), "run-2", retrain="never")
    return warehouse, tmp_path / "audit"


def audit(out, *args) -> tuple[dict, str]:
    assert cli.main(["audit", "customer_churn", *args, "--out", str(out)]) == 0
    (facts_file,) = out.glob("customer_churn-v1-audit.json")
    page = out / "customer_churn-v1-audit.html"
    return json.loads(facts_file.read_text()), page.read_text()


def test_the_dossier_shows_the_stored_records(audited):
    url, out = audited
    facts, page = audit(out)  # the champion by default
    (model,) = query(
        url,
        "SELECT artifact_sha256, metrics, decision_reason, training_snapshot_id, run_id,"
        " code_version FROM scoring.model_versions WHERE job = 'customer_churn' AND version = 1",
    )
    sha, metrics, reason, snapshot_id, fitted_by, code = model
    assert facts["version"] == 1 and facts["model"]["status"] == "champion"
    assert facts["model"]["artifact_sha256"] == sha and facts["model"]["code_version"] == code
    assert facts["gate"]["candidate_metrics"] == metrics
    assert facts["gate"]["decision_reason"] == reason and facts["fitted_by"]["run_id"] == fitted_by

    (snapshot,) = query(
        url,
        "SELECT sha256, row_count, manifest->>'query' FROM scoring.snapshots WHERE id = %s",
        (snapshot_id,),
    )
    data = facts["training_data"]
    assert (data["snapshot_id"], data["sha256"], data["row_count"], data["query"]) == (
        snapshot_id,
        *snapshot,
    )
    suites = query(
        url,
        "SELECT suite, success, critical_failed FROM scoring.validation_results"
        " WHERE job = 'customer_churn' AND run_id = 'run-1' ORDER BY suite",
    )
    assert [(v["suite"], v["success"], v["critical_failed"]) for v in facts["validation"]] == [
        tuple(row) for row in suites
    ]
    runs = query(
        url,
        "SELECT run_id, rows_scored, spec_sha256, suites_sha256 FROM scoring.scoring_runs"
        " WHERE job = 'customer_churn' AND model_version = 1 ORDER BY as_of",
    )
    assert [
        (r["run_id"], r["rows_scored"], r["spec_sha256"], r["suites_sha256"]) for r in facts["runs"]
    ] == [tuple(row) for row in runs]
    assert [r["run_id"] for r in facts["runs"]] == ["run-1", "run-2"]
    root = DataRoot()
    card = root.path_of(facts["model"]["artifact_uri"]).rsplit("/", 1)[0] + "/MODEL_CARD.md"
    assert facts["model_card"] == root.read_bytes(card).decode()
    assert facts["approval"]["recorded"] is False and facts["shadow"]["recorded"] is False

    for shown in (sha, snapshot[0], "run-1", "run-2", f"{metrics['roc_auc']:.4f}"):
        assert shown in page
    assert "<script" not in page and "http" not in page.split("</style>", 1)[1]  # self-contained


def test_a_changed_record_changes_the_dossier(audited):
    url, out = audited
    query(
        url,
        "UPDATE scoring.scoring_runs SET rows_scored = 12345 WHERE run_id = 'run-2';"
        " UPDATE scoring.model_versions SET decision_reason = 'approved by the risk committee'"
        " WHERE job = 'customer_churn' AND version = 1",
    )
    facts, page = audit(out, "--version", "1")
    assert [r["rows_scored"] for r in facts["runs"] if r["run_id"] == "run-2"] == [12345]
    assert facts["gate"]["decision_reason"] == "approved by the risk committee"
    assert "12,345" in page and "approved by the risk committee" in page


def test_an_unknown_version_is_an_error_naming_it(audited, capsys):
    _, out = audited
    assert cli.main(["audit", "customer_churn", "--version", "7", "--out", str(out)]) == 2
    assert "job customer_churn: no model version 7" in capsys.readouterr().err
