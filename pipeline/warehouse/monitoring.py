"""scoring.drift_reports and scoring.model_performance: what monitoring measured per run.

Drift: one row per run, feature and statistic. Realised performance: one row per published
run and metric, judged again (replaced) whenever more labels have arrived.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from psycopg2.extras import Json

from pipeline.warehouse import db


@dataclass(frozen=True)
class DriftRow(db.Row):
    """A row of scoring.drift_reports."""

    feature: str
    statistic: str
    value: float | None
    threshold: float
    level: str | None = None
    watch: float | None = None
    alert: bool = False  # a drift alert of the run: over its threshold, in the deciding population
    population: str = "all"  # all: the whole scored table; new: rows new since the last run
    rows: int | None = None
    decides: bool = True  # the population the run's alerts come from
    histogram: dict | None = None  # psi rows: both sides' counts per bin, with bin labels

    @property
    def grade(self) -> str:
        """ok, watch or alert (rows from before levels were stored have only `alert`)."""
        return self.level or ("alert" if self.alert else "ok")


@dataclass(frozen=True)
class PerformanceRow(db.Row):
    """A row of scoring.model_performance."""

    run_id: str
    model_version: int
    metric: str
    value: float | None
    labelled: int
    scored: int
    trusted: bool
    alert: bool
    holdout: float | None = None
    computed_at: datetime | None = None
    eligible: int | None = None  # scored keys unlabelled at the run's as_of
    worse_by: float | None = None  # than holdout; negative: better
    tolerance: float | None = None


def record_drift(url: str, job: str, run_id: str, rows: list[DriftRow]) -> None:
    """Replace the run's drift rows."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "DELETE FROM scoring.drift_reports WHERE job = %s AND run_id = %s", (job, run_id)
        )
        db.insert_rows(
            cur,
            "drift_reports",
            [
                {
                    "job": job,
                    "run_id": run_id,
                    "feature": r.feature,
                    "statistic": r.statistic,
                    "value": r.value if r.value is not None and math.isfinite(r.value) else None,
                    "threshold": r.threshold,
                    "watch": r.watch,
                    "alert": r.alert,
                    "level": r.grade,
                    "population": r.population,
                    "rows": r.rows,
                    "decides": r.decides,
                    "histogram": Json(r.histogram) if r.histogram is not None else None,
                }
                for r in rows
            ],
        )


def drift_of_run(url: str, job: str, run_id: str, levels: tuple[str, ...] = ()) -> list[DriftRow]:
    """The run's drift rows (only those of `levels`, when given), by level, feature, statistic."""
    return db.fetch_rows(
        url,
        DriftRow,
        "SELECT feature, statistic, value, threshold, watch, level, alert, population, rows,"
        " decides, histogram FROM scoring.drift_reports WHERE job = %s AND run_id = %s"
        " AND (cardinality(%s::text[]) = 0 OR level = ANY(%s::text[]))"
        " ORDER BY decides DESC, feature, statistic",
        (job, run_id, list(levels), list(levels)),
    )


def record_performance(url: str, job: str, run_ids: list[str], rows: list[dict]) -> None:
    """Replace the realised performance of those runs with `rows`."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "DELETE FROM scoring.model_performance WHERE job = %s AND run_id = ANY(%s)",
            (job, run_ids),
        )
        db.insert_rows(cur, "model_performance", rows)


def performance_of_job(url: str, job: str, metric: str | None = None) -> list[PerformanceRow]:
    """The job's realised performance (of one metric, when given), oldest run first."""
    return db.fetch_rows(
        url,
        PerformanceRow,
        "SELECT p.* FROM scoring.model_performance AS p JOIN scoring.scoring_runs AS r"
        " ON r.job = p.job AND r.run_id = p.run_id"
        " WHERE p.job = %s AND (%s::text IS NULL OR p.metric = %s) ORDER BY r.as_of, p.metric",
        (job, metric, metric),
    )


def has_performance_table(url: str) -> bool:
    """Whether scoring.model_performance exists (migration 007)."""
    with db.transaction(url) as conn:
        return db.relation_exists(conn, "scoring.model_performance")
