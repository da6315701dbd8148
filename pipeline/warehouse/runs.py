"""scoring.scoring_runs: one row per run of a job, from its start to published or failed.

A run's row is written by its stages as they go (keyed by job and run id, so a re-run updates
it): started, heartbeats, its snapshots, retrain decision, monitoring, then published with
what made it, or failed or abandoned with why.
"""

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg2 import sql
from psycopg2.extras import Json

from pipeline.contracts import PublishRecord, Run, dumps
from pipeline.errors import PipelineError
from pipeline.redaction import redact
from pipeline.warehouse import db

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 60  # a working stage reports this often
MAX_ERROR = 4000  # characters of a run's error kept


@dataclass(frozen=True)
class RunRow(db.Row):
    """A row of scoring.scoring_runs."""

    job: str
    run_id: str
    status: str = "running"
    as_of: datetime | None = None
    logical_date: datetime | None = None
    dag_run_id: str | None = None
    model_version: int | None = None
    training_snapshot_sha256: str | None = None
    scoring_snapshot_sha256: str | None = None
    training_snapshot_id: int | None = None
    scoring_snapshot_id: int | None = None
    validation: list | None = None
    rows_scored: int | None = None
    error: str | None = None
    code_version: str | None = None
    timings: dict | None = None
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    published_at: datetime | None = None
    predictions_pruned_at: datetime | None = None
    spec: dict | None = None
    spec_sha256: str | None = None
    suites_sha256: str | None = None
    retrain: dict | None = None
    monitoring: dict | None = None
    report_uri: str | None = None
    scope: dict | None = None

    @property
    def seen(self) -> datetime | None:
        """When the run last reported: its heartbeat, else its start."""
        return self.heartbeat_at or self.started_at


def stale_after() -> timedelta:
    """How long a 'running' run may go without a report before it counts as dead
    (`SCORING_STALE_RUN_MINUTES`, default 30: longer than a task waits for a worker)."""
    return timedelta(minutes=float(os.environ.get("SCORING_STALE_RUN_MINUTES", 30)))


def record_start(cur, run: Run) -> None:
    """Insert the run as running, or restart a re-run's row (a published run stays published)."""
    cur.execute(
        "INSERT INTO scoring.scoring_runs (job, run_id, dag_run_id, logical_date, as_of,"
        " status, spec, spec_sha256, suites_sha256, scope, heartbeat_at)"
        " VALUES (%(job)s, %(run_id)s, %(run_id)s, %(logical_date)s, %(as_of)s, 'running',"
        " %(spec)s, %(spec_sha256)s, %(suites_sha256)s, %(scope)s, now())"
        " ON CONFLICT (job, run_id) DO UPDATE SET as_of = EXCLUDED.as_of,"
        " logical_date = EXCLUDED.logical_date, spec = EXCLUDED.spec, scope = EXCLUDED.scope,"
        " spec_sha256 = EXCLUDED.spec_sha256, suites_sha256 = EXCLUDED.suites_sha256,"
        " heartbeat_at = now(), timings = NULL,"
        " status = CASE WHEN scoring.scoring_runs.status = 'published' THEN 'published'"
        " ELSE 'running' END, error = NULL",
        {**run.to_json(), "spec": dumps(run.spec), "scope": dumps(run.scope)},
    )


def end_dead_runs(cur, job: str, by_run: str) -> list[str]:
    """Mark the job's 'running' runs that stopped reporting as abandoned, saying when and why."""
    cur.execute(
        "UPDATE scoring.scoring_runs SET status = 'abandoned', error = 'abandoned at '"
        " || now()::timestamptz(0) || ': no stage reported since '"
        " || coalesce(heartbeat_at, started_at)::timestamptz(0)"
        " || ' (its process died or was killed); found by run ' || %s"
        " WHERE job = %s AND run_id <> %s AND status = 'running'"
        " AND coalesce(heartbeat_at, started_at) < now() - %s RETURNING run_id",
        (by_run, job, by_run, stale_after()),
    )
    dead = [row[0] for row in cur.fetchall()]
    for run_id in dead:
        log.warning("job %s: run %s stopped reporting: marked abandoned", job, run_id)
    return dead


def refuse_if_active(cur, job: str, run_id: str) -> None:
    """One run of a job at a time: fail, naming the other run, while one still reports."""
    cur.execute(
        "SELECT run_id, as_of, coalesce(heartbeat_at, started_at) FROM scoring.scoring_runs"
        " WHERE job = %s AND run_id <> %s AND status = 'running'"
        " ORDER BY started_at DESC LIMIT 1",
        (job, run_id),
    )
    row = cur.fetchone()
    if row:
        other, as_of, seen = row
        raise PipelineError(
            f"job {job}: run {other} (as_of {as_of.isoformat()}) is still running, last report "
            f"{seen.isoformat(timespec='seconds')}; start this run when it has ended (a run "
            f"silent for {stale_after()} is marked abandoned: `python -m pipeline runs {job}`)"
        )


def beat(url: str, job: str, run_id: str) -> None:
    """Report a running run as alive now."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE scoring.scoring_runs SET heartbeat_at = now()"
            " WHERE job = %s AND run_id = %s AND status = 'running'",
            (job, run_id),
        )


@contextmanager
def heartbeat(url: str, job: str, run_id: str) -> Iterator[None]:
    """Report the run as alive now and every HEARTBEAT_SECONDS until the block ends."""
    stop = threading.Event()

    def keep_beating() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                beat(url, job, run_id)
            except Exception:  # a missed beat is harmless; the stage goes on
                log.warning("heartbeat of run %s failed", run_id, exc_info=True)

    beat(url, job, run_id)
    thread = threading.Thread(target=keep_beating, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def list_runs(url: str, job: str, limit: int = 20) -> list[RunRow]:
    """The job's latest runs, after marking those that stopped reporting as abandoned."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        end_dead_runs(cur, job, "runs command")
    return db.fetch_rows(
        url,
        RunRow,
        "SELECT job, run_id, status, as_of, started_at, heartbeat_at, rows_scored, error"
        " FROM scoring.scoring_runs WHERE job = %s ORDER BY started_at DESC LIMIT %s",
        (job, limit),
    )


def record_failure(url: str, job: str, run_id: str, error: str, when: str | None = None) -> None:
    """Mark the run failed with why, passwords masked; a published run stays published. A run
    without a row yet (refused at its start) gets one, as of `when` (else now)."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO scoring.scoring_runs (job, run_id, dag_run_id, as_of, status, error)"
            " VALUES (%(job)s, %(run_id)s, %(run_id)s,"
            " coalesce(%(when)s::timestamptz, now()), 'failed', %(error)s)"
            " ON CONFLICT (job, run_id) DO UPDATE SET status = 'failed', error = EXCLUDED.error"
            " WHERE scoring.scoring_runs.status <> 'published'",
            {"job": job, "run_id": run_id, "when": when, "error": redact(error)[:MAX_ERROR]},
        )


def set_field(url: str, job: str, run_id: str, column: str, value: Any) -> None:
    """Set one of the run's JSON or text columns (retrain, monitoring, report_uri)."""
    if column not in ("retrain", "monitoring", "report_uri"):
        raise ValueError(f"not a column a stage sets: {column!r}")
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "UPDATE scoring.scoring_runs SET {} = %s WHERE job = %s AND run_id = %s"
            ).format(sql.Identifier(column)),
            (Json(value) if isinstance(value, (dict, list)) else value, job, run_id),
        )


def record_timing(url: str, job: str, run_id: str, stage: str, seconds: float) -> None:
    """A stage's seconds in the run's `timings`; for a stage run once per partition, the
    slowest partition's."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE scoring.scoring_runs SET timings = coalesce(timings, '{}'::jsonb)"
            " || jsonb_build_object(%(stage)s::text, greatest(%(seconds)s::float8,"
            " coalesce((timings ->> %(stage)s)::float8, 0)))"
            " WHERE job = %(job)s AND run_id = %(run_id)s",
            {"stage": stage, "seconds": round(seconds, 3), "job": job, "run_id": run_id},
        )


def set_snapshot_id(cur, job: str, run_id: str, kind: str, snapshot_id: int) -> None:
    """The run's `<kind>_snapshot_id`, unless the run is already published: a re-run's
    snapshot must not re-point predictions made from another."""
    if kind not in ("training", "scoring"):
        raise ValueError(f"not a snapshot kind: {kind!r}")
    cur.execute(
        sql.SQL(
            "UPDATE scoring.scoring_runs SET {} = %s"
            " WHERE job = %s AND run_id = %s AND status <> 'published'"
        ).format(sql.Identifier(f"{kind}_snapshot_id")),
        (snapshot_id, job, run_id),
    )


def mark_published(
    cur, run: Run, record: PublishRecord, rows: int, when: datetime, code: str
) -> datetime:
    """Write the run's row as published, with what made it; returns its published_at.

    The snapshot ids are the run's own snapshots (its snapshot stages set them too); a record
    without them (from before snapshot ids) leaves what those stages set.
    """
    ids = {
        f"{kind}_snapshot_id": value
        for kind, value in (
            ("training", record.training_snapshot_id),
            ("scoring", record.scoring_snapshot_id),
        )
        if value is not None
    }
    return db.upsert(
        cur,
        "scoring_runs",
        {
            "job": run.job,
            "run_id": run.run_id,
            "dag_run_id": run.run_id,
            "logical_date": run.logical_date,
            "as_of": run.as_of,
            "model_version": record.model_version,
            "training_snapshot_sha256": record.training_snapshot_sha256,
            "scoring_snapshot_sha256": record.scoring_snapshot_sha256,
            "validation": record.validation,
            "rows_scored": rows,
            "status": "published",
            "error": None,
            "code_version": code,
            "published_at": when,
            **ids,
        },
        key=("job", "run_id"),
        returning="published_at",
    )


def fetch_run(url: str, job: str, run_id: str) -> RunRow | None:
    return db.fetch_row(
        url,
        RunRow,
        "SELECT * FROM scoring.scoring_runs WHERE job = %s AND run_id = %s",
        (job, run_id),
    )


def fetch_run_at(url: str, job: str, logical_date: datetime) -> RunRow | None:
    """The job's newest run with that logical date."""
    return db.fetch_row(
        url,
        RunRow,
        "SELECT * FROM scoring.scoring_runs WHERE job = %s AND logical_date = %s"
        " ORDER BY started_at DESC LIMIT 1",
        (job, logical_date),
    )


def latest_published(url: str, job: str) -> RunRow | None:
    """The run `<job>_latest` shows: the last that moved it (scoring.jobs.latest_run_id)."""
    return db.fetch_row(
        url,
        RunRow,
        "SELECT r.* FROM scoring.jobs AS j JOIN scoring.scoring_runs AS r"
        " ON r.job = j.job AND r.run_id = j.latest_run_id WHERE j.job = %s",
        (job,),
    )


def base_published(url: str, job: str) -> RunRow | None:
    """The full run whose rows `<job>_latest` shows under the changes since
    (scoring.jobs.base_run_id)."""
    return db.fetch_row(
        url,
        RunRow,
        "SELECT r.* FROM scoring.jobs AS j JOIN scoring.scoring_runs AS r"
        " ON r.job = j.job AND r.run_id = j.base_run_id WHERE j.job = %s",
        (job,),
    )


def move_latest(cur, job: str, run_id: str, full: bool) -> bool:
    """Make the run what `<job>_latest` shows (and its base, for a full run) unless the state
    already stands at a later as_of (a backfill); True if it moved. Under the job's lock."""
    cur.execute(
        "UPDATE scoring.jobs AS j SET latest_run_id = %(run)s,"
        " base_run_id = CASE WHEN %(full)s THEN %(run)s ELSE j.base_run_id END"
        " WHERE j.job = %(job)s AND (j.latest_run_id IS NULL OR j.latest_run_id = %(run)s"
        "  OR (SELECT r.as_of FROM scoring.scoring_runs AS r"
        "      WHERE r.job = j.job AND r.run_id = j.latest_run_id)"
        "   <= (SELECT r.as_of FROM scoring.scoring_runs AS r"
        "       WHERE r.job = j.job AND r.run_id = %(run)s))",
        {"job": job, "run": run_id, "full": full},
    )
    return cur.rowcount == 1


def newest_published(url: str, job: str) -> RunRow | None:
    """The published run with the latest as_of (even a future one)."""
    return db.fetch_row(
        url,
        RunRow,
        "SELECT * FROM scoring.scoring_runs WHERE job = %s AND status = 'published'"
        " ORDER BY as_of DESC, published_at DESC LIMIT 1",
        (job,),
    )


def previous_published(url: str, job: str, as_of: datetime) -> RunRow | None:
    """The published run with the latest as_of before `as_of`: the run before it in time (for
    a backfill, the previous cut-off)."""
    return db.fetch_row(
        url,
        RunRow,
        "SELECT * FROM scoring.scoring_runs WHERE job = %s AND status = 'published'"
        " AND as_of < %s ORDER BY as_of DESC, published_at DESC LIMIT 1",
        (job, as_of),
    )


def published_as_ofs(url: str, job: str) -> dict[datetime, str]:
    """The as_of of every published run of the job, with its run id (the newest for each)."""
    rows = db.fetch_all(
        url,
        "SELECT DISTINCT ON (as_of) as_of, run_id FROM scoring.scoring_runs"
        " WHERE job = %s AND status = 'published' ORDER BY as_of, published_at DESC",
        (job,),
    )
    return {row["as_of"]: row["run_id"] for row in rows}


def published_run(url: str, job: str, run_id: str) -> RunRow | None:
    return db.fetch_row(
        url,
        RunRow,
        "SELECT * FROM scoring.scoring_runs WHERE job = %s AND status = 'published'"
        " AND run_id = %s",
        (job, run_id),
    )


def recent_runs(url: str, job: str, limit: int) -> list[RunRow]:
    """The job's newest runs by start, for its index of reports."""
    return db.fetch_rows(
        url,
        RunRow,
        "SELECT job, run_id, as_of, status, rows_scored, model_version, started_at, report_uri"
        " FROM scoring.scoring_runs WHERE job = %s ORDER BY started_at DESC, run_id LIMIT %s",
        (job, limit),
    )


def runs_of_model(url: str, job: str, version: int) -> list[RunRow]:
    """Every run that scored with one model version, oldest cut-off first."""
    return db.fetch_rows(
        url,
        RunRow,
        "SELECT * FROM scoring.scoring_runs WHERE job = %s AND model_version = %s"
        " ORDER BY as_of, started_at",
        (job, version),
    )


def kept_published_runs(url: str, job: str) -> list[dict]:
    """Published runs whose predictions are kept, oldest first, with their model's holdout
    metrics (`holdout`): the runs realised performance judges."""
    return db.fetch_all(
        url,
        "SELECT r.run_id, r.as_of, r.model_version, r.rows_scored, r.training_snapshot_id,"
        " r.scoring_snapshot_id, m.metrics AS holdout"
        " FROM scoring.scoring_runs AS r JOIN scoring.model_versions AS m"
        " ON m.job = r.job AND m.version = r.model_version"
        " WHERE r.job = %s AND r.status = 'published' AND r.predictions_pruned_at IS NULL"
        " ORDER BY r.as_of",
        (job,),
    )


def prunable_runs(url: str, job: str, keep_runs: int, cutoff: datetime | None) -> list[str]:
    """Published runs whose prediction rows retention lets go (sql/prunable_runs.sql)."""
    params = {"job": job, "keep_runs": keep_runs, "cutoff": cutoff}
    return [
        row["run_id"] for row in db.fetch_all(url, db.read_sql_file("prunable_runs.sql"), params)
    ]


def mark_pruned(cur, job: str, run_id: str) -> None:
    cur.execute(
        "UPDATE scoring.scoring_runs SET predictions_pruned_at = now()"
        " WHERE job = %s AND run_id = %s",
        (job, run_id),
    )
