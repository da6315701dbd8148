"""What a run's report shows, gathered once from the warehouse and the data root into one
typed record (`ReportFacts`) that the page's sections read."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from pipeline.datafiles.root import DataRoot
from pipeline.errors import PipelineError
from pipeline.reports.html import finite
from pipeline.spec import JobSpec
from pipeline.warehouse import models, monitoring, runs, validations
from pipeline.warehouse.alerts import AlertRow, alerts_of_run
from pipeline.warehouse.models import ModelVersion
from pipeline.warehouse.monitoring import DriftRow, PerformanceRow
from pipeline.warehouse.predictions import shadow_runs, shadow_version_of_run
from pipeline.warehouse.runs import RunRow
from pipeline.warehouse.snapshots import SnapshotRow, snapshots_of_run
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
    scores: dict | None  # the scores' summary monitoring made (`ScoreSummary`); None before it
    scores_note: str = ""
    distributions: list[Distribution] = field(default_factory=list)
    distributions_note: str = ""
    drift_other: list[DriftRow] = field(default_factory=list)  # the other population, if any
    challenger: ModelVersion | None = None  # in shadow this run, or judged by it
    shadow_runs: int = 0  # the published runs it has scored in shadow

    @property
    def rows_scored(self) -> int | None:
        if self.run.rows_scored is not None:
            return self.run.rows_scored
        return None if self.scores is None else self.scores["rows"]


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
    scores, scores_note = recorded_scores(run)
    alerted = [a.subject for a in raised if a.kind == "drift"]
    distributions, distributions_note = drifted_distributions(spec, drift, alerted)
    shadowed = shadow_version_of_run(url, spec, run_id)
    challenger = models.judged_by_run(url, job, run_id) or (
        models.fetch_version(url, job, version=shadowed) if shadowed else None
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
        challenger=challenger,
        shadow_runs=len(shadow_runs(url, spec, challenger.version)) if challenger else 0,
    )


def scoring_model(url: str, run: RunRow) -> ModelVersion | None:
    """The model that scored the run: its recorded version; while the run is still running
    (it is recorded when published), the job's champion, which is what `register` serves."""
    if run.model_version is not None:
        return models.fetch_version(url, run.job, version=run.model_version)
    return models.champion(url, run.job) if run.status == "running" else None


def recorded_scores(run: RunRow) -> tuple[dict | None, str]:
    """The summary of the run's scores monitoring recorded, or None and why there is none."""
    found = (run.monitoring or {}).get("scores")
    if found:
        return found, ""
    if run.status in ("failed", "abandoned"):
        stopped = (run.error or "").split("\n", 1)[0]
        return None, (
            f"No scores: the run {run.status} before monitoring summarised them"
            + (f" ({stopped})" if stopped else "")
            + "."
        )
    return None, "No scores yet: monitoring summarises them after scoring."


def psi_rows(drift: list[DriftRow]) -> list[DriftRow]:
    return [r for r in drift if r.statistic == "psi"]


def drifted_distributions(
    spec: JobSpec, drift: list[DriftRow], alerted: list[str]
) -> tuple[list[Distribution], str]:
    """Training against scoring histograms, as monitoring tallied them, of every feature in
    `alerted` (whatever statistic raised it), then of the features with the highest PSI,
    `TOP_DRIFTED` at least. Nothing is read again."""
    candidates = [r for r in psi_rows(drift) if r.feature in spec.features.all and r.histogram]
    ranked = sorted(
        candidates,
        key=lambda r: (r.feature not in alerted, -(r.value if finite(r.value) else -1.0)),
    )[: max(TOP_DRIFTED, len(set(alerted)))]
    if not ranked:
        return [], "No drift histograms were recorded for this run."
    out = []
    for row in ranked:
        histogram = row.histogram or {}
        labels, (train, score) = top_categories(
            [str(label) for label in histogram["labels"]],
            histogram["training"],
            histogram["scoring"],
        )
        out.append(
            Distribution(
                row.feature, row, labels, train, score, row.feature in spec.features.numeric
            )
        )
    return out, ""


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
