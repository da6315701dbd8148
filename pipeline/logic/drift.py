"""Drift statistics between the data a model learned on and the data it scores. Pure: arrays
in, numbers out.

Per feature: the population stability index (PSI; numbers binned at the training deciles,
categories and flags by value, NULL a bin of its own), the change of its NULL share, and a
second opinion by kind: the Kolmogorov-Smirnov statistic for numbers, the share of categories
the model never saw for categories. Each figure is `ok`, `watch` or `alert` by the job's
`monitoring:` thresholds.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from pipeline.spec import JobSpec

BINS = 10  # decile bins of a numeric feature
# A numeric feature with at most this many distinct training values is binned per value: more
# than the deciles could tell apart, and few enough that each value has rows to compare
LOW_CARDINALITY = 20
EPSILON = 1e-6
KS_SAMPLE = 100_000  # values per side for the KS statistic: its error is then about 0.003
SCORE = "(score)"  # the feature name of the score's own drift


@dataclass(frozen=True)
class Finding:
    """One statistic of one feature (or of the score) and its level."""

    feature: str
    statistic: str
    value: float
    threshold: float
    watch: float | None = None

    @property
    def level(self) -> str:
        if not math.isfinite(self.value):
            return "ok"
        if self.value > self.threshold:
            return "alert"
        return "watch" if self.watch is not None and self.value >= self.watch else "ok"


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two histograms of counts."""
    p = expected / max(expected.sum(), 1) + EPSILON
    q = actual / max(actual.sum(), 1) + EPSILON
    return float(np.sum((q - p) * np.log(q / p)))


@dataclass(frozen=True)
class NumericBins:
    """How a numeric feature is binned for its PSI, learned from its training values.

    A feature with at most LOW_CARDINALITY distinct training values (a month, a count) gets one
    bin per value and one for any value training never had; otherwise the bins lie between its
    training deciles, with one bin below the training minimum and one above the maximum. Either
    way NULLs (and NaN) have a bin of their own. No shift can hide in an edge bin: a value
    training never saw always lands in a bin training left empty.
    """

    values: np.ndarray | None  # per-value bins: the sorted distinct training values
    edges: np.ndarray  # decile bins: the distinct deciles, minimum and maximum included

    @classmethod
    def learn(cls, train) -> "NumericBins":
        present = finite_values(train)
        distinct = np.unique(present)
        if len(distinct) <= LOW_CARDINALITY:
            return cls(values=distinct, edges=np.array([]))
        return cls(values=None, edges=np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1))))

    def counts(self, values) -> np.ndarray:
        """Rows per bin, in `labels` order."""
        values = np.asarray(values, dtype="float64")
        finite = np.isfinite(values)
        present = values[finite]
        if self.values is not None:
            where = np.searchsorted(self.values, present)
            known = where < len(self.values)
            known[known] = self.values[where[known]] == present[known]
            inner = np.bincount(where[known], minlength=len(self.values))
            return np.concatenate([inner, [(~known).sum(), (~finite).sum()]])
        low, high = self.edges[0], self.edges[-1]
        inside = present[(present >= low) & (present <= high)]
        inner = np.bincount(
            np.searchsorted(self.edges[1:-1], inside), minlength=len(self.edges) - 1
        )
        below, above = (present < low).sum(), (present > high).sum()
        return np.concatenate([[below], inner, [above, (~finite).sum()]])

    def labels(self, number: Callable[[float], str]) -> list[str]:
        """What each bin holds, numbers written by `number`."""
        if self.values is not None:
            return [f"= {number(v)}" for v in self.values] + ["any other value", "missing"]
        low, high = self.edges[0], self.edges[-1]
        cuts = [number(e) for e in self.edges]
        inner = [f"{cuts[0]} – {cuts[1]}"]
        inner += [f"> {lo} – {hi}" for lo, hi in zip(cuts[1:-1], cuts[2:], strict=True)]
        return [f"< {number(low)}", *inner, f"> {number(high)}", "missing"]


def finite_values(values) -> np.ndarray:
    values = np.asarray(values, dtype="float64")
    return values[np.isfinite(values)]


def numeric_histograms(train, scored) -> tuple[np.ndarray, np.ndarray]:
    """Counts per bin of `NumericBins` learned from the training values."""
    bins = NumericBins.learn(train)
    return bins.counts(train), bins.counts(scored)


def categorical_histograms(train, scored) -> tuple[np.ndarray, np.ndarray]:
    """Counts per value seen in either side (as text), missing values included as a value."""
    train = pd.Series(np.asarray(train, dtype=object)).map(str)  # None -> "None", as str() does
    scored = pd.Series(np.asarray(scored, dtype=object)).map(str)
    values = sorted(set(train.unique()) | set(scored.unique()))

    def counts(column):
        codes = pd.Categorical(column, categories=values).codes
        return np.bincount(codes, minlength=len(values))

    return counts(train), counts(scored)


def missing(values: np.ndarray) -> np.ndarray:
    """True where a column read by `read_column` holds NULL (None or NaN)."""
    return pd.isna(values)


def null_share(values: np.ndarray) -> float:
    return float(missing(values).mean()) if len(values) else 0.0


def ks_statistic(train: np.ndarray, scored: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic of the non-missing values (sampled, seeded)."""
    rng = np.random.default_rng(0)
    sides = []
    for values in (train, scored):
        values = np.asarray(values, dtype="float64")
        values = values[np.isfinite(values)]
        if len(values) > KS_SAMPLE:
            values = rng.choice(values, KS_SAMPLE, replace=False)
        sides.append(values)
    if not all(len(side) for side in sides):
        return float("nan")
    return float(ks_2samp(*sides).statistic)


def unseen_share(train: np.ndarray, scored: np.ndarray) -> float:
    """The share of scored rows whose (non-missing) category never occurs in training."""
    if not len(scored):
        return 0.0
    known = pd.unique(pd.Series(train).dropna().astype(str))
    present = pd.Series(scored).dropna().astype(str)
    return float((~present.isin(known)).sum() / len(scored))


def feature_findings(spec: JobSpec, column: str, train, scored) -> list[Finding]:
    """Every drift statistic of one feature."""
    limits = spec.monitoring
    numeric = column in spec.features.numeric
    histograms = numeric_histograms if numeric else categorical_histograms
    out = [
        Finding(column, "psi", psi(*histograms(train, scored)), limits.psi_alert, limits.psi_watch),
        Finding(
            column,
            "null_rate_change",
            abs(null_share(scored) - null_share(train)),
            limits.null_rate_change_alert,
        ),
    ]
    if numeric:
        out.append(Finding(column, "ks", ks_statistic(train, scored), limits.ks_alert))
    elif column in spec.features.categorical:
        out.append(
            Finding(column, "unseen_share", unseen_share(train, scored), limits.unseen_share_alert)
        )
    return out
