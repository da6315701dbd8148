"""Drift statistics between the data a model learned on and the data it scores. Pure: arrays
in, numbers out, batch by batch, so a table of any size is measured in bounded memory.

Per feature: the population stability index (PSI; numbers binned at the training deciles,
categories and flags by value, NULL a bin of its own), the change of its NULL share, and a
second opinion by kind: the Kolmogorov-Smirnov statistic for numbers (on seeded samples of
fixed size), the share of categories the model never saw for categories. Each figure is `ok`,
`watch` or `alert` by the job's `monitoring:` thresholds.

A stream is tallied batch by batch (`NumericTally`, `CategoryTally`): counts per bin, NULLs,
rows, a sample. The whole-array functions (`numeric_histograms`, `feature_findings`, ...) are
the same tallies fed one batch, so a streamed statistic equals the whole-column one exactly.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.spec import JobSpec

BINS = 10  # decile bins of a numeric feature
# A numeric feature with at most this many distinct training values is binned per value: more
# than the deciles could tell apart, and few enough that each value has rows to compare
LOW_CARDINALITY = 20
EPSILON = 1e-6
KS_SAMPLE = 100_000  # values per side for the KS statistic: its error is then about 0.003
LEARN_VALUES = 1_000_000  # training values a numeric feature's bins are learned from, at most
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


class Reservoir:
    """A seeded uniform sample, without replacement, of at most `size` values of a stream: the
    values given the smallest of random keys drawn in stream order, so the same stream gives
    the same sample however it is cut into batches."""

    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.keys = np.empty(0)
        self.values = np.empty(0)

    def add(self, values: np.ndarray) -> None:
        keys = np.concatenate([self.keys, self.rng.random(len(values))])
        values = np.concatenate([self.values, np.asarray(values, dtype="float64")])
        if len(keys) > self.size:
            keep = np.sort(np.argpartition(keys, self.size - 1)[: self.size])
            keys, values = keys[keep], values[keep]
        self.keys, self.values = keys, values


class NumericTally:
    """A numeric feature's stream against its bins: rows per bin, rows, NULLs (NULL or NaN),
    and a seeded sample of the finite values for the KS statistic."""

    def __init__(self, bins: NumericBins):
        self.bins = bins
        self.counts = np.zeros(len(bins.labels(str)), dtype="int64")
        self.rows = 0
        self.nulls = 0
        self.sample = Reservoir(KS_SAMPLE)

    def add(self, values) -> None:
        values = np.asarray(values, dtype="float64")
        self.counts += self.bins.counts(values)
        self.rows += len(values)
        self.nulls += int(np.isnan(values).sum())
        self.sample.add(values[np.isfinite(values)])


class CategoryTally:
    """A categorical (or flag) feature's stream: rows per value as text (NULL as `None`, as
    `str()` writes it), rows and NULLs."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.rows = 0
        self.nulls = 0

    def add(self, values) -> None:
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            array = values
        else:  # a whole array of Python values: as text, NULL (None or NaN) kept as NULL
            texts = [None if missing_value(v) else str(v) for v in np.asarray(values, dtype=object)]
            array = pa.array(texts, type=pa.string())
        counted = pc.value_counts(array)
        for value, count in zip(
            counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
        ):
            key = str(value)  # None -> "None", as before values were tallied
            self.counts[key] = self.counts.get(key, 0) + count
        self.rows += len(array)
        self.nulls += array.null_count


def missing_value(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def learn_bins(batches) -> NumericBins:
    """The bins of a numeric feature from its training values, given batch by batch: learned
    from all of them up to LEARN_VALUES finite values, from a seeded sample of that many
    beyond."""
    sample = Reservoir(LEARN_VALUES, seed=1)
    for values in batches:
        sample.add(finite_values(values))
    return NumericBins.learn(sample.values)


def category_histograms(
    train: CategoryTally, scored: CategoryTally
) -> tuple[list, np.ndarray, np.ndarray]:
    """(values, training counts, scoring counts) over every value seen on either side."""
    values = sorted(set(train.counts) | set(scored.counts))
    return (
        values,
        np.array([train.counts.get(v, 0) for v in values], dtype="int64"),
        np.array([scored.counts.get(v, 0) for v in values], dtype="int64"),
    )


def share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def ks_of(train: NumericTally, scored: NumericTally) -> float:
    """The two-sample Kolmogorov-Smirnov statistic of both sides' samples."""
    a, b = np.sort(train.sample.values), np.sort(scored.sample.values)
    if not (len(a) and len(b)):
        return float("nan")
    both = np.concatenate([a, b])  # the largest gap between the two empirical CDFs
    gap = np.searchsorted(a, both, side="right") / len(a) - np.searchsorted(
        b, both, side="right"
    ) / len(b)
    return float(np.max(np.abs(gap)))


def unseen_of(train: CategoryTally, scored: CategoryTally) -> float:
    """The share of scored rows whose (non-missing) category never occurs in training."""
    known = set(train.counts) - {"None"}
    unseen = sum(n for value, n in scored.counts.items() if value not in known and value != "None")
    return share(unseen, scored.rows)


def tally_findings(
    spec: JobSpec, column: str, train: NumericTally | CategoryTally, scored
) -> list[Finding]:
    """Every drift statistic of one feature, from its training and scoring tallies."""
    limits = spec.monitoring
    if isinstance(train, NumericTally):
        value = psi(train.counts, scored.counts)
    else:
        _, expected, actual = category_histograms(train, scored)
        value = psi(expected, actual)
    out = [
        Finding(column, "psi", value, limits.psi_alert, limits.psi_watch),
        Finding(
            column,
            "null_rate_change",
            abs(share(scored.nulls, scored.rows) - share(train.nulls, train.rows)),
            limits.null_rate_change_alert,
        ),
    ]
    if isinstance(train, NumericTally):
        out.append(Finding(column, "ks", ks_of(train, scored), limits.ks_alert))
    elif column in spec.features.categorical:
        out.append(
            Finding(column, "unseen_share", unseen_of(train, scored), limits.unseen_share_alert)
        )
    return out


def histogram_of(train: NumericTally | CategoryTally, scored) -> dict:
    """Both sides' counts per bin, with each bin's label: what the run report draws."""
    if isinstance(train, NumericTally):
        labels = train.bins.labels(lambda v: f"{v:.6g}")
        expected, actual = train.counts, scored.counts
    else:
        labels, expected, actual = category_histograms(train, scored)
    return {"labels": labels, "training": expected.tolist(), "scoring": actual.tolist()}


def tallies(spec: JobSpec, column: str, train, scored):
    """Both sides of one feature tallied from whole arrays (one batch each)."""
    sides: tuple[NumericTally, NumericTally] | tuple[CategoryTally, CategoryTally]
    if column in spec.features.numeric:
        bins = learn_bins([train])
        sides = NumericTally(bins), NumericTally(bins)
    else:
        sides = CategoryTally(), CategoryTally()
    sides[0].add(train)
    sides[1].add(scored)
    return sides


def numeric_histograms(train, scored) -> tuple[np.ndarray, np.ndarray]:
    """Counts per bin of `NumericBins` learned from the training values (whole arrays)."""
    bins = learn_bins([train])
    return bins.counts(train), bins.counts(scored)


def categorical_histograms(train, scored) -> tuple[np.ndarray, np.ndarray]:
    """Counts per value seen in either side (as text), missing values included as a value."""
    sides = CategoryTally(), CategoryTally()
    sides[0].add(train)
    sides[1].add(scored)
    _, expected, actual = category_histograms(*sides)
    return expected, actual


def feature_findings(spec: JobSpec, column: str, train, scored) -> list[Finding]:
    """Every drift statistic of one feature, from whole arrays."""
    return tally_findings(spec, column, *tallies(spec, column, train, scored))
