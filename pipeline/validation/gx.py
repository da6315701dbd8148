"""Great Expectations 1.x run on a snapshot one column group at a time (each expectation's row
filters copy only its group's columns: twice as fast as one pass over the whole table at 1M
rows, and no slower at 10k), and row-wise expectations a bounded run of rows at a time, so
that memory follows `validation.chunk_rows`, not the table.

A row-wise expectation (nulls, ranges, sets, patterns: `ROW_WISE`) judges each row by itself,
so its result on the whole column follows from its results on consecutive chunks: the counts
add up, and the samples are the first ones in row order. Those are handed to the
expectation's own `_validate`, which GX calls with the whole column's metrics, so the verdict,
the percentages and the sampled counts are GX's, computed as GX computes them. Every other
expectation (uniqueness, means, distinct counts: aggregates of the column) sees its columns
whole; expectations that read only column names or the row count see a frame that holds no
values.
"""

import gc
from collections.abc import Iterable, Iterator

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.execution_engine import pandas_execution_engine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.validator.validation_statistics import calc_validation_statistics

from pipeline.logic.personal import mask, replace_samples

SAMPLE_VALUES = 5  # unexpected values GX samples per expectation
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_VALUES}
NULLABLE_BOOL = {pa.bool_(): pd.BooleanDtype()}
# Column map expectations whose verdict on a row depends on that row alone, and whose result
# GX builds from the whole column's counts and first samples (the metrics `merge_chunks` adds)
ROW_WISE = frozenset(
    {
        "expect_column_values_to_be_null",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
        "expect_column_values_to_match_like_pattern",
        "expect_column_values_to_not_match_like_pattern",
        "expect_column_value_lengths_to_equal",
    }
)
UNIQUE = "expect_column_values_to_be_unique"
NAMES_ONLY = frozenset({"expect_column_to_exist"})  # reads the column names, no values

# GX fingerprints every frame under this many bytes (an md5 of pandas' hash of every row) for
# a batch marker nothing here reads: about a sixth of a validation's time. No expectation uses
# it, so no frame is hashed.
pandas_execution_engine.HASH_THRESHOLD = 0


def columns_read(expectation) -> tuple[str, ...]:
    """The columns whose values an expectation reads; none for table-level ones (row count,
    column set) and a column's existence."""
    if expectation.expectation_type in NAMES_ONLY:
        return ()
    return columns_named(expectation.configuration.kwargs)


def chunkable(expectation, columns: tuple[str, ...], parquet, key: str | None) -> bool:
    """Whether an expectation's result on its `columns` follows from its results on chunks of
    the snapshot: a row-wise one, or the uniqueness of the snapshot's key (a snapshot is sorted
    by its key, so equal keys are adjacent, and chunks end only between row groups). A column
    missing from the snapshot is the expectation's to report, on the whole (empty) frame."""
    if not columns or not set(columns) <= set(parquet.schema_arrow.names):
        return False
    if not parquet.metadata.num_row_groups:
        return False
    name = expectation.expectation_type
    if name == UNIQUE:
        return key is not None and columns == (key,)
    return name in ROW_WISE


def columns_named(kwargs: dict) -> tuple[str, ...]:
    """The columns an expectation's kwargs name."""
    names = [kwargs[k] for k in ("column", "column_A", "column_B") if kwargs.get(k)]
    names += kwargs.get("column_list") or []
    return tuple(dict.fromkeys(names))


def group_by_columns(suite) -> dict[tuple[str, ...], list]:
    """The suite's expectations grouped by the columns they read, in the suite's order."""
    groups: dict[tuple[str, ...], list] = {}
    for expectation in suite.expectations:
        groups.setdefault(columns_read(expectation), []).append(expectation)
    return groups


def column_frame(parquet, columns: tuple[str, ...]) -> pd.DataFrame:
    """The snapshot's `columns` that exist (a missing one is the expectation's to report).

    Text comes as categoricals: a few bytes per row instead of a Python string each; booleans
    as pandas' nullable booleans, which a null does not turn into Python objects (the null
    checks on an object column cost a tenth of a second per million rows each).
    """
    return as_frame(parquet.read(columns=present_columns(parquet, columns)))


def present_columns(parquet, columns: tuple[str, ...]) -> list[str]:
    return [c for c in columns if c in parquet.schema_arrow.names]


def as_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas as GX is given it: text as categoricals, booleans nullable."""
    return table.to_pandas(strings_to_categorical=True, types_mapper=NULLABLE_BOOL.get)


def shape_frame(parquet, rows: int) -> pd.DataFrame:
    """Every column name and `rows` rows: all table-level expectations read. Each column is
    the same sparse array of `rows` placeholders (False), which stores no value."""
    empty = pd.arrays.SparseArray(np.zeros(rows, dtype=bool), fill_value=False)
    return pd.DataFrame({name: empty for name in parquet.schema_arrow.names}, copy=False)


def chunk_frames(parquet, columns: tuple[str, ...], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The snapshot's `columns` (`column_frame`), whole row groups at a time, each chunk at
    least `chunk_rows` rows (but the last) and indexed by row number in the snapshot, as GX
    numbers the rows it samples."""
    present = present_columns(parquet, columns)
    meta, groups, start, rows = parquet.metadata, [], 0, 0
    for group in range(meta.num_row_groups):
        groups.append(group)
        rows += meta.row_group(group).num_rows
        if rows >= chunk_rows or group == meta.num_row_groups - 1:
            frame = as_frame(parquet.read_row_groups(groups, columns=present))
            frame.index = pd.RangeIndex(start, start + rows)
            yield frame
            start, groups, rows = start + rows, [], 0


def run_suite(
    suite,
    parquet,
    parameters: dict,
    table_rows: int | None = None,
    key: str | None = None,
    chunk_rows: int = 1_000_000,
):
    """Validate the snapshot with GX, as one suite result in the suite's order: one column
    group at a time, each frame holding only the columns its expectations read, row-wise
    expectations (`chunkable`; `key`: the snapshot's key column) `chunk_rows` rows at a time.
    Table-level expectations (row count, columns) see `table_rows` rows: the whole table's
    count for a change snapshot."""
    table_rows = parquet.metadata.num_rows if table_rows is None else table_rows
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep task logs readable
    order = {id(e): i for i, e in enumerate(suite.expectations)}
    found: dict[int, ExpectationValidationResult] = {}  # by the expectation's place in the suite
    metas: list[dict] = []
    source = context.data_sources.add_pandas(name="snapshot")
    batches = source.add_dataframe_asset(name="snapshot").add_batch_definition_whole_dataframe(
        "snapshot"
    )

    def validated(expectations: list, frames: Iterable[pd.DataFrame]) -> list[list]:
        """Each expectation's results, one per frame."""
        per: list[list] = [[] for _ in expectations]
        for frame in frames:
            part = validate_frame(batches, expectations, frame, parameters)
            del frame
            drop_batches(source)
            gc.collect()  # GX's objects form cycles that hold the frame until a collection
            metas.append(part.meta)
            for each, result in zip(per, part.results, strict=True):
                each.append(result)
        return per

    gc.freeze()  # what exists now is never garbage: the collections below skip it
    try:
        for columns, expectations in group_by_columns(suite).items():
            chunked = [e for e in expectations if chunkable(e, columns, parquet, key)]
            if chunked:
                frames = chunk_frames(parquet, columns, chunk_rows)
                for e, parts in zip(chunked, validated(chunked, frames), strict=True):
                    found[order[id(e)]] = merge_chunks(parts)
            whole = [e for e in expectations if e not in chunked]
            if whole:
                frame = (
                    column_frame(parquet, columns) if columns else shape_frame(parquet, table_rows)
                )
                for e, parts in zip(whole, validated(whole, [frame]), strict=True):
                    found[order[id(e)]] = parts[0]
                del frame
    finally:
        gc.unfreeze()
        context.data_sources.delete("snapshot")
    results = [found[i] for i in sorted(found)]
    for r in results:
        sample_nulls_as_none(r.result or {})
    statistics = calc_validation_statistics(results)._asdict()
    return ExpectationSuiteValidationResult(
        success=statistics.pop("success"),
        results=results,
        suite_name=suite.name,
        suite_parameters=parameters,
        statistics=statistics,
        meta=metas[0] if metas else None,
    )


def merge_chunks(parts: list[ExpectationValidationResult]) -> ExpectationValidationResult:
    """A row-wise expectation's result on the whole column, from its results on consecutive
    chunks of it: the whole column's metrics (counts added, samples and their row numbers the
    first in row order) given to the expectation's own `_validate`. A chunk whose
    expectation raised (a column of the wrong type) stands for the whole."""
    first = parts[0]
    raised = [p for p in parts if (p.exception_info or {}).get("raised_exception")]
    if len(parts) == 1 or raised:
        return raised[0] if raised else first
    details = [p.result or {} for p in parts]
    config = first.expectation_config
    assert config is not None  # GX sets it on every result it validated
    expectation = config.to_domain_obj()
    assert isinstance(expectation, ColumnMapExpectation)  # every ROW_WISE type is one
    metric = expectation.map_metric
    values = [v for d in details for v in d.get("partial_unexpected_list", [])]
    indexes: list[list | None] = [d.get("partial_unexpected_index_list") for d in details]
    metrics = {  # as GX computes them on the whole column: the samples are its first ones
        "table.row_count": sum(d["element_count"] for d in details),
        "column_values.nonnull.unexpected_count": sum(d.get("missing_count") or 0 for d in details),
        f"{metric}.unexpected_count": sum(d["unexpected_count"] for d in details),
        f"{metric}.unexpected_values": values[:SAMPLE_VALUES],
        f"{metric}.unexpected_index_list": None
        if any(each is None for each in indexes)
        else [i for each in indexes for i in each or ()][:SAMPLE_VALUES],
    }
    whole = expectation._validate(metrics, runtime_configuration={"result_format": RESULT_FORMAT})
    return ExpectationValidationResult(
        success=whole["success"],
        result=whole["result"],
        expectation_config=config,
        meta=first.meta,
        exception_info=first.exception_info,
    )


def drop_batches(source) -> None:
    """Let go of what GX keeps of the last frame validated through `source`: the batch, its
    data and the computed metrics (row masks among them), which would otherwise pile up, a
    group's worth each, and be served to the next group from the cache."""
    engine = source.get_execution_engine()
    engine.batch_manager.reset_batch_cache()
    engine.batch_manager.batch_data_cache.clear()
    engine._metric_cache.clear()  # no public way: GX 1.x clears it only with the engine


def validate_frame(batches, expectations: list, frame: pd.DataFrame, parameters):
    """GX's result for `expectations` on `frame`, a batch of the run's one data source (each
    data source GX adds or deletes re-serialises its whole configuration: half a second a
    validation when every column group had its own).

    The frame is left out of the result's meta, and the caller drops GX's cached batches: GX
    would otherwise keep every batch it loaded.
    """
    batch = batches.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        gx.ExpectationSuite(
            name="group", expectations=[e.configuration.to_json_dict() for e in expectations]
        ),
        result_format=RESULT_FORMAT,
        expectation_parameters=parameters,
    )
    result.meta.pop("batch_spec", None)
    return result


def conceal_samples(result, personal: frozenset[str]) -> None:
    """Mask (`pipeline.logic.personal.mask`) the values GX sampled for every expectation that
    reads a `source.pii` column, in place: its result JSON, Data Docs and messages show
    tokens, never the values."""
    for each in result.results:
        config = each.expectation_config
        if config is not None and personal & set(columns_named(config.kwargs)):
            replace_samples(each.result or {}, mask)


def sample_nulls_as_none(details: dict) -> None:
    """A nullable boolean's null is sampled as pandas' NA (`<NA>` on a page): written as None,
    what the same column read as Python objects gives."""
    if "partial_unexpected_list" in details:
        details["partial_unexpected_list"] = [
            None if v is pd.NA else v for v in details["partial_unexpected_list"]
        ]
    for entry in details.get("partial_unexpected_counts") or []:
        if entry.get("value") is pd.NA:
            entry["value"] = None
