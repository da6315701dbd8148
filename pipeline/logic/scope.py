"""Whether a run scores the whole table or only what changed since the previous published run.

An incremental run is exact only while everything that makes a score is what the previous
run used: the serving model, the spec's features, the code that builds the feature frame,
and rows whose timestamp moves whenever they change. `decide_scope` checks each and says why
a run goes in full.
"""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

INCREMENTAL_SKIPS = "an incremental run keeps the champion it started with: no training data"


@dataclass(frozen=True)
class Scope:
    """What a run scores: `full`, or `incremental` from `since`; and why."""

    mode: str
    reason: str
    features_sha256: str
    since: str | None = None  # incremental: rows with a timestamp at or after it are read
    previous_run_id: str | None = None  # incremental: the run whose state it changes
    base_run_id: str | None = None  # incremental: the full run under that state

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class State:
    """What `<job>_latest` shows now: its last run and the full run under it."""

    run_id: str
    as_of: datetime
    model_version: int | None
    features_sha256: str | None
    base_run_id: str
    base_as_of: datetime


def decide_scope(
    as_of: datetime,
    features_sha256: str,
    full_asked: bool,
    state: State | None,
    champion_version: int | None,
    retrain: tuple[bool, str],
    lookback: timedelta,
    full_every_days: int,
) -> Scope:
    """The scope of a run of a job in incremental mode: incremental only when nothing it relies
    on moved since the previous published run (`state`); otherwise full, with the reason."""

    def full(reason: str) -> Scope:
        return Scope("full", reason, features_sha256)

    if full_asked:
        return full("the trigger asked for a full run (full: true)")
    if state is None:
        return full("no published run yet: the first run scores the whole table")
    if as_of <= state.as_of:
        return full(
            f"as_of {as_of.isoformat()} is not after the latest published run's "
            f"({state.as_of.isoformat()}, run {state.run_id}): a backfill runs in full"
        )
    if state.features_sha256 is None:
        return full(
            f"run {state.run_id} recorded no feature fingerprint (published before "
            "incremental scoring)"
        )
    if state.features_sha256 != features_sha256:
        return full(
            "the features or the code that builds them changed since run "
            f"{state.run_id} (fingerprint {state.features_sha256[:12]} -> {features_sha256[:12]})"
        )
    if champion_version != state.model_version:
        return full(
            f"the champion is model v{champion_version}, run {state.run_id} scored with "
            f"v{state.model_version}: every row gets the new model's score"
        )
    due, why = retrain
    if due:
        return full(f"retraining is due ({why}): a promoted model would rescore every row")
    age = as_of - state.base_as_of
    if age >= timedelta(days=full_every_days):
        return full(
            f"the last full run ({state.base_run_id}) is {age.days} days old: "
            f"scoring.full_every_days is {full_every_days}"
        )
    since = state.as_of - lookback
    return Scope(
        "incremental",
        f"nothing changed since run {state.run_id}: scoring the rows with a timestamp at or "
        f"after {since.isoformat()} (its as_of less lookback) and dropping keys that left",
        features_sha256,
        since=since.isoformat(),
        previous_run_id=state.run_id,
        base_run_id=state.base_run_id,
    )
