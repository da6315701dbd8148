"""Retention: prune old prediction history and snapshots, never what analysts or a champion use.

Predictions: each job's `retention:` (keep_runs, keep_days) says which published runs keep their
rows in `<job>_predictions`; the run `<job>_latest` shows always does. Pruned after every
publish, and by `prune`.

Snapshots: `SCORING_RETENTION_DAYS` (default 30) or `prune --keep-days N` sets how old a
snapshot (by as_of) must be before it may go; still kept are the training snapshot of the
champion and the snapshots of every published run whose predictions are kept, so `reproduce`
keeps working for them.
"""

import logging
import os
from datetime import UTC, datetime, timedelta

from psycopg2 import sql

from pipeline.spec import JobSpec
from pipeline.store import db
from pipeline.store.storage import DataRoot

log = logging.getLogger(__name__)

DEFAULT_KEEP_DAYS = 30


def keep_days() -> int:
    return int(os.environ.get("SCORING_RETENTION_DAYS", DEFAULT_KEEP_DAYS))


def prune_snapshots(url: str, job: str, days: int, now: datetime | None = None) -> list[str]:
    """Delete `job`'s snapshots older than `days` that nothing kept points to; returns uris."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    root = DataRoot()
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(db.read_sql_file("prunable_snapshots.sql"), {"job": job, "cutoff": cutoff})
        doomed = cur.fetchall()
        for kind, as_of, sha256, uri in doomed:
            cur.execute(
                "DELETE FROM scoring.snapshots"
                " WHERE job = %s AND kind = %s AND as_of = %s AND sha256 = %s",
                (job, kind, as_of, sha256),
            )
            root.delete_dir(root.path_of(uri).rsplit("/", 1)[0])
            log.info("pruned %s snapshot of %s as of %s: %s", kind, job, as_of, uri)
    return [uri for *_, uri in doomed]


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
