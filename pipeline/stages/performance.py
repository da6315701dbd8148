"""Realised performance: how right published predictions were, once their labels arrived.

Labels come later than scores (a customer churns weeks after being scored). For each published
run whose predictions are still kept, the run's predictions are joined with the labels now in
the source table, leaving out the keys whose label was already known at the run's as_of (they
are in the run's training snapshot, which holds exactly the rows labelled by then). Metrics:
classification ROC AUC, log loss and, for a binary target, precision at the top k and
calibration error (else accuracy); regression RMSE and MAE. A figure is trusted once
`monitoring.performance.min_labelled` keys are labelled; a trusted primary metric worse than
the model's holdout figure by more than `tolerance` is an alert.
"""

import io
import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg2 import sql
from sklearn.metrics import mean_absolute_error, roc_auc_score, root_mean_squared_error

from pipeline.model.fitting import positive_class
from pipeline.spec import LOWER_IS_BETTER, JobSpec, class_label
from pipeline.stages.snapshot import read_snapshot_table, recorded_manifest, recorded_snapshot
from pipeline.store import db

log = logging.getLogger(__name__)

CALIBRATION_BINS = 10


def late_labelled_predictions(url: str, spec: JobSpec, run_id: str, known) -> pd.DataFrame:
    """The run's predictions whose key has a label in the source now but had none at the run's
    as_of (`known`: an Arrow array of the keys labelled then): key, score, label,
    probabilities, truth (the label as a class name, or the number). The known keys go to a
    temporary table, so only the late-labelled rows leave the server."""
    predictions = db.scoring_ident(spec.predictions_table)
    query = sql.SQL(
        "SELECT p.key, p.score, p.label, p.probabilities, s.{target} AS truth"
        " FROM {predictions} AS p JOIN {source} AS s ON s.{key} = p.key"
        " WHERE p.run_id = %s AND s.{target} IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM known_keys AS k WHERE k.key = p.key)"
    ).format(
        target=sql.Identifier(spec.target),
        predictions=predictions,
        source=db.table_ident(spec.source.table),
        key=sql.Identifier(spec.source.key),
    )
    buffer = io.BytesIO()
    pacsv.write_csv(pa.table({"key": known}), buffer, pacsv.WriteOptions(include_header=False))
    buffer.seek(0)
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE known_keys ON COMMIT DROP AS SELECT key FROM {} LIMIT 0"
            ).format(predictions)
        )
        cur.copy_expert("COPY known_keys (key) FROM STDIN WITH (FORMAT csv)", buffer)
        cur.execute("ANALYZE known_keys")
        cur.execute(query, (run_id,))
        rows = cur.fetchall()
    frame = pd.DataFrame(rows, columns=["key", "score", "label", "probabilities", "truth"])
    if spec.task == "classification":
        frame["truth"] = frame["truth"].map(class_label)
    else:
        frame["truth"] = pd.to_numeric(frame["truth"]).astype("float64")
    return frame


def known_keys(url: str, spec: JobSpec, run: dict):
    """Keys whose label was known at the run's as_of (an Arrow array): its training snapshot's
    keys; None if that snapshot is gone or was never recorded by id (runs from before
    snapshot ids): then the run cannot be judged fairly, and is not."""
    row = recorded_snapshot(
        url, spec.name, run["training_snapshot_id"], None, "training", f"run {run['run_id']}"
    )
    if row is None:
        return None
    try:
        table = read_snapshot_table(recorded_manifest(row), [spec.source.key])
    except Exception as exc:  # a pruned or moved file: this run cannot be judged
        log.warning("run %s: its training snapshot cannot be read (%s)", run["run_id"], exc)
        return None
    return table.column(0)


def realised_metrics(spec: JobSpec, frame: pd.DataFrame) -> dict[str, float]:
    """The task's metrics over labelled predictions (NaN where undefined, e.g. one class)."""
    if spec.task == "regression":
        return {
            "rmse": float(root_mean_squared_error(frame["truth"], frame["score"])),
            "mae": float(mean_absolute_error(frame["truth"], frame["score"])),
        }
    classes = sorted(frame["probabilities"].iloc[0])
    proba = np.array([[row[c] for c in classes] for row in frame["probabilities"]])
    truth = frame["truth"].to_numpy()
    index = np.array([classes.index(t) if t in classes else -1 for t in truth])
    p_true = np.where(index >= 0, proba[np.arange(len(truth)), index], 0.0)
    out = {"log_loss": float(-np.mean(np.log(np.clip(p_true, 1e-15, 1.0))))}
    aucs = [
        roc_auc_score(truth == c, proba[:, i])
        for i, c in enumerate(classes)
        if 0 < (truth == c).sum() < len(truth)
    ]
    if len(classes) == 2:
        positive = truth == positive_class(spec, classes)
        score = frame["score"].to_numpy()
        out["roc_auc"] = float(aucs[-1]) if aucs else float("nan")
        out["precision_at_k"] = precision_at_k(score, positive, spec.monitoring.performance.top_k)
        out["calibration_error"] = calibration_error(score, positive)
    else:
        out["roc_auc"] = float(np.mean(aucs)) if aucs else float("nan")
        out["accuracy"] = float(np.mean(frame["label"].to_numpy() == truth))
    return out


def precision_at_k(score: np.ndarray, positive: np.ndarray, k: int) -> float:
    """The share of positives among the k highest scores (ties broken by order)."""
    top = np.argsort(-score, kind="stable")[:k]
    return float(positive[top].mean()) if len(top) else float("nan")


def calibration_error(score: np.ndarray, positive: np.ndarray) -> float:
    """Expected calibration error: |mean score - share positive| per tenth of [0, 1], weighted
    by the rows in it."""
    bins = np.minimum((score * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    error = 0.0
    for b in np.unique(bins):
        inside = bins == b
        error += inside.mean() * abs(score[inside].mean() - positive[inside].mean())
    return float(error)


def judge_run(url: str, spec: JobSpec, run: dict, holdout: dict) -> list[dict]:
    """The performance rows of one run: every metric with its labelled count and verdict."""
    known = known_keys(url, spec, run)
    if known is None:
        log.info("run %s: no training snapshot to tell which labels were known", run["run_id"])
        return []
    frame = late_labelled_predictions(url, spec, run["run_id"], known)
    if spec.task == "classification" and frame["probabilities"].isna().any():
        log.info("run %s: published before class probabilities were kept", run["run_id"])
        frame = frame[frame["probabilities"].notna()]  # its metrics need every class's
    limits = spec.monitoring.performance
    trusted = len(frame) >= limits.min_labelled
    metrics = realised_metrics(spec, frame) if len(frame) else {}
    rows = []
    for metric, value in metrics.items():
        reference = holdout.get(metric)
        alert = bool(
            trusted
            and metric == spec.primary_metric
            and reference is not None
            and np.isfinite(value)
            and worse_by(metric, value, reference) > limits.tolerance
        )
        rows.append(
            {
                "job": spec.name,
                "run_id": run["run_id"],
                "model_version": run["model_version"],
                "metric": metric,
                "value": value if np.isfinite(value) else None,
                "holdout": reference,
                "labelled": len(frame),
                "scored": run["rows_scored"],
                "trusted": trusted,
                "alert": alert,
            }
        )
    return rows


def worse_by(metric: str, value: float, reference: float) -> float:
    """How much worse `value` is than `reference` (negative: better)."""
    return value - reference if metric in LOWER_IS_BETTER else reference - value


def measure_performance(url: str, spec: JobSpec) -> list[str]:
    """Judge every published run whose predictions are kept; store the figures in
    scoring.model_performance; returns the alerts, one line each."""
    runs = db.fetch_all(
        url,
        "SELECT r.run_id, r.as_of, r.model_version, r.rows_scored, r.training_snapshot_id,"
        " m.metrics AS holdout FROM scoring.scoring_runs AS r JOIN scoring.model_versions AS m"
        " ON m.job = r.job AND m.version = r.model_version"
        " WHERE r.job = %s AND r.status = 'published' AND r.predictions_pruned_at IS NULL"
        " ORDER BY r.as_of",
        (spec.name,),
    )
    with db.transaction(url) as conn:
        if not db.relation_exists(conn, f"scoring.{spec.predictions_table}"):
            log.info("realised performance: nothing published for %s yet", spec.name)
            return []
    rows = [row for run in runs for row in judge_run(url, spec, run, run["holdout"])]
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "DELETE FROM scoring.model_performance WHERE job = %s AND run_id = ANY(%s)",
            (spec.name, [run["run_id"] for run in runs]),
        )
        for row in rows:
            cur.execute(
                sql.SQL("INSERT INTO scoring.model_performance ({}) VALUES ({})").format(
                    sql.SQL(", ").join(map(sql.Identifier, row)),
                    sql.SQL(", ").join(sql.Placeholder() * len(row)),
                ),
                list(row.values()),
            )
    alerts = [
        f"run {r['run_id']} {r['metric']} {r['value']:.4f} vs holdout {r['holdout']:.4f} "
        f"({r['labelled']} labelled keys)"
        for r in rows
        if r["alert"]
    ]
    for alert in alerts:
        log.warning("PERFORMANCE ALERT %s: %s", spec.name, alert)
    judged = sorted({r["run_id"] for r in rows})
    log.info("realised performance: %d run(s) with labels, %d alert(s)", len(judged), len(alerts))
    return alerts
