"""Monitoring, before publishing: how far the scored data moved from what the champion learned
on (`pipeline.monitoring.drift`), and how right earlier runs turned out once their labels
arrived (`pipeline.monitoring.performance`). With `monitoring.on_alert: fail` an alert stops
the run and analysts keep the previous run.
"""

import time

from pipeline import alerts
from pipeline.contracts import Context, DriftSummary, Manifest, ScoredPartition, ServingModel
from pipeline.errors import DataValidationError
from pipeline.logic.drift import SCORE, Finding
from pipeline.monitoring.drift import measure_drift
from pipeline.monitoring.performance import measure_performance
from pipeline.spec import JobSpec
from pipeline.warehouse.runs import set_field


def monitor(
    ctx: Context, scoring: Manifest, model: ServingModel, parts: list[ScoredPartition]
) -> DriftSummary:
    """This run's drift and the realised performance of earlier runs; stops the run before it
    publishes when an alert fires and the job says `monitoring.on_alert: fail`."""
    spec, run_id = ctx.spec, ctx.run.run_id
    started = time.perf_counter()
    findings = measure_drift(ctx.url, spec, scoring, model, parts, run_id)
    performance_alerts = measure_performance(ctx.url, spec)
    summary = DriftSummary(
        features=len({f.feature for f in findings} - {SCORE}),
        alerts=sorted({f.feature for f in findings if f.level == "alert"}),
        watch=sorted({f.feature for f in findings if f.level == "watch"}),
        performance_alerts=performance_alerts,
        action="fail" if spec.monitoring.on_alert == "fail" else "record",
        seconds=round(time.perf_counter() - started, 3),
    )
    record_monitoring(ctx.url, spec.name, run_id, summary)
    send_alerts(spec, run_id, findings, performance_alerts)
    if spec.monitoring.on_alert == "fail" and (summary.alerts or performance_alerts):
        raise DataValidationError(
            f"job {spec.name}: monitoring.on_alert is fail and monitoring raised alerts "
            f"(drift: {summary.alerts or 'none'}; performance: {performance_alerts or 'none'}); "
            "nothing was published, analysts keep the previous run. See scoring.drift_reports "
            f"and scoring.model_performance for run {run_id}"
        )
    return summary


def send_alerts(spec: JobSpec, run_id: str, findings: list[Finding], performance: list[str]):
    """A drift alert and a performance alert to the job's `alerts:` targets, when there are."""
    drifted = [f for f in findings if f.level == "alert"]
    if drifted:
        features = ", ".join(sorted({f.feature for f in drifted}))
        lines = [f"{f.feature}: {f.statistic} {f.value:.3f} > {f.threshold}" for f in drifted]
        alerts.send_for_run(spec, run_id, "drift", f"drift on {features}", lines)
    if performance:
        title = f"realised performance dropped for {len(performance)} run(s)"
        alerts.send_for_run(spec, run_id, "performance", title, performance)


def record_monitoring(url: str, job: str, run_id: str, summary: DriftSummary) -> None:
    """What monitoring found, on the run: `retrain.policy: on_drift` reads it on the next run."""
    found = {
        "drift_alerts": summary.alerts,
        "drift_watch": summary.watch,
        "performance_alerts": summary.performance_alerts,
        "action": summary.action,
    }
    set_field(url, job, run_id, "monitoring", found)
