"""A run's scores summarised batch by batch, for its report: rows, mean, range, quantiles
(from a seeded sample of fixed size) and a histogram of equal bins. Pure."""

import numpy as np

from pipeline.logic.drift import Reservoir

SCORE_BINS = 20
QUANTILE_SAMPLE = 100_000  # quantiles from this many scores: their rank error is about 0.3%
QUANTILES = {"p10": 0.1, "median": 0.5, "p90": 0.9}


class ScoreSummary:
    """Scores tallied as they stream: `add` every batch, then `histogram` over a known range
    (`add_to_histogram` a second pass when the range is only known after the first)."""

    def __init__(self):
        self.rows = 0
        self.finite = 0
        self.total = 0.0
        self.low = np.inf
        self.high = -np.inf
        self.sample = Reservoir(QUANTILE_SAMPLE, seed=2)
        self.counts = np.zeros(SCORE_BINS, dtype="int64")
        self.edges: np.ndarray | None = None

    def add(self, scores: np.ndarray) -> None:
        scores = np.asarray(scores, dtype="float64")
        present = scores[np.isfinite(scores)]
        self.rows += len(scores)
        self.finite += len(present)
        if len(present):
            self.total += float(present.sum())
            self.low, self.high = min(self.low, present.min()), max(self.high, present.max())
        self.sample.add(present)

    def range_for(self, probabilities: bool) -> tuple[float, float]:
        """[0, 1] for probabilities, else the scores' own range (widened when it is a point)."""
        if probabilities and self.finite and 0 <= self.low <= self.high <= 1:
            return 0.0, 1.0
        if not self.finite:
            return 0.0, 1.0
        if self.high <= self.low:
            return self.low - 0.5, self.high + 0.5
        return float(self.low), float(self.high)

    def add_to_histogram(self, scores: np.ndarray, low: float, high: float) -> None:
        scores = np.asarray(scores, dtype="float64")
        counts, edges = np.histogram(
            scores[np.isfinite(scores)], bins=SCORE_BINS, range=(low, high)
        )
        self.counts += counts
        self.edges = edges

    def to_json(self) -> dict:
        return {
            "rows": self.rows,
            "not_a_number": self.rows - self.finite,
            "mean": self.total / self.finite if self.finite else None,
            "min": float(self.low) if self.finite else None,
            "max": float(self.high) if self.finite else None,
            **{
                name: float(np.quantile(self.sample.values, q)) if self.finite else None
                for name, q in QUANTILES.items()
            },
            "histogram": {
                "counts": self.counts.tolist(),
                "edges": self.edges.tolist() if self.edges is not None else [],
            },
        }
