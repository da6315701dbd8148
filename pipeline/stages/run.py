"""A run's start and bookkeeping: its cut-off, the spec and suites it freezes, retrain or not."""

import hashlib
import logging
from datetime import UTC, datetime, timedelta

from pipeline.contracts import Context, RetrainDecision, Run, Validation, dumps
from pipeline.errors import PipelineError
from pipeline.spec import load_spec
from pipeline.stages.validate import KINDS, read_suite
from pipeline.store import db

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


def resolve_as_of(param: str | None, logical_date: str | None, run_after: str) -> datetime:
    """The run's cut-off: the `as_of` trigger parameter, else the logical date, else run_after."""
    if param:
        return parse_timestamp(param)
    return parse_timestamp(logical_date or run_after).astimezone(UTC)


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
        cur.execute(
            "INSERT INTO scoring.scoring_runs (job, run_id, dag_run_id, logical_date, as_of,"
            " status, spec, spec_sha256, suites_sha256)"
            " VALUES (%(job)s, %(run_id)s, %(run_id)s, %(logical_date)s, %(as_of)s, 'running',"
            " %(spec)s, %(spec_sha256)s, %(suites_sha256)s)"
            " ON CONFLICT (job, run_id) DO UPDATE SET as_of = EXCLUDED.as_of,"
            " logical_date = EXCLUDED.logical_date, spec = EXCLUDED.spec,"
            " spec_sha256 = EXCLUDED.spec_sha256, suites_sha256 = EXCLUDED.suites_sha256,"
            " status = CASE WHEN scoring.scoring_runs.status = 'published' THEN 'published'"
            " ELSE 'running' END, error = NULL",
            {**run.to_json(), "spec": dumps(frozen)},
        )
    log.info(
        "run %s of %s: as_of %s, spec sha256 %s, suites sha256 %s",
        run.run_id,
        run.job,
        run.as_of,
        run.spec_sha256[:12],
        run.suites_sha256[:12],
    )
    return run


def mark_failed(url: str, job: str, run_id: str, error: str) -> None:
    """Record why a run stopped; a published run stays published (its data is still good)."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE scoring.scoring_runs SET status = 'failed', error = %s"
            " WHERE job = %s AND run_id = %s AND status <> 'published'",
            (error[:4000], job, run_id),
        )


def decide_retrain(ctx: Context, *checks: Validation) -> RetrainDecision:
    """Whether this run fits a candidate: the trigger's `retrain` override, then the spec policy.

    Runs after both validations (`checks`), so nothing is trained on data that failed them.
    """
    due, reason = retrain_due(ctx.url, ctx.spec, parse_timestamp(ctx.run.as_of), ctx.run.retrain)
    log.info("retrain: %s (%s)", "yes" if due else "no", reason)
    return RetrainDecision(due=due, reason=reason)


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
    due = champion_created + timedelta(days=policy.every_days) <= as_of
    return (
        due,
        f"retrain.policy every {policy.every_days} days; champion from {champion_created:%Y-%m-%d}",
    )
