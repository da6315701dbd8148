"""A table the project never saw, onboarded by YAML alone: its suggested suites pass on the data
they came from, integer-coded categories included."""

import json
from datetime import UTC, datetime

import pytest
import yaml

from helpers import query
from pipeline.cli import main
from pipeline.spec import load_spec
from pipeline.stages.snapshot import take_snapshot
from pipeline.stages.validate import validate_snapshot
from pipeline.validation.suites import build_suite, suite_path

pytestmark = pytest.mark.integration

SPEC = {
    "source": {"table": "lab.people", "key": "person_id", "timestamp": "updated_at"},
    "features": {"numeric": ["age"], "categorical": ["occupation", "region"]},
    "target": "left_job",
    "task": "classification",
}


def test_suggested_suites_pass_on_their_own_data(warehouse, jobs, capsys):
    query(
        warehouse,
        "DROP SCHEMA IF EXISTS lab CASCADE; CREATE SCHEMA lab; CREATE TABLE lab.people AS"
        " SELECT g AS person_id, now() - interval '1 day' AS updated_at, 20 + g % 40 AS age,"
        " 1 + g % 6 AS occupation, (ARRAY['n', 's', 'e', 'w'])[1 + g % 4] AS region,"
        " g % 3 = 0 AS left_job FROM generate_series(1, 3000) AS g",
    )
    (jobs / "people.yaml").write_text(yaml.safe_dump(SPEC))

    assert main(["suggest-expectations", "people"]) == 0
    capsys.readouterr()
    spec = load_spec(jobs / "people.yaml")
    for kind in ("training", "scoring"):
        raw = json.loads(suite_path("people", kind).read_text())
        in_set = [
            e["kwargs"]["value_set"]
            for e in raw["expectations"]
            if e["type"] == "expect_column_values_to_be_in_set"
            and e["kwargs"]["column"] == "occupation"
        ]
        assert in_set == [[1, 2, 3, 4, 5, 6]]  # the column's own type, not strings
        manifest = take_snapshot(spec, kind, datetime.now(UTC), warehouse)
        summary = validate_snapshot(
            warehouse, spec, manifest, f"check-{kind}", build_suite(raw, kind)
        )
        assert summary.success and summary.warnings_failed == 0, summary.failures
