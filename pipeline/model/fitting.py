"""The model: one scikit-learn Pipeline (preprocessing + estimator), seeded, judged on a holdout.

The holdout is chosen by hashing each key, so a key lands on the same side in every snapshot
and candidate and champion are always compared on the same rows.
"""

import logging
import time
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipeline.errors import DataValidationError
from pipeline.logic.targets import positive_class, resolve_classes
from pipeline.spec import JobSpec, class_label

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
    """The target as the model learns it: class names, or floats for a regression."""
    y = frame[spec.target]
    if spec.task == "classification":
        resolve_classes(spec, pd.unique(y.dropna()))
        return y.map(class_label)
    return pd.to_numeric(y, errors="coerce").astype("float64")


class Predictions(NamedTuple):
    """A model's output for a batch: `score` and `label` per row, and each class's probability
    (`probabilities[:, i]` is the probability of `classes[i]`) for a classifier."""

    score: np.ndarray
    label: np.ndarray | None
    probabilities: np.ndarray | None
    classes: list[str]


def predict(model: Pipeline, features: pd.DataFrame, spec: JobSpec) -> Predictions:
    """Score rows. A binary classifier's score is the positive class's probability and its label
    that class when the score is at least 0.5; with more classes, the label is the most likely
    class and the score its probability; a regression's score is the predicted value."""
    if spec.task != "classification":
        return Predictions(model.predict(features).astype("float64"), None, None, [])
    proba = model.predict_proba(features)
    classes = [str(c) for c in model.classes_]
    if len(classes) == 2:
        positive = positive_class(spec, classes)
        index = classes.index(positive)
        score = proba[:, index]
        labels = np.where(score >= 0.5, positive, classes[1 - index])
    else:
        best = proba.argmax(axis=1)
        score = proba[np.arange(len(proba)), best]
        labels = np.asarray(classes, dtype=object)[best]
    return Predictions(score, labels, proba, classes)


def evaluate(model: Pipeline, features: pd.DataFrame, y: pd.Series, spec: JobSpec) -> dict:
    """Holdout metrics of `model` on `features` with truth `y` (see `judge`)."""
    return judge(predict(model, features, spec), y, spec)


def judge(out: Predictions, y: pd.Series, spec: JobSpec) -> dict:
    """Holdout metrics of predictions `out` for the task; higher or lower is better as
    `LOWER_IS_BETTER` says.

    Classification: ROC AUC (binary: of the score; 3 or more classes: the mean of one-vs-rest
    AUCs over the classes present, i.e. macro), log loss over every class's probability (a
    holdout class the model never learned counts as probability 0) and accuracy.
    """
    if spec.task == "classification" and out.probabilities is not None:
        truth = y.to_numpy()
        column = {c: i for i, c in enumerate(out.classes)}
        index = np.array([column.get(v, -1) for v in truth])
        p_true = np.where(index >= 0, out.probabilities[np.arange(len(truth)), index], 0.0)
        aucs = [
            roc_auc_score(truth == c, out.probabilities[:, i])
            for i, c in enumerate(out.classes)
            if 0 < (truth == c).sum() < len(truth)
        ]
        if len(out.classes) == 2:
            aucs = aucs[-1:] if aucs else []  # both one-vs-rest AUCs of a binary model are equal
        return {
            "roc_auc": float(np.mean(aucs)) if aucs else float("nan"),
            "log_loss": float(-np.mean(np.log(np.clip(p_true, 1e-15, 1.0)))),
            "accuracy": float(accuracy_score(truth, out.label)),
            "holdout_rows": int(len(y)),
        }
    return {
        "rmse": float(root_mean_squared_error(y, out.score)),
        "mae": float(mean_absolute_error(y, out.score)),
        "r2": float(r2_score(y, out.score)),
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


class Fitted(NamedTuple):
    """A fitted pipeline, its holdout metrics, the seconds its fit took, and its scores on the
    holdout (in snapshot order): the reference monitoring compares every run's scores with."""

    model: Pipeline
    metrics: dict
    seconds: float
    holdout_scores: np.ndarray


def fit(spec: JobSpec, frame: pd.DataFrame) -> Fitted:
    """Fit the pipeline on the training side and judge it on the holdout."""
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
    judged = predict(model, x_hold, spec)
    metrics = judge(judged, y_hold, spec)
    metrics["train_rows"] = int(len(x_train))
    log.info("fitted in %.1f s; holdout %s", seconds, metrics)
    return Fitted(model, metrics, seconds, judged.score)
