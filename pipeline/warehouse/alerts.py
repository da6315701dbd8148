"""scoring.alerts: every alert raised for a job, stored once; every surface reads these rows.

A run's drift, realised-performance and validation-warning alerts carry its run id (a re-run
replaces them); `python -m pipeline performance` between runs stores its alerts without one.
"""

from dataclasses import dataclass
from datetime import datetime

from pipeline.warehouse import db


@dataclass(frozen=True)
class AlertRow(db.Row):
    """A row of scoring.alerts."""

    kind: str  # drift, performance, validation_warning
    subject: str  # a feature or (score); the judged run; the suite
    message: str
    statistic: str | None = None
    value: float | None = None
    threshold: float | None = None
    population: str | None = None  # drift: new or all
    run_id: str | None = None
    raised_at: datetime | None = None


def record_alerts(
    url: str,
    job: str,
    run_id: str | None,
    kind: str,
    rows: list[AlertRow],
    subject: str | None = None,
) -> None:
    """Replace the alerts of `kind` that `run_id` raised (None: the performance command's);
    with `subject`, only those about it (one suite's warnings)."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "DELETE FROM scoring.alerts WHERE job = %s AND kind = %s"
            " AND run_id IS NOT DISTINCT FROM %s AND (%s::text IS NULL OR subject = %s)",
            (job, kind, run_id, subject, subject),
        )
        db.insert_rows(
            cur,
            "alerts",
            [
                {
                    "job": job,
                    "run_id": run_id,
                    "kind": kind,
                    "subject": r.subject,
                    "statistic": r.statistic,
                    "value": r.value,
                    "threshold": r.threshold,
                    "population": r.population,
                    "message": r.message,
                }
                for r in rows
            ],
        )


def alerts_of_run(url: str, job: str, run_id: str) -> list[AlertRow]:
    """The run's alerts: validation warnings, drift, then realised performance."""
    return db.fetch_rows(
        url,
        AlertRow,
        "SELECT * FROM scoring.alerts WHERE job = %s AND run_id = %s"
        " ORDER BY array_position(ARRAY['validation_warning', 'drift', 'performance'], kind),"
        " id",
        (job, run_id),
    )


def alerts_since(url: str, job: str, run_id: str, published_at: datetime | None) -> list[AlertRow]:
    """What a run raised, and what the performance command raised after it was published."""
    return db.fetch_rows(
        url,
        AlertRow,
        "SELECT * FROM scoring.alerts WHERE job = %s AND kind IN ('drift', 'performance')"
        " AND (run_id = %s OR (run_id IS NULL AND raised_at >= %s)) ORDER BY id",
        (job, run_id, published_at),
    )


def last_run_alerted(url: str, job: str) -> bool:
    """Whether the run `<job>_latest` shows raised a drift or performance alert, or the
    performance command raised one since it was published."""
    row = db.fetch_one(
        url,
        "SELECT EXISTS (SELECT 1 FROM scoring.jobs AS j JOIN scoring.scoring_runs AS r"
        " ON r.job = j.job AND r.run_id = j.latest_run_id JOIN scoring.alerts AS a"
        " ON a.job = j.job AND a.kind IN ('drift', 'performance')"
        " AND (a.run_id = r.run_id OR (a.run_id IS NULL AND a.raised_at >= r.published_at))"
        " WHERE j.job = %s) AS alerted",
        (job,),
    )
    return bool(row and row["alerted"])
