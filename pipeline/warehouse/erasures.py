"""scoring.erasure_requests and scoring.erasures: the keys to erase from a job, and what each
erasure rewrote (pipeline.stages.erasure carries the requests out)."""

from pipeline.warehouse import db


def file_requests(url: str, job: str, keys: list[str], reason: str) -> list[int]:
    """One pending request per distinct key; their ids."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        ids = []
        for key in dict.fromkeys(keys):
            cur.execute(
                "INSERT INTO scoring.erasure_requests (job, key, reason) VALUES (%s, %s, %s)"
                " RETURNING id",
                (job, key, reason),
            )
            ids.append(cur.fetchone()[0])
    return ids


def pending_requests(cur, job: str) -> list[tuple]:
    """(id, key, reason) of the job's requests not yet carried out, oldest first."""
    cur.execute(
        "SELECT id, key, reason FROM scoring.erasure_requests"
        " WHERE job = %s AND processed_at IS NULL ORDER BY id",
        (job,),
    )
    return cur.fetchall()


def has_pending_requests(url: str, job: str) -> bool:
    row = db.fetch_one(
        url,
        "SELECT EXISTS (SELECT 1 FROM scoring.erasure_requests"
        " WHERE job = %s AND processed_at IS NULL) AS pending",
        (job,),
    )
    return bool(row and row["pending"])


def erasures_of(url: str, job: str, snapshot_ids: list[int | None]) -> list[dict]:
    """The erasures recorded for these snapshots, oldest first."""
    return db.fetch_all(
        url,
        "SELECT snapshot_id, kind, old_sha256, new_sha256, rows_removed, request_ids, reason,"
        " erased_at FROM scoring.erasures WHERE job = %s AND snapshot_id = ANY(%s)"
        " ORDER BY erased_at, id",
        (job, [i for i in snapshot_ids if i is not None]),
    )
