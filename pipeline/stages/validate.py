"""Validate snapshots with Great Expectations 1.x suites from `expectations/<job>/<kind>.json`.

Each expectation's `meta.severity` is `critical` (default: the run stops, nothing is written)
or `warning` (recorded and logged, the run goes on). Every validation is stored in
scoring.validation_results with the full result written beside the snapshot.
"""

import gc
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import alerts
from pipeline.config import expectations_dir
from pipeline.contracts import Context, Manifest, Validation, plain_json
from pipeline.errors import DataValidationError, PipelineError
from pipeline.spec import JobSpec
from pipeline.stages.snapshot import open_snapshot
from pipeline.store import db
from pipeline.store.records import upsert
from pipeline.store.storage import DataRoot, run_folder

log = logging.getLogger(__name__)

SAMPLE_VALUES = 5
# Up to this many cells (rows x columns) a snapshot is validated in one GX pass: about 0.5 GiB
# at most, and faster than one pass per column group, whose fixed cost dominates small tables.
ONE_PASS_CELLS = 10_000_000
SEVERITIES = ("critical", "warning")

# Great Expectations' INFO bookkeeping, by logger and message start: on import, one line per
# public-API function it does not register (about 214 lines per task); while an ephemeral
# context is built, its re-registered metrics, docs folder and (empty) data source list.
# Only these records are dropped; everything else GX logs, and all its warnings, stay.
GX_CHATTER = {
    "great_expectations._docs_decorators": ("Skipping registering function ",),
    "great_expectations.expectations.registry": ("Multiple declarations of ",),
    "great_expectations.data_context.types.base": ("Created temporary directory ",),
    "great_expectations.datasource.fluent.config": ("Loading 'datasources' ->",),
}


def not_gx_chatter(record: logging.LogRecord) -> bool:
    """A logging filter: False for the `GX_CHATTER` records, logged at INFO or below."""
    prefixes = GX_CHATTER.get(record.name, ())
    return record.levelno > logging.INFO or not str(record.msg).startswith(prefixes)


def quiet_gx() -> None:
    """Install `not_gx_chatter` on GX's loggers; before GX is imported, to catch its import."""
    for name in GX_CHATTER:
        logging.getLogger(name).addFilter(not_gx_chatter)  # adding it again is a no-op


quiet_gx()  # the package imports GX only inside this module's functions, so after this


def suite_path(job: str, kind: str) -> Path:
    return expectations_dir() / job / f"{kind}.json"


def read_suite(job: str, kind: str) -> dict:
    """A job's suite file for one snapshot kind, as JSON, checked so that GX will accept it."""
    path = suite_path(job, kind)
    if not path.exists():
        raise PipelineError(
            f"job {job}: no {kind} suite at {path}. Write a starter suite from the current data "
            f"with `python -m pipeline suggest-expectations {job}`, review it and commit it"
        )
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path}: not valid JSON: {exc}") from None
    raw["name"] = raw.get("name") or f"{job}.{kind}"
    build_suite(raw, str(path))
    return raw


def build_suite(raw: dict, where: str):
    """The GX ExpectationSuite of a suite's JSON; every expectation must parse."""
    import great_expectations as gx

    expectations = raw.get("expectations") or []
    for i, exp in enumerate(expectations):
        severity = (exp.get("meta") or {}).get("severity", "critical")
        if severity not in SEVERITIES:
            raise PipelineError(
                f"{where}: expectations[{i}].meta.severity: {severity!r} must be one of "
                f"{SEVERITIES}"
            )
    suite = gx.ExpectationSuite(name=raw["name"], expectations=expectations, meta=raw.get("meta"))
    if len(suite.expectations) != len(expectations):
        raise PipelineError(
            f"{where}: {len(expectations) - len(suite.expectations)} expectation(s) could not be "
            "parsed by Great Expectations (check each 'type' and its 'kwargs')"
        )
    return suite


def suite_parameters(url: str, manifest: Manifest) -> dict:
    """Values for `$PARAMETER` references: the as_of and the previous snapshot's row count."""
    row = db.fetch_one(
        url,
        "SELECT row_count FROM scoring.snapshots WHERE job = %s AND kind = %s AND as_of < %s"
        " ORDER BY as_of DESC LIMIT 1",
        (manifest.job, manifest.kind, manifest.as_of),
    )
    previous = row["row_count"] if row else None
    return {
        "now": datetime.now(UTC),
        "as_of": manifest.as_of,
        "previous_row_count": previous,
        # a table that shrank to under half or grew past 3x since the last snapshot is an incident
        "min_row_count": max(1, previous // 2) if previous else 1,
        "max_row_count": previous * 3 if previous else None,
    }


def validate(ctx: Context, manifest: Manifest) -> Validation:
    """Validate a snapshot with the suite the run froze for its kind."""
    raw = ctx.run.suites[manifest.kind]
    where = f"the {manifest.kind} suite of run {ctx.run.run_id}"
    summary = validate_snapshot(
        ctx.url, ctx.spec, manifest, ctx.run.run_id, build_suite(raw, where)
    )
    warnings = [f["message"] for f in summary.failures if f["severity"] == "warning"]
    if warnings:
        title = f"{len(warnings)} validation warning(s) in the {manifest.kind} snapshot"
        alerts.send_for_run(ctx.spec, ctx.run.run_id, "validation_warning", title, warnings)
    return summary


def validate_snapshot(url: str, spec: JobSpec, manifest: Manifest, run_id: str, suite):
    """Run `suite` on a snapshot; raise DataValidationError if a critical expectation failed."""
    started = time.perf_counter()
    kind = manifest.kind
    with open_snapshot(manifest) as parquet:
        result = run_suite(suite, parquet, suite_parameters(url, manifest))
        nan = nan_failures(spec, parquet)
        no_features = all_null_features_failure(spec, manifest, parquet)
    failures = [describe_failure(r) for r in result.results if not r.success]
    failures += future_rows_failure(spec, manifest) + nan + no_features
    critical = [f for f in failures if f["severity"] == "critical"]
    warnings = [f for f in failures if f["severity"] == "warning"]
    root = DataRoot()
    snapshot_folder = root.path_of(manifest.uri).rsplit("/", 1)[0]
    result_path = f"{snapshot_folder}/validation/{run_folder(run_id)}/{kind}.json"
    root.write_json(result_path, result.to_json_dict())
    docs_path = result_path.removesuffix(".json") + ".html"
    root.write_bytes(docs_path, render_data_docs(result).encode())
    summary = Validation(
        suite=suite.name,
        kind=kind,
        success=not critical,
        evaluated=len(result.results),
        critical_failed=len(critical),
        warnings_failed=len(warnings),
        failures=failures,
        result_uri=root.uri(result_path),
        docs_uri=root.uri(docs_path),
        snapshot_sha256=manifest.sha256,
        seconds=round(time.perf_counter() - started, 3),
    )
    record_validation(url, spec.name, run_id, summary, result.statistics)
    log.info(
        "validation %s: full result at %s, Data Docs at %s",
        suite.name,
        summary.result_uri,
        summary.docs_uri,
    )
    for warning in warnings:
        log.warning("VALIDATION WARNING %s: %s", suite.name, warning["message"])
    if critical:
        raise DataValidationError(failure_message(spec, manifest, summary, critical))
    log.info(
        "validation %s passed: %d expectations, %d warning(s)",
        suite.name,
        summary.evaluated,
        len(warnings),
    )
    return summary


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
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.validator.validation_statistics import calc_validation_statistics

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep task logs readable
    results, meta = [], None
    names = tuple(parquet.schema_arrow.names)
    if parquet.metadata.num_rows * len(names) <= one_pass_cells:
        groups = {names: list(suite.expectations)}
    else:
        groups = group_by_columns(suite)
    for i, (columns, expectations) in enumerate(groups.items()):
        frame = column_frame(parquet, columns) if columns else shape_frame(parquet)
        part = validate_frame(context, f"group-{i}", expectations, frame, parameters)
        del frame
        gc.collect()  # GX's objects form cycles that hold the frame until a full collection
        results += part.results
        meta = meta or part.meta
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
    import great_expectations as gx

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


def render_data_docs(result) -> str:
    """GX's own Data Docs page (HTML) for one validation result.

    GX formats an observed value through its repr, and NumPy 2 writes a float64 as
    `np.float64(0.2)`, which GX cannot parse: that cell would be left out and an ERROR logged
    (e.g. expect_column_mean_to_be_between on a boolean column). NumPy's 1.25 reprs are plain.

    GX's page loads Bootstrap, Font Awesome, jQuery and Vega from CDNs, so offline it would
    show as bare HTML: `offline_data_docs` inlines the Bootstrap CSS it links and drops every
    external reference and script (the "how to" walkthrough is not rendered), so the page
    opens from a file, a bucket or the UI's "Scoring files" with no network.

    GX writes the unexpected values it samples into its tables as raw HTML (only template
    parameters are escaped): a text value `<b>x</b>` would be markup. They are escaped here, on
    a copy of the result; the page's Content-Security-Policy forbids scripts and loads anyway.
    """
    import copy
    import html

    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    from pipeline.ops.data_docs import offline_data_docs

    def escaped(value):
        return html.escape(value, quote=False) if isinstance(value, str) else value

    result = copy.deepcopy(result)
    for each in result.results:
        details = each.result or {}
        for key in ("partial_unexpected_list", "unexpected_list"):
            if details.get(key):
                details[key] = [escaped(v) for v in details[key]]
        for count in details.get("partial_unexpected_counts") or []:
            count["value"] = escaped(count.get("value"))
    with np.printoptions(legacy="1.25"):
        document = ValidationResultsPageRenderer().render(result)
        return offline_data_docs(DefaultJinjaPageView().render(document, show_how_to_buttons=False))


def describe_failure(result) -> dict:
    """One failed expectation as a dict a person can read: what, where, observed, samples."""
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "result_format")}
    details = result.result or {}
    observed = details.get("observed_value")
    samples = details.get("partial_unexpected_list") or []
    exception = (
        (result.exception_info or {}).get("exception_message") if result.exception_info else None
    )
    parts = [config.type]
    if "column" in kwargs:
        parts.append(f"column {kwargs['column']!r}")
    if observed is not None:
        parts.append(f"observed {observed!r}")
    if details.get("unexpected_count"):
        parts.append(
            f"{details['unexpected_count']} unexpected"
            f" ({details.get('unexpected_percent', 0):.2f}%)"
        )
    if samples:
        parts.append(f"e.g. {[short(v) for v in samples[:SAMPLE_VALUES]]}")
    if exception:
        parts.append(f"error: {exception}")
    expected = {k: v for k, v in kwargs.items() if k != "column"}
    if expected:
        parts.append(f"expected {expected}")
    meta = config.meta or {}
    return {
        "expectation": config.type,
        "column": kwargs.get("column"),
        "severity": meta.get("severity", "critical"),
        "observed": observed,
        "unexpected_count": details.get("unexpected_count"),
        "samples": [short(v) for v in samples[:SAMPLE_VALUES]],
        "guards": meta.get("notes"),
        "message": "; ".join(parts),
    }


def future_rows_failure(spec: JobSpec, manifest: Manifest) -> list[dict]:
    """A warning for rows dated in the future: the cut-off left them out, a person should know."""
    future = manifest.future_rows or {}
    if not future.get("count"):
        return []
    column = spec.source.timestamp
    return [
        {
            "expectation": "timestamps_not_in_the_future",
            "column": column,
            "severity": "warning",
            "observed": future["count"],
            "unexpected_count": future["count"],
            "samples": future["sample_keys"],
            "guards": "future-dated rows mean a broken clock or load; the snapshot left them out",
            "message": f"timestamps_not_in_the_future; column {column!r}; {future['count']} rows "
            f"dated after the snapshot was taken, e.g. keys {future['sample_keys']}",
        }
    ]


def nan_failures(spec: JobSpec, parquet) -> list[dict]:
    """A warning per numeric feature holding NaN: not a missing value but a broken computation.

    pandas (and so GX) cannot tell NaN from NULL; Arrow can, so this check reads the snapshot,
    one column at a time.
    """
    out = []
    schema = parquet.schema_arrow
    for column in spec.features.numeric:
        if column not in schema.names or not pa.types.is_floating(schema.field(column).type):
            continue
        values = parquet.read(columns=[column]).column(column)
        count = pc.sum(pc.is_nan(values)).as_py() or 0
        if count:
            out.append(
                {
                    "expectation": "numeric_values_are_numbers",
                    "column": column,
                    "severity": "warning",
                    "observed": count,
                    "unexpected_count": count,
                    "samples": ["NaN"],
                    "guards": "NaN comes from a division by zero or a failed cast upstream; the "
                    "model imputes it like a missing value",
                    "message": f"numeric_values_are_numbers; column {column!r}; {count} NaN values",
                }
            )
    return out


def all_null_features_failure(spec: JobSpec, manifest: Manifest, parquet) -> list[dict]:
    """Rows whose features are all NULL: the model sees nothing of them and scores them all the
    same. Severity `validation.all_null_features` of the spec (warning by default).

    Counted with Arrow, one feature column at a time (a boolean mask of the rows still all
    NULL is all that is kept); a feature without any NULL in the file's statistics means no
    such row, without reading anything.
    """
    features = [c for c in spec.features.all if c in parquet.schema_arrow.names]
    rows = parquet.metadata.num_rows
    if not rows or len(features) < len(spec.features.all):
        return []  # a missing feature column is for its suite's expect_column_to_exist to report
    if any(null_count(parquet, column) == 0 for column in features):
        return []
    mask = None
    for column in features:
        nulls = pc.is_null(parquet.read(columns=[column]).column(column))
        mask = nulls if mask is None else pc.and_(mask, nulls)
        if not pc.any(mask).as_py():
            return []
    count = pc.sum(mask).as_py() or 0
    if not count:
        return []
    key = spec.source.key
    keys = pc.filter(parquet.read(columns=[key]).column(key), mask)
    samples = [plain_json(k) for k in keys.slice(0, SAMPLE_VALUES).to_pylist()]
    share = count / rows
    return [
        {
            "expectation": "features_not_all_null",
            "column": None,
            "severity": spec.validation.all_null_features,
            "observed": count,
            "unexpected_count": count,
            "samples": samples,
            "guards": "a row with every feature NULL gives the model nothing to go on: it gets "
            "the same score as every other such row (a broken join or load upstream)",
            "message": f"features_not_all_null; job {spec.name}: {count} of {rows} "
            f"{manifest.kind} rows ({share:.2%}) have every feature NULL "
            f"({', '.join(spec.features.all)}), e.g. keys {samples}",
        }
    ]


def null_count(parquet, column: str) -> int | None:
    """NULLs in a column by the file's row-group statistics; None when a group has none."""
    index = parquet.schema_arrow.get_field_index(column)
    total = 0
    for group in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_null_count:
            return None
        total += stats.null_count
    return total


def short(value, limit: int = 60):
    text = value if isinstance(value, str) else None
    if text is not None and len(text) > limit:
        return text[:limit] + f"...({len(text)} chars)"
    return value


def failure_message(spec: JobSpec, manifest: Manifest, summary: Validation, critical) -> str:
    lines = [
        f"job {spec.name}: {manifest.kind} snapshot as of {manifest.as_of} "
        f"(sha256 {manifest.sha256[:12]}, {manifest.row_count} rows) failed "
        f"{len(critical)} critical expectation(s) of suite {summary.suite}; "
        "nothing was trained, scored or published:",
    ]
    lines += [
        f"  - {f['message']}" + (f"  [guards: {f['guards']}]" if f["guards"] else "")
        for f in critical
    ]
    lines.append(f"full result: {summary.result_uri}")
    lines.append(f"Data Docs: {summary.docs_uri}")
    return "\n".join(lines)


def record_validation(url: str, job: str, run_id: str, summary: Validation, statistics) -> None:
    with db.transaction(url) as conn, conn.cursor() as cur:
        upsert(
            cur,
            "validation_results",
            {
                "job": job,
                "run_id": run_id,
                "suite": summary.suite,
                "snapshot_sha256": summary.snapshot_sha256,
                "success": summary.success,
                "critical_failed": summary.critical_failed,
                "warnings_failed": summary.warnings_failed,
                "statistics": dict(statistics),
                "failures": summary.failures,
                "result_uri": summary.result_uri,
                "docs_uri": summary.docs_uri,
                "validated_at": datetime.now(UTC),
            },
            key=("job", "run_id", "suite"),
        )
