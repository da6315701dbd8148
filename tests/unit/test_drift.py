"""PSI: zero for identical data, large for a real shift, missing values count as a bin."""

import numpy as np

from pipeline.logic.drift import categorical_histograms, numeric_histograms, psi


def test_identical_numeric_data_has_no_drift():
    values = np.random.default_rng(1).normal(size=5_000)
    assert psi(*numeric_histograms(values, values.copy())) < 1e-9


def test_shifted_numeric_data_drifts():
    rng = np.random.default_rng(1)
    train, scored = rng.normal(size=5_000), rng.normal(loc=1.0, size=5_000)
    assert psi(*numeric_histograms(train, scored)) > 0.2


def test_a_burst_of_missing_values_is_drift():
    rng = np.random.default_rng(2)
    train = rng.normal(size=5_000)
    scored = train.copy()
    scored[:2_000] = np.nan
    assert psi(*numeric_histograms(train, scored)) > 0.2


def test_categories_compare_by_share_and_new_values_count():
    train = np.array(["a"] * 500 + ["b"] * 500, dtype=object)
    same = np.array(["b"] * 500 + ["a"] * 500, dtype=object)
    assert psi(*categorical_histograms(train, same)) < 1e-9
    new = np.array(["a"] * 300 + ["c"] * 700, dtype=object)
    assert psi(*categorical_histograms(train, new)) > 0.2
