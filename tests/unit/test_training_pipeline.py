"""The training pipeline builder: one seeded Pipeline, stable holdout, honest gate."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from pipeline.errors import DataValidationError, SpecError
from pipeline.local.demo_data import customers_chunk
from pipeline.logic.gate import beats
from pipeline.model import fitting
from pipeline.spec import load_spec

JOBS = Path(__file__).resolve().parents[2] / "dags" / "jobs"
CHURN = load_spec(JOBS / "customer_churn.yaml")


def with_model(spec, **model):
    return spec.model_copy(update={"model": spec.model.model_copy(update=model)})


def test_pipeline_is_preprocessing_plus_seeded_estimator():
    model = fitting.build_pipeline(CHURN)
    assert isinstance(model, Pipeline)
    assert [name for name, _ in model.steps] == ["preprocess", "model"]
    estimator = model.named_steps["model"]
    assert isinstance(estimator, HistGradientBoostingClassifier)
    assert estimator.random_state == CHURN.model.seed
    assert estimator.max_iter == 200
    columns = {name: cols for name, _, cols in model.named_steps["preprocess"].transformers}
    assert columns["numeric"] == CHURN.features.numeric
    assert columns["categorical"] == CHURN.features.categorical
    assert columns["boolean"] == CHURN.features.boolean


def test_unknown_estimator_param_names_the_key():
    spec = with_model(CHURN, params={"max_iter": 10, "max_itr": 5})
    with pytest.raises(SpecError, match=r"model\.params\.max_itr: not a parameter"):
        fitting.build_pipeline(spec)


def test_feature_frame_fixes_order_and_dtypes():
    frame = customers_chunk(seed=1, start=0, n=200)
    features = fitting.feature_frame(frame, CHURN)
    assert list(features.columns) == CHURN.features.all
    assert features["is_senior"].dtype == "float64"
    assert set(features["is_senior"].dropna().unique()) <= {0.0, 1.0}
    assert features["plan"].dtype == object
    assert features["tenure_months"].dtype == "float64"


def test_holdout_is_stable_per_key_and_near_the_fraction():
    keys = pd.Series(np.arange(20_000))
    mask = fitting.holdout_mask(keys, 0.2)
    assert 0.18 < mask.mean() < 0.22
    shuffled = keys.sample(frac=1.0, random_state=3)
    assert (fitting.holdout_mask(shuffled, 0.2) == mask[shuffled.to_numpy()]).all()


def test_same_seed_same_data_gives_identical_predictions():
    frame = customers_chunk(seed=5, start=0, n=4_000)
    frame = frame[frame["churned"].notna()]
    spec = with_model(CHURN, params={"max_iter": 30})
    first, metrics, _, _ = fitting.fit(spec, frame)
    second = fitting.fit(spec, frame).model
    features = fitting.feature_frame(frame, spec)
    assert np.array_equal(first.predict_proba(features), second.predict_proba(features))
    assert 0.6 < metrics["roc_auc"] <= 1.0
    assert metrics["holdout_rows"] + metrics["train_rows"] == len(frame)


def test_single_class_target_is_a_clear_error():
    frame = customers_chunk(seed=5, start=0, n=500).assign(churned=False)
    with pytest.raises(DataValidationError, match="has 1 class"):
        fitting.fit(CHURN, frame)


@pytest.mark.parametrize(
    ("metric", "candidate", "champion", "margin", "promoted"),
    [
        ("roc_auc", 0.80, 0.79, 0.005, True),
        ("roc_auc", 0.80, 0.799, 0.005, False),
        ("roc_auc", 0.79, 0.79, 0.0, False),
        ("rmse", 4.0, 5.0, 0.5, True),
        ("rmse", 5.0, 4.0, 0.0, False),
    ],
)
def test_gate_respects_metric_direction_and_margin(metric, candidate, champion, margin, promoted):
    task = "regression" if metric == "rmse" else "classification"
    spec = CHURN if task == "classification" else load_spec(JOBS / "delivery_delay.yaml")
    spec = with_model(spec, primary_metric=metric, promotion_margin=margin)
    verdict, reason = beats(spec, {metric: candidate}, {metric: champion})
    assert verdict is promoted
    gain = champion - candidate if metric == "rmse" else candidate - champion
    expected = f"the margin {margin}" if gain > 0 else "not better than the champion"
    assert metric in reason and expected in reason and not reason.endswith("below the margin 0.0")
