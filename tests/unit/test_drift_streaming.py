"""Drift statistics tallied batch by batch equal the same statistics of the whole columns."""

import numpy as np
import pyarrow as pa
import pytest

from pipeline.logic.drift import (
    CategoryTally,
    NumericTally,
    Reservoir,
    feature_findings,
    learn_bins,
    tally_findings,
)
from pipeline.spec import load_spec

SPEC = load_spec("dags/jobs/customer_churn.yaml")


def batches(values, size: int):
    return [values[i : i + size] for i in range(0, len(values), size)]


def test_a_reservoir_keeps_the_same_sample_however_the_stream_is_cut():
    values = np.random.default_rng(0).normal(size=50_000)
    whole, cut = Reservoir(1_000), Reservoir(1_000)
    whole.add(values)
    for part in batches(values, 777):
        cut.add(part)
    assert sorted(whole.values) == sorted(cut.values)


@pytest.mark.parametrize("column", ["monthly_charges", "tenure_months", "plan", "autopay"])
def test_streamed_statistics_equal_the_whole_column_ones(column):
    rng = np.random.default_rng(5)
    n = 30_000
    if column in SPEC.features.numeric:
        train = rng.normal(60, 15, n) if column == "monthly_charges" else rng.integers(0, 12, n)
        scored = rng.normal(70, 15, n) if column == "monthly_charges" else rng.integers(2, 16, n)
        train, scored = train.astype(float), scored.astype(float)
        train[::17], scored[::13] = np.nan, np.nan
    elif column == "plan":
        train = rng.choice(["basic", "plus", "premium", None], n).astype(object)
        scored = rng.choice(["basic", "plus", "new", None], n).astype(object)
    else:
        train = rng.choice([True, False, None], n).astype(object)
        scored = rng.choice([True, False, None], n, p=[0.6, 0.3, 0.1]).astype(object)
    whole = {f.statistic: f.value for f in feature_findings(SPEC, column, train, scored)}

    numeric = column in SPEC.features.numeric
    if numeric:
        bins = learn_bins(batches(train, 4_096))
        sides = NumericTally(bins), NumericTally(bins)
    else:
        sides = CategoryTally(), CategoryTally()
    for side, values in zip(sides, (train, scored), strict=True):
        for part in batches(values, 4_096):
            side.add(part if numeric else pa.array(list(part)))
    streamed = {f.statistic: f.value for f in tally_findings(SPEC, column, *sides)}
    assert streamed.keys() == whole.keys()
    for statistic, value in whole.items():
        assert streamed[statistic] == pytest.approx(value, abs=1e-9), statistic
