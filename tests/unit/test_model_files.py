"""Model files are skops, checked by sha256 and against an explicit list of trusted types."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from pipeline.datafiles.root import DataRoot
from pipeline.errors import ModelIntegrityError
from pipeline.local.demo_data import customers_chunk, deliveries_chunk
from pipeline.model import files, fitting
from pipeline.model.card import model_card
from pipeline.spec import load_spec
from pipeline.spec.estimators import ESTIMATORS, names

JOBS = Path(__file__).resolve().parents[2] / "dags" / "jobs"
SNAPSHOT = {"uri": "data.parquet", "sha256": "0" * 64, "as_of": "2026-11-01", "row_count": 600}
VERSIONS = {"code_version": "test", "library_versions": {"scikit-learn": "test"}}
SCORES = np.array([0.25, 0.5])


def fitted(*steps):
    x, y = np.arange(40, dtype=float).reshape(20, 2), np.arange(20) % 2
    return Pipeline([*steps, ("model", LogisticRegression())]).fit(x, y)


def test_a_saved_model_loads_back_identical(tmp_path):
    root = DataRoot(str(tmp_path))
    model = fitted()
    artifact = files.save_model(root, root.path("m"), model, {"job": "t"}, "# card", SCORES)
    loaded = files.load_model(artifact["uri"], artifact["sha256"])
    x = np.arange(10, dtype=float).reshape(5, 2)
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert (tmp_path / "m" / "MODEL_CARD.md").read_text() == "# card"
    assert np.array_equal(files.stored_holdout_scores(artifact["uri"]), SCORES)


def test_holdout_scores_that_do_not_match_their_record_are_not_used(tmp_path):
    root = DataRoot(str(tmp_path))
    artifact = files.save_model(root, root.path("m"), fitted(), {"job": "t"}, "# card", SCORES)
    (tmp_path / "m" / files.HOLDOUT_SCORES).write_bytes(
        files.parquet_bytes(pa.table({"score": [0.9]}))
    )
    assert files.stored_holdout_scores(artifact["uri"]) is None


def double(values):
    """Stands for any code a model file could smuggle in."""
    return values * 2


def test_a_model_holding_an_arbitrary_function_is_refused(tmp_path):
    root = DataRoot(str(tmp_path))
    model = fitted(("f", FunctionTransformer(double)))
    with pytest.raises(ModelIntegrityError, match="outside the trusted list: .*double"):
        files.save_model(root, root.path("m"), model, {"job": "t"}, "# card", SCORES)


def test_a_wrong_checksum_refuses_to_load(tmp_path):
    root = DataRoot(str(tmp_path))
    artifact = files.save_model(root, root.path("m"), fitted(), {"job": "t"}, "# card", SCORES)
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        files.load_model(artifact["uri"], "0" * 64)


@pytest.mark.parametrize("task, name", sorted(ESTIMATORS))
def test_every_estimator_of_the_table_fits_saves_and_loads(tmp_path, task, name):
    """One row of the table is all an estimator needs: spec, building, trusted loading, card."""
    job, chunk, target = {
        "classification": ("customer_churn", customers_chunk, "churned"),
        "regression": ("delivery_delay", deliveries_chunk, "minutes_late"),
    }[task]
    raw = yaml.safe_load((JOBS / f"{job}.yaml").read_text())
    raw["model"] = {"estimator": name, "seed": 3}
    path = tmp_path / f"{job}.yaml"
    path.write_text(yaml.safe_dump(raw))
    spec = load_spec(path)
    frame = chunk(seed=1, start=0, n=600)
    frame = frame[frame[target].notna()]
    model, metrics, _, scores = fitting.fit(spec, frame)
    root = DataRoot(str(tmp_path / "data"))
    classes = [str(c) for c in getattr(model, "classes_", [])]
    metadata = {"training_snapshot": SNAPSHOT, "metrics": metrics, "classes": classes}
    card = model_card(spec, {**metadata, **VERSIONS})
    artifact = files.save_model(root, root.path("m"), model, {"job": job}, card, scores)
    loaded = files.load_model(artifact["uri"], artifact["sha256"])
    features = fitting.feature_frame(frame, spec)
    assert np.array_equal(loaded.predict(features), model.predict(features))
    assert ESTIMATORS[(task, name)].card in card
    # what monitoring compares each run's scores with: the holdout scored as it streams a
    # snapshot, a row group at a time
    holdout = features[fitting.holdout_mask(frame[spec.source.key], spec.model.holdout_fraction)]
    streamed = [
        fitting.predict(loaded, holdout[i : i + 64], spec).score for i in range(0, len(holdout), 64)
    ]
    assert np.array_equal(files.stored_holdout_scores(artifact["uri"]), np.concatenate(streamed))


def test_the_spec_offers_exactly_the_estimators_of_the_table():
    offered = {(task, name) for task in ("classification", "regression") for name in names(task)}
    assert offered == set(ESTIMATORS)
    assert {name for task, name in ESTIMATORS} >= {"hist_gradient_boosting", "random_forest"}
