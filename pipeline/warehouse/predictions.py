"""Each job's prediction history (`scoring.<job>_predictions`) and the views over it.

A run's rows are keyed by (run_id, key): publishing a run again replaces its rows. Analysts read
`<job>_latest`, the last published run; its row of scoring.scoring_runs and its predictions are
written in one transaction, so they see the whole previous run until the new one commits.
"""

import io
import logging
from collections.abc import Iterator
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg2 import sql

from pipeline.contracts import PublishRecord, Run
from pipeline.errors import PipelineError
from pipeline.spec import JobSpec
from pipeline.warehouse import db
from pipeline.warehouse.jobs import lock_job
from pipeline.warehouse.runs import mark_pruned, mark_published, move_latest

log = logging.getLogger(__name__)

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


def publish_predictions(
    url: str,
    spec: JobSpec,
    run: Run,
    csv_chunks: Iterator[bytes],
    record: PublishRecord,
    rows: int,
    scored_at: datetime,
    code: str,
    left_chunks: Iterator[bytes] | None = None,
    shadow_chunks: Iterator[bytes] | None = None,
) -> datetime:
    """In one transaction, under the job's lock: replace the run's predictions with the CSV
    chunks (COPY_COLUMNS order), move what `<job>_latest` shows to them and mark the run
    published; returns its published_at.

    A full run becomes the view's base and empties the job's changes, unless the view stands
    at a later as_of (a backfill: history only). An incremental run writes its rows and the
    keys that left (`left_chunks`) into the changes, on the state it started from. A
    challenger's scores in shadow (`shadow_chunks`) go to the job's shadow table."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        lock_job(cur, spec.name)
        replaced = replace_run_rows(cur, spec.predictions_table, run.run_id, csv_chunks)
        if replaced:
            log.info("re-publishing run %s: replaced %d earlier rows", run.run_id, replaced)
        if shadow_chunks is not None:
            replace_run_rows(cur, spec.shadow_table, run.run_id, shadow_chunks)
        if run.incremental:
            apply_change(cur, spec, run, left_chunks or iter(()), scored_at)
        moved = move_latest(cur, spec.name, run.run_id, full=not run.incremental)
        if moved and not run.incremental:  # a new base: no change since it
            cur.execute(sql.SQL("DELETE FROM {}").format(db.scoring_ident(spec.changes_table)))
        if not moved:
            log.info(
                "run %s is a backfill: scoring.%s keeps showing a later cut-off",
                run.run_id,
                spec.latest_view,
            )
        return mark_published(cur, run, record, rows, scored_at, code)


def replace_run_rows(cur, table: str, run_id: str, csv_chunks: Iterator[bytes]) -> int:
    """Replace a run's rows of scoring.`table` with the CSV chunks (COPY_COLUMNS order);
    returns how many earlier rows it replaced."""
    ident = db.scoring_ident(table)
    cur.execute(sql.SQL("DELETE FROM {} WHERE run_id = %s").format(ident), (run_id,))
    replaced = cur.rowcount
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        ident, sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))
    )
    cur.copy_expert(copy_sql.as_string(cur.connection), db.ChunkReader(csv_chunks))
    return replaced


def apply_change(
    cur, spec: JobSpec, run: Run, left_chunks: Iterator[bytes], scored_at: datetime
) -> None:
    """Write an incremental run's rows (already in its history) and the keys that left into
    the job's changes, replacing what earlier changes said of those keys. Refused when another
    run moved the state since this run started from it."""
    cur.execute("SELECT latest_run_id FROM scoring.jobs WHERE job = %s", (spec.name,))
    (latest,) = cur.fetchone()
    started_from = run.scope["previous_run_id"]
    if latest != started_from:
        raise PipelineError(
            f"job {spec.name}: run {run.run_id} changes the state of run {started_from}, but "
            f"scoring.{spec.latest_view} now shows run {latest}; nothing was published. Run "
            "the job again"
        )
    changes = db.scoring_ident(spec.changes_table)
    cur.execute(
        sql.SQL(
            "INSERT INTO {changes} AS c (key, run_id, deleted, score, label, model_version,"
            " as_of, scored_at, probabilities)"
            " SELECT key, run_id, false, score, label, model_version, as_of, scored_at,"
            " probabilities FROM {predictions} WHERE run_id = %s"
            " ON CONFLICT (key) DO UPDATE SET run_id = EXCLUDED.run_id, deleted = false,"
            " score = EXCLUDED.score, label = EXCLUDED.label,"
            " model_version = EXCLUDED.model_version, as_of = EXCLUDED.as_of,"
            " scored_at = EXCLUDED.scored_at, probabilities = EXCLUDED.probabilities"
        ).format(changes=changes, predictions=db.scoring_ident(spec.predictions_table)),
        (run.run_id,),
    )
    rescored = cur.rowcount
    cur.execute(
        sql.SQL("CREATE TEMP TABLE left_keys ON COMMIT DROP AS SELECT key FROM {} LIMIT 0").format(
            changes
        )
    )
    cur.copy_expert(
        "COPY left_keys (key) FROM STDIN WITH (FORMAT csv)", db.ChunkReader(left_chunks)
    )
    cur.execute(
        sql.SQL(
            "INSERT INTO {} AS c (key, run_id, deleted, as_of, scored_at)"
            " SELECT key, %(run)s, true, %(as_of)s, %(at)s FROM left_keys"
            " ON CONFLICT (key) DO UPDATE SET run_id = EXCLUDED.run_id, deleted = true,"
            " score = NULL, label = NULL, model_version = NULL, probabilities = NULL,"
            " as_of = EXCLUDED.as_of, scored_at = EXCLUDED.scored_at"
        ).format(changes),
        {"run": run.run_id, "as_of": run.as_of, "at": scored_at},
    )
    log.info(
        "run %s: %d keys rescored, %d keys left scoring.%s",
        run.run_id,
        rescored,
        cur.rowcount,
        spec.latest_view,
    )


def changed_keys(url: str, spec: JobSpec) -> tuple[list, list[bool]]:
    """The keys in the job's changes and whether each was dropped: (keys, deleted)."""
    rows = db.fetch_all(
        url, sql.SQL("SELECT key, deleted FROM {}").format(db.scoring_ident(spec.changes_table))
    )
    return [r["key"] for r in rows], [r["deleted"] for r in rows]


def delete_run_predictions(url: str, spec: JobSpec, run_id: str) -> int:
    """Delete one run's prediction rows (and its shadow scores) and mark it pruned, in one
    transaction; the row count. Row deletes take no lock a reader waits on."""
    delete = sql.SQL("DELETE FROM {} WHERE run_id = %s")
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(delete.format(db.scoring_ident(spec.shadow_table)), (run_id,))
        cur.execute(delete.format(db.scoring_ident(spec.predictions_table)), (run_id,))
        rows = cur.rowcount
        mark_pruned(cur, spec.name, run_id)
    return rows


def has_predictions(url: str, spec: JobSpec) -> bool:
    """Whether the job's predictions table exists (it does once deployed)."""
    with db.transaction(url) as conn:
        return db.relation_exists(conn, f"scoring.{spec.predictions_table}")


def stored_predictions(url: str, spec: JobSpec, run_id: str) -> pd.DataFrame:
    """A run's published predictions: key, score, label, probabilities, by key."""
    rows = db.fetch_all(
        url,
        sql.SQL(
            "SELECT key, score, label, probabilities FROM {} WHERE run_id = %s ORDER BY key"
        ).format(db.scoring_ident(spec.predictions_table)),
        (run_id,),
    )
    return pd.DataFrame(rows, columns=["key", "score", "label", "probabilities"])


def late_labelled_predictions(
    url: str, spec: JobSpec, run_id: str, eligible: pa.Array, table: str | None = None
) -> list:
    """The run's predictions of the `eligible` keys (those unlabelled at the run's as_of) whose
    key has a label in the source now: (key, score, label, probabilities, truth) rows; from
    `table` (the job's shadow table: its challenger's) instead of its history if given. The
    eligible keys go to a temporary table; the labelled ones among them are found first (one
    pass of the source) and only their rows of the run are read: joining the run's rows first
    hashed all of them (10M rows: 24 s instead of 7 s when the run's statistics are not yet
    analysed)."""
    predictions = db.scoring_ident(table or spec.predictions_table)
    query = sql.SQL(
        "WITH labelled AS MATERIALIZED (SELECT e.key, s.{target} AS truth"
        " FROM eligible_keys AS e JOIN {source} AS s ON s.{key} = e.key"
        " WHERE s.{target} IS NOT NULL)"
        " SELECT p.key, p.score, p.label, p.probabilities, l.truth"
        " FROM labelled AS l JOIN {predictions} AS p ON p.run_id = %s AND p.key = l.key"
    ).format(
        target=sql.Identifier(spec.target),
        predictions=predictions,
        source=db.table_ident(spec.source.table),
        key=sql.Identifier(spec.source.key),
    )
    buffer = io.BytesIO()
    pacsv.write_csv(pa.table({"key": eligible}), buffer, pacsv.WriteOptions(include_header=False))
    buffer.seek(0)
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE eligible_keys ON COMMIT DROP AS SELECT key FROM {} LIMIT 0"
            ).format(predictions)
        )
        cur.copy_expert("COPY eligible_keys (key) FROM STDIN WITH (FORMAT csv)", buffer)
        cur.execute("ANALYZE eligible_keys")
        cur.execute(query, (run_id,))
        return cur.fetchall()


def key_lineage_row(url: str, spec: JobSpec, key: str) -> dict | None:
    """The `<job>_lineage` row of one key's latest published prediction."""
    return db.fetch_one(
        url,
        sql.SQL("SELECT * FROM {} WHERE key::text = %s").format(
            db.scoring_ident(spec.lineage_view)
        ),
        (key,),
    )


def shadow_runs(url: str, spec: JobSpec, version: int) -> list[dict]:
    """The published runs whose predictions are kept in which challenger `version` scored in
    shadow, oldest first (the columns realised performance reads of a run)."""
    return db.fetch_all(
        url,
        sql.SQL(
            "SELECT r.run_id, r.as_of, r.model_version, r.rows_scored, r.training_snapshot_id,"
            " r.scoring_snapshot_id FROM scoring.scoring_runs AS r"
            " WHERE r.job = %s AND r.status = 'published' AND r.predictions_pruned_at IS NULL"
            " AND EXISTS (SELECT 1 FROM {} AS s WHERE s.run_id = r.run_id"
            " AND s.model_version = %s) ORDER BY r.as_of"
        ).format(db.scoring_ident(spec.shadow_table)),
        (spec.name, version),
    )


def shadow_version_of_run(url: str, spec: JobSpec, run_id: str) -> int | None:
    """The challenger that scored the run in shadow, if one did."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        if not db.relation_exists(conn, f"scoring.{spec.shadow_table}"):
            return None
        cur.execute(
            sql.SQL("SELECT model_version FROM {} WHERE run_id = %s LIMIT 1").format(
                db.scoring_ident(spec.shadow_table)
            ),
            (run_id,),
        )
        row = cur.fetchone()
    return row[0] if row else None
