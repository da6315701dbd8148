"""Publish a run: its predictions and its scoring_runs row in one transaction.

Analysts read `scoring.<job>_latest`, which shows the last published run; until this
transaction commits they keep seeing the previous one, never a half-written run. Re-publishing
the same run replaces its rows, so nothing is ever duplicated.
"""

import hashlib
import io
import logging
import queue
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg2 import errors, sql

from pipeline.contracts import (
    Context,
    DriftSummary,
    Manifest,
    Published,
    PublishRecord,
    Run,
    ScoredPartition,
    ServingModel,
    Validation,
)
from pipeline.errors import PipelineError
from pipeline.progress import Progress
from pipeline.provenance import code_version
from pipeline.spec import JobSpec
from pipeline.store import db
from pipeline.store.migrate import can_act_as_owner
from pipeline.store.records import lock_job, upsert
from pipeline.store.storage import DataRoot

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
COPY_COLUMNS = (
    "run_id",
    "key",
    "score",
    "label",
    "probabilities",
    "model_version",
    "as_of",
    "scored_at",
)
BATCH_ROWS = 25_000  # rows per CSV chunk: 100k held ~80 MiB more in flight, no faster
DDL_LOCK_TIMEOUT = "5s"
PREFETCH = 4  # CSV chunks made ahead of COPY: enough to keep Postgres busy, little memory


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
            latest=db.scoring_ident(spec.latest_view),
            lineage=db.scoring_ident(spec.lineage_view),
            drift=db.scoring_ident(spec.drift_view),
            performance=db.scoring_ident(spec.performance_view),
            job=sql.Literal(spec.name),
            key_type=sql.SQL(KEY_TYPES[key_pg_type]),
            score_meaning=sql.Literal(score_meaning(spec)),
        )
        .as_string(conn)
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
        key_type = db.table_columns(conn, spec.source.table)[spec.source.key]
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
                "`python -m pipeline migrate` as a member of scoring_owner (README 'Roles')"
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
        upsert(
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


def publish(
    ctx: Context,
    training: Manifest,
    scoring: Manifest,
    training_check: Validation,
    scoring_check: Validation,
    model: ServingModel,
    parts: list[ScoredPartition],
    drift: DriftSummary,
) -> Published:
    """Publish the scored partitions with the record of what made them (monitoring, `drift`,
    has let them through); then the run's summary, the last lines of the run's last task log."""
    from pipeline.ops.report import log_run_summary
    from pipeline.ops.run_report import report_run

    checks = (training_check, scoring_check)
    record = PublishRecord(
        model_version=model.version,
        scoring_snapshot_sha256=scoring.sha256,
        training_snapshot_sha256=training.sha256 if model.trained_now else None,
        validation=[
            {
                "suite": c.suite,
                "success": c.success,
                "warnings_failed": c.warnings_failed,
                "result_uri": c.result_uri,
            }
            for c in checks
        ],
        timings={
            "snapshot_training": training.seconds,
            "snapshot_scoring": scoring.seconds,
            "validate": sum(c.seconds for c in checks),
            "train": model.train_seconds,
            "score": max((p.seconds for p in parts), default=0.0),
            "monitor": drift.seconds,
        },
        scoring_snapshot_id=scoring.snapshot_id,
        training_snapshot_id=training.snapshot_id,
    )
    published = publish_run(ctx.url, ctx.spec, ctx.run, parts, record)
    prune_predictions(ctx.url, ctx.spec)
    report_run(ctx.url, ctx.spec.name, ctx.run.run_id, ctx.spec)
    log_run_summary(ctx.url, ctx.spec, ctx.run.run_id)
    return published


def publish_run(
    url: str, spec: JobSpec, run: Run, parts: list[ScoredPartition], record: PublishRecord
) -> Published:
    """Replace this run's predictions, mark it published; all or nothing."""
    started = time.perf_counter()
    root = DataRoot()
    scored_at = datetime.now(UTC)
    total = sum(p.rows for p in parts)
    progress = Progress(log, f"publish {spec.name}", total)
    table = db.scoring_ident(spec.predictions_table)
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        table, sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))
    )
    ensure_job_objects(url, spec)
    with db.transaction(url) as conn, conn.cursor() as cur:
        lock_job(cur, spec.name)
        cur.execute(sql.SQL("DELETE FROM {} WHERE run_id = %s").format(table), (run.run_id,))
        if cur.rowcount:
            log.info("re-publishing run %s: replaced %d earlier rows", run.run_id, cur.rowcount)
        copy_text = copy_sql.as_string(conn)
        constants = {
            "run_id": run.run_id,
            "model_version": record.model_version,
            "as_of": run.as_of,
            "scored_at": scored_at.isoformat(),
        }
        chunks = prefetched(csv_chunks(root, parts, constants, progress), PREFETCH)
        cur.copy_expert(copy_text, ChunkReader(chunks))
        published = mark_published(cur, spec, run, record, total, scored_at)
    seconds = progress.finish()
    log.info("published run %s of %s: %d rows in %.1f s", run.run_id, spec.name, total, seconds)
    return Published(
        rows=total,
        published_at=published.isoformat(),
        seconds=round(time.perf_counter() - started, 3),
    )


def csv_chunks(
    root: DataRoot, parts: list[ScoredPartition], constants: dict, progress
) -> Iterator[bytes]:
    """Every part's predictions as CSV chunks, in partition order."""
    for part in sorted(parts, key=lambda p: p.index):
        with root.open_input(root.path_of(part.uri)) as src:
            for batch in pq.ParquetFile(src).iter_batches(batch_size=BATCH_ROWS):
                yield csv_rows(batch, constants)
                progress.advance(batch.num_rows)


def prefetched(items: Iterator, depth: int) -> Iterator:
    """`items`, produced by a background thread up to `depth` ahead (Arrow releases the GIL)."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                ready.put(item)
        except BaseException as exc:  # re-raised in the consuming thread
            ready.put(exc)
        ready.put(end)

    producer = threading.Thread(target=produce, name="prefetch", daemon=True)
    producer.start()
    try:
        while (item := ready.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting on a full queue
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass


class ChunkReader:
    """The file-like `read()` that `copy_expert` needs, over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks = chunks

    def read(self, size: int = -1) -> bytes:
        return next(self.chunks, b"")


def csv_rows(batch: pa.RecordBatch, constants: dict) -> bytes:
    """One prediction batch as CSV in COPY_COLUMNS order, with the run's constants filled in."""
    n = batch.num_rows
    table = pa.table(
        {
            "run_id": pa.repeat(pa.scalar(constants["run_id"]), n),
            "key": batch.column("key"),
            "score": batch.column("score"),
            "label": batch.column("label"),
            "probabilities": batch.column("probabilities"),
            "model_version": pa.repeat(pa.scalar(constants["model_version"], pa.int64()), n),
            "as_of": pa.repeat(pa.scalar(constants["as_of"]), n),
            "scored_at": pa.repeat(pa.scalar(constants["scored_at"]), n),
        }
    )
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return buffer.getvalue()


def mark_published(cur, spec: JobSpec, run: Run, record: PublishRecord, rows: int, when):
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
    return upsert(
        cur,
        "scoring_runs",
        {
            "job": spec.name,
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
            "code_version": code_version(),
            "timings": record.timings,
            "published_at": when,
            **ids,
        },
        key=("job", "run_id"),
        returning="published_at",
    )


def prune_predictions(url: str, spec: JobSpec, now: datetime | None = None) -> list[str]:
    """Delete the prediction rows of published runs the job's `retention` lets go, one run per
    transaction; returns their run ids. Row deletes take no lock a reader waits on, and the
    run `<job>_latest` shows is never among them."""
    keep = spec.retention
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep.keep_days) if keep.keep_days else None
    params = {"job": spec.name, "keep_runs": keep.keep_runs, "cutoff": cutoff}
    doomed = [
        row["run_id"] for row in db.fetch_all(url, db.read_sql_file("prunable_runs.sql"), params)
    ]
    table = db.scoring_ident(spec.predictions_table)
    for run_id in doomed:
        with db.transaction(url) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DELETE FROM {} WHERE run_id = %s").format(table), (run_id,))
            rows = cur.rowcount
            cur.execute(
                "UPDATE scoring.scoring_runs SET predictions_pruned_at = now()"
                " WHERE job = %s AND run_id = %s",
                (spec.name, run_id),
            )
        log.info(
            "pruned %d predictions of run %s of %s (retention %s)", rows, run_id, spec.name, keep
        )
    return doomed
