"""A run's start and bookkeeping: its cut-off, the spec and suites it freezes, retrain or not."""

import hashlib
import logging
import os
import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from psycopg2.extras import Json

from pipeline.contracts import Context, RetrainDecision, Run, Validation, dumps
from pipeline.errors import PipelineError
from pipeline.spec import load_spec
from pipeline.stages.snapshot import KINDS
from pipeline.stages.validate import read_suite
from pipeline.store import db
from pipeline.store.records import lock_job
from pipeline.store.storage import DataRoot

log = logging.getLogger(__name__)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOCK_SKEW = timedelta(minutes=5)  # how far ahead of this clock an as_of may be
HEARTBEAT_SECONDS = 60  # a working stage reports this often


def stale_after() -> timedelta:
    """How long a 'running' run may go without a report before it counts as dead
    (`SCORING_STALE_RUN_MINUTES`, default 30: longer than a task waits for a worker)."""
    return timedelta(minutes=float(os.environ.get("SCORING_STALE_RUN_MINUTES", 30)))


def parse_timestamp(value: str, what: str = "as_of") -> datetime:
    """An ISO-8601 timestamp; naive values are taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PipelineError(
            f"{what}: {value!r} is not an ISO-8601 timestamp (e.g. 2026-11-01T02:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def resolve_as_of(param: str | None, logical_date: str | None, run_after: str) -> datetime:
    """The run's cut-off: the `as_of` trigger parameter, else the logical date, else run_after.

    A cut-off in the future is refused: that run would stay the newest published one, and
    analysts would see it instead of every later run until its date came.
    """
    as_of = parse_timestamp(param) if param else parse_timestamp(logical_date or run_after)
    check_not_future(as_of)
    return as_of.astimezone(UTC)


def check_not_future(as_of: datetime) -> None:
    """Refuse a cut-off later than now (beyond CLOCK_SKEW)."""
    now = datetime.now(UTC)
    if as_of > now + CLOCK_SKEW:
        raise PipelineError(
            f"as_of {as_of.isoformat()} is in the future (now {now.isoformat(timespec='seconds')})"
            ": a snapshot can only hold rows that exist; give a cut-off up to now"
        )


def content_sha256(value) -> str:
    """sha256 of a JSON value in canonical form (sorted keys), so equal content hashes equal."""
    return hashlib.sha256(dumps(value, sort_keys=True).encode()).hexdigest()


def start_run(ctx: Context) -> Run:
    """Freeze the spec and suites for the whole run, record it as running, return its identity.

    This is the run's one read of the job's YAML and suite files: every later stage works from
    the copy in the returned record, so editing a file mid-run changes only later runs.
    """
    trigger = ctx.trigger
    spec = load_spec(trigger.spec_path)
    suites = {kind: read_suite(spec.name, kind) for kind in KINDS}
    as_of = resolve_as_of(trigger.as_of, trigger.logical_date, trigger.run_after)
    frozen = spec.model_dump(mode="json")
    run = Run(
        job=spec.name,
        run_id=trigger.run_id,
        logical_date=trigger.logical_date,
        as_of=as_of.isoformat(),
        spec_path=trigger.spec_path,
        spec=frozen,
        spec_sha256=content_sha256(frozen),
        suites=suites,
        suites_sha256=content_sha256(suites),
        force_promote=trigger.force_promote,
        retrain=trigger.retrain,
    )
    with db.transaction(ctx.url) as conn, conn.cursor() as cur:
        lock_job(cur, spec.name)  # two runs starting at once take turns here
        end_dead_runs(cur, spec.name, run.run_id)
        refuse_if_active(cur, spec.name, run.run_id)
        cur.execute(
            "INSERT INTO scoring.scoring_runs (job, run_id, dag_run_id, logical_date, as_of,"
            " status, spec, spec_sha256, suites_sha256, heartbeat_at)"
            " VALUES (%(job)s, %(run_id)s, %(run_id)s, %(logical_date)s, %(as_of)s, 'running',"
            " %(spec)s, %(spec_sha256)s, %(suites_sha256)s, now())"
            " ON CONFLICT (job, run_id) DO UPDATE SET as_of = EXCLUDED.as_of,"
            " logical_date = EXCLUDED.logical_date, spec = EXCLUDED.spec,"
            " spec_sha256 = EXCLUDED.spec_sha256, suites_sha256 = EXCLUDED.suites_sha256,"
            " heartbeat_at = now(),"
            " status = CASE WHEN scoring.scoring_runs.status = 'published' THEN 'published'"
            " ELSE 'running' END, error = NULL",
            {**run.to_json(), "spec": dumps(frozen)},
        )
    removed = DataRoot().remove_incoming("snapshots", spec.name)
    if removed:
        log.info("removed %d unfinished snapshot file(s) of dead runs: %s", len(removed), removed)
    log.info(
        "run %s of %s: as_of %s, spec sha256 %s, suites sha256 %s",
        run.run_id,
        run.job,
        run.as_of,
        run.spec_sha256[:12],
        run.suites_sha256[:12],
    )
    return run


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


@contextmanager
def heartbeat(url: str, job: str, run_id: str):
    """Report the run as alive now and every HEARTBEAT_SECONDS until the block ends."""
    stop = threading.Event()

    def beat() -> None:
        with db.transaction(url) as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE scoring.scoring_runs SET heartbeat_at = now()"
                " WHERE job = %s AND run_id = %s AND status = 'running'",
                (job, run_id),
            )

    def keep_beating() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                beat()
            except Exception:  # a missed beat is harmless; the stage goes on
                log.warning("heartbeat of run %s failed", run_id, exc_info=True)

    beat()
    thread = threading.Thread(target=keep_beating, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def list_runs(url: str, job: str, limit: int = 20) -> list[dict]:
    """The job's latest runs, after marking those that stopped reporting as abandoned."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        end_dead_runs(cur, job, "runs command")
    return db.fetch_all(
        url,
        "SELECT run_id, status, as_of, started_at, coalesce(heartbeat_at, started_at) AS seen,"
        " rows_scored, error FROM scoring.scoring_runs WHERE job = %s"
        " ORDER BY started_at DESC LIMIT %s",
        (job, limit),
    )


def mark_failed(url: str, job: str, run_id: str, error: str) -> None:
    """Record why a run stopped, passwords masked (a published run stays published); then write
    its report, which says why."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE scoring.scoring_runs SET status = 'failed', error = %s"
            " WHERE job = %s AND run_id = %s AND status <> 'published'",
            (db.redact(error)[:4000], job, run_id),
        )
    from pipeline.ops.run_report import report_run

    report_run(url, job, run_id)


def decide_retrain(ctx: Context, *checks: Validation) -> RetrainDecision:
    """Whether this run fits a candidate: the trigger's `retrain` override, then the spec policy.

    Runs after both validations (`checks`), so nothing is trained on data that failed them.
    """
    due, reason = retrain_due(ctx.url, ctx.spec, parse_timestamp(ctx.run.as_of), ctx.run.retrain)
    log.info("retrain: %s (%s)", "yes" if due else "no", reason)
    decision = RetrainDecision(due=due, reason=reason)
    with db.transaction(ctx.url) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE scoring.scoring_runs SET retrain = %s WHERE job = %s AND run_id = %s",
            (Json(decision.to_json()), ctx.spec.name, ctx.run.run_id),
        )
    return decision


def retrain_due(url: str, spec, as_of: datetime, override: str) -> tuple[bool, str]:
    """(due, reason) for a job at `as_of` with the trigger's `retrain` override."""
    row = db.fetch_one(
        url,
        "SELECT max(created_at) AS created FROM scoring.model_versions"
        " WHERE job = %s AND status = 'champion'",
        (spec.name,),
    )
    champion_created = row["created"]
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
    if policy.policy == "on_drift":
        return alerts_of_last_run(url, spec.name)
    due = champion_created + timedelta(days=policy.every_days) <= as_of
    return (
        due,
        f"retrain.policy every {policy.every_days} days; champion from {champion_created:%Y-%m-%d}",
    )


def alerts_of_last_run(url: str, job: str) -> tuple[bool, str]:
    """(due, reason) for `retrain.policy: on_drift`: whether the last published run's monitoring
    raised a drift or realised-performance alert."""
    last = db.fetch_one(
        url,
        "SELECT run_id, monitoring FROM scoring.scoring_runs WHERE job = %s"
        " AND status = 'published' ORDER BY as_of DESC, published_at DESC LIMIT 1",
        (job,),
    )
    found = (last or {}).get("monitoring") or {}
    alerts = [*found.get("drift_alerts", []), *found.get("performance_alerts", [])]
    if alerts:
        return True, f"retrain.policy on_drift: run {last['run_id']} raised alerts on {alerts}"
    return False, "retrain.policy on_drift: the last published run raised no alert"
