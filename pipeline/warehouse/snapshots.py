"""scoring.snapshots: one row per snapshot file (job, kind, as_of, content hash), with its id.

Runs and models point at their snapshots by id; rows from before snapshot ids (migration 005)
have only the sha256, and are looked up by content.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.contracts import Manifest
from pipeline.warehouse import db
from pipeline.warehouse.runs import set_snapshot_id

log = logging.getLogger(__name__)

COLUMNS = "id, kind, as_of, row_count, sha256, uri, manifest"
SNAPSHOT_BY_ID = f"SELECT {COLUMNS} FROM scoring.snapshots WHERE job = %s AND id = %s"  # noqa: S608
# The snapshot with that content, the same kind and as_of first: `as_of`, else that of the run
# that registered the model `version` (for a model's training snapshot).
SNAPSHOT_BY_SHA256 = (
    f"SELECT {COLUMNS} FROM scoring.snapshots"  # noqa: S608 (a constant column list)
    " WHERE job = %(job)s AND sha256 = %(sha256)s"
    " ORDER BY kind = %(kind)s DESC, (as_of = coalesce(%(as_of)s::timestamptz, ("
    "  SELECT r.as_of FROM scoring.model_versions AS m JOIN scoring.scoring_runs AS r"
    "  ON r.job = m.job AND r.run_id = m.run_id"
    "  WHERE m.job = %(job)s AND m.version = %(version)s))) IS TRUE DESC, created_at, id"
    " LIMIT 1"
)


@dataclass(frozen=True)
class SnapshotRow(db.Row):
    """A row of scoring.snapshots."""

    id: int
    kind: str
    sha256: str
    uri: str
    row_count: int
    as_of: datetime | None = None
    manifest: dict | None = None

    @property
    def recorded_manifest(self) -> Manifest:
        """The manifest stored with the row, with the row's id."""
        return Manifest.from_json({**(self.manifest or {}), "snapshot_id": self.id})


def record_snapshot(url: str, manifest: Manifest, run_id: str | None = None) -> int:
    """Upsert the scoring.snapshots row for (job, kind, as_of, sha256); returns its id. With
    `run_id`, the id also goes on that run's row (`<kind>_snapshot_id`)."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        snapshot_id = db.upsert(
            cur,
            "snapshots",
            {
                "job": manifest.job,
                "kind": manifest.kind,
                "as_of": manifest.as_of,
                "row_count": manifest.row_count,
                "sha256": manifest.sha256,
                "uri": manifest.uri,
                "query": manifest.query,
                "manifest": manifest.file_json(),
                "created_at": datetime.now(UTC),
            },
            key=("job", "kind", "as_of", "sha256"),
            returning="id",
        )
        if run_id is not None:
            set_snapshot_id(cur, manifest.job, run_id, manifest.kind, snapshot_id)
    return snapshot_id


def recorded_snapshot(
    url: str,
    job: str,
    snapshot_id: int | None,
    sha256: str | None,
    kind: str,
    what: str,
    as_of: datetime | None = None,
    model_version: int | None = None,
) -> SnapshotRow | None:
    """The scoring.snapshots row a run or model recorded (`what` names it for the log), by
    its id; None if that row is gone (pruned).

    Rows written before snapshot ids (migration 005) have only the sha256: then the snapshot
    with that content, preferring the same kind and as_of (`as_of`, or for a model's training
    snapshot that of the run that registered `model_version`): another snapshot with the same
    bytes, e.g. one `suggest-expectations` took, may sit in another folder.
    """
    if snapshot_id is not None:
        return db.fetch_row(url, SnapshotRow, SNAPSHOT_BY_ID, (job, snapshot_id))
    if sha256 is None:
        return None
    log.info(
        "%s was recorded before snapshot ids (migration 005): looking up its %s snapshot by "
        "sha256 %s, same kind and as_of first",
        what,
        kind,
        sha256[:16],
    )
    return db.fetch_row(
        url,
        SnapshotRow,
        SNAPSHOT_BY_SHA256,
        {"job": job, "sha256": sha256, "kind": kind, "as_of": as_of, "version": model_version},
    )


def snapshots_of_run(
    url: str, job: str, ids: list[int | None], hashes: tuple[str | None, str | None], as_of
) -> list[SnapshotRow]:
    """A run's own snapshots, by the ids its stages recorded; by sha256 (`hashes`: training,
    scoring) for runs recorded before snapshot ids (migration 005)."""
    known = [i for i in ids if i is not None]
    if known:
        return db.fetch_rows(
            url,
            SnapshotRow,
            f"SELECT {COLUMNS} FROM scoring.snapshots"  # noqa: S608 (a constant column list)
            " WHERE job = %s AND id = ANY(%s) ORDER BY kind",
            (job, known),
        )
    if not any(hashes):
        return []
    log.info("a run of %s was recorded before snapshot ids: its snapshots by sha256", job)
    return db.fetch_rows(
        url,
        SnapshotRow,
        f"SELECT DISTINCT ON (kind) {COLUMNS} FROM scoring.snapshots"  # noqa: S608
        " WHERE job = %s AND sha256 IN (%s, %s)"
        " ORDER BY kind, (as_of = %s) IS TRUE DESC, created_at",
        (job, *hashes, as_of),
    )


def previous_row_count(url: str, job: str, kind: str, as_of: str) -> int | None:
    """The row count of the table in the job's newest snapshot of `kind` before `as_of` (for a
    change snapshot, the whole table's, which its manifest records); of several with that
    as_of (the table changed under old timestamps), the last one taken."""
    row = db.fetch_one(
        url,
        "SELECT coalesce((manifest->'change'->>'table_rows')::bigint, row_count) AS row_count"
        " FROM scoring.snapshots WHERE job = %s AND kind = %s AND as_of < %s"
        " ORDER BY as_of DESC, created_at DESC LIMIT 1",
        (job, kind, as_of),
    )
    return row["row_count"] if row else None


def prunable_snapshots(cur, job: str, cutoff: datetime) -> list[tuple]:
    """(kind, as_of, sha256, uri) of the snapshots retention lets go
    (sql/prunable_snapshots.sql)."""
    cur.execute(db.read_sql_file("prunable_snapshots.sql"), {"job": job, "cutoff": cutoff})
    return cur.fetchall()


def delete_snapshot(cur, job: str, kind: str, as_of: datetime, sha256: str) -> None:
    cur.execute(
        "DELETE FROM scoring.snapshots WHERE job = %s AND kind = %s AND as_of = %s AND sha256 = %s",
        (job, kind, as_of, sha256),
    )
