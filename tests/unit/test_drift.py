"""PSI: zero for identical data, large for a real shift, missing values count as a bin."""

import numpy as np

from pipeline.logic.drift import (
    LOW_CARDINALITY,
    NumericBins,
    categorical_histograms,
    numeric_histograms,
    psi,
)


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


def test_months_outside_the_training_range_alert_where_decile_bins_read_zero():
    """A model trained on months {1, 2} and scored on months 1 to 4: per-value bins see the
    half of the rows training never had (decile bins put them in the edge bin: PSI 0.000)."""
    rng = np.random.default_rng(3)
    train = rng.choice([1, 2], 10_000).astype(float)
    scored = rng.choice([1, 2, 3, 4], 10_000).astype(float)
    assert psi(*numeric_histograms(train, scored)) > 0.25


def test_values_beyond_the_training_range_land_in_bins_of_their_own():
    rng = np.random.default_rng(4)
    train = np.append(rng.uniform(0, 100, 10_000), [0.0, 100.0])  # the range is [0, 100]
    above = np.concatenate([rng.uniform(0, 100, 7_000), rng.uniform(150, 300, 3_000)])
    below = np.concatenate([rng.uniform(0, 100, 7_000), rng.uniform(-300, -150, 3_000)])
    bins = NumericBins.learn(train)
    assert bins.counts(above)[-2] == 3_000 and bins.counts(below)[0] == 3_000
    assert psi(*numeric_histograms(train, above)) > 0.25
    assert psi(*numeric_histograms(train, below)) > 0.25
    assert len(bins.labels(str)) == len(bins.counts(train))


def test_an_unchanged_resample_does_not_alert_for_any_seed():
    """A fresh sample of the same distributions (continuous, a count, months) stays under the
    watch level of 0.1, whatever the seed: the out-of-range and per-value bins add no noise."""
    draws = {
        "continuous": lambda rng, n: rng.normal(50, 10, n),
        "count": lambda rng, n: rng.poisson(3, n).astype(float),
        "month": lambda rng, n: rng.integers(1, 13, n).astype(float),
    }
    for seed in range(8):
        rng = np.random.default_rng(seed)
        for name, draw in draws.items():
            value = psi(*numeric_histograms(draw(rng, 20_000), draw(rng, 2_000)))
            assert value < 0.1, (name, seed, value)


def test_a_count_with_few_values_is_binned_per_value():
    train = np.random.default_rng(5).poisson(3, 5_000).astype(float)
    bins = NumericBins.learn(train)
    assert bins.values is not None and len(bins.values) <= LOW_CARDINALITY
    assert bins.labels(lambda v: f"{v:g}")[:2] == ["= 0", "= 1"]
