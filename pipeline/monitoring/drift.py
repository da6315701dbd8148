"""Drift measured for a run: each feature of its scoring snapshot against the serving model's
training snapshot, and its scores against the model's scores on its own holdout; stored in
scoring.drift_reports."""

import logging

import numpy as np
import pyarrow.parquet as pq

from pipeline.contracts import Manifest, ScoredPartition, ServingModel
from pipeline.datafiles.root import DataRoot
from pipeline.datafiles.snapshots import open_snapshot, read_column, read_snapshot
from pipeline.logic.drift import SCORE, Finding, feature_findings, numeric_histograms, psi
from pipeline.model.files import load_model
from pipeline.model.fitting import feature_frame, holdout_mask, predict
from pipeline.spec import JobSpec
from pipeline.warehouse.monitoring import DriftRow, record_drift
from pipeline.warehouse.snapshots import recorded_snapshot

log = logging.getLogger(__name__)


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
    return row.recorded_manifest if row else None


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
    record_drift(url, spec.name, run_id, [as_row(f) for f in findings])
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


def as_row(finding: Finding) -> DriftRow:
    return DriftRow(
        feature=finding.feature,
        statistic=finding.statistic,
        value=finding.value,
        threshold=finding.threshold,
        watch=finding.watch,
        level=finding.level,
    )
