"""What a run's report shows, gathered once from the warehouse and the data root into one
typed record (`ReportFacts`) that the page's sections read."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow.parquet as pq

from pipeline.contracts import SnapshotRef
from pipeline.datafiles.layout import predictions_dir
from pipeline.datafiles.root import DataRoot
from pipeline.datafiles.snapshots import open_snapshot, read_column
from pipeline.errors import PipelineError
from pipeline.logic.drift import NumericBins, categorical_histograms, numeric_histograms
from pipeline.reports.html import finite, short_number
from pipeline.spec import JobSpec
from pipeline.warehouse import models, monitoring, runs, validations
from pipeline.warehouse.alerts import AlertRow, alerts_of_run
from pipeline.warehouse.models import ModelVersion
from pipeline.warehouse.monitoring import DriftRow, PerformanceRow
from pipeline.warehouse.runs import RunRow
from pipeline.warehouse.snapshots import SnapshotRow, recorded_snapshot, snapshots_of_run
from pipeline.warehouse.validations import ValidationRow

TOP_DRIFTED = 3
MAX_CATEGORIES = 12  # bars per categorical feature; the rest are summed as "other"


@dataclass(frozen=True)
class Distribution:
    """One feature's training and scoring histograms, binned as monitoring bins it."""

    feature: str
    psi: DriftRow
    labels: list[str]
    training: np.ndarray
    scoring: np.ndarray
    numeric: bool


@dataclass(frozen=True)
class ReportFacts:
    """Everything a run's report shows."""

    run: RunRow
    root: DataRoot
    generated_at: datetime
    validations: list[ValidationRow]
    candidate: ModelVersion | None  # the version this run registered, if it fitted one
    serving: ModelVersion | None  # the version that scored the run
    drift: list[DriftRow]  # the population that decides the run's alerts
    alerts: list[AlertRow]  # every alert the run raised, as the summary and webhook have them
    snapshots: list[SnapshotRow]
    performance: list[PerformanceRow] | None  # None: no scoring.model_performance table
    scores: np.ndarray | None  # None when the run wrote no prediction files
    scores_note: str = ""
    distributions: list[Distribution] = field(default_factory=list)
    distributions_note: str = ""
    drift_other: list[DriftRow] = field(default_factory=list)  # the other population, if any

    @property
    def rows_scored(self) -> int | None:
        if self.run.rows_scored is not None:
            return self.run.rows_scored
        return None if self.scores is None else len(self.scores)


def gather(url: str, spec: JobSpec, run_id: str, root: DataRoot) -> ReportFacts:
    """Everything the report shows, read from the warehouse and the data root."""
    job = spec.name
    run = runs.fetch_run(url, job, run_id)
    if run is None:
        raise PipelineError(f"job {job}: no run {run_id!r} in scoring.scoring_runs")
    serving = scoring_model(url, run)
    measured = monitoring.drift_of_run(url, job, run_id)
    drift = [r for r in measured if r.decides]
    raised = alerts_of_run(url, job, run_id)
    snapshot_rows = snapshots_of_run(
        url,
        job,
        [run.training_snapshot_id, run.scoring_snapshot_id],
        (run.training_snapshot_sha256, run.scoring_snapshot_sha256),
        run.as_of,
    )
    scores, scores_note = read_scores(root, run)
    alerted = [a.subject for a in raised if a.kind == "drift"]
    distributions, distributions_note = drifted_distributions(
        url, spec, drift, alerted, serving, snapshot_rows
    )
    return ReportFacts(
        run=run,
        root=root,
        generated_at=datetime.now(UTC),
        validations=validations.validations_of_run(url, job, run_id),
        candidate=models.model_of_run(url, job, run_id),
        serving=serving,
        drift=drift,
        alerts=raised,
        snapshots=snapshot_rows,
        performance=monitoring.performance_of_job(url, job)
        if monitoring.has_performance_table(url)
        else None,
        scores=scores,
        scores_note=scores_note,
        distributions=distributions,
        distributions_note=distributions_note,
        drift_other=[r for r in measured if not r.decides],
    )


def scoring_model(url: str, run: RunRow) -> ModelVersion | None:
    """The model that scored the run: its recorded version; while the run is still running
    (it is recorded when published), the job's champion, which is what `register` serves."""
    if run.model_version is not None:
        return models.fetch_version(url, run.job, version=run.model_version)
    return models.champion(url, run.job) if run.status == "running" else None


def read_scores(root: DataRoot, run: RunRow) -> tuple[np.ndarray | None, str]:
    """This run's scores from its prediction files, or None and why there are none."""
    folder = predictions_dir(root, run.job, run.run_id)
    files = root.files(folder, prefix="part-", suffix=".parquet")
    if not files:
        if run.status in ("failed", "abandoned"):
            stopped = (run.error or "").split("\n", 1)[0]
            return None, (
                f"No predictions: the run {run.status} before scoring"
                + (f" ({stopped})" if stopped else "")
                + "."
            )
        return None, f"No prediction files at {root.uri(folder)}."
    columns = []
    for path in files:
        with root.open_input(path) as source:
            columns.append(pq.read_table(source, columns=["score"]).column(0).to_numpy())
    return np.concatenate(columns).astype("float64"), ""


def psi_rows(drift: list[DriftRow]) -> list[DriftRow]:
    return [r for r in drift if r.statistic == "psi"]


def drifted_distributions(
    url: str,
    spec: JobSpec,
    drift: list[DriftRow],
    alerted: list[str],
    serving: ModelVersion | None,
    snapshot_rows: list[SnapshotRow],
) -> tuple[list[Distribution], str]:
    """Training against scoring histograms of every feature in `alerted` (whatever statistic
    raised it), then of the features with the highest PSI, `TOP_DRIFTED` at least: the serving
    model's training snapshot against this run's scoring snapshot, binned by
    `pipeline.logic.drift`'s own histogram functions."""
    candidates = [r for r in psi_rows(drift) if r.feature in spec.features.all]
    ranked = sorted(
        candidates,
        key=lambda r: (r.feature not in alerted, -(r.value if finite(r.value) else -1.0)),
    )[: max(TOP_DRIFTED, len(set(alerted)))]
    if not ranked:
        return [], "No drift was measured for this run."
    training = training_snapshot(url, serving)
    scoring = next((s for s in snapshot_rows if s.kind == "scoring"), None)
    if training is None or scoring is None:
        which = "training snapshot of the serving model" if training is None else "scoring snapshot"
        return [], f"The {which} is no longer recorded: distributions cannot be drawn."
    columns = {}
    try:
        trained = SnapshotRef(uri=training.uri, sha256=training.sha256)
        scored = SnapshotRef(uri=scoring.uri, sha256=scoring.sha256)
        with open_snapshot(trained) as trained_on, open_snapshot(scored) as scored_on:
            for row in ranked:
                column = row.feature
                columns[column] = read_column(trained_on, column), read_column(scored_on, column)
    except (OSError, PipelineError) as exc:  # a file gone to retention, or not as recorded
        return [], f"The snapshots could not be read ({exc}): distributions not drawn."
    out = []
    for row in ranked:
        train, score = columns[row.feature]
        numeric = row.feature in spec.features.numeric
        if numeric:
            counts = numeric_histograms(train, score)
            labels = NumericBins.learn(train).labels(short_number)
        else:
            counts = categorical_histograms(train, score)
            labels = categorical_bin_labels(train, score)
        labels, (train_counts, score_counts) = top_categories(labels, *counts)
        out.append(Distribution(row.feature, row, labels, train_counts, score_counts, numeric))
    return out, ""


def training_snapshot(url: str, serving: ModelVersion | None) -> SnapshotRow | None:
    """The serving model's training snapshot, looked up as monitoring does."""
    if serving is None:
        return None
    return recorded_snapshot(
        url,
        serving.job,
        serving.training_snapshot_id,
        serving.training_snapshot_sha256,
        "training",
        f"model v{serving.version} of {serving.job}",
        model_version=serving.version,
    )


def categorical_bin_labels(train, scored) -> list[str]:
    """Labels of `categorical_histograms`' bins: every value seen, sorted as text."""
    return sorted({str(v) for v in train} | {str(v) for v in scored})


def top_categories(labels: list[str], train, scored) -> tuple[list[str], tuple]:
    """At most `MAX_CATEGORIES` bars: the values with the largest share on either side, in
    their order, and the rest summed as one "other" bar."""
    train, scored = np.asarray(train), np.asarray(scored)
    if len(labels) != len(train):
        raise ValueError(f"{len(labels)} labels for {len(train)} bins")
    if len(labels) <= MAX_CATEGORIES:
        return labels, (train, scored)
    share = np.maximum(train / max(train.sum(), 1), scored / max(scored.sum(), 1))
    keep = sorted(np.argsort(-share, kind="stable")[: MAX_CATEGORIES - 1])
    rest = np.setdiff1d(np.arange(len(labels)), keep)
    return (
        [labels[i] for i in keep] + [f"other ({len(rest)} values)"],
        (
            np.append(train[keep], train[rest].sum()),
            np.append(scored[keep], scored[rest].sum()),
        ),
    )
