"""Publish a run: its predictions and its scoring_runs row in one transaction.

Analysts read `scoring.<job>_latest`, which shows the last published run; until this
transaction commits they keep seeing the previous one, never a half-written run. Re-publishing
the same run replaces its rows, so nothing is ever duplicated. Then retention, the run's
report, and its summary: the last lines of the run's last task log.
"""

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pipeline.contracts import (
    Context,
    DriftSummary,
    Manifest,
    Published,
    PublishRecord,
    Run,
    ScoredPartition,
    ServingModel,
    Validation,
)
from pipeline.datafiles.predictions import left_key_chunks, prediction_chunks
from pipeline.progress import Progress
from pipeline.provenance import code_version
from pipeline.reports.run_page import report_run
from pipeline.reports.summary import log_run_summary
from pipeline.spec import JobSpec
from pipeline.warehouse.jobs import ensure_job_objects
from pipeline.warehouse.predictions import delete_run_predictions, publish_predictions
from pipeline.warehouse.runs import prunable_runs, record_timing

log = logging.getLogger(__name__)


def publish(
    ctx: Context,
    training: Manifest | None,
    scoring: Manifest,
    training_check: Validation | None,
    scoring_check: Validation,
    model: ServingModel,
    parts: list[ScoredPartition],
    drift: DriftSummary,
) -> Published:
    """Publish the scored partitions with the record of what made them (monitoring, `drift`,
    has let them through); then the run's summary, the last lines of the run's last task log."""
    checks = [c for c in (training_check, scoring_check) if c is not None]
    record = PublishRecord(
        model_version=model.version,
        scoring_snapshot_sha256=scoring.sha256,
        training_snapshot_sha256=training.sha256 if training and model.trained_now else None,
        validation=[
            {
                "suite": c.suite,
                "success": c.success,
                "warnings_failed": c.warnings_failed,
                "result_uri": c.result_uri,
            }
            for c in checks
        ],
        scoring_snapshot_id=scoring.snapshot_id,
        training_snapshot_id=training.snapshot_id if training else None,
    )
    published = publish_run(ctx.url, ctx.spec, ctx.run, parts, record, scoring.change, model.shadow)
    record_timing(ctx.url, ctx.spec.name, ctx.run.run_id, "publish", published.seconds)
    prune_predictions(ctx.url, ctx.spec)
    report_run(ctx.url, ctx.spec.name, ctx.run.run_id, ctx.spec)
    log_run_summary(ctx.url, ctx.spec, ctx.run.run_id)
    return published


def publish_run(
    url: str,
    spec: JobSpec,
    run: Run,
    parts: list[ScoredPartition],
    record: PublishRecord,
    change: dict | None = None,
    shadow: dict | None = None,
) -> Published:
    """Replace this run's predictions, move `<job>_latest` to them (an incremental run's
    `change`: with the keys that left), mark the run published; all or nothing. The scores of
    a challenger in `shadow` go to `<job>_shadow` in the same transaction."""
    started = time.perf_counter()
    scored_at = datetime.now(UTC)
    total = sum(p.rows for p in parts)
    progress = Progress(log, f"publish {spec.name}", total)
    ensure_job_objects(url, spec)
    constants = {
        "run_id": run.run_id,
        "model_version": record.model_version,
        "as_of": run.as_of,
        "scored_at": scored_at.isoformat(),
    }
    chunks = prediction_chunks(parts, constants, progress)
    left = left_key_chunks(change) if change else None
    shadowed = None
    if shadow:
        scored = [replace(p, uri=p.shadow_uri) for p in parts if p.shadow_uri]
        quiet = Progress(log, f"publish {spec.name} shadow v{shadow['version']}", total)
        shadowed = prediction_chunks(
            scored, {**constants, "model_version": shadow["version"]}, quiet
        )
    published = publish_predictions(
        url, spec, run, chunks, record, total, scored_at, code_version(), left, shadowed
    )
    seconds = progress.finish()
    log.info("published run %s of %s: %d rows in %.1f s", run.run_id, spec.name, total, seconds)
    return Published(
        rows=total,
        published_at=published.isoformat(),
        seconds=round(time.perf_counter() - started, 3),
    )


def prune_predictions(url: str, spec: JobSpec, now: datetime | None = None) -> list[str]:
    """Delete the prediction rows of published runs the job's `retention` lets go, one run per
    transaction; returns their run ids. Row deletes take no lock a reader waits on, and the
    run `<job>_latest` shows is never among them."""
    keep = spec.retention
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep.keep_days) if keep.keep_days else None
    doomed = prunable_runs(url, spec.name, keep.keep_runs, cutoff)
    for run_id in doomed:
        rows = delete_run_predictions(url, spec, run_id)
        log.info(
            "pruned %d predictions of run %s of %s (retention %s)", rows, run_id, spec.name, keep
        )
    return doomed
