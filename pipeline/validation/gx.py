"""Great Expectations 1.x run on a snapshot one column group at a time, so that memory follows
the widest group of columns, not the table (and each expectation's row filters copy only its
group's columns: twice as fast as one pass over the whole table at 1M rows, and no slower at
10k)."""

import gc

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.execution_engine import pandas_execution_engine
from great_expectations.validator.validation_statistics import calc_validation_statistics

from pipeline.logic.personal import mask, replace_samples

SAMPLE_VALUES = 5  # unexpected values GX samples per expectation
NULLABLE_BOOL = {pa.bool_(): pd.BooleanDtype()}

# GX fingerprints every frame under this many bytes (an md5 of pandas' hash of every row) for
# a batch marker nothing here reads: about a sixth of a validation's time. No expectation uses
# it, so no frame is hashed.
pandas_execution_engine.HASH_THRESHOLD = 0


def columns_read(expectation) -> tuple[str, ...]:
    """The columns an expectation reads; none for table-level ones (row count, column set)."""
    return columns_named(expectation.configuration.kwargs)


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
    present = [c for c in columns if c in parquet.schema_arrow.names]
    table = parquet.read(columns=present)
    return table.to_pandas(strings_to_categorical=True, types_mapper=NULLABLE_BOOL.get)


def shape_frame(parquet, rows: int) -> pd.DataFrame:
    """Every column name and `rows` rows: all table-level expectations read.

    The values are placeholders (False, one byte each), which GX hashes quickly.
    """
    return pd.DataFrame(
        np.zeros((rows, len(parquet.schema_arrow.names)), dtype=bool),
        columns=parquet.schema_arrow.names,
    )


def run_suite(suite, parquet, parameters: dict, table_rows: int | None = None):
    """Validate the snapshot with GX, as one suite result: one column group at a time, each
    frame holding only the columns its expectations read. Table-level expectations (row
    count, columns) see `table_rows` rows: the whole table's count for a change snapshot."""
    table_rows = parquet.metadata.num_rows if table_rows is None else table_rows
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep task logs readable
    results, meta = [], None
    source = context.data_sources.add_pandas(name="snapshot")
    batches = source.add_dataframe_asset(name="snapshot").add_batch_definition_whole_dataframe(
        "snapshot"
    )
    gc.freeze()  # what exists now is never garbage: the collections below skip it
    try:
        for columns, expectations in group_by_columns(suite).items():
            frame = column_frame(parquet, columns) if columns else shape_frame(parquet, table_rows)
            part = validate_frame(batches, expectations, frame, parameters)
            del frame
            drop_batches(source)
            gc.collect()  # GX's objects form cycles that hold the frame until a collection
            results += part.results
            meta = meta or part.meta
    finally:
        gc.unfreeze()
        context.data_sources.delete("snapshot")
    statistics = calc_validation_statistics(results)._asdict()
    return ExpectationSuiteValidationResult(
        success=statistics.pop("success"),
        results=results,
        suite_name=suite.name,
        suite_parameters=parameters,
        statistics=statistics,
        meta=meta,
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
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_VALUES},
        expectation_parameters=parameters,
    )
    result.meta.pop("batch_spec", None)
    for r in result.results:
        sample_nulls_as_none(r.result or {})
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
