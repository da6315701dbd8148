"""Drift measured for a run: each feature of its scoring snapshot against the serving model's
training snapshot, and its scores against the model's scores on its own holdout; stored in
scoring.drift_reports."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.contracts import Manifest, ScoredPartition, ServingModel
from pipeline.datafiles.root import DataRoot
from pipeline.datafiles.snapshots import open_snapshot, read_column, read_snapshot
from pipeline.logic.drift import SCORE, Finding, feature_findings, numeric_histograms, psi
from pipeline.model.files import load_model
from pipeline.model.fitting import feature_frame, holdout_mask, predict
from pipeline.spec import JobSpec
from pipeline.warehouse.monitoring import DriftRow, record_drift
from pipeline.warehouse.runs import previous_published
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


@dataclass(frozen=True)
class Drift:
    """A run's drift: the findings of the population that decides its alerts, and which."""

    findings: list[Finding]
    population: str  # "new": the rows new or changed since `since`; "all": the whole table
    rows: int  # rows in that population
    since: str | None  # the as_of of the previous published run, if any
    new_rows: int | None  # rows new since it (None without a previous published run)

    @property
    def alerts(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "alert"]

    def describe(self) -> str:
        """Which rows the alerts are about, in words."""
        if self.population == "new":
            return f"the {self.rows:,} rows new or changed since {self.since}"
        if self.since is None:
            return f"all {self.rows:,} rows (no earlier published run)"
        return (
            f"all {self.rows:,} rows (only {self.new_rows:,} new since {self.since}, "
            "under monitoring.min_new_rows)"
        )


def measure_drift(
    url: str,
    spec: JobSpec,
    scoring: Manifest,
    model: ServingModel,
    parts: list[ScoredPartition],
    as_of: str,
    run_id: str,
) -> Drift | None:
    """Every drift statistic of this run against the serving model's training data, on the
    whole scored table and on the rows new since the previous published run; stored. None
    when the serving model's training snapshot is gone."""
    training = serving_training_snapshot(url, spec.name, model)
    if training is None:
        log.warning("drift skipped: the training snapshot of model v%d is gone", model.version)
        return None
    previous = previous_published(url, spec.name, datetime.fromisoformat(as_of))
    boundary = previous.as_of if previous else None
    since = boundary.isoformat() if boundary else None
    scores = run_scores(parts)
    expected_scores = holdout_scores(spec, model, training)
    with open_snapshot(training) as trained_on, open_snapshot(scoring) as scored_on:
        new = new_rows_mask(scored_on, spec.source.timestamp, boundary) if boundary else None
        populations = {"all": None, **({"new": new} if new is not None and new.any() else {})}
        measured: dict[str, list[Finding]] = {name: [] for name in populations}
        for column in spec.features.all:
            train, scored = read_column(trained_on, column), read_column(scored_on, column)
            for name, mask in populations.items():
                chosen = scored if mask is None else scored[mask]
                measured[name] += feature_findings(spec, column, train, chosen)
    limits = spec.monitoring
    for name, mask in populations.items():
        chosen = scores if mask is None else scores[mask]
        value = psi(*numeric_histograms(expected_scores, chosen))
        measured[name].append(Finding(SCORE, "psi", value, limits.psi_alert, limits.psi_watch))
    counts = {"all": len(scores), **({"new": int(new.sum())} if new is not None else {})}
    deciding = "new" if counts.get("new", 0) >= limits.min_new_rows else "all"
    rows = [
        as_row(f, name, counts[name], name == deciding)
        for name, found in measured.items()
        for f in found
    ]
    record_drift(url, spec.name, run_id, rows)
    drift = Drift(measured[deciding], deciding, counts[deciding], since, counts.get("new"))
    for finding in drift.findings:
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
    alerted = sorted({f.feature for f in drift.alerts})
    log.info(
        "drift on %s: %d statistics, alerts on %s",
        drift.describe(),
        len(drift.findings),
        alerted or "none",
    )
    return drift


def new_rows_mask(parquet: pq.ParquetFile, timestamp: str, since: datetime) -> np.ndarray:
    """True for the snapshot's rows whose timestamp is at or after `since` (its UTC wall time:
    snapshots hold timestamps in UTC, dates as midnight)."""
    column = parquet.read(columns=[timestamp]).column(0)
    naive = pc.cast(column, pa.timestamp("us"))
    boundary = pa.scalar(since.astimezone(UTC).replace(tzinfo=None), pa.timestamp("us"))
    return pc.fill_null(pc.greater_equal(naive, boundary), False).to_numpy(zero_copy_only=False)


def holdout_scores(spec: JobSpec, model: ServingModel, training: Manifest) -> np.ndarray:
    """The serving model's scores on its own holdout: what its scores looked like when judged."""
    frame = read_snapshot(training, [spec.source.key, *spec.features.all])
    frame = frame[holdout_mask(frame[spec.source.key], spec.model.holdout_fraction)]
    fitted = load_model(model.artifact_uri, model.artifact_sha256)
    return predict(fitted, feature_frame(frame, spec), spec).score


def run_scores(parts: list[ScoredPartition]) -> np.ndarray:
    """This run's scores, from its scored partitions, in the snapshot's row order."""
    root = DataRoot()
    columns = []
    for part in sorted(parts, key=lambda p: p.index):
        with root.open_input(root.path_of(part.uri)) as source:
            columns.append(pq.read_table(source, columns=["score"]).column(0).to_numpy())
    return np.concatenate(columns) if columns else np.array([], dtype="float64")


def as_row(finding: Finding, population: str, rows: int, decides: bool) -> DriftRow:
    return DriftRow(
        feature=finding.feature,
        statistic=finding.statistic,
        value=finding.value,
        threshold=finding.threshold,
        watch=finding.watch,
        level=finding.level,
        alert=decides and finding.level == "alert",
        population=population,
        rows=rows,
        decides=decides,
    )
