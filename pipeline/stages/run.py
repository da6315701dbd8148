"""A run's start and bookkeeping: its cut-off, the spec and suites it freezes, retrain or not,
and how it ends when a stage fails."""

import logging
from datetime import datetime

from pipeline.contracts import (
    Context,
    RetrainDecision,
    Run,
    Trigger,
    Validation,
    content_sha256,
)
from pipeline.datafiles.root import DataRoot
from pipeline.logic.cutoffs import parse_timestamp, resolve_as_of
from pipeline.logic.retrain import due_by_policy
from pipeline.logic.scope import INCREMENTAL_SKIPS, Scope, State, decide_scope
from pipeline.provenance import features_sha256
from pipeline.reports.run_page import report_run
from pipeline.spec import JobSpec, load_spec
from pipeline.spec.names import KINDS
from pipeline.validation.suites import read_suite
from pipeline.warehouse import db, models, runs
from pipeline.warehouse.alerts import AlertRow, alerts_since
from pipeline.warehouse.erasures import has_pending_requests
from pipeline.warehouse.jobs import ensure_job_objects, lock_job

log = logging.getLogger(__name__)


def start_run(ctx: Context) -> Run:
    """Freeze the spec and suites for the whole run, record it as running, return its identity.

    This is the run's one read of the job's YAML and suite files: every later stage works from
    the copy in the returned record, so editing a file mid-run changes only later runs.
    """
    trigger = ctx.trigger
    spec = load_spec(trigger.spec_path)
    suites = {kind: read_suite(spec.name, kind) for kind in KINDS}
    as_of = resolve_as_of(trigger.as_of, trigger.logical_date, trigger.run_after)
    # the job's table and views must be deployed and current before any work: a run that
    # could not publish stops here, not after snapshotting, validating and scoring
    ensure_job_objects(ctx.url, spec)
    frozen = spec.model_dump(mode="json")
    scope = run_scope(ctx.url, spec, as_of, trigger)
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
        scope=scope.to_json(),
    )
    with db.transaction(ctx.url) as conn, conn.cursor() as cur:
        lock_job(cur, spec.name)  # two runs starting at once take turns here
        runs.end_dead_runs(cur, spec.name, run.run_id)
        runs.refuse_if_active(cur, spec.name, run.run_id)
        runs.record_start(cur, run)
    if has_pending_requests(ctx.url, spec.name):
        # erasure imports pandas (the model card) and Parquet: only for a run with requests
        from pipeline.stages.erasure import process_erasures

        process_erasures(ctx.url, spec, by=f"run {run.run_id}", run_id=run.run_id)
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
    log.info("scope: %s (%s)", scope.mode, scope.reason)
    return run


def run_scope(url: str, spec: JobSpec, as_of: datetime, trigger: Trigger) -> Scope:
    """Whether the run scores in full or only what changed, and why (pipeline.logic.scope)."""
    fingerprint = features_sha256(spec.scoring_inputs())
    if spec.scoring.mode != "incremental":
        return Scope("full", "scoring.mode is full", fingerprint)
    latest, base = runs.latest_published(url, spec.name), runs.base_published(url, spec.name)
    state = None
    if latest is not None and base is not None and latest.as_of and base.as_of:
        state = State(
            run_id=latest.run_id,
            as_of=latest.as_of,
            model_version=latest.model_version,
            features_sha256=(latest.scope or {}).get("features_sha256"),
            base_run_id=base.run_id,
            base_as_of=base.as_of,
        )
    challenger = models.fetch_version(url, spec.name, status="shadow")
    if challenger is not None:  # it may also be promoted at `register`: every row then
        reason = f"challenger v{challenger.version} is in shadow: it scores the whole table"
        return Scope("full", reason, fingerprint)
    champion = models.champion(url, spec.name)
    return decide_scope(
        as_of,
        fingerprint,
        trigger.full,
        state,
        champion.version if champion else None,
        retrain_due(url, spec, as_of, trigger.retrain),
        spec.scoring.lookback_delta,
        spec.scoring.full_every_days,
    )


def mark_failed(url: str, job: str, run_id: str, error: str, when: str | None = None) -> None:
    """Record why a run stopped, passwords masked (a published run stays published); then write
    its report, which says why. A run refused before it started (a bad cut-off, another run
    still working) gets its row here, as of `when` (its logical date)."""
    runs.record_failure(url, job, run_id, error, when)
    report_run(url, job, run_id)


def decide_retrain(ctx: Context, *checks: Validation) -> RetrainDecision:
    """Whether this run fits a candidate: the trigger's `retrain` override, then the spec policy.

    Runs after both validations (`checks`), so nothing is trained on data that failed them.
    """
    if ctx.run.incremental:  # decided at the start: a retrain due would have made it full
        due, reason = False, INCREMENTAL_SKIPS
    else:
        as_of = parse_timestamp(ctx.run.as_of)
        due, reason = retrain_due(ctx.url, ctx.spec, as_of, ctx.run.retrain)
    log.info("retrain: %s (%s)", "yes" if due else "no", reason)
    decision = RetrainDecision(due=due, reason=reason)
    runs.set_field(ctx.url, ctx.spec.name, ctx.run.run_id, "retrain", decision.to_json())
    return decision


def retrain_due(url: str, spec: JobSpec, as_of: datetime, override: str) -> tuple[bool, str]:
    """(due, reason) for a job at `as_of` with the trigger's `retrain` override. No candidate
    while a challenger is in shadow, unless the trigger asks (`always`: it supersedes it)."""
    challenger = models.fetch_version(url, spec.name, status="shadow")
    if challenger is not None and override != "always":
        return False, (
            f"challenger v{challenger.version} is in shadow (governance.shadow_runs): no new "
            "candidate until it is judged"
        )
    champion = models.champion(url, spec.name)
    raised = None
    if spec.retrain.policy == "on_drift":
        last = runs.previous_published(url, spec.name, as_of)
        if last is not None:
            found = alerts_since(url, spec.name, last.run_id, last.published_at)
            raised = (last.run_id, list(dict.fromkeys(alert_name(a) for a in found)))
    created = champion.created_at if champion else None
    if champion and champion.erased_rows and spec.governance.on_erasure == "retrain":
        if override != "never":
            return True, (
                f"the champion v{champion.version} was trained on {champion.erased_rows} "
                "row(s) since erased (governance.on_erasure: retrain)"
            )
    return due_by_policy(spec.retrain, as_of, override, created, raised)


def alert_name(alert: AlertRow) -> str:
    """An alert in a few words: `amount (drift)`, `run X roc_auc (performance)`."""
    if alert.kind == "performance":
        origin = "" if alert.run_id else ", from the performance command"
        return f"run {alert.subject} {alert.statistic} (performance{origin})"
    return f"{alert.subject} ({alert.kind})"
