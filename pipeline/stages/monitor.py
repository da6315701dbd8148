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
from pipeline.monitoring.drift import Drift, measure_drift
from pipeline.monitoring.performance import measure_performance
from pipeline.spec import JobSpec
from pipeline.warehouse.alerts import AlertRow, record_alerts
from pipeline.warehouse.runs import set_field


def monitor(
    ctx: Context, scoring: Manifest, model: ServingModel, parts: list[ScoredPartition]
) -> DriftSummary:
    """This run's drift and the realised performance of earlier runs, their alerts stored once
    and sent; stops the run before it publishes when an alert fires and the job says
    `monitoring.on_alert: fail`."""
    spec, run = ctx.spec, ctx.run
    started = time.perf_counter()
    drift = measure_drift(ctx.url, spec, scoring, model, parts, run.as_of, run.run_id)
    drift_alerts = [drift_alert(f, drift) for f in drift.alerts] if drift else []
    record_alerts(ctx.url, spec.name, run.run_id, "drift", drift_alerts)
    performance = measure_performance(ctx.url, spec, run.run_id)
    findings = drift.findings if drift else []
    summary = DriftSummary(
        features=len({f.feature for f in findings} - {SCORE}),
        alerts=sorted({a.subject for a in drift_alerts}),
        watch=sorted({f.feature for f in findings if f.level == "watch"}),
        performance_alerts=[a.message for a in performance],
        action="fail" if spec.monitoring.on_alert == "fail" else "record",
        seconds=round(time.perf_counter() - started, 3),
        population=drift.population if drift else None,
        population_rows=drift.rows if drift else None,
    )
    recorded = {**summary.to_json(), "scores": drift.scores if drift else None}
    set_field(ctx.url, spec.name, run.run_id, "monitoring", recorded)
    send_alerts(spec, run.run_id, drift, drift_alerts, performance)
    if spec.monitoring.on_alert == "fail" and (drift_alerts or performance):
        raise DataValidationError(
            f"job {spec.name}: monitoring.on_alert is fail and monitoring raised alerts "
            f"(drift: {summary.alerts or 'none'}; performance: "
            f"{summary.performance_alerts or 'none'}); nothing was published, analysts keep "
            f"the previous run. See scoring.{spec.alerts_view} for run {run.run_id}"
        )
    return summary


def drift_alert(finding: Finding, drift: Drift) -> AlertRow:
    """The alert row of a drift finding in alert, saying which rows it is about."""
    return AlertRow(
        kind="drift",
        subject=finding.feature,
        statistic=finding.statistic,
        value=finding.value,
        threshold=finding.threshold,
        population=drift.population,
        message=f"{finding.feature}: {finding.statistic} {finding.value:.3f} > "
        f"{finding.threshold}"
        + (f" (rows new since {drift.since})" if drift.population == "new" else ""),
    )


def send_alerts(
    spec: JobSpec,
    run_id: str,
    drift: Drift | None,
    drifted: list[AlertRow],
    performance: list[AlertRow],
) -> None:
    """The run's drift alert and performance alert to the job's `alerts:` targets, built from
    the stored alert rows, when there are any."""
    if drifted and drift:
        features = ", ".join(sorted({a.subject for a in drifted}))
        lines = [a.message for a in drifted]
        alerts.send_for_run(spec, run_id, "drift", f"drift on {features}", lines)
    if performance:
        title = f"realised performance dropped for {len(performance)} run(s)"
        alerts.send_for_run(spec, run_id, "performance", title, [a.message for a in performance])
