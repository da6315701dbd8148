"""Drift measured for a run: each feature of its scoring snapshot against the serving model's
training snapshot, and its scores against the model's scores on its own holdout; stored in
scoring.drift_reports with the histograms the run report draws.

Every snapshot and prediction file is streamed one row group at a time (the training snapshot
twice: once to learn each numeric feature's bins, once to count), so memory does not grow with
the table: what is kept is a tally per feature and population, and the holdout's scores.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.contracts import Manifest, ScoredPartition, ServingModel
from pipeline.datafiles.root import DataRoot
from pipeline.datafiles.snapshots import open_snapshot
from pipeline.logic.drift import (
    SCORE,
    CategoryTally,
    Finding,
    NumericBins,
    NumericTally,
    histogram_of,
    learn_bins,
    psi,
    tally_findings,
)
from pipeline.logic.personal import mask
from pipeline.logic.scores import ScoreSummary
from pipeline.model.files import load_model, stored_holdout_scores
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
    population: str  # "new": the rows new or changed since `since`; "all": the whole table;
    # "changed": an incremental run's whole change (the rows since its as_of less lookback)
    rows: int  # rows in that population
    since: str | None  # the as_of of the previous published run, if any
    new_rows: int | None  # rows new since it (None without a previous published run)
    scores: dict  # this run's scores summarised for its report (`ScoreSummary.to_json`)

    @property
    def alerts(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "alert"]

    def describe(self) -> str:
        """Which rows the alerts are about, in words."""
        if self.population == "new":
            return f"the {self.rows:,} rows new or changed since {self.since}"
        if self.population == "changed":
            return f"the {self.rows:,} rows this incremental run rescored"
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
    whole scored table and on the rows new since the previous published run; stored with
    their histograms. None when the serving model's training snapshot is gone."""
    training = serving_training_snapshot(url, spec.name, model)
    if training is None:
        log.warning("drift skipped: the training snapshot of model v%d is gone", model.version)
        return None
    previous = previous_published(url, spec.name, datetime.fromisoformat(as_of))
    boundary = previous.as_of if previous else None
    since = boundary.isoformat() if boundary else None
    profiles = training_tallies(spec, training)
    with open_snapshot(scoring) as scored_on:
        scored, new = scoring_tallies(spec, scored_on, profiles, boundary)
    expected = holdout_scores(spec, model, training)
    bins = NumericBins.learn(expected)
    score_counts, summary = score_tallies(spec, parts, bins, new)
    limits = spec.monitoring
    counts = {"all": summary.rows, **({"new": int(new.sum())} if new is not None else {})}
    measured: dict[str, list[Finding]] = {}
    histograms: dict[tuple[str, str], dict] = {}
    for name, tallied in scored.items():
        found = []
        for column in spec.features.all:
            found += tally_findings(spec, column, profiles[column], tallied[column])
            histogram = histogram_of(profiles[column], tallied[column])
            if column in spec.features.categorical and column in spec.personal:
                histogram["labels"] = [mask(label) for label in histogram["labels"]]
            histograms[(name, column)] = histogram
        value = psi(bins.counts(expected), score_counts[name])
        found.append(Finding(SCORE, "psi", value, limits.psi_alert, limits.psi_watch))
        measured[name] = found
    deciding = "new" if counts.get("new", 0) >= limits.min_new_rows else "all"
    shown = {"all": "changed" if scoring.change else "all", "new": "new"}  # what "all" holds
    rows = [
        as_row(f, shown[name], counts[name], name == deciding, histograms.get((name, f.feature)))
        for name, found in measured.items()
        for f in found
    ]
    record_drift(url, spec.name, run_id, rows)
    drift = Drift(
        measured[deciding],
        shown[deciding],
        counts[deciding],
        since,
        counts.get("new"),
        summary.to_json(),
    )
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


def training_tallies(spec: JobSpec, training: Manifest) -> dict:
    """Feature -> its training tally: numeric features' bins learned in a first pass over the
    training snapshot, every feature counted in a second."""
    numeric = spec.features.numeric
    with open_snapshot(training) as parquet:
        bins = {column: learn_bins(column_batches(parquet, column)) for column in numeric}
        out = {
            column: NumericTally(bins[column]) if column in bins else CategoryTally()
            for column in spec.features.all
        }
        for group in range(parquet.metadata.num_row_groups):
            table = parquet.read_row_group(group, columns=spec.features.all)
            for column in spec.features.all:
                out[column].add(values_of(table.column(column), column in numeric))
    return out


def scoring_tallies(spec: JobSpec, parquet: pq.ParquetFile, profiles: dict, since):
    """Population -> feature -> its scoring tally, in one pass over the scoring snapshot; and
    which rows are new since `since` (None without a previous run)."""
    columns = [*spec.features.all, spec.source.timestamp]
    populations: dict[str, dict] = {"all": {}, "new": {}}
    for name in populations:
        for column, profile in profiles.items():
            fresh = (
                NumericTally(profile.bins) if isinstance(profile, NumericTally) else CategoryTally()
            )
            populations[name][column] = fresh
    masks = []
    for group in range(parquet.metadata.num_row_groups):
        table = parquet.read_row_group(group, columns=columns)
        mask = new_rows_mask(table.column(spec.source.timestamp), since) if since else None
        if mask is not None:
            masks.append(mask)
        for column in spec.features.all:
            numeric = column in spec.features.numeric
            values = table.column(column)
            populations["all"][column].add(values_of(values, numeric))
            if mask is not None and mask.any():
                populations["new"][column].add(values_of(values.filter(pa.array(mask)), numeric))
    new = np.concatenate(masks) if since and masks else (np.zeros(0, bool) if since else None)
    if new is None or not new.any():
        populations.pop("new")
    return populations, new


def score_tallies(
    spec: JobSpec, parts: list[ScoredPartition], bins: NumericBins, new: np.ndarray | None
) -> tuple[dict[str, np.ndarray], ScoreSummary]:
    """This run's scores against the holdout's bins, per population, streamed from its
    prediction files in the snapshot's row order; and their summary for the report."""
    counts = {"all": np.zeros(len(bins.labels(str)), dtype="int64")}
    if new is not None and new.any():
        counts["new"] = counts["all"].copy()
    summary = ScoreSummary()
    offset = 0
    for scores in score_batches(parts):
        counts["all"] += bins.counts(scores)
        if new is not None and "new" in counts:
            counts["new"] += bins.counts(scores[new[offset : offset + len(scores)]])
        summary.add(scores)
        offset += len(scores)
    low, high = summary.range_for(spec.task == "classification")
    for scores in score_batches(parts):  # a second, cheap pass: the range is known now
        summary.add_to_histogram(scores, low, high)
    return counts, summary


def score_batches(parts: list[ScoredPartition]):
    """The run's scores, batch by batch, in the snapshot's row order."""
    root = DataRoot()
    for part in sorted(parts, key=lambda p: p.index):
        with root.open_input(root.path_of(part.uri)) as source:
            for batch in pq.ParquetFile(source).iter_batches(columns=["score"]):
                yield batch.column(0).to_numpy(zero_copy_only=False).astype("float64")


def column_batches(parquet: pq.ParquetFile, column: str):
    for group in range(parquet.metadata.num_row_groups):
        yield values_of(parquet.read_row_group(group, columns=[column]).column(0), True)


def values_of(column, numeric: bool):
    """A column chunk as a tally takes it: floats (NULL as NaN) for a number, else Arrow."""
    if numeric:
        return (
            column.to_numpy().astype("float64")
            if column.null_count == 0
            else np.asarray(pc.fill_null(pc.cast(column, pa.float64()), float("nan")))
        )
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def new_rows_mask(column, since: datetime) -> np.ndarray:
    """True for the rows whose timestamp is at or after `since` (its UTC wall time: snapshots
    hold timestamps in UTC, dates as midnight)."""
    naive = pc.cast(column, pa.timestamp("us"))
    boundary = pa.scalar(since.astimezone(UTC).replace(tzinfo=None), pa.timestamp("us"))
    return pc.fill_null(pc.greater_equal(naive, boundary), False).to_numpy(zero_copy_only=False)


def holdout_scores(spec: JobSpec, model: ServingModel, training: Manifest) -> np.ndarray:
    """The serving model's scores on its own holdout: what its scores looked like when judged.
    Kept beside the model since it was fitted; for a model saved before they were, or whose
    file does not match its record, recomputed (the training snapshot streamed, only the
    holdout's rows predicted)."""
    stored = stored_holdout_scores(model.artifact_uri)
    if stored is not None:
        return stored
    log.info("model v%d has no stored holdout scores: scoring its holdout", model.version)
    fitted = load_model(model.artifact_uri, model.artifact_sha256)
    out = []
    with open_snapshot(training) as parquet:
        for group in range(parquet.metadata.num_row_groups):
            frame = parquet.read_row_group(
                group, columns=[spec.source.key, *spec.features.all]
            ).to_pandas()
            frame = frame[holdout_mask(frame[spec.source.key], spec.model.holdout_fraction)]
            if len(frame):
                out.append(predict(fitted, feature_frame(frame, spec), spec).score)
    return np.concatenate(out) if out else np.array([], dtype="float64")


def as_row(
    finding: Finding, population: str, rows: int, decides: bool, histogram: dict | None
) -> DriftRow:
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
        histogram=histogram if finding.statistic == "psi" else None,
    )
