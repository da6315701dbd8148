"""Retention of snapshots, never one that a champion or a kept run points to (prediction
history is pruned by `pipeline.stages.publish.prune_predictions`, after every publish).

Snapshots: `SCORING_RETENTION_DAYS` (default 30) or `prune --keep-days N` sets how old a
snapshot (by as_of) must be before it may go; still kept are the training snapshot of the
champion and the snapshots of every published run whose predictions are kept, so `reproduce`
keeps working for them.
"""

import logging
import os
from datetime import UTC, datetime, timedelta

from pipeline.datafiles.root import DataRoot
from pipeline.warehouse import db
from pipeline.warehouse.snapshots import delete_snapshot, prunable_snapshots

log = logging.getLogger(__name__)

DEFAULT_KEEP_DAYS = 30


def keep_days() -> int:
    return int(os.environ.get("SCORING_RETENTION_DAYS", DEFAULT_KEEP_DAYS))


def prune_snapshots(url: str, job: str, days: int, now: datetime | None = None) -> list[str]:
    """Delete `job`'s snapshots older than `days` that nothing kept points to; returns uris."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    root = DataRoot()
    with db.transaction(url) as conn, conn.cursor() as cur:
        doomed = prunable_snapshots(cur, job, cutoff)
        for kind, as_of, sha256, uri in doomed:
            delete_snapshot(cur, job, kind, as_of, sha256)
            root.discard(root.path_of(uri).rsplit("/", 1)[0])
            log.info("pruned %s snapshot of %s as of %s: %s", kind, job, as_of, uri)
    return [uri for *_, uri in doomed]
