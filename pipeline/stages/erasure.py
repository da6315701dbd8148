"""Erasure: a person's keys out of everything a job stored, with the record of what changed.

`request_erasure` files requests in scoring.erasure_requests (an operator or an upstream
system may insert rows there too); `process_erasures` carries out every pending request of a
job, from `python -m pipeline erase` or at the start of the job's next run:

- every Parquet file of the job (snapshots, the keys that left an incremental run, scored
  partitions) holding an erased key is rewritten without those rows (same schema, row groups
  and order for the rest) and re-hashed; a recorded snapshot's manifest and scoring.snapshots
  row get the new sha256 beside the original, and each rewrite is a row of scoring.erasures;
- the keys leave `<job>_predictions` and `<job>_changes`, so `<job>_latest`;
- the sampled values stored with validation results, run errors and alerts lose the erased
  values (the keys, and the erased rows' values of `source.pii` columns); Data Docs and the run
  reports are written again from them;
- a model version trained on an erased row is flagged, and its model card says so.

Drift and performance rows hold statistics, never keys.
"""

import copy
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from psycopg2 import sql
from psycopg2.extras import Json

from pipeline.contracts import Manifest
from pipeline.datafiles.parquet import holds_any, rewrite_without
from pipeline.datafiles.root import DataRoot
from pipeline.errors import PipelineError
from pipeline.logic.personal import erase_in_message, erase_values, replace_samples
from pipeline.model.card import with_erasure
from pipeline.model.files import COMPANIONS, companion_path
from pipeline.reports.run_page import report_run
from pipeline.spec import JobSpec
from pipeline.warehouse import db
from pipeline.warehouse.erasures import file_requests, pending_requests
from pipeline.warehouse.jobs import lock_job
from pipeline.warehouse.runs import refuse_if_active
from pipeline.warehouse.snapshots import COLUMNS, SnapshotRow

log = logging.getLogger(__name__)

PARTITION_KEY = "key"  # a scored partition's key column; a snapshot's is its first column


@dataclass
class Rewrite:
    """One file rewritten without erased rows."""

    path: str
    old_sha256: str
    new_sha256: str
    removed: pa.Table
    snapshot: SnapshotRow | None  # the scoring.snapshots row of its folder, or None
    kind: str  # training, scoring, left, unrecorded snapshot, partition


@dataclass
class Erasure:
    """What processing a job's pending requests did."""

    job: str
    request_ids: list[int]
    keys: list[str]
    files: list[Rewrite] = field(default_factory=list)
    predictions_deleted: int = 0
    models_flagged: list[int] = field(default_factory=list)
    pages_redacted: int = 0

    @property
    def rows_removed(self) -> int:
        return sum(f.removed.num_rows for f in self.files)


def request_erasure(url: str, job: str, keys: list[str], reason: str) -> list[int]:
    """File one pending request per key; returns their ids."""
    if not reason.strip():
        raise PipelineError(f"job {job}: an erasure needs a reason (--reason)")
    if not keys:
        raise PipelineError(f"job {job}: name at least one key to erase (--key)")
    return file_requests(url, job, keys, reason)


def process_erasures(url: str, spec: JobSpec, by: str, run_id: str | None = None):
    """Carry out the job's pending requests (`by` names the command or run for the record);
    None when there are none. Outside a run (`run_id` None) it refuses while a run is active:
    that run reads the files this rewrites."""
    job = spec.name
    with db.transaction(url) as conn, conn.cursor() as cur:
        lock_job(cur, job)
        if run_id is None:
            refuse_if_active(cur, job, "")
        pending = pending_requests(cur, job)
    if not pending:
        return None
    erasure = Erasure(job, [r[0] for r in pending], list(dict.fromkeys(r[1] for r in pending)))
    reason = "; ".join(dict.fromkeys(r[2] for r in pending))
    keys = set(erasure.keys)
    log.info("erasure of %d key(s) from %s (requests %s)", len(keys), job, erasure.request_ids)
    root = DataRoot()
    erasure.files = rewrite_files(url, root, spec, keys)
    erased = keys | personal_values(spec, erasure.files)
    with db.transaction(url) as conn, conn.cursor() as cur:
        lock_job(cur, job)
        record_rewrites(cur, root, erasure, reason)
        erasure.predictions_deleted = delete_predictions(cur, spec, keys)
        erasure.models_flagged = flag_models(cur, root, erasure)
        runs_touched = redact_records(cur, job, erased)
        cur.execute(
            "UPDATE scoring.erasure_requests SET processed_at = now(), processed_by = %s"
            " WHERE id = ANY(%s)",
            (by, erasure.request_ids),
        )
    erasure.pages_redacted = redact_data_docs(url, root, job, erased)
    for touched in sorted(runs_touched):
        report_run(url, job, touched)
    log.info(
        "erasure of %s done: %d row(s) from %d file(s), %d prediction row(s), models flagged %s,"
        " %d Data Docs page(s) redacted",
        job,
        erasure.rows_removed,
        len(erasure.files),
        erasure.predictions_deleted,
        erasure.models_flagged or "none",
        erasure.pages_redacted,
    )
    return erasure


def job_parquet_files(root: DataRoot, job: str) -> list[str]:
    """Every Parquet file of the job's snapshots and run folders."""
    folders = [root.path("snapshots", job), root.path("runs", job)]
    found = []
    for folder in folders:
        selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
        found += [
            info.path
            for info in root.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
            and info.base_name.endswith(".parquet")
            and not info.base_name.startswith(".incoming-")
        ]
    return sorted(found)


def rewrite_files(url: str, root: DataRoot, spec: JobSpec, keys: set[str]) -> list[Rewrite]:
    """Rewrite every file of the job that holds one of `keys` without those rows."""
    recorded = {
        root.path_of(row.uri): row
        for row in db.fetch_rows(
            url,
            SnapshotRow,
            f"SELECT {COLUMNS} FROM scoring.snapshots WHERE job = %s",  # noqa: S608
            (spec.name,),
        )
    }
    snapshots = root.path("snapshots", spec.name) + "/"
    rewrites = []
    for path in job_parquet_files(root, spec.name):
        row = recorded.get(path.rsplit("/", 1)[0] + "/data.parquet")
        kind = file_kind(path, path.startswith(snapshots), row)
        rewrite = rewrite_file(root, path, keys, kind, row)
        if rewrite is not None:
            rewrites.append(rewrite)
            log.info(
                "erased %d row(s) from %s (%s): sha256 %s -> %s",
                rewrite.removed.num_rows,
                root.uri(path),
                kind,
                rewrite.old_sha256[:16],
                rewrite.new_sha256[:16],
            )
    return rewrites


def file_kind(path: str, in_snapshots: bool, row: SnapshotRow | None) -> str:
    """A file of the job: a recorded snapshot's data (its kind) or keys that left (`left`), a
    snapshot file no row records, or a scored partition."""
    if not in_snapshots:
        return "partition"
    if row is None:
        return "unrecorded snapshot"
    return row.kind if path.endswith("/data.parquet") else "left"


def rewrite_file(
    root: DataRoot, path: str, keys: set[str], kind: str, row: SnapshotRow | None
) -> Rewrite | None:
    """The file rewritten in place without the rows of `keys`; None if it holds none."""
    with root.open_input(path) as src:
        parquet = pq.ParquetFile(src)
        column = PARTITION_KEY if kind == "partition" else parquet.schema_arrow.names[0]
        if column not in parquet.schema_arrow.names:  # a model's holdout scores: no keys
            return None
        if not holds_any(parquet, column, keys):
            return None
        old = root.sha256(path)
        with root.open_output(path) as sink:  # atomic: the old bytes go when the new are in
            removed = rewrite_without(parquet, sink, column, keys)
    return Rewrite(path, old, root.sha256(path), removed, row, kind)


def personal_values(spec: JobSpec, files: list[Rewrite]) -> set[str]:
    """The erased rows' values of the job's `source.pii` columns, as text."""
    values = set()
    for rewrite in files:
        for column in spec.personal & set(rewrite.removed.column_names):
            values |= {str(v) for v in rewrite.removed.column(column).to_pylist() if v is not None}
    return values


def record_rewrites(cur, root: DataRoot, erasure: Erasure, reason: str) -> None:
    """A row of scoring.erasures per rewritten snapshot file; each recorded snapshot's manifest
    (file and row) with the new hash, its original and the erasure."""
    when = datetime.now(UTC).isoformat()
    for rewrite in erasure.files:
        row = rewrite.snapshot
        if row is None:
            continue
        cur.execute(
            "INSERT INTO scoring.erasures (job, snapshot_id, kind, uri, old_sha256, new_sha256,"
            " rows_removed, request_ids, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                erasure.job,
                row.id,
                rewrite.kind,
                root.uri(rewrite.path),
                rewrite.old_sha256,
                rewrite.new_sha256,
                rewrite.removed.num_rows,
                erasure.request_ids,
                reason,
            ),
        )
        folder = rewrite.path.rsplit("/", 1)[0]
        manifest = Manifest.from_json(root.read_json(f"{folder}/manifest.json"))
        entry = {
            "file": rewrite.kind,
            "old_sha256": rewrite.old_sha256,
            "new_sha256": rewrite.new_sha256,
            "rows_removed": rewrite.removed.num_rows,
            "erased_at": when,
            "reason": reason,
            "request_ids": erasure.request_ids,
        }
        manifest = rewritten_manifest(manifest, rewrite, entry)
        root.write_json(f"{folder}/manifest.json", manifest.file_json())
        cur.execute(
            "UPDATE scoring.snapshots SET sha256 = %s, row_count = %s, manifest = %s"
            " WHERE job = %s AND id = %s",
            (manifest.sha256, manifest.row_count, Json(manifest.file_json()), erasure.job, row.id),
        )


def rewritten_manifest(manifest: Manifest, rewrite: Rewrite, entry: dict) -> Manifest:
    """The manifest after `rewrite` of its data file or its keys that left."""
    erasures = [*manifest.erasures, entry]
    if rewrite.kind == "left" and manifest.change:
        change = {
            **manifest.change,
            "left": manifest.change["left"] - rewrite.removed.num_rows,
            "left_sha256": rewrite.new_sha256,
        }
        return replace(manifest, change=change, erasures=erasures)
    return replace(
        manifest,
        sha256=rewrite.new_sha256,
        original_sha256=manifest.original_sha256 or rewrite.old_sha256,
        row_count=manifest.row_count - rewrite.removed.num_rows,
        erasures=erasures,
    )


def delete_predictions(cur, spec: JobSpec, keys: set[str]) -> int:
    """Delete the keys' rows from the job's history, changes and shadow scores; the rows
    deleted."""
    deleted = 0
    for table in (spec.predictions_table, spec.changes_table, spec.shadow_table):
        if not db.relation_exists(cur.connection, f"scoring.{table}"):
            continue
        cur.execute(
            sql.SQL("DELETE FROM {} WHERE key::text = ANY(%s)").format(db.scoring_ident(table)),
            (sorted(keys),),
        )
        deleted += cur.rowcount
    return deleted


def flag_models(cur, root: DataRoot, erasure: Erasure) -> list[int]:
    """Flag the model versions trained on a rewritten training snapshot; their cards say so."""
    flagged = []
    for rewrite in erasure.files:
        if rewrite.kind != "training" or rewrite.snapshot is None:
            continue
        cur.execute(
            "UPDATE scoring.model_versions SET erased_rows = erased_rows + %s,"
            " erasure_flagged_at = now()"
            " WHERE job = %s AND (training_snapshot_id = %s OR (training_snapshot_id IS NULL"
            " AND training_snapshot_sha256 = %s))"
            " RETURNING version, artifact_uri, erased_rows, erasure_flagged_at",
            (rewrite.removed.num_rows, erasure.job, rewrite.snapshot.id, rewrite.old_sha256),
        )
        for version, artifact_uri, rows, when in cur.fetchall():
            card = companion_path(root, artifact_uri, COMPANIONS[1])
            if root.exists(card):
                text = root.read_bytes(card).decode()
                root.write_bytes(card, with_erasure(text, rows, when).encode())
            flagged.append(version)
            log.warning(
                "model v%d of %s was trained on %d row(s) since erased: flagged",
                version,
                erasure.job,
                rows,
            )
    return sorted(set(flagged))


def redact_records(cur, job: str, erased: set[str]) -> set[str]:
    """Strike erased values from the samples and messages stored with validation results,
    run errors and alerts; returns the runs whose records changed."""
    touched = set()
    replace_value = erase_values(erased)
    cur.execute(
        "SELECT run_id, suite, failures FROM scoring.validation_results WHERE job = %s", (job,)
    )
    for run_id, suite, failures in cur.fetchall():
        redacted = replace_samples(
            [{**f, "message": erase_in_message(f.get("message", ""), erased)} for f in failures],
            replace_value,
        )
        if redacted != failures:
            cur.execute(
                "UPDATE scoring.validation_results SET failures = %s"
                " WHERE job = %s AND run_id = %s AND suite = %s",
                (Json(redacted), job, run_id, suite),
            )
            touched.add(run_id)
    cur.execute(
        "SELECT run_id, error FROM scoring.scoring_runs WHERE job = %s AND error IS NOT NULL",
        (job,),
    )
    for run_id, error in cur.fetchall():
        redacted = erase_in_message(error, erased)
        if redacted != error:
            cur.execute(
                "UPDATE scoring.scoring_runs SET error = %s WHERE job = %s AND run_id = %s",
                (redacted, job, run_id),
            )
            touched.add(run_id)
    cur.execute("SELECT id, run_id, message FROM scoring.alerts WHERE job = %s", (job,))
    for alert_id, run_id, message in cur.fetchall():
        redacted = erase_in_message(message, erased)
        if redacted != message:
            cur.execute(
                "UPDATE scoring.alerts SET message = %s WHERE id = %s", (redacted, alert_id)
            )
            touched |= {run_id} - {None}
    return touched


def redact_data_docs(url: str, root: DataRoot, job: str, erased: set[str]) -> int:
    """Strike erased values from each stored GX result of the job and write its Data Docs page
    again from it; returns the pages rewritten."""
    rows = db.fetch_all(
        url,
        "SELECT run_id, result_uri, docs_uri FROM scoring.validation_results WHERE job = %s",
        (job,),
    )
    # GX takes seconds to import: only when pages are rewritten (prune and retire, in the same
    # CLI module, do not pay it)
    from pipeline.reports.data_docs import render_data_docs_json

    rewritten = 0
    for row in rows:
        path = root.path_of(row["result_uri"])
        if not root.exists(path):
            continue
        result = root.read_json(path)
        redacted = replace_samples(copy.deepcopy(result), erase_values(erased))
        if redacted == result:
            continue
        root.write_json(path, redacted)
        manifest = Manifest.from_json(
            root.read_json(path.split("/validation/", 1)[0] + "/manifest.json")
        )
        if row["docs_uri"]:
            page = render_data_docs_json(redacted, manifest, row["run_id"], root)
            root.write_bytes(root.path_of(row["docs_uri"]), page.encode())
        rewritten += 1
    return rewritten
