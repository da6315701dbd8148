"""The model: one scikit-learn Pipeline (preprocessing + estimator), seeded, judged on a holdout.

The holdout is chosen by hashing each key, so a key lands on the same side in every snapshot
and candidate and champion are always compared on the same rows.
"""

import logging
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import (
    accuracy_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipeline.errors import DataValidationError
from pipeline.spec import LOWER_IS_BETTER, JobSpec

log = logging.getLogger(__name__)

HOLDOUT_BUCKETS = 10_000
MISSING_CATEGORY = "__missing__"


def build_pipeline(spec: JobSpec) -> Pipeline:
    """Preprocessing by feature kind, then the estimator, as one fitted-together artifact."""
    numeric_steps = [("impute", SimpleImputer(strategy="median", add_indicator=True))]
    if spec.estimator.scale:
        numeric_steps.append(("scale", StandardScaler()))
    transformers = []
    if spec.features.numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), spec.features.numeric))
    if spec.features.categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                        (
                            "onehot",
                            OneHotEncoder(
                                handle_unknown="infrequent_if_exist",
                                min_frequency=20,
                                sparse_output=False,
                            ),
                        ),
                    ]
                ),
                spec.features.categorical,
            )
        )
    if spec.features.boolean:
        transformers.append(
            (
                "boolean",
                SimpleImputer(strategy="most_frequent", add_indicator=True),
                spec.features.boolean,
            )
        )
    preprocess = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)
    estimator = spec.estimator.build(spec.model.seed, spec.model.params, spec.name)
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def feature_frame(frame: pd.DataFrame, spec: JobSpec) -> pd.DataFrame:
    """Features in spec order with fixed dtypes: numbers and booleans as float, text as object.

    Training and scoring both go through here, so the model always sees the same layout.
    """
    out = {}
    for column in spec.features.numeric:
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in spec.features.categorical:
        values = frame[column].astype("object")
        out[column] = values.where(values.notna(), np.nan)
    for column in spec.features.boolean:
        out[column] = frame[column].map({True: 1.0, False: 0.0}).astype("float64")
    return pd.DataFrame(out, index=frame.index)


def holdout_mask(keys: pd.Series, fraction: float) -> np.ndarray:
    """True for keys in the holdout: a stable hash of the key, not a random draw."""
    hashes = pd.util.hash_pandas_object(keys.astype(str), index=False).to_numpy()
    return (hashes % HOLDOUT_BUCKETS) < int(round(fraction * HOLDOUT_BUCKETS))


def target_values(frame: pd.DataFrame, spec: JobSpec) -> pd.Series:
    y = frame[spec.target]
    if spec.task == "classification":
        classes = pd.unique(y.dropna())
        if len(classes) != 2:
            raise DataValidationError(
                f"job {spec.name}: target {spec.target!r} has {len(classes)} class(es) "
                f"{sorted(map(str, classes))[:5]} in the training snapshot; a binary classifier "
                "needs exactly 2"
            )
        return y.astype(str)
    return pd.to_numeric(y, errors="coerce").astype("float64")


def predict_scores(model: Pipeline, features: pd.DataFrame, task: str):
    """(score, label): P(positive class) and the predicted class, or the prediction and None."""
    if task == "classification":
        proba = model.predict_proba(features)[:, 1]
        classes = model.classes_
        labels = np.where(proba >= 0.5, classes[1], classes[0])
        return proba, labels
    return model.predict(features).astype("float64"), None


def evaluate(model: Pipeline, features: pd.DataFrame, y: pd.Series, task: str) -> dict:
    """Holdout metrics for the task; higher or lower is better as `LOWER_IS_BETTER` says."""
    score, label = predict_scores(model, features, task)
    if task == "classification":
        positive = y == model.classes_[1]
        return {
            "roc_auc": float(roc_auc_score(positive, score)),
            "log_loss": float(log_loss(positive, np.clip(score, 1e-15, 1 - 1e-15))),
            "accuracy": float(accuracy_score(y, label)),
            "holdout_rows": int(len(y)),
        }
    return {
        "rmse": float(root_mean_squared_error(y, score)),
        "mae": float(mean_absolute_error(y, score)),
        "r2": float(r2_score(y, score)),
        "holdout_rows": int(len(y)),
    }


def split(frame: pd.DataFrame, spec: JobSpec):
    """(train X, train y, holdout X, holdout y) from a training snapshot frame."""
    mask = holdout_mask(frame[spec.source.key], spec.model.holdout_fraction)
    features = feature_frame(frame, spec)
    y = target_values(frame, spec)
    if mask.all() or not mask.any():
        raise DataValidationError(
            f"job {spec.name}: {len(frame)} training rows are too few for a holdout "
            f"of {spec.model.holdout_fraction:.0%}"
        )
    return features[~mask], y[~mask], features[mask], y[mask]


def fit(spec: JobSpec, frame: pd.DataFrame) -> tuple[Pipeline, dict, float]:
    """Fit the pipeline on the training side; returns (model, holdout metrics, seconds)."""
    x_train, y_train, x_hold, y_hold = split(frame, spec)
    model = build_pipeline(spec)
    started = time.perf_counter()
    log.info(
        "fitting %s on %d rows (%d features), holdout %d rows, seed %d",
        spec.model.estimator,
        len(x_train),
        x_train.shape[1],
        len(x_hold),
        spec.model.seed,
    )
    model.fit(x_train, y_train)
    seconds = time.perf_counter() - started
    metrics = evaluate(model, x_hold, y_hold, spec.task)
    metrics["train_rows"] = int(len(x_train))
    log.info("fitted in %.1f s; holdout %s", seconds, metrics)
    return model, metrics, seconds


def beats(spec: JobSpec, candidate: dict, champion: dict) -> tuple[bool, str]:
    """Whether the candidate beats the champion on the primary metric by the job's margin."""
    metric, margin = spec.primary_metric, spec.model.promotion_margin
    new, old = candidate[metric], champion[metric]
    gain = (old - new) if metric in LOWER_IS_BETTER else (new - old)
    direction = "lower" if metric in LOWER_IS_BETTER else "higher"
    verdict = gain >= margin and gain > 0
    reason = (
        f"{metric} {new:.5f} vs champion {old:.5f} ({direction} is better): "
        f"gain {gain:+.5f} {'meets' if verdict else 'is below'} the margin {margin}"
    )
    return verdict, reason
