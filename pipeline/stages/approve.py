"""A promotion that waits for a person (`governance.approval`): the evidence put before them,
and what their answer (or its absence) does to the job's models.

The gate (`stages.train.gate`) records the candidate as `awaiting_approval` and the run scores
with the champion. The job's approval DAG (`orchestration.dags`) then calls `request` for the
Required Actions page's text, waits for an answer, and calls `settle` with it.
"""

import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from pipeline.config import airflow_ui_url
from pipeline.datafiles.layout import report_path
from pipeline.datafiles.root import DataRoot
from pipeline.errors import PipelineError
from pipeline.logic.approval import approval_asks, approval_needs, verdict_of
from pipeline.logic.cutoffs import parse_timestamp
from pipeline.logic.gate import gain_of
from pipeline.model.card import with_approval
from pipeline.model.files import COMPANIONS, companion_path
from pipeline.spec import LOWER_IS_BETTER, JobSpec
from pipeline.warehouse import db, models, runs
from pipeline.warehouse.alerts import last_run_alerted
from pipeline.warehouse.jobs import lock_job
from pipeline.warehouse.models import ModelVersion
from pipeline.warehouse.monitoring import drift_of_run

log = logging.getLogger(__name__)

SETTLED = {"approved": "champion", "rejected": "rejected", "timed_out": "rejected"}


def reasons_to_ask(
    url: str, spec: JobSpec, *, gain: float | None, first: bool, forced: bool
) -> list[str]:
    """Why a promotion waits for a person (`logic.approval.approval_needs`), the job's last
    published run's alerts looked up only when the spec asks about them."""
    alerted = approval_asks(spec, "alert") and last_run_alerted(url, spec.name)
    return approval_needs(spec, gain=gain, first=first, forced=forced, alerted=alerted)


def waiting_version(url: str, job: str, version: int | None = None) -> ModelVersion:
    """The version awaiting approval (`version`, else the job's one); a clear error if none."""
    found = models.fetch_version(url, job, version=version, status="awaiting_approval")
    if found is None:
        which = f"v{version}" if version else "no version"
        raise PipelineError(
            f"job {job}: {which} awaits approval (`python -m pipeline approvals {job}` lists "
            "what waits; a newer candidate or promotion supersedes a request)"
        )
    return found


def request(url: str, spec: JobSpec, version: int | None = None) -> dict:
    """Record that a person is asked now, with the evidence shown; returns the version, the
    page's subject and its Markdown body."""
    candidate = waiting_version(url, spec.name, version)
    evidence = gather_evidence(url, spec, candidate)
    asked = datetime.now(UTC)
    deadline = asked + timedelta(hours=spec.governance.approval.timeout_hours)
    fields = {
        "requested_at": asked.isoformat(),
        "deadline": deadline.isoformat(),
        "approvers": spec.governance.approval.approvers,
        "evidence": evidence,
    }
    with db.transaction(url) as conn, conn.cursor() as cur:
        models.note_approval(cur, spec.name, candidate.version, fields)
    log.info("job %s: v%d awaits approval until %s", spec.name, candidate.version, deadline)
    return {
        "version": candidate.version,
        "subject": f"{spec.name}: promote model v{candidate.version}?",
        "body": approval_body(spec, candidate, evidence, deadline),
    }


def gather_evidence(url: str, spec: JobSpec, candidate: ModelVersion) -> dict:
    """Both models' metrics on the same holdout, the requesting run's drift and its report."""
    run_id = candidate.run_id
    drift = drift_of_run(url, spec.name, run_id)
    run = runs.fetch_run(url, spec.name, run_id)
    champion = candidate.champion_metrics
    return {
        "run_id": run_id,
        "run_status": run.status if run else None,
        "primary_metric": spec.primary_metric,
        "candidate_metrics": candidate.metrics,
        "champion_version": candidate.champion_version,
        "champion_metrics": champion,
        "gain": gain_of(spec, candidate.metrics, champion) if champion else None,
        "promotion_margin": spec.model.promotion_margin,
        "conditions": (candidate.approval or {}).get("conditions", []),
        "drift_features": len({row.feature for row in drift}),
        "drift_alerts": [
            {
                "feature": r.feature,
                "statistic": r.statistic,
                "value": r.value,
                "threshold": r.threshold,
            }
            for r in drift
            if r.alert
        ],
        "report": report_link(spec.name, run_id),
    }


def report_link(job: str, run_id: str) -> str:
    """The run report's address in the Airflow UI (its path when no UI address is set)."""
    root = DataRoot()
    relative = root.relative(root.uri(report_path(root, job, run_id)))
    base = airflow_ui_url()
    if relative is None:
        return root.uri(report_path(root, job, run_id))
    return f"{base or ''}/scoring-files/{quote(relative)}"


def approval_body(spec: JobSpec, candidate: ModelVersion, evidence: dict, deadline) -> str:
    """The Required Actions page's text (Markdown): what is asked, and the evidence."""
    metric = spec.primary_metric
    champion = evidence["champion_metrics"] or {}
    better = "lower" if metric in LOWER_IS_BETTER else "higher"
    who = f"champion v{evidence['champion_version']}" if champion else "no champion yet"
    lines = [
        f"The gate would promote **v{candidate.version}** of `{spec.name}`; it waits for you "
        f"because: {'; '.join(evidence['conditions']) or 'approval is required'}.",
        "",
        f"Both on the same holdout of the training snapshot (run `{evidence['run_id']}`):",
        "",
        f"| metric | candidate v{candidate.version} | {who} |",
        "| --- | --- | --- |",
    ]
    for name, value in candidate.metrics.items():
        mark = f" (primary, {better} is better)" if name == metric else ""
        lines.append(f"| {name}{mark} | {fmt(value)} | {fmt(champion.get(name))} |")
    if evidence["gain"] is not None:
        lines += [
            "",
            f"Gain on {metric}: {evidence['gain']:+.5f} (margin {spec.model.promotion_margin}).",
        ]
    alerts = evidence["drift_alerts"]
    lines += [
        "",
        f"Drift of that run: {len(alerts)} alert(s) over {evidence['drift_features']} "
        "measured feature(s)" + ("." if not alerts else ":"),
    ]
    lines += [
        f"- `{a['feature']}` {a['statistic']} {fmt(a['value'])} > {fmt(a['threshold'])}"
        for a in alerts
    ]
    after = (
        "it is champion from the job's next run"
        if spec.governance.approval.on_approve == "next_run"
        else "it is champion and the job runs again at once to score with it"
    )
    lines += [
        "",
        f"[Run report]({evidence['report']})",
        "",
        f"**Approve**: {after}. **Reject**, or no answer by {deadline:%Y-%m-%d %H:%M} UTC: "
        "the champion stays. A reason is required either way; it is recorded on the model "
        "version with your name.",
    ]
    return "\n".join(lines)


def write_card(version: ModelVersion, approval: dict) -> None:
    """Add the approval to the version's model card (the record in the warehouse stands even
    when the card cannot be written: the card is a copy for readers)."""
    root = DataRoot()
    card = companion_path(root, version.artifact_uri, COMPANIONS[1])
    try:
        text = root.read_bytes(card).decode()
        root.write_bytes(card, with_approval(text, approval).encode())
    except OSError as exc:
        log.warning(
            "job %s: v%d's card %s not updated: %s", version.job, version.version, card, exc
        )


def fmt(value) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"  # row counts
    return f"{value:.5f}" if isinstance(value, float) else "—"


def settle(url: str, spec: JobSpec, version: int, answer: dict | None) -> dict:
    """Record the answer to a version's request (None: no answer came) and act on it: approved,
    the version is champion; rejected or timed out, the champion stays. An approval of a
    version judged against a champion that has changed since is refused (judge it again)."""
    answer = answer or {}
    by = answer.get("responded_by_user")
    reason = ((answer.get("params_input") or {}).get("reason") or "").strip()
    verdict = verdict_of(answer.get("chosen_options"), by, reason)
    with db.transaction(url) as conn, conn.cursor() as cur:
        lock_job(cur, spec.name)
        candidate = models.fetch_version(url, spec.name, version=version)
        if candidate is None or candidate.status != "awaiting_approval":
            state = candidate.status if candidate else "not registered"
            raise PipelineError(
                f"job {spec.name}: v{version} no longer awaits approval ({state}); the answer "
                "is not recorded"
            )
        deadline = (candidate.approval or {}).get("deadline")
        if verdict == "timed_out" and deadline and datetime.now(UTC) < parse_timestamp(deadline):
            raise PipelineError(
                f"job {spec.name}: the approval task of v{version} ended without an answer "
                f"before its deadline ({deadline}); v{version} still awaits approval: trigger "
                f"the DAG {spec.name}_approval again (its task log says why it ended)"
            )
        current = models.champion(url, spec.name)
        status, note = SETTLED[verdict], f"; {verdict.replace('_', ' ')}"
        if verdict == "approved" and (current.version if current else None) != (
            candidate.champion_version
        ):
            status = "rejected"
            note = (
                f"; approved, but the champion changed since it was judged (now "
                f"{f'v{current.version}' if current else 'none'}): not promoted"
            )
        answered = str(answer.get("responded_at") or datetime.now(UTC).isoformat())
        if by:
            note += f" by {by.get('name') or by.get('id')} at {answered[:16]} UTC: {reason}"
        fields = {
            "verdict": verdict,
            "answered_by": by,
            "answered_at": answered,
            "reason": reason or ("no answer before the deadline" if not by else ""),
        }
        models.note_approval(cur, spec.name, version, fields)
        models.settle(cur, spec.name, version, status, note)
    log.info("job %s: v%d %s%s", spec.name, version, verdict, note)
    write_card(candidate, {**(candidate.approval or {}), **fields})
    rescore = status == "champion" and spec.governance.approval.on_approve == "rescore"
    return {"version": version, "verdict": verdict, "status": status, "rescore": rescore}
