"""Whether a run fits a new candidate: the trigger's override, then the job's retrain policy.
Pure: the caller reads the champion's age and the last run's alerts from the warehouse."""

from datetime import datetime, timedelta

from pipeline.spec import Retrain

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def due_by_policy(
    policy: Retrain,
    as_of: datetime,
    override: str,
    champion_created: datetime | None,
    last_alerts: tuple[str, list[str]] | None,
) -> tuple[bool, str]:
    """(due, reason). `last_alerts` (for `on_drift`): the previous published run's id and the
    alerts raised by it or since it was published; None when there is no published run."""
    if champion_created is None:
        return True, "no champion yet"
    if override in ("always", "never"):
        return override == "always", f"retrain={override} set at trigger time"
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
        run_id, alerts = last_alerts or (None, [])
        if alerts:
            return True, f"retrain.policy on_drift: alerts since run {run_id}: {', '.join(alerts)}"
        return False, "retrain.policy on_drift: no alert since the last published run"
    due = champion_created + timedelta(days=policy.every_days or 0) <= as_of
    return (
        due,
        f"retrain.policy every {policy.every_days} days; champion from {champion_created:%Y-%m-%d}",
    )
