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
from pipeline.spec import JobSpec
from pipeline.warehouse import db
from pipeline.warehouse.jobs import lock_job
from pipeline.warehouse.runs import mark_pruned, mark_published

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
) -> datetime:
    """In one transaction, under the job's lock: replace the run's predictions with the CSV
    chunks (COPY_COLUMNS order) and mark the run published; returns its published_at."""
    table = db.scoring_ident(spec.predictions_table)
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        table, sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))
    )
    with db.transaction(url) as conn, conn.cursor() as cur:
        lock_job(cur, spec.name)
        cur.execute(sql.SQL("DELETE FROM {} WHERE run_id = %s").format(table), (run.run_id,))
        if cur.rowcount:
            log.info("re-publishing run %s: replaced %d earlier rows", run.run_id, cur.rowcount)
        cur.copy_expert(copy_sql.as_string(conn), db.ChunkReader(csv_chunks))
        return mark_published(cur, run, record, rows, scored_at, code)


def delete_run_predictions(url: str, spec: JobSpec, run_id: str) -> int:
    """Delete one run's prediction rows and mark it pruned, in one transaction; the row count.
    Row deletes take no lock a reader waits on."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL("DELETE FROM {} WHERE run_id = %s").format(
                db.scoring_ident(spec.predictions_table)
            ),
            (run_id,),
        )
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


def late_labelled_predictions(url: str, spec: JobSpec, run_id: str, known: pa.Array) -> list:
    """The run's predictions whose key has a label in the source now but had none at the run's
    as_of (`known`: the keys labelled then): (key, score, label, probabilities, truth) rows.
    The known keys go to a temporary table, so only the late-labelled rows leave the server."""
    predictions = db.scoring_ident(spec.predictions_table)
    query = sql.SQL(
        "SELECT p.key, p.score, p.label, p.probabilities, s.{target} AS truth"
        " FROM {predictions} AS p JOIN {source} AS s ON s.{key} = p.key"
        " WHERE p.run_id = %s AND s.{target} IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM known_keys AS k WHERE k.key = p.key)"
    ).format(
        target=sql.Identifier(spec.target),
        predictions=predictions,
        source=db.table_ident(spec.source.table),
        key=sql.Identifier(spec.source.key),
    )
    buffer = io.BytesIO()
    pacsv.write_csv(pa.table({"key": known}), buffer, pacsv.WriteOptions(include_header=False))
    buffer.seek(0)
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE known_keys ON COMMIT DROP AS SELECT key FROM {} LIMIT 0"
            ).format(predictions)
        )
        cur.copy_expert("COPY known_keys (key) FROM STDIN WITH (FORMAT csv)", buffer)
        cur.execute("ANALYZE known_keys")
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
