"""Validating one column group at a time gives GX's own whole-table result, expectation by
expectation, while holding only the columns a group reads."""

import great_expectations as gx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.validation.gx import SAMPLE_VALUES, group_by_columns, run_suite

EXPECTATIONS = [
    {"type": "expect_column_to_exist", "kwargs": {"column": "id"}},
    {"type": "expect_column_to_exist", "kwargs": {"column": "absent"}},
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": 5}},
    {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["id", "x", "plan"]}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "max_value": 3}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x", "mostly": 0.9}},
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "plan", "value_set": ["basic", "premium"]},
    },
    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["id", "plan"]}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "absent"}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "flag", "mostly": 0.8}},
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "flag", "value_set": [True]},
    },
]


@pytest.fixture
def parquet(tmp_path):
    table = pa.table(
        {
            "id": [1, 2, 2, 3, 4, 5, 6, 7],
            "x": [0.5, 1.0, None, 2.0, 9.0, 1.5, 7.0, 0.1],
            "plan": ["basic", "premium", "premium", "gold", "basic", None, "basic", "basic"],
            "flag": [True, False, None, True, True, False, True, True],
        }
    )
    path = tmp_path / "data.parquet"
    pq.write_table(table, path, row_group_size=3)
    return pq.ParquetFile(path)


def whole_table_result(parquet, suite):
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas(name="whole")
        .add_dataframe_asset(name="whole")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": parquet.read().to_pandas()})
    )
    return batch.validate(
        suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_VALUES}
    )


def outcome(result) -> dict:
    """Per expectation: success, observed value, unexpected count and samples."""
    out = {}
    for r in result.results:
        config = r.expectation_config
        details = r.result or {}
        kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
        key = (config.type, repr(sorted(kwargs.items())))
        out[key] = (
            r.success,
            details.get("observed_value"),
            details.get("unexpected_count"),
            sorted(map(str, details.get("partial_unexpected_list") or [])),
            # as written to the result file and drawn on the Data Docs page
            sorted(map(str, r.to_json_dict()["result"].get("partial_unexpected_counts") or [])),
        )
    return out


def test_groups_follow_the_columns_each_expectation_reads():
    suite = gx.ExpectationSuite(name="t", expectations=EXPECTATIONS)
    groups = {columns: len(members) for columns, members in group_by_columns(suite).items()}
    assert groups == {  # a column's existence is read from the column names, with the row count
        ("id",): 1,
        ("absent",): 1,
        (): 4,
        ("x",): 2,
        ("plan",): 1,
        ("id", "plan"): 1,
        ("flag",): 2,
    }


def test_grouped_validation_matches_whole_table_validation(parquet):
    suite = gx.ExpectationSuite(name="t", expectations=EXPECTATIONS)
    grouped = run_suite(suite, parquet, parameters={})
    whole = whole_table_result(parquet, gx.ExpectationSuite(name="t", expectations=EXPECTATIONS))

    assert outcome(grouped) == outcome(whole)
    assert grouped.success is whole.success is False
    assert grouped.statistics["evaluated_expectations"] == len(EXPECTATIONS)
    assert grouped.statistics["successful_expectations"] == sum(r.success for r in whole.results)
    failed = {r.expectation_config.type for r in grouped.results if not r.success}
    assert {
        "expect_column_values_to_be_unique",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_to_exist",
    } <= failed


CHUNKED = [
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "max_value": 3}},
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "x", "min_value": 0.2, "mostly": 0.7},
    },
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x", "mostly": 0.9}},
    {"type": "expect_column_values_to_be_null", "kwargs": {"column": "plan", "mostly": 0.01}},
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "plan", "value_set": ["basic", "premium"], "mostly": 0.5},
    },
    {
        "type": "expect_column_values_to_not_be_in_set",
        "kwargs": {"column": "plan", "value_set": ["gold"]},
    },
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "plan", "regex": "^b"}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "flag", "mostly": 0.8}},
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "flag", "value_set": [True]},
    },
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "plan"}},
    {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "x", "max_value": 1}},
    {"type": "expect_column_to_exist", "kwargs": {"column": "x"}},
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 10}},
]


@pytest.fixture
def sorted_snapshot(tmp_path):
    """A snapshot as the pipeline writes them (sorted by a unique key, fixed row groups),
    with NULLs, values out of range and out of set spread over its row groups."""
    rng = np.random.default_rng(7)
    rows = 2_500
    x = rng.normal(1.0, 1.5, rows)
    plan = rng.choice(np.array(["basic", "premium", "gold", "bronze"]), rows).astype(object)
    flag = rng.random(rows) < 0.8
    table = pa.table(
        {
            "id": pa.array(np.arange(rows) * 3),
            "x": pa.array(x, mask=rng.random(rows) < 0.05),
            "plan": pa.array(plan, mask=rng.random(rows) < 0.1),
            "flag": pa.array(flag, mask=rng.random(rows) < 0.15),
        }
    )
    path = tmp_path / "sorted.parquet"
    pq.write_table(table, path, row_group_size=250)
    return pq.ParquetFile(path)


@pytest.mark.parametrize("chunk_rows", [250, 600, 1_000, 10_000])
def test_row_wise_expectations_in_chunks_give_the_whole_columns_result(sorted_snapshot, chunk_rows):
    suite = gx.ExpectationSuite(name="t", expectations=CHUNKED)
    chunked = run_suite(suite, sorted_snapshot, {}, key="id", chunk_rows=chunk_rows)
    whole = run_suite(suite, sorted_snapshot, {}, chunk_rows=10**9)

    def as_written(result) -> list[dict]:  # what the result file and Data Docs show
        out = []
        for r in result.to_json_dict()["results"]:
            r["expectation_config"]["kwargs"].pop("batch_id", None)
            out.append(r)
        return out

    assert as_written(chunked) == as_written(whole)
    assert [r.expectation_config.type for r in chunked.results] == [e["type"] for e in CHUNKED]
    assert chunked.statistics == whole.statistics
    verdicts = {r.expectation_config.type: r.success for r in chunked.results}
    assert verdicts["expect_column_values_to_match_regex"] is False  # the samples are compared
    samples = chunked.results[1].result["partial_unexpected_index_list"]
    assert samples == sorted(samples) and len(samples) == SAMPLE_VALUES


def test_the_whole_column_result_is_gx_own(sorted_snapshot):
    suite = gx.ExpectationSuite(name="t", expectations=CHUNKED)
    chunked = run_suite(suite, sorted_snapshot, {}, key="id", chunk_rows=250)
    whole = whole_table_result(sorted_snapshot, gx.ExpectationSuite(name="t", expectations=CHUNKED))
    assert outcome(chunked) == outcome(whole)
