"""Monitoring: how far the scored data moved from what the champion learned on, and how right
earlier predictions turned out once their labels arrived (`pipeline.stages.performance`).

Per feature: the population stability index (PSI; numbers binned at the training deciles,
categories and flags by value, NULL a bin of its own), the change of its NULL share, and a
second opinion by kind: the Kolmogorov-Smirnov statistic for numbers, the share of categories
the champion never saw for categories. The score itself: PSI of this run's scores against the
champion's scores on its own holdout. Each figure is `ok`, `watch` (PSI between `psi_watch` and
`psi_alert`) or `alert`, by the job's `monitoring:` thresholds, and stored in
scoring.drift_reports. Monitoring runs before publishing: with `monitoring.on_alert: fail` an
alert stops the run and analysts keep the previous run.
"""

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.contracts import (
    Context,
    DriftSummary,
    Manifest,
    ScoredPartition,
    ServingModel,
)
from pipeline.errors import DataValidationError
from pipeline.spec import JobSpec
from pipeline.stages.snapshot import (
    open_snapshot,
    read_snapshot,
    recorded_manifest,
    recorded_snapshot,
)
from pipeline.store import db
from pipeline.store.storage import DataRoot

log = logging.getLogger(__name__)

BINS = 10
EPSILON = 1e-6
KS_SAMPLE = 100_000  # values per side for the KS statistic: its error is then about 0.003
SCORE = "(score)"  # the drift_reports feature name of the score's own drift


@dataclass(frozen=True)
class Finding:
    """One statistic of one feature (or of the score) and its level."""

    feature: str
    statistic: str
    value: float
    threshold: float
    watch: float | None = None

    @property
    def level(self) -> str:
        if not math.isfinite(self.value):
            return "ok"
        if self.value > self.threshold:
            return "alert"
        return "watch" if self.watch is not None and self.value >= self.watch else "ok"


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two histograms of counts."""
    p = expected / max(expected.sum(), 1) + EPSILON
    q = actual / max(actual.sum(), 1) + EPSILON
    return float(np.sum((q - p) * np.log(q / p)))


def decile_edges(train) -> np.ndarray:
    """The distinct deciles of the training values (min and max included): the bin edges of
    `numeric_histograms`; a value on an edge falls in the lower bin."""
    train = np.asarray(train, dtype="float64")
    present = train[np.isfinite(train)]
    if not present.size:
        return np.array([])
    return np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1)))


def numeric_histograms(train, scored) -> tuple[np.ndarray, np.ndarray]:
    """Counts per training-decile bin, plus one bin for missing values."""
    train = np.asarray(train, dtype="float64")
    scored = np.asarray(scored, dtype="float64")
    edges = decile_edges(train)

    def counts(values):
        finite = np.isfinite(values)
        bins = np.searchsorted(edges[1:-1], values[finite])
        inner = np.bincount(bins, minlength=max(len(edges) - 1, 1))
        return np.append(inner, (~finite).sum())

    return counts(train), counts(scored)


def categorical_histograms(train, scored) -> tuple[np.ndarray, np.ndarray]:
    """Counts per value seen in either side (as text), missing values included as a value."""
    train = pd.Series(np.asarray(train, dtype=object)).map(str)  # None -> "None", as str() does
    scored = pd.Series(np.asarray(scored, dtype=object)).map(str)
    values = sorted(set(train.unique()) | set(scored.unique()))

    def counts(column):
        codes = pd.Categorical(column, categories=values).codes
        return np.bincount(codes, minlength=len(values))

    return counts(train), counts(scored)


def missing(values: np.ndarray) -> np.ndarray:
    """True where a column read by `read_column` holds NULL (None or NaN)."""
    return pd.isna(values)


def null_share(values: np.ndarray) -> float:
    return float(missing(values).mean()) if len(values) else 0.0


def ks_statistic(train: np.ndarray, scored: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic of the non-missing values (sampled, seeded)."""
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(0)
    sides = []
    for values in (train, scored):
        values = np.asarray(values, dtype="float64")
        values = values[np.isfinite(values)]
        if len(values) > KS_SAMPLE:
            values = rng.choice(values, KS_SAMPLE, replace=False)
        sides.append(values)
    if not all(len(side) for side in sides):
        return float("nan")
    return float(ks_2samp(*sides).statistic)


def unseen_share(train: np.ndarray, scored: np.ndarray) -> float:
    """The share of scored rows whose (non-missing) category never occurs in training."""
    if not len(scored):
        return 0.0
    known = pd.unique(pd.Series(train).dropna().astype(str))
    present = pd.Series(scored).dropna().astype(str)
    return float((~present.isin(known)).sum() / len(scored))


def feature_findings(spec: JobSpec, column: str, train, scored) -> list[Finding]:
    """Every drift statistic of one feature."""
    limits = spec.monitoring
    numeric = column in spec.features.numeric
    histograms = numeric_histograms if numeric else categorical_histograms
    out = [
        Finding(column, "psi", psi(*histograms(train, scored)), limits.psi_alert, limits.psi_watch),
        Finding(
            column,
            "null_rate_change",
            abs(null_share(scored) - null_share(train)),
            limits.null_rate_change_alert,
        ),
    ]
    if numeric:
        out.append(Finding(column, "ks", ks_statistic(train, scored), limits.ks_alert))
    elif column in spec.features.categorical:
        out.append(
            Finding(column, "unseen_share", unseen_share(train, scored), limits.unseen_share_alert)
        )
    return out


def read_column(parquet, column: str) -> np.ndarray:
    return parquet.read(columns=[column]).column(0).to_numpy(zero_copy_only=False)


def monitor(
    ctx: Context, scoring: Manifest, model: ServingModel, parts: list[ScoredPartition]
) -> DriftSummary:
    """This run's drift and the realised performance of earlier runs; stops the run before it
    publishes when an alert fires and the job says `monitoring.on_alert: fail`."""
    from pipeline.stages.performance import measure_performance

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
    from pipeline.alerts import send_for_run

    drifted = [f for f in findings if f.level == "alert"]
    if drifted:
        features = ", ".join(sorted({f.feature for f in drifted}))
        lines = [f"{f.feature}: {f.statistic} {f.value:.3f} > {f.threshold}" for f in drifted]
        send_for_run(spec, run_id, "drift", f"drift on {features}", lines)
    if performance:
        title = f"realised performance dropped for {len(performance)} run(s)"
        send_for_run(spec, run_id, "performance", title, performance)


def serving_training_snapshot(url: str, job: str, model: ServingModel) -> Manifest | None:
    """The snapshot the serving model was trained on, if its record is still there."""
    row = recorded_snapshot(
        url,
        job,
        model.training_snapshot_id,
        model.training_snapshot_sha256,
        "training",
        f"model v{model.version} of {job}",
        model_version=model.version,
    )
    return recorded_manifest(row) if row else None


def measure_drift(
    url: str,
    spec: JobSpec,
    scoring: Manifest,
    model: ServingModel,
    parts: list[ScoredPartition],
    run_id: str,
) -> list[Finding]:
    """Every drift statistic of this run against the serving model's training data, stored."""
    training = serving_training_snapshot(url, spec.name, model)
    if training is None:
        log.warning("drift skipped: the training snapshot of model v%d is gone", model.version)
        return []
    findings = []
    with open_snapshot(training) as trained_on, open_snapshot(scoring) as scored_on:
        for column in spec.features.all:
            train, scored = read_column(trained_on, column), read_column(scored_on, column)
            findings += feature_findings(spec, column, train, scored)
    limits = spec.monitoring
    value = psi(*numeric_histograms(holdout_scores(spec, model, training), run_scores(parts)))
    findings.append(Finding(SCORE, "psi", value, limits.psi_alert, limits.psi_watch))
    record_drift(url, spec.name, run_id, findings)
    for finding in findings:
        if finding.level != "ok":
            log.warning(
                "DRIFT %s %s.%s: %s %.3f (%s above %.2f)",
                finding.level.upper(),
                spec.name,
                finding.feature,
                finding.statistic,
                finding.value,
                "alert" if finding.level == "alert" else "watch",
                finding.threshold if finding.level == "alert" else finding.watch,
            )
    alerts = sorted({f.feature for f in findings if f.level == "alert"})
    log.info("drift: %d statistics, alerts on %s", len(findings), alerts or "none")
    return findings


def holdout_scores(spec: JobSpec, model: ServingModel, training: Manifest) -> np.ndarray:
    """The serving model's scores on its own holdout: what its scores looked like when judged."""
    from pipeline.model.fitting import feature_frame, holdout_mask, predict
    from pipeline.model.registry import load_model

    frame = read_snapshot(training, [spec.source.key, *spec.features.all])
    frame = frame[holdout_mask(frame[spec.source.key], spec.model.holdout_fraction)]
    fitted = load_model(model.artifact_uri, model.artifact_sha256)
    return predict(fitted, feature_frame(frame, spec), spec).score


def run_scores(parts: list[ScoredPartition]) -> np.ndarray:
    """This run's scores, from its scored partitions."""
    root = DataRoot()
    columns = []
    for part in parts:
        with root.open_input(root.path_of(part.uri)) as source:
            columns.append(pq.read_table(source, columns=["score"]).column(0).to_numpy())
    return np.concatenate(columns) if columns else np.array([], dtype="float64")


def record_drift(url: str, job: str, run_id: str, findings: list[Finding]) -> None:
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "DELETE FROM scoring.drift_reports WHERE job = %s AND run_id = %s", (job, run_id)
        )
        cur.executemany(
            "INSERT INTO scoring.drift_reports"
            " (job, run_id, feature, statistic, value, threshold, watch, alert, level)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    job,
                    run_id,
                    f.feature,
                    f.statistic,
                    f.value if math.isfinite(f.value) else None,
                    f.threshold,
                    f.watch,
                    f.level == "alert",
                    f.level,
                )
                for f in findings
            ],
        )


def record_monitoring(url: str, job: str, run_id: str, summary: DriftSummary) -> None:
    """What monitoring found, on the run: `retrain.policy: on_drift` reads it on the next run."""
    from psycopg2.extras import Json

    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE scoring.scoring_runs SET monitoring = %s WHERE job = %s AND run_id = %s",
            (
                Json(
                    {
                        "drift_alerts": summary.alerts,
                        "drift_watch": summary.watch,
                        "performance_alerts": summary.performance_alerts,
                        "action": summary.action,
                    }
                ),
                job,
                run_id,
            ),
        )
