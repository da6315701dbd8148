"""Checks made before and beside a run, on tables the project never saw: the suggested suite of a
class target (its class set in the column's own type, each class's share), targets whose values
do not fit the task refused by `check` and `suggest-expectations`, rows with every feature NULL
counted at validation, and Data Docs rendered without a logged error."""

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from helpers import query
from pipeline.cli import main
from pipeline.errors import DataValidationError
from pipeline.reports.summary import run_summary
from pipeline.spec import load_spec
from pipeline.stages.snapshot import take_snapshot
from pipeline.stages.validate import validate_snapshot
from pipeline.validation.suites import build_suite, suite_path
from pipeline.warehouse.runs import fetch_run

pytestmark = pytest.mark.integration

SCHEMA = "lab_onboarding_checks"  # tests/integration/test_onboarding.py uses `lab`
CLASS_SET = ("expect_column_values_to_be_in_set", "expect_column_distinct_values_to_contain_set")


def make_table(url: str, table: str, select: str) -> None:
    """`SCHEMA.table` as `select` (which may use g, 1..N, from its own FROM clause)."""
    query(
        url,
        f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}; DROP TABLE IF EXISTS {SCHEMA}.{table};"
        f" CREATE TABLE {SCHEMA}.{table} AS {select}",
    )


def write_job(jobs: Path, name: str, table: str, target: str, task: str, **extra) -> None:
    spec = {
        "source": {"table": f"{SCHEMA}.{table}", "key": "id", "timestamp": "updated_at"},
        "features": {"numeric": ["x"], "categorical": ["c"], "boolean": ["b"]},
        "target": target,
        "task": task,
        **extra,
    }
    (jobs / f"{name}.yaml").write_text(yaml.safe_dump(spec))


FEATURES = (
    "g AS id, now() - interval '1 day' AS updated_at, (g % 37) * 1.5 AS x,"
    " (ARRAY['n', 's', 'e', 'w'])[1 + g % 4] AS c, g % 5 = 0 AS b"
)


@pytest.mark.parametrize(
    ("target_sql", "classes", "description"),
    [
        ("1 + g % 3", [1, 2, 3], "3-class target ['1', '2', '3']"),
        (
            "CASE WHEN g % 4 = 0 THEN 'yes' ELSE 'no' END",
            ["no", "yes"],
            "binary target ['no', 'yes'], positive class 'yes'",
        ),
        ("g % 5 = 1", [False, True], "binary target ['False', 'True'], positive class 'True'"),
    ],
    ids=["integer-coded", "text", "boolean"],
)
def test_class_target_suite_passes_on_its_own_data(
    warehouse, jobs, capsys, target_sql, classes, description
):
    make_table(
        warehouse,
        "classes",
        f"SELECT {FEATURES}, {target_sql} AS y FROM generate_series(1, 2000) g",
    )
    write_job(jobs, "classes", "classes", "y", "classification")

    assert main(["suggest-expectations", "classes"]) == 0
    assert main(["check", "classes"]) == 0
    assert f"ok   classes: {SCHEMA}.classes -> scoring.classes_latest; {description}" in (
        capsys.readouterr().out
    )

    spec = load_spec(jobs / "classes.yaml")
    training = json.loads(suite_path("classes", "training").read_text())
    on_target = [e for e in training["expectations"] if e["kwargs"].get("column") == "y"]
    class_set = [
        (e["type"], e["kwargs"]["value_set"], e["meta"]["severity"])
        for e in on_target
        if e["type"]
        in ("expect_column_values_to_be_in_set", "expect_column_distinct_values_to_contain_set")
        and "mostly" not in e["kwargs"]
    ]
    assert class_set == [  # the column's own type: not strings, not floats
        ("expect_column_values_to_be_in_set", classes, "critical"),
        ("expect_column_distinct_values_to_contain_set", classes, "critical"),
    ]
    assert [type(v) for v in class_set[0][1]] == [type(v) for v in classes]
    shares = {  # each class's share bounded from below (and from above when below 50%)
        e["kwargs"]["value_set"][0]
        for e in on_target
        if "mostly" in e["kwargs"] and e["meta"]["severity"] == "warning"
    }
    assert shares == set(classes)
    assert not [
        e for e in on_target if e["type"] == "expect_column_unique_value_count_to_be_between"
    ]

    for kind in ("training", "scoring"):
        raw = json.loads(suite_path("classes", kind).read_text())
        manifest = take_snapshot(spec, kind, datetime.now(UTC), warehouse)
        summary = validate_snapshot(
            warehouse, spec, manifest, f"check-{kind}", build_suite(raw, kind)
        )
        assert summary.success and summary.warnings_failed == 0, summary.failures


def test_class_share_moving_far_is_a_warning(warehouse, jobs, capsys):
    make_table(
        warehouse,
        "balance",
        f"SELECT {FEATURES}, CASE WHEN g % 5 = 0 THEN 'yes' ELSE 'no' END AS y"
        " FROM generate_series(1, 2000) g",
    )
    write_job(jobs, "balance", "balance", "y", "classification")
    assert main(["suggest-expectations", "balance"]) == 0
    query(warehouse, f"UPDATE {SCHEMA}.balance SET y = 'yes' WHERE id % 5 IN (1, 2)")  # 20% -> 60%

    spec = load_spec(jobs / "balance.yaml")
    manifest = take_snapshot(spec, "training", datetime.now(UTC), warehouse)
    raw = json.loads(suite_path("balance", "training").read_text())
    summary = validate_snapshot(warehouse, spec, manifest, "shift", build_suite(raw, "training"))

    assert summary.success  # the class set holds; only the balance moved
    moved = [f for f in summary.failures if f["column"] == "y"]
    assert moved and {f["severity"] for f in moved} == {"warning"}, summary.failures
    assert any("'yes' was 20.0% of training rows" in f["guards"] for f in moved), moved


def test_targets_that_do_not_fit_the_task_are_refused(warehouse, jobs, capsys):
    make_table(
        warehouse,
        "targets",
        f"SELECT {FEATURES}, 'a'::text AS one_class, (g % 2)::float8 AS two_values,"
        " (g % 500) / 7.0::float8 AS many, g % 3 = 0 AS good FROM generate_series(1, 2000) g",
    )
    bad = {
        "one_class": ("one_class", "classification"),
        "two_valued": ("two_values", "regression"),
        "many_classes": ("many", "classification"),
    }
    for name, (target, task) in bad.items():
        write_job(jobs, name, "targets", target, task)
    write_job(jobs, "good", "targets", "good", "classification")
    assert main(["suggest-expectations", "good"]) == 0
    capsys.readouterr()
    root = Path(os.environ["SCORING_DATA_ROOT"])
    files_before = sorted(p for p in root.rglob("*") if p.is_file())

    assert main(["check", *bad, "good"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "ok   good: " + f"{SCHEMA}.targets -> scoring.good_latest; binary target" in "\n".join(
        lines
    ), lines
    for name, (target, _) in bad.items():
        fail = [line for line in lines if line.startswith(f"FAIL {name}: ")]
        assert len(fail) == 1 and f"job {name}: target {target!r}" in fail[0], lines
    out = "\n".join(lines)
    assert "target 'many' has more than 50 distinct values" in out
    assert (
        "target 'two_values' has 2 distinct value(s)" in out and "use task: classification" in out
    )

    for name, (target, _) in bad.items():
        assert main(["suggest-expectations", name]) != 0
        errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
        assert len(errors) == 1, errors  # one line naming the job and the column
        assert errors[0].startswith(f"error: job {name}: target {target!r}"), errors
        assert errors[0].endswith("; no suite was written"), errors
        assert not suite_path(name, "training").exists()
        assert not suite_path(name, "scoring").exists()
    assert sorted(p for p in root.rglob("*") if p.is_file()) == files_before  # no orphan files
    assert query(warehouse, "SELECT DISTINCT job FROM scoring.snapshots") == [("good",)]


ALL_NULL = (
    "SELECT g AS id, now() - interval '1 day' AS updated_at,"
    " CASE WHEN g % 100 = 0 THEN NULL WHEN g % 7 = 0 THEN NULL ELSE g * 0.5 END AS x,"
    " CASE WHEN g % 100 = 0 THEN NULL WHEN g % 11 = 0 THEN NULL ELSE 'k' || g % 3 END AS c,"
    " CASE WHEN g % 100 = 0 THEN NULL ELSE g % 2 = 0 END AS b,"
    " g % 2 = 0 AS y FROM generate_series(1, 700) g"
)  # every 100th row has no feature at all (7 rows); others miss one or two


def small_suite(kind: str):
    return build_suite(
        {
            "name": f"nulls.{kind}",
            "expectations": [
                {
                    "type": "expect_column_values_to_be_unique",
                    "kwargs": {"column": "id"},
                    "meta": {"severity": "critical", "notes": "keys"},
                }
            ],
        },
        kind,
    )


def test_rows_with_every_feature_null_are_counted(warehouse, jobs):
    make_table(warehouse, "nulls", ALL_NULL)
    write_job(jobs, "nulls", "nulls", "y", "classification")
    spec = load_spec(jobs / "nulls.yaml")
    as_of = datetime.now(UTC)

    for kind in ("training", "scoring"):
        manifest = take_snapshot(spec, kind, as_of, warehouse)
        summary = validate_snapshot(warehouse, spec, manifest, "run-nulls", small_suite(kind))
        assert summary.success and summary.warnings_failed == 1, summary.failures
        [failure] = summary.failures
        assert failure["severity"] == "warning"
        assert failure["expectation"] == "features_not_all_null"
        assert failure["unexpected_count"] == 7 and failure["observed"] == 7
        assert failure["samples"] == [100, 200, 300, 400, 500]
        assert "job nulls: 7 of 700" in failure["message"] and "(1.00%)" in failure["message"]
        assert f"{kind} rows" in failure["message"]

    query(
        warehouse,
        "INSERT INTO scoring.scoring_runs (job, run_id, dag_run_id, as_of, status)"
        " VALUES ('nulls', 'run-nulls', 'run-nulls', %s, 'failed')",
        (as_of,),
    )
    run = fetch_run(warehouse, "nulls", "run-nulls")
    summary_text = "\n".join(run_summary(warehouse, spec, run, 1.0))
    for kind in ("training", "scoring"):
        assert f"validation nulls.{kind}: passed (0 critical, 1 warning(s) failed)" in summary_text
    assert "WARNING: features_not_all_null; job nulls: 7 of 700 training rows" in summary_text


def test_rows_with_every_feature_null_stop_the_run_when_critical(warehouse, jobs):
    make_table(warehouse, "nulls", ALL_NULL)
    write_job(
        jobs, "nulls", "nulls", "y", "classification", validation={"all_null_features": "critical"}
    )
    spec = load_spec(jobs / "nulls.yaml")
    manifest = take_snapshot(spec, "scoring", datetime.now(UTC), warehouse)

    with pytest.raises(DataValidationError) as raised:
        validate_snapshot(warehouse, spec, manifest, "run-critical", small_suite("scoring"))

    message = str(raised.value)
    assert message.startswith("job nulls: scoring snapshot"), message
    assert "failed 1 critical expectation(s)" in message
    assert "features_not_all_null; job nulls: 7 of 700 scoring rows (1.00%)" in message
    assert "e.g. keys [100, 200, 300, 400, 500]" in message
    assert query(
        warehouse,
        "SELECT success, critical_failed FROM scoring.validation_results WHERE run_id = %s",
        ("run-critical",),
    ) == [(False, 1)]


def test_no_row_without_features_no_failure(warehouse, jobs):
    make_table(
        warehouse,
        "some_nulls",
        "SELECT g AS id, now() - interval '1 day' AS updated_at,"
        " CASE WHEN g % 2 = 0 THEN NULL ELSE g * 0.5 END AS x,"
        " CASE WHEN g % 2 = 1 THEN NULL ELSE 'k' || g % 3 END AS c, NULL::boolean AS b,"
        " g % 2 = 0 AS y FROM generate_series(1, 700) g",
    )  # every feature has NULLs, every row has one feature
    write_job(
        jobs,
        "nulls",
        "some_nulls",
        "y",
        "classification",
        validation={"all_null_features": "critical"},
    )
    spec = load_spec(jobs / "nulls.yaml")
    manifest = take_snapshot(spec, "scoring", datetime.now(UTC), warehouse)
    summary = validate_snapshot(warehouse, spec, manifest, "run-some", small_suite("scoring"))
    assert summary.success and summary.failures == []


def test_data_docs_render_float_statistics_without_error(warehouse, jobs, caplog):
    """GX formats observed floats through their repr; NumPy 2's `np.float64(0.2)` would make it
    log an ERROR and leave the cell out (`render_data_docs` prints NumPy 1.25 reprs)."""
    make_table(
        warehouse, "docs", f"SELECT {FEATURES}, g % 3 = 0 AS y FROM generate_series(1, 500) g"
    )
    write_job(jobs, "docs", "docs", "y", "classification")
    spec = load_spec(jobs / "docs.yaml")
    manifest = take_snapshot(spec, "training", datetime.now(UTC), warehouse)
    floats = [  # each observes a float64: a mean, a standard deviation, a proportion...
        ("expect_column_mean_to_be_between", {"column": "b", "min_value": 0.1, "max_value": 0.3}),
        ("expect_column_mean_to_be_between", {"column": "x", "min_value": 0, "max_value": 100}),
        ("expect_column_stdev_to_be_between", {"column": "x", "min_value": 0, "max_value": 100}),
        (
            "expect_column_proportion_of_unique_values_to_be_between",
            {"column": "c", "min_value": 0, "max_value": 1},
        ),
        ("expect_column_values_to_be_in_set", {"column": "y", "value_set": [True], "mostly": 0.1}),
    ]
    suite = build_suite(
        {
            "name": "docs.training",
            "expectations": [
                {"type": kind, "kwargs": kwargs, "meta": {"severity": "warning", "notes": "n"}}
                for kind, kwargs in floats
            ],
        },
        "docs",
    )
    caplog.set_level(logging.DEBUG, logger="great_expectations")

    summary = validate_snapshot(warehouse, spec, manifest, "run-docs", suite)

    gx_records = [r for r in caplog.records if r.name.startswith("great_expectations")]
    errors = [r.getMessage()[:300] for r in gx_records if r.levelno >= logging.ERROR]
    assert errors == []
    assert not [r for r in caplog.records if "will not be rendered" in r.getMessage()]
    assert Path(summary.docs_uri).read_text().count("<html") == 1
