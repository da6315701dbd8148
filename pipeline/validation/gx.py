"""Great Expectations 1.x run on a snapshot: in one pass, or one column group at a time so
that memory follows the widest group of columns, not the table."""

import gc

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.execution_engine import pandas_execution_engine
from great_expectations.validator.validation_statistics import calc_validation_statistics

# Up to this many cells (rows x columns) a snapshot is validated in one GX pass: about 0.5 GiB
# at most, and faster than one pass per column group, whose fixed cost dominates small tables.
ONE_PASS_CELLS = 10_000_000
SAMPLE_VALUES = 5  # unexpected values GX samples per expectation

# GX fingerprints every frame under this many bytes (an md5 of pandas' hash of every row) for
# a batch marker nothing here reads: about a sixth of a validation's time. No expectation uses
# it, so no frame is hashed.
pandas_execution_engine.HASH_THRESHOLD = 0


def columns_read(expectation) -> tuple[str, ...]:
    """The columns an expectation reads; none for table-level ones (row count, column set)."""
    kwargs = expectation.configuration.kwargs
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

    Text comes as categoricals: a few bytes per row instead of a Python string each.
    """
    present = [c for c in columns if c in parquet.schema_arrow.names]
    return parquet.read(columns=present).to_pandas(strings_to_categorical=True)


def shape_frame(parquet) -> pd.DataFrame:
    """Every column name and the row count: all table-level expectations read.

    The values are placeholders (False, one byte each), which GX hashes quickly.
    """
    rows = parquet.metadata.num_rows
    return pd.DataFrame(
        np.zeros((rows, len(parquet.schema_arrow.names)), dtype=bool),
        columns=parquet.schema_arrow.names,
    )


def run_suite(suite, parquet, parameters: dict, one_pass_cells: int = ONE_PASS_CELLS):
    """Validate the snapshot with GX, as one suite result.

    A large snapshot is validated one column group at a time, each frame holding only the
    columns its expectations read, so peak memory follows the widest group, not the table.
    """
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep task logs readable
    results, meta = [], None
    names = tuple(parquet.schema_arrow.names)
    if parquet.metadata.num_rows * len(names) <= one_pass_cells:
        groups = {names: list(suite.expectations)}
    else:
        groups = group_by_columns(suite)
    gc.freeze()  # what exists now is never garbage: the collections below skip it
    try:
        for i, (columns, expectations) in enumerate(groups.items()):
            frame = column_frame(parquet, columns) if columns else shape_frame(parquet)
            part = validate_frame(context, f"group-{i}", expectations, frame, parameters)
            del frame
            gc.collect()  # GX's objects form cycles that hold the frame until a collection
            results += part.results
            meta = meta or part.meta
    finally:
        gc.unfreeze()
    statistics = calc_validation_statistics(results)._asdict()
    return ExpectationSuiteValidationResult(
        success=statistics.pop("success"),
        results=results,
        suite_name=suite.name,
        suite_parameters=parameters,
        statistics=statistics,
        meta=meta,
    )


def validate_frame(context, name: str, expectations: list, frame: pd.DataFrame, parameters):
    """GX's result for `expectations` on `frame`, through a data source used once.

    The data source is deleted afterwards, and the frame left out of the result's meta: GX
    would otherwise keep every batch it loaded.
    """
    batch = (
        context.data_sources.add_pandas(name=name)
        .add_dataframe_asset(name=name)
        .add_batch_definition_whole_dataframe(name)
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(
        gx.ExpectationSuite(
            name=name, expectations=[e.configuration.to_json_dict() for e in expectations]
        ),
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_VALUES},
        expectation_parameters=parameters,
    )
    context.data_sources.delete(name)
    result.meta.pop("batch_spec", None)
    return result
