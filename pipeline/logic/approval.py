"""When a promotion waits for a person (`governance.approval`), and what the answer means. Pure."""

from pipeline.spec import JobSpec

APPROVE, REJECT = "Approve", "Reject"
VERDICTS = ("approved", "rejected", "timed_out", "superseded")


def approval_needs(
    spec: JobSpec, *, gain: float | None, first: bool, forced: bool, alerted: bool
) -> list[str]:
    """Why a promotion the gate allows waits for a person; empty: it does not wait.

    `gain`: over the champion on the primary metric (None when there is none to judge against);
    `first`: the job has no champion yet; `forced`: `force_promote` was set; `alerted`: the
    job's last published run raised a drift or performance alert.
    """
    approval = spec.governance.approval
    if approval.when == "never":
        return []
    if approval.when == "always":
        return ["governance.approval.when is always"]
    needs = []
    for condition in approval.when:
        if condition == "first_model" and first:
            needs.append("first model of the job")
        elif condition == "force_promote" and forced:
            needs.append("force_promote set at trigger time")
        elif condition == "alert" and alerted:
            needs.append("the last published run raised a drift or performance alert")
        elif condition == "small_gain" and gain is not None and gain < approval.small_gain:
            needs.append(f"gain {gain:+.5f} is below small_gain {approval.small_gain}")
    return needs


def approval_asks(spec: JobSpec, condition: str) -> bool:
    """Whether the spec lists `condition` among those that make a promotion wait."""
    when = spec.governance.approval.when
    return isinstance(when, list) and condition in when


def verdict_of(chosen: list[str] | None, answered_by: dict | None, reason: str | None) -> str:
    """The verdict an answer of the Required Actions form stands for: no answer (the request
    timed out, or the form was never filled) keeps the champion, as a reject does."""
    if not chosen or answered_by is None:
        return "timed_out"
    if chosen == [APPROVE] and (reason or "").strip():
        return "approved"
    return "rejected"
