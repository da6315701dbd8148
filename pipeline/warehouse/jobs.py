"""scoring.jobs and each job's own objects: its predictions table and its views.

A job's row in scoring.jobs is the lock its publishes and registers take turns on, and records
which version of the job's objects (sql/job_objects.sql) is deployed.
"""

import hashlib
import logging
from datetime import UTC, datetime

from psycopg2 import errors, sql

from pipeline.errors import PipelineError
from pipeline.spec import JobSpec
from pipeline.warehouse import db
from pipeline.warehouse.migrate import can_act_as_owner
from pipeline.warehouse.sources import table_columns

log = logging.getLogger(__name__)

KEY_TYPES = {
    "smallint": "bigint",
    "integer": "bigint",
    "bigint": "bigint",
    "text": "text",
    "character varying": "text",
    "character": "text",
    "uuid": "uuid",
}
DDL_LOCK_TIMEOUT = "5s"


def lock_job(cur, job: str) -> None:
    """Hold the job's row of scoring.jobs until the transaction ends: publishes and registers
    of one job take turns. A row lock needs UPDATE, which readers lack, so unlike an advisory
    lock no analyst session can take it and hold a run up."""
    cur.execute("INSERT INTO scoring.jobs (job) VALUES (%s) ON CONFLICT DO NOTHING", (job,))
    cur.execute("SELECT 1 FROM scoring.jobs WHERE job = %s FOR UPDATE", (job,))


def render_job_objects(conn, spec: JobSpec, key_pg_type: str) -> str:
    """The job's predictions table, views and grants (sql/job_objects.sql) as SQL text."""
    if key_pg_type not in KEY_TYPES:
        raise PipelineError(
            f"job {spec.name}: key column {spec.source.key} has type {key_pg_type!r}; "
            f"supported key types: {sorted(KEY_TYPES)}"
        )
    return (
        sql.SQL(db.read_sql_file("job_objects.sql"))
        .format(
            predictions=db.scoring_ident(spec.predictions_table),
            changes=db.scoring_ident(spec.changes_table),
            shadow=db.scoring_ident(spec.shadow_table),
            latest=db.scoring_ident(spec.latest_view),
            lineage=db.scoring_ident(spec.lineage_view),
            drift=db.scoring_ident(spec.drift_view),
            performance=db.scoring_ident(spec.performance_view),
            alerts=db.scoring_ident(spec.alerts_view),
            job=sql.Literal(spec.name),
            key_type=sql.SQL(KEY_TYPES[key_pg_type]),
            score_meaning=sql.Literal(score_meaning(spec)),
            latest_meaning=sql.Literal(latest_meaning(spec)),
        )
        .as_string(conn)
    )


def latest_meaning(spec: JobSpec) -> str:
    """What `<job>_latest` holds, as its comment says it."""
    rows = (
        f"each key of {spec.source.table} whose {spec.target} was not known at the cut-off "
        "(scoring.rows: unlabelled; labelled rows are not scored)"
        if spec.scoring.rows == "unlabelled"
        else f"each key of {spec.source.table}"
    )
    return (
        f"job {spec.name}: the latest score of {rows} as of the last published run, with the "
        "run and model version that scored it"
    )


def score_meaning(spec: JobSpec) -> str:
    """What `score` is for this job, as the latest view's column comment says it."""
    if spec.task == "regression":
        return f"the predicted {spec.target}"
    if spec.classes and len(spec.classes) > 2:
        return f"the probability of label, the most likely class of {spec.target}"
    positive = spec.positive_class or "the class true, 1 or yes"
    if spec.classes or spec.positive_class:
        return (
            f"the probability that {spec.target} is {positive}; label is {positive} when it is "
            "at least 0.5"
        )
    return (
        f"binary target: the probability that {spec.target} is {positive} (label is that "
        "class when score is at least 0.5); 3 or more classes: the probability of label, "
        "the most likely class"
    )


def ensure_job_objects(url: str, spec: JobSpec) -> bool:
    """Create or update the job's table and views, only when missing or changed; True if it did.

    A deploy (`python -m pipeline migrate`) does this as the owner. A run checks it, reading
    only; it creates them itself only when its login may act as scoring_owner (a
    single-user setup such as the demo). Nothing waits more than DDL_LOCK_TIMEOUT for a lock.
    """
    with db.transaction(url) as conn, conn.cursor() as cur:
        key_type = table_columns(conn, spec.source.table)[spec.source.key]
        text = render_job_objects(conn, spec, key_type)
        digest = hashlib.sha256(text.encode()).hexdigest()
        cur.execute("SELECT objects_sha256 FROM scoring.jobs WHERE job = %s", (spec.name,))
        row = cur.fetchone()
        present = db.relation_exists(conn, f"scoring.{spec.latest_view}")
        if row and row[0] == digest and present:
            return False
        if not can_act_as_owner(cur):
            state = "out of date" if present else "missing"
            raise PipelineError(
                f"job {spec.name}: its table and views in schema scoring are {state}, and this "
                "login may not create them (no DDL at run time). Deploy them: run "
                "`python -m pipeline migrate` as a member of scoring_owner "
                "(docs/operations.md 'Roles')"
            )
        cur.execute("SET LOCAL lock_timeout = %s", (DDL_LOCK_TIMEOUT,))
        cur.execute("SET LOCAL ROLE scoring_owner")
        try:
            cur.execute(text)
        except errors.LockNotAvailable:
            raise PipelineError(
                f"job {spec.name}: could not update its views within {DDL_LOCK_TIMEOUT}: a "
                "session holds a lock on them; nothing was changed, try again"
            ) from None
        cur.execute("RESET ROLE")
        db.upsert(
            cur,
            "jobs",
            {
                "job": spec.name,
                "objects_sha256": digest,
                "key_type": key_type,
                "deployed_at": datetime.now(UTC),
            },
            key=("job",),
        )
    log.info("job %s: deployed its table and views in schema scoring", spec.name)
    return True
