"""Realised metrics: how right predictions were, over the keys whose labels arrived. Pure.

Classification: ROC AUC, log loss and, for a binary target, precision at the top k and
calibration error (else accuracy); regression: RMSE and MAE.
"""

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error, roc_auc_score, root_mean_squared_error

from pipeline.logic.targets import positive_class
from pipeline.spec import LOWER_IS_BETTER, JobSpec

CALIBRATION_BINS = 10


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


def worse_by(metric: str, value: float, reference: float) -> float:
    """How much worse `value` is than `reference` (negative: better)."""
    return value - reference if metric in LOWER_IS_BETTER else reference - value
