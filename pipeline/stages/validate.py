"""Validate a run's snapshots with the Great Expectations suites it froze.

A failed critical expectation stops the run (DataValidationError) before anything is trained or
published; warnings are recorded, logged and sent. Every validation is stored in
scoring.validation_results with the full result and its Data Docs page beside the snapshot.
"""

import logging
import time
from datetime import UTC, datetime

from pipeline import alerts
from pipeline.contracts import Context, Manifest, Validation
from pipeline.datafiles.layout import validation_path
from pipeline.datafiles.root import DataRoot
from pipeline.datafiles.snapshots import open_snapshot
from pipeline.errors import DataValidationError
from pipeline.reports.data_docs import render_data_docs
from pipeline.spec import JobSpec
from pipeline.validation.findings import (
    all_null_features_failure,
    describe_failure,
    failure_message,
    future_rows_failure,
    nan_failures,
)
from pipeline.validation.gx import conceal_samples, run_suite
from pipeline.validation.suites import build_suite
from pipeline.warehouse.alerts import AlertRow, record_alerts
from pipeline.warehouse.snapshots import previous_row_count
from pipeline.warehouse.validations import record_validation

log = logging.getLogger(__name__)


def suite_parameters(url: str, manifest: Manifest) -> dict:
    """Values for `$PARAMETER` references: the as_of and the previous snapshot's row count."""
    previous = previous_row_count(url, manifest.job, manifest.kind, manifest.as_of)
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
    warnings = [
        AlertRow(
            kind="validation_warning",
            subject=summary.suite,
            statistic=f["expectation"],
            value=f["unexpected_count"],
            message=f["message"],
        )
        for f in summary.failures
        if f["severity"] == "warning"
    ]
    kind = "validation_warning"
    record_alerts(ctx.url, ctx.spec.name, ctx.run.run_id, kind, warnings, subject=summary.suite)
    if warnings:
        title = f"{len(warnings)} validation warning(s) in the {manifest.kind} snapshot"
        lines = [w.message for w in warnings]
        alerts.send_for_run(ctx.spec, ctx.run.run_id, kind, title, lines)
    return summary


def validate_snapshot(url: str, spec: JobSpec, manifest: Manifest, run_id: str, suite):
    """Run `suite` on a snapshot; raise DataValidationError if a critical expectation failed."""
    started = time.perf_counter()
    kind = manifest.kind
    with open_snapshot(manifest) as parquet:
        result = run_suite(
            suite,
            parquet,
            suite_parameters(url, manifest),
            manifest.table_rows,
            key=spec.source.key,
            chunk_rows=spec.validation.chunk_rows,
        )
        conceal_samples(result, spec.personal)
        nan = nan_failures(spec, parquet)
        no_features = all_null_features_failure(spec, manifest, parquet)
    failures = [describe_failure(r) for r in result.results if not r.success]
    failures += future_rows_failure(spec, manifest) + nan + no_features
    critical = [f for f in failures if f["severity"] == "critical"]
    warnings = [f for f in failures if f["severity"] == "warning"]
    root = DataRoot()
    result_path = validation_path(root, manifest.uri, run_id, kind)
    root.write_json(result_path, result.to_json_dict())
    docs_path = result_path.removesuffix(".json") + ".html"
    root.write_bytes(docs_path, render_data_docs(result, manifest, run_id).encode())
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
