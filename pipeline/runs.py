"""A run's identity and bookkeeping: its as_of, its scoring_runs row, whether it retrains."""

import logging
from datetime import UTC, datetime, timedelta

from pipeline import db
from pipeline.errors import PipelineError
from pipeline.spec import JobSpec

log = logging.getLogger(__name__)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_timestamp(value: str, what: str = "as_of") -> datetime:
    """An ISO-8601 timestamp; naive values are taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PipelineError(
            f"{what}: {value!r} is not an ISO-8601 timestamp (e.g. 2026-11-01T02:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def resolve_as_of(
    param: str | None, logical_date: datetime | None, run_after: datetime
) -> datetime:
    """The run's cut-off: the `as_of` trigger parameter, else the logical date, else run_after."""
    if param:
        return parse_timestamp(param)
    chosen = logical_date or run_after
    return chosen.astimezone(UTC)


def start_run(url: str, spec: JobSpec, run_id: str, logical_date, as_of: datetime) -> dict:
    """Record the run as running (a re-run resets its row) and return its identity."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO scoring.scoring_runs"
            " (job, run_id, dag_run_id, logical_date, as_of, status)"
            " VALUES (%s, %s, %s, %s, %s, 'running')"
            " ON CONFLICT (job, run_id) DO UPDATE SET as_of = EXCLUDED.as_of,"
            " logical_date = EXCLUDED.logical_date, status = CASE"
            "   WHEN scoring.scoring_runs.status = 'published' THEN 'published' ELSE 'running' END,"
            " error = NULL",
            (spec.name, run_id, run_id, logical_date, as_of),
        )
    log.info("run %s of %s: as_of %s", run_id, spec.name, as_of.isoformat())
    return {
        "run_id": run_id,
        "dag_run_id": run_id,
        "logical_date": logical_date.isoformat() if logical_date else None,
        "as_of": as_of.isoformat(),
    }


def mark_failed(url: str, job: str, run_id: str, error: str) -> None:
    """Record why a run stopped; a published run stays published (its data is still good)."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE scoring.scoring_runs SET status = 'failed', error = %s"
            " WHERE job = %s AND run_id = %s AND status <> 'published'",
            (error[:4000], job, run_id),
        )


def retrain_decision(url: str, spec: JobSpec, as_of: datetime, override: str) -> tuple[bool, str]:
    """Whether this run fits a candidate: the trigger's `retrain` override, then the spec policy."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT max(created_at) FROM scoring.model_versions"
            " WHERE job = %s AND status = 'champion'",
            (spec.name,),
        )
        champion_created = cur.fetchone()[0]
    if champion_created is None:
        return True, "no champion yet"
    if override in ("always", "never"):
        return override == "always", f"retrain={override} set at trigger time"
    policy = spec.retrain
    if policy.policy == "always":
        return True, "retrain.policy is always"
    if policy.policy == "never":
        return False, "retrain.policy is never: scoring with the champion"
    if policy.policy == "weekdays":
        day = WEEKDAYS[as_of.weekday()]
        return (
            day in policy.weekdays,
            f"retrain.policy weekdays {policy.weekdays}; as_of is a {day}",
        )
    due = champion_created + timedelta(days=policy.every_days) <= as_of
    return (
        due,
        f"retrain.policy every {policy.every_days} days; champion from {champion_created:%Y-%m-%d}",
    )
