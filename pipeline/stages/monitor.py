"""Drift: how far each feature of the scored data moved from the data the champion learned on.

Population stability index (PSI) per feature: numbers are binned at the training deciles,
categories and flags by value, missing values are a bin of their own. A PSI above the job's
threshold is an alert: recorded in scoring.drift_reports and logged, the run is not stopped.
"""

import logging
import math

import numpy as np

from pipeline.contracts import Context, DriftSummary, Manifest, ServingModel, SnapshotRef
from pipeline.spec import JobSpec
from pipeline.stages.snapshot import open_snapshot
from pipeline.store import db

log = logging.getLogger(__name__)

BINS = 10
EPSILON = 1e-6


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two histograms of counts."""
    p = expected / max(expected.sum(), 1) + EPSILON
    q = actual / max(actual.sum(), 1) + EPSILON
    return float(np.sum((q - p) * np.log(q / p)))


def numeric_histograms(train, scored) -> tuple[np.ndarray, np.ndarray]:
    """Counts per training-decile bin, plus one bin for missing values."""
    train = np.asarray(train, dtype="float64")
    scored = np.asarray(scored, dtype="float64")
    present = train[np.isfinite(train)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1))) if present.size else []

    def counts(values):
        finite = np.isfinite(values)
        bins = np.searchsorted(edges[1:-1], values[finite])
        inner = np.bincount(bins, minlength=max(len(edges) - 1, 1))
        return np.append(inner, (~finite).sum())

    return counts(train), counts(scored)


def categorical_histograms(train, scored) -> tuple[np.ndarray, np.ndarray]:
    """Counts per value seen in either side, missing values included as a value."""
    train = np.asarray(train, dtype=object)
    scored = np.asarray(scored, dtype=object)
    values = sorted({str(v) for v in train} | {str(v) for v in scored})
    index = {v: i for i, v in enumerate(values)}

    def counts(column):
        return np.bincount([index[str(v)] for v in column], minlength=len(values))

    return counts(train), counts(scored)


def read_column(parquet, column: str) -> np.ndarray:
    return parquet.read(columns=[column]).column(0).to_numpy(zero_copy_only=False)


def monitor(ctx: Context, scoring: Manifest, model: ServingModel, published) -> DriftSummary:
    """Drift of this run's published data against the serving model's training data; then the
    run's summary, the last lines of the run's last task log."""
    from pipeline.ops.report import log_run_summary

    drift = measure_drift(ctx.url, ctx.spec, scoring, model, ctx.run.run_id)
    log_run_summary(ctx.url, ctx.spec, ctx.run.run_id)
    return drift


def measure_drift(url: str, spec: JobSpec, scoring: Manifest, model: ServingModel, run_id: str):
    """PSI of every feature between the serving model's training snapshot and this run's data."""
    row = db.fetch_one(
        url,
        "SELECT uri FROM scoring.snapshots WHERE sha256 = %s LIMIT 1",
        (model.training_snapshot_sha256,),
    )
    if row is None:
        log.warning("drift skipped: the training snapshot of model v%d is gone", model.version)
        return DriftSummary(features=0, alerts=[])
    threshold = spec.monitoring.psi_threshold
    report = []
    training = SnapshotRef(uri=row["uri"], sha256=model.training_snapshot_sha256)
    with open_snapshot(training) as trained_on, open_snapshot(scoring) as scored_on:
        for column in spec.features.all:
            histograms = (
                numeric_histograms if column in spec.features.numeric else categorical_histograms
            )
            train, scored = read_column(trained_on, column), read_column(scored_on, column)
            value = psi(*histograms(train, scored))
            report.append((column, value, math.isfinite(value) and value > threshold))
    record_drift(url, spec.name, run_id, report, threshold)
    alerts = [column for column, _, alert in report if alert]
    for column, value, alert in report:
        if alert:
            log.warning("DRIFT ALERT %s.%s: PSI %.3f > %.2f", spec.name, column, value, threshold)
    log.info("drift: %d features, %d alert(s)", len(report), len(alerts))
    return DriftSummary(features=len(report), alerts=alerts)


def record_drift(url: str, job: str, run_id: str, report: list, threshold: float) -> None:
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "DELETE FROM scoring.drift_reports WHERE job = %s AND run_id = %s", (job, run_id)
        )
        cur.executemany(
            "INSERT INTO scoring.drift_reports"
            " (job, run_id, feature, statistic, value, threshold, alert)"
            " VALUES (%s, %s, %s, 'psi', %s, %s, %s)",
            [(job, run_id, column, value, threshold, alert) for column, value, alert in report],
        )
