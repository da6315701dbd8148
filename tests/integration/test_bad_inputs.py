"""The bad-input matrix: every corruption ends in a clear error or a recorded warning, and after
a critical failure what analysts see (scoring.customer_churn_latest) is exactly as before."""

from datetime import timedelta
from pathlib import Path

import pytest

from helpers import query, run_stages
from pipeline.errors import DataValidationError, PipelineError, SpecError
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.spec import load_spec

pytestmark = pytest.mark.integration

ROWS = 3_000
DROP_KEY = "ALTER TABLE demo.customers DROP CONSTRAINT customers_pkey"

# case -> (SQL that corrupts demo.customers, error type or None, fragments of the outcome)
CRITICAL = {
    "missing column": (
        ["ALTER TABLE demo.customers DROP COLUMN region"],
        SpecError,
        ["features.categorical[1]: column 'region' not found in table demo.customers"],
    ),
    "column of the wrong type": (
        ["ALTER TABLE demo.customers ALTER monthly_charges TYPE text"],
        SpecError,
        ["features.numeric[1]: column demo.customers.monthly_charges has type 'text'"],
    ),
    "duplicate keys": (
        [DROP_KEY, "INSERT INTO demo.customers SELECT * FROM demo.customers WHERE customer_id < 4"],
        DataValidationError,
        ["3 duplicated value(s) of its key column customer_id", "e.g. [1, 2, 3]"],
    ),
    "nulls in a required column": (
        [
            DROP_KEY,
            "ALTER TABLE demo.customers ALTER customer_id DROP NOT NULL",
            "UPDATE demo.customers SET customer_id = NULL WHERE customer_id <= 3",
        ],
        DataValidationError,
        ["expect_column_values_to_not_be_null; column 'customer_id'; 3 unexpected"],
    ),
    "infinity in a numeric column": (
        ["UPDATE demo.customers SET monthly_charges = 'Infinity' WHERE customer_id <= 4"],
        DataValidationError,
        ["expect_column_values_to_be_between; column 'monthly_charges'", "e.g. [inf, inf"],
    ),
    "empty table": (
        ["DELETE FROM demo.customers"],
        DataValidationError,
        ["expect_table_row_count_to_be_between; observed 0"],
    ),
    "table shrank by 90%": (
        ["DELETE FROM demo.customers WHERE customer_id % 10 <> 0"],
        DataValidationError,
        ["expect_table_row_count_to_be_between; observed 265", "'min_value': 1350"],
    ),
    "training label with a single class": (
        ["UPDATE demo.customers SET churned = false WHERE churned"],
        DataValidationError,
        ["expect_column_unique_value_count_to_be_between; column 'churned'; observed 1"],
    ),
}
STOPPED_AT_SNAPSHOT = {"duplicate keys"}  # checked while the snapshot is written, before GX
WARNINGS = {
    "out-of-range values": (
        ["UPDATE demo.customers SET tenure_months = 5000 WHERE customer_id <= 30"],
        "expect_column_values_to_be_between",
        "tenure_months",
    ),
    "NaN in a numeric column": (
        ["UPDATE demo.customers SET monthly_charges = 'NaN' WHERE customer_id <= 30"],
        "numeric_values_are_numbers",
        "monthly_charges",
    ),
    "an unseen category": (
        ["UPDATE demo.customers SET plan = 'platinum' WHERE customer_id <= 60"],
        "expect_column_values_to_be_in_set",
        "plan",
    ),
    "timestamps in the future": (
        [
            "UPDATE demo.customers SET updated_at = now() + interval '30 days'"
            " WHERE customer_id <= 20"
        ],
        "timestamps_not_in_the_future",
        "updated_at",
    ),
    "very long and non-ASCII strings": (
        ["UPDATE demo.customers SET region = repeat('Zürich-北京-', 400) WHERE customer_id <= 40"],
        "expect_column_values_to_be_in_set",
        "region",
    ),
}


@pytest.fixture
def last_good_run(warehouse, jobs):
    """A published customer_churn run, and the spec, before anything is corrupted."""
    seed_table(warehouse, "demo.customers", ROWS)
    spec = load_spec(jobs / "customer_churn.yaml")
    run_stages(warehouse, spec, demo_as_of(), "good-run")
    return warehouse, spec


def latest(url: str) -> list[tuple]:
    return query(
        url,
        "SELECT run_id, count(*), sum(score), max(model_version)"
        " FROM scoring.customer_churn_latest GROUP BY run_id",
    )


@pytest.mark.parametrize("case", CRITICAL)
def test_critical_input_stops_the_run_and_changes_nothing_published(last_good_run, case):
    url, spec = last_good_run
    statements, error, fragments = CRITICAL[case]
    before = latest(url)
    for statement in statements:
        query(url, statement)

    with pytest.raises(error) as raised:
        run_stages(url, spec, demo_as_of() + timedelta(days=1), "bad-run")

    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, message
    if case in STOPPED_AT_SNAPSHOT:
        assert message.startswith("job customer_churn: ") and "demo.customers" in message
    elif error is DataValidationError:
        assert message.startswith("job customer_churn: ") and "nothing was trained" in message
        failed = query(
            url,
            "SELECT result_uri, docs_uri FROM scoring.validation_results"
            " WHERE run_id = 'bad-run' AND NOT success",
        )
        assert failed
        for result_uri, docs_uri in failed:
            assert Path(result_uri).is_file()
            assert "Expectation Validation Result" in Path(docs_uri).read_text()
    assert latest(url) == before
    published = query(url, "SELECT run_id FROM scoring.scoring_runs WHERE status = 'published'")
    assert published == [("good-run",)]
    assert query(url, "SELECT count(*) FROM scoring.model_versions") == [(1,)]


@pytest.mark.parametrize("case", WARNINGS)
def test_warning_input_is_recorded_and_the_run_goes_on(last_good_run, case):
    url, spec = last_good_run
    statements, expectation, column = WARNINGS[case]
    for statement in statements:
        query(url, statement)

    result = run_stages(url, spec, demo_as_of() + timedelta(days=1), "warned-run")

    warned = [
        failure
        for check in [result["validate_training"], result["validate_scoring"]]
        for failure in check["failures"]
        if failure["expectation"] == expectation and failure["column"] == column
    ]
    assert warned and all(f["severity"] == "warning" for f in warned)
    assert all(
        check["success"] for check in [result["validate_training"], result["validate_scoring"]]
    )
    recorded = query(
        url,
        "SELECT sum(warnings_failed), bool_and(success) FROM scoring.validation_results"
        " WHERE run_id = 'warned-run'",
    )[0]
    assert recorded[0] >= 1 and recorded[1] is True
    assert latest(url)[0][0] == "warned-run"
    for failure in warned:
        assert all(len(str(sample)) <= 80 for sample in failure["samples"])


def test_a_job_without_suites_is_told_how_to_write_them(last_good_run, tmp_path, monkeypatch):
    url, spec = last_good_run
    monkeypatch.setenv("SCORING_EXPECTATIONS_DIR", str(tmp_path / "none"))
    with pytest.raises(
        PipelineError, match="python -m pipeline suggest-expectations customer_churn"
    ):
        run_stages(url, spec, demo_as_of() + timedelta(days=1), "no-suite-run")
