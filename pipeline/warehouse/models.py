"""scoring.model_versions: every model a job fitted, its metrics, the gate's decision, its
status (champion, rejected, retired, awaiting_approval, shadow) and where its file is.

At most one champion and one version awaiting approval per job (unique indexes); versions are
numbered per job, and a re-run of the run that registered a version replaces that version's row
instead of adding another.
"""

from dataclasses import dataclass
from datetime import datetime

from pipeline.contracts import dumps
from pipeline.warehouse import db

RETIRED_MARK = "; retired: "


@dataclass(frozen=True)
class ModelVersion(db.Row):
    """A row of scoring.model_versions."""

    job: str
    version: int
    run_id: str
    status: str
    artifact_uri: str
    artifact_sha256: str
    training_snapshot_sha256: str
    primary_metric: str
    metrics: dict
    decision_reason: str = ""
    training_snapshot_id: int | None = None
    estimator: str | None = None
    params: dict | None = None
    champion_version: int | None = None
    champion_metrics: dict | None = None
    forced: bool = False
    code_version: str | None = None
    library_versions: dict | None = None
    created_at: datetime | None = None
    promoted_at: datetime | None = None
    erased_rows: int = 0  # rows of its training snapshot erased since (scoring.erasures)
    erasure_flagged_at: datetime | None = None
    approval: dict | None = None  # the request for a person's approval and its answer
    shadow: dict | None = None  # the judgment of its shadow runs on realised labels

    @property
    def primary_value(self) -> float | None:
        """Its holdout figure on the primary metric."""
        return self.metrics.get(self.primary_metric)


def fetch_version(
    url: str, job: str, version: int | None = None, status: str | None = None
) -> ModelVersion | None:
    """The newest version of `job` with that version number and/or status, or None."""
    return db.fetch_row(
        url,
        ModelVersion,
        "SELECT * FROM scoring.model_versions WHERE job = %s"
        " AND (%s::int IS NULL OR version = %s) AND (%s::text IS NULL OR status = %s)"
        " ORDER BY version DESC LIMIT 1",
        (job, version, version, status, status),
    )


def champion(url: str, job: str) -> ModelVersion | None:
    """The job's current champion, or None before the first model."""
    return fetch_version(url, job, status="champion")


def model_of_run(url: str, job: str, run_id: str) -> ModelVersion | None:
    """The version a run registered (its candidate), if it fitted one."""
    return db.fetch_row(
        url,
        ModelVersion,
        "SELECT * FROM scoring.model_versions WHERE job = %s AND run_id = %s",
        (job, run_id),
    )


def version_for_run(cur, job: str, run_id: str) -> tuple[int, str | None]:
    """(version, its status) a run registers as: its own earlier version on a re-run (with
    that version's status), else the next number (status None). Call under `lock_job`."""
    cur.execute(
        "SELECT version, status FROM scoring.model_versions WHERE job = %s AND run_id = %s",
        (job, run_id),
    )
    existing = cur.fetchone()
    if existing:
        return existing[0], existing[1]
    cur.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM scoring.model_versions WHERE job = %s",
        (job,),
    )
    return cur.fetchone()[0], None


def write_version(cur, row: dict) -> None:
    """Record a version (a `ModelVersion`'s columns); as champion, the previous one retires.
    A version promoted or awaiting approval supersedes a request still waiting."""
    if row["status"] in ("champion", "awaiting_approval", "shadow"):
        supersede(cur, row["job"], row["version"])
    if row["status"] == "champion":
        retire_champion_for(cur, row["job"], row["version"])
    # a re-run replaces its own version; the run that made it stays (no right to change it)
    db.upsert(cur, "model_versions", row, key=("job", "version"), keep=("run_id",))


def retire_champion_for(cur, job: str, version: int) -> None:
    """Retire the job's champion, unless it is `version`, which is about to become it."""
    cur.execute(
        "UPDATE scoring.model_versions SET status = 'retired'"
        " WHERE job = %s AND status = 'champion' AND version <> %s",
        (job, version),
    )


def retire(cur, job: str, reason: str) -> int | None:
    """Retire the champion, appending `; retired: <reason>` to its decision; its version."""
    cur.execute(
        "UPDATE scoring.model_versions SET status = 'retired',"
        " decision_reason = decision_reason || %s"
        " WHERE job = %s AND status = 'champion' RETURNING version",
        (f"{RETIRED_MARK}{reason}", job),
    )
    row = cur.fetchone()
    return row[0] if row else None


def former_champions(cur, job: str, before: int) -> list[tuple[int, str, str]]:
    """(version, artifact uri, sha256) of the versions before `before` that were champion once
    and were not retired by `retire`, newest first."""
    cur.execute(
        "SELECT version, artifact_uri, artifact_sha256 FROM scoring.model_versions"
        " WHERE job = %s AND version < %s AND status = 'retired'"
        " AND promoted_at IS NOT NULL AND strpos(decision_reason, %s) = 0"
        " ORDER BY version DESC",
        (job, before, RETIRED_MARK),
    )
    return cur.fetchall()


def reinstate(cur, job: str, version: int, note: str) -> None:
    """Make a former champion the champion again, appending `note` to its decision."""
    cur.execute(
        "UPDATE scoring.model_versions SET status = 'champion', promoted_at = now(),"
        " decision_reason = decision_reason || %s WHERE job = %s AND version = %s",
        (note, job, version),
    )


def supersede(cur, job: str, by: int) -> None:
    """Close the job's waiting approval request and let its challenger in shadow go (other than
    version `by`'s): rejected, with the verdict `superseded`."""
    cur.execute(
        "UPDATE scoring.model_versions SET status = 'rejected',"
        " decision_reason = decision_reason || %(note)s,"
        " approval = CASE WHEN status = 'awaiting_approval' THEN coalesce(approval, '{}')"
        "  || jsonb_build_object('verdict', 'superseded', 'answered_at', now(), 'reason', %(why)s)"
        "  ELSE approval END,"
        " shadow = CASE WHEN status = 'shadow' THEN coalesce(shadow, '{}')"
        "  || jsonb_build_object('verdict', 'superseded', 'judged_at', now(), 'reason', %(why)s)"
        "  ELSE shadow END"
        " WHERE job = %(job)s AND status IN ('awaiting_approval', 'shadow')"
        " AND version <> %(by)s",
        {"job": job, "by": by, "note": f"; superseded by v{by}", "why": f"superseded by v{by}"},
    )


def awaiting_approval(url: str, job: str | None = None) -> list[ModelVersion]:
    """The versions waiting for a person's approval (every job's, or `job`'s), oldest first."""
    return db.fetch_rows(
        url,
        ModelVersion,
        "SELECT * FROM scoring.model_versions WHERE status = 'awaiting_approval'"
        " AND (%s::text IS NULL OR job = %s) ORDER BY created_at",
        (job, job),
    )


def note_approval(cur, job: str, version: int, fields: dict) -> None:
    """Add `fields` to a version's approval record."""
    cur.execute(
        "UPDATE scoring.model_versions SET approval = coalesce(approval, '{}') || %s::jsonb"
        " WHERE job = %s AND version = %s",
        (dumps(fields), job, version),
    )


def settle(
    cur, job: str, version: int, status: str, note: str, since: str = "awaiting_approval"
) -> None:
    """Give a version that waited (`since`: for approval, or in shadow) its outcome: champion
    (the previous champion retires), rejected, or awaiting_approval (a request still waiting
    is superseded); `note` is appended to its decision."""
    if status == "champion":
        retire_champion_for(cur, job, version)
    if status == "awaiting_approval":
        supersede(cur, job, version)
    cur.execute(
        "UPDATE scoring.model_versions SET status = %s, decision_reason = decision_reason || %s,"
        " promoted_at = CASE WHEN %s = 'champion' THEN now() END"
        " WHERE job = %s AND version = %s AND status = %s",
        (status, note, status, job, version, since),
    )


def record_shadow(cur, job: str, version: int, judgment: dict) -> None:
    """Store the judgment of a challenger's shadow runs on its version."""
    cur.execute(
        "UPDATE scoring.model_versions SET shadow = %s::jsonb WHERE job = %s AND version = %s",
        (dumps(judgment), job, version),
    )


def judged_by_run(url: str, job: str, run_id: str) -> ModelVersion | None:
    """The challenger whose shadow runs this run judged, if any."""
    return db.fetch_row(
        url,
        ModelVersion,
        "SELECT * FROM scoring.model_versions WHERE job = %s AND shadow->>'judged_by_run' = %s",
        (job, run_id),
    )
