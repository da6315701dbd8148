"""Model files are skops, checked by sha256 and against an explicit list of trusted types."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from pipeline import registry
from pipeline.errors import ModelIntegrityError
from pipeline.storage import DataRoot


def fitted(*steps):
    x, y = np.arange(40, dtype=float).reshape(20, 2), np.arange(20) % 2
    return Pipeline([*steps, ("model", LogisticRegression())]).fit(x, y)


def test_a_saved_model_loads_back_identical(tmp_path):
    root = DataRoot(str(tmp_path))
    model = fitted()
    artifact = registry.save_model(root, root.path("m"), model, {"job": "t"}, "# card")
    loaded = registry.load_model(artifact["uri"], artifact["sha256"])
    x = np.arange(10, dtype=float).reshape(5, 2)
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert (tmp_path / "m" / "MODEL_CARD.md").read_text() == "# card"


def double(values):
    """Stands for any code a model file could smuggle in."""
    return values * 2


def test_a_model_holding_an_arbitrary_function_is_refused(tmp_path):
    root = DataRoot(str(tmp_path))
    model = fitted(("f", FunctionTransformer(double)))
    with pytest.raises(ModelIntegrityError, match="outside the trusted list: .*double"):
        registry.save_model(root, root.path("m"), model, {"job": "t"}, "# card")


def test_a_wrong_checksum_refuses_to_load(tmp_path):
    root = DataRoot(str(tmp_path))
    artifact = registry.save_model(root, root.path("m"), fitted(), {"job": "t"}, "# card")
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        registry.load_model(artifact["uri"], "0" * 64)
