"""Realised performance: how right published predictions were, once their labels arrived.

Labels come later than scores (a customer churns weeks after being scored). For each published
run whose predictions are still kept, the run's predictions are joined with the labels now in
the source table, on the keys whose label was not yet known at the run's as_of: the keys of
its scoring snapshot that its training snapshot (exactly the rows labelled by then) does not
hold. Those eligible keys are worked out once, the first time a run is judged, and kept beside
the run (`eligible.parquet`), so a night judges each kept run by its eligible keys alone,
not by reading both snapshots and uploading every labelled key again. Metrics:
classification ROC AUC, log loss and, for a binary target, precision at the top k and
calibration error (else accuracy); regression RMSE and MAE. A figure is trusted once
`monitoring.performance.min_labelled` keys are labelled; a trusted primary metric worse than
the model's holdout figure by more than `tolerance` is an alert.
"""

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.datafiles.layout import eligible_path
from pipeline.datafiles.root import DataRoot
from pipeline.datafiles.snapshots import read_snapshot_table
from pipeline.logic.keys import not_in
from pipeline.logic.realised import realised_metrics, worse_by
from pipeline.spec import JobSpec, class_label
from pipeline.warehouse.alerts import AlertRow, record_alerts
from pipeline.warehouse.monitoring import record_performance
from pipeline.warehouse.predictions import has_predictions, late_labelled_predictions
from pipeline.warehouse.runs import kept_published_runs
from pipeline.warehouse.snapshots import recorded_snapshot

log = logging.getLogger(__name__)
ELIGIBLE_KEY = "key"  # the column of eligible.parquet, as in a scored partition (erasure reads it)


def labelled_frame(spec: JobSpec, rows: list) -> pd.DataFrame:
    """Late-labelled prediction rows as a frame: key, score, label, probabilities, truth (the
    label as a class name, or the number)."""
    frame = pd.DataFrame(rows, columns=["key", "score", "label", "probabilities", "truth"])
    if spec.task == "classification":
        frame["truth"] = frame["truth"].map(class_label)
    else:
        frame["truth"] = pd.to_numeric(frame["truth"]).astype("float64")
    return frame


def eligible_keys(url: str, spec: JobSpec, run: dict) -> pa.Array | None:
    """The keys the run scored that had no label at its as_of, sorted; kept beside the run the
    first time (an erasure rewrites that file like the run's others). None if either snapshot
    is gone or was never recorded by id (runs from before snapshot ids): then the run cannot
    be judged fairly, and is not."""
    root = DataRoot()
    path = eligible_path(root, spec.name, run["run_id"])
    if root.exists(path):
        with root.open_input(path) as source:
            return pq.read_table(source).column(0).combine_chunks()
    known = snapshot_keys(url, spec, run, "training")
    scored = snapshot_keys(url, spec, run, "scoring") if known is not None else None
    if known is None or scored is None:
        return None
    eligible = not_in(scored, known)
    with root.open_output(path) as sink:
        pq.write_table(pa.table({ELIGIBLE_KEY: eligible}), sink)
    return eligible


def snapshot_keys(url: str, spec: JobSpec, run: dict, kind: str) -> pa.Array | None:
    """The keys of a run's `kind` snapshot (NULL keys left out), None if it cannot be read."""
    row = recorded_snapshot(
        url, spec.name, run[f"{kind}_snapshot_id"], None, kind, f"run {run['run_id']}"
    )
    if row is None:
        return None
    try:
        table = read_snapshot_table(row.recorded_manifest, [spec.source.key])
    except Exception as exc:  # a pruned or moved file: this run cannot be judged
        log.warning("run %s: its %s snapshot cannot be read (%s)", run["run_id"], kind, exc)
        return None
    return table.column(0).combine_chunks().drop_null()


def judge_run(url: str, spec: JobSpec, run: dict, holdout: dict) -> list[dict]:
    """The performance rows of one run: every metric with its labelled and eligible counts
    and verdict."""
    eligible = eligible_keys(url, spec, run)
    if eligible is None:
        log.info("run %s: no snapshots to tell which labels were known", run["run_id"])
        return []
    frame = labelled_frame(spec, late_labelled_predictions(url, spec, run["run_id"], eligible))
    if spec.task == "classification" and frame["probabilities"].isna().any():
        log.info("run %s: published before class probabilities were kept", run["run_id"])
        frame = frame[frame["probabilities"].notna()]  # its metrics need every class's
    limits = spec.monitoring.performance
    trusted = len(frame) >= limits.min_labelled
    metrics = realised_metrics(spec, frame) if len(frame) else {}
    rows = []
    for metric, value in metrics.items():
        reference = holdout.get(metric)
        finite = bool(np.isfinite(value))
        gap = worse_by(metric, value, reference) if reference is not None and finite else None
        rows.append(
            {
                "job": spec.name,
                "run_id": run["run_id"],
                "model_version": run["model_version"],
                "metric": metric,
                "value": value if finite else None,
                "holdout": reference,
                "labelled": len(frame),
                "scored": run["rows_scored"],
                "eligible": len(eligible),
                "worse_by": gap,
                "tolerance": limits.tolerance,
                "trusted": trusted,
                "alert": bool(
                    trusted
                    and metric == spec.primary_metric
                    and gap is not None
                    and gap > limits.tolerance
                ),
            }
        )
    return rows


def performance_alert(row: dict) -> AlertRow:
    """An alert row for a realised figure in alert."""
    return AlertRow(
        kind="performance",
        subject=row["run_id"],
        statistic=row["metric"],
        value=row["value"],
        threshold=row["tolerance"],
        message=(
            f"run {row['run_id']} (v{row['model_version']}) {row['metric']} "
            f"{row['value']:.4f} vs holdout {row['holdout']:.4f}: worse by "
            f"{row['worse_by']:.4f} > tolerance {row['tolerance']} "
            f"(labelled {row['labelled']:,} of {row['eligible']:,} eligible)"
        ),
    )


def measure_performance(url: str, spec: JobSpec, run_id: str | None = None) -> list[AlertRow]:
    """Judge every published run whose predictions are kept; store the figures in
    scoring.model_performance and the alerts in scoring.alerts (raised by `run_id`, or by the
    performance command when None); returns the alerts."""
    runs = kept_published_runs(url, spec.name)
    if not has_predictions(url, spec):
        log.info("realised performance: nothing published for %s yet", spec.name)
        return []
    rows = [row for run in runs for row in judge_run(url, spec, run, run["holdout"])]
    record_performance(url, spec.name, [run["run_id"] for run in runs], rows)
    alerts = [performance_alert(r) for r in rows if r["alert"]]
    record_alerts(url, spec.name, run_id, "performance", alerts)
    for alert in alerts:
        log.warning("PERFORMANCE ALERT %s: %s", spec.name, alert.message)
    judged = sorted({r["run_id"] for r in rows})
    log.info("realised performance: %d run(s) with labels, %d alert(s)", len(judged), len(alerts))
    return alerts
