"""Point-in-time snapshots: the rows with timestamp < as_of, streamed by COPY into Parquet.

The same as_of gives the same bytes (rows ordered by key, fixed row groups and writer
settings), so the manifest's sha256 identifies the data a model saw or a run scored.
"""

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg2 import sql

from pipeline.contracts import Context, Manifest, SnapshotRef
from pipeline.errors import DataValidationError, PipelineError
from pipeline.progress import Progress
from pipeline.provenance import code_version, library_versions
from pipeline.spec import JobSpec, check_columns
from pipeline.store import db
from pipeline.store.records import upsert
from pipeline.store.storage import DataRoot

log = logging.getLogger(__name__)

KINDS = ("training", "scoring")
TIMESTAMPTZ = "timestamp with time zone"
ARROW_TYPES = {
    "smallint": pa.int64(),
    "integer": pa.int64(),
    "bigint": pa.int64(),
    "real": pa.float64(),
    "double precision": pa.float64(),
    "numeric": pa.float64(),
    "boolean": pa.bool_(),
    "text": pa.string(),
    "character varying": pa.string(),
    "character": pa.string(),
    "uuid": pa.string(),
    TIMESTAMPTZ: pa.timestamp("us"),  # selected AT TIME ZONE 'UTC', then marked UTC
    "timestamp without time zone": pa.timestamp("us"),
    "date": pa.date32(),
}
PARQUET_OPTIONS = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
}
CSV_BLOCK_BYTES = 8 << 20
DUPLICATE_SAMPLE = 5  # duplicated keys an error names


def snapshot_columns(spec: JobSpec, kind: str) -> list[str]:
    """Key, timestamp, features in spec order, and the target for training snapshots."""
    columns = [spec.source.key, spec.source.timestamp, *spec.features.all]
    if kind == "training":
        columns.append(spec.target)
    return columns


def build_snapshot_query(spec: JobSpec, kind: str, column_types: dict[str, str]) -> sql.Composed:
    """SELECT the snapshot's columns as of `%(as_of)s`, ordered by key; identifiers quoted."""
    if kind not in KINDS:
        raise ValueError(f"snapshot kind must be one of {KINDS}, not {kind!r}")
    select = []
    for column in snapshot_columns(spec, kind):
        ident = sql.Identifier(column)
        if column_types[column] == TIMESTAMPTZ:
            select.append(sql.SQL("{} AT TIME ZONE 'UTC' AS {}").format(ident, ident))
        else:
            select.append(ident)
    conditions = [sql.SQL("{} < %(as_of)s").format(sql.Identifier(spec.source.timestamp))]
    if kind == "training":
        conditions.append(sql.SQL("{} IS NOT NULL").format(sql.Identifier(spec.target)))
    return sql.SQL("SELECT {columns} FROM {table} WHERE {where} ORDER BY {key}").format(
        columns=sql.SQL(", ").join(select),
        table=db.table_ident(spec.source.table),
        where=sql.SQL(" AND ").join(conditions),
        key=sql.Identifier(spec.source.key),
    )


def arrow_schemas(
    spec: JobSpec, kind: str, column_types: dict[str, str]
) -> tuple[pa.Schema, pa.Schema]:
    """The schema COPY's CSV is parsed with, and the snapshot's schema (timestamptz as UTC)."""
    fields = []
    for column in snapshot_columns(spec, kind):
        pg_type = column_types[column]
        if pg_type not in ARROW_TYPES:
            raise PipelineError(
                f"job {spec.name}: column {spec.source.table}.{column} has type {pg_type!r}, "
                f"which snapshots do not support (supported: {sorted(ARROW_TYPES)})"
            )
        fields.append(pa.field(column, ARROW_TYPES[pg_type]))
    csv_schema = pa.schema(fields)
    file_schema = pa.schema(
        [
            pa.field(f.name, pa.timestamp("us", tz="UTC"))
            if column_types[f.name] == TIMESTAMPTZ
            else f
            for f in fields
        ]
    )
    return csv_schema, file_schema


def snapshot_dir(root: DataRoot, job: str, kind: str, as_of: datetime) -> str:
    return root.path("snapshots", job, kind, as_of.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ"))


def snapshot(ctx: Context, kind: str) -> Manifest:
    """The run's `kind` snapshot as of its cut-off, recorded on the run's row."""
    as_of = datetime.fromisoformat(ctx.run.as_of)
    return take_snapshot(ctx.spec, kind, as_of, ctx.url, run_id=ctx.run.run_id)


def take_snapshot(
    spec: JobSpec, kind: str, as_of: datetime, url: str, run_id: str | None = None
) -> Manifest:
    """Write the snapshot and its manifest, record it in scoring.snapshots (and, for a run's
    snapshot, its id on the run's row); returns the manifest with its `snapshot_id`.

    The folder is `<as_of>/<sha256 prefix>/`: if the table was changed in place under an old
    timestamp, a second snapshot of the same as_of sits beside the first, never over it. A key
    that occurs twice fails the snapshot (DataValidationError) and leaves no file.
    """
    started = time.perf_counter()
    root = DataRoot()
    incoming = f"{snapshot_dir(root, spec.name, kind, as_of)}/.incoming-{uuid.uuid4().hex}"
    conn = db.connect(url)
    try:  # a failed snapshot leaves no file behind
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
        column_types = db.table_columns(conn, spec.source.table)
        check_columns(spec, column_types)
        csv_schema, schema = arrow_schemas(spec, kind, column_types)
        query = build_snapshot_query(spec, kind, column_types)
        with conn.cursor() as cur:
            query_text = cur.mogrify(query, {"as_of": as_of}).decode()
        estimate = estimate_rows(conn, spec.source.table)
        future = count_future_rows(conn, spec)
        log.info("snapshot %s/%s as of %s: %s", spec.name, kind, as_of.isoformat(), query_text)
        duplicates = DuplicateKeys(spec.source.key)
        with root.open_output(incoming) as sink:
            rows, row_groups = copy_to_parquet(
                conn,
                query_text,
                csv_schema,
                schema,
                sink,
                spec.scoring.batch_rows,
                Progress(log, f"snapshot {spec.name}/{kind}", estimate),
                duplicates,
            )
        if duplicates.count:
            raise DataValidationError(duplicates.message(spec, kind, as_of))
    except BaseException:
        root.remove(incoming)
        raise
    finally:
        conn.close()
    sha256 = root.sha256(incoming)
    folder = f"{snapshot_dir(root, spec.name, kind, as_of)}/{sha256[:16]}"
    data_path = f"{folder}/data.parquet"
    root.move(incoming, data_path)
    manifest = Manifest(
        job=spec.name,
        kind=kind,
        source_table=spec.source.table,
        as_of=as_of.astimezone(UTC).isoformat(),
        query=query_text,
        row_count=rows,
        row_groups=row_groups,
        future_rows=future,
        schema=[{"name": f.name, "type": str(f.type)} for f in schema],
        sha256=sha256,
        uri=root.uri(data_path),
        code_version=code_version(),
        library_versions=library_versions(),
        seconds=round(time.perf_counter() - started, 3),
    )
    root.write_json(f"{folder}/manifest.json", file_json(manifest))
    manifest = replace(manifest, snapshot_id=record_snapshot(url, manifest, run_id))
    log.info(
        "snapshot %s/%s: %d rows, sha256 %s, %s", spec.name, kind, rows, sha256[:16], manifest.uri
    )
    return manifest


def count_future_rows(conn, spec: JobSpec) -> dict:
    """Rows whose timestamp is later than now: bad clocks or bad loads, never in a snapshot."""
    query = sql.SQL("SELECT {key} FROM {table} WHERE {ts} > now() ORDER BY {key}").format(
        key=sql.Identifier(spec.source.key),
        table=db.table_ident(spec.source.table),
        ts=sql.Identifier(spec.source.timestamp),
    )
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*), (array_agg(k))[1:5] FROM ({}) AS f(k)").format(query))
        count, sample = cur.fetchone()
    if count:
        log.warning(
            "%s: %d rows have %s in the future, e.g. keys %s",
            spec.source.table,
            count,
            spec.source.timestamp,
            sample,
        )
    return {"count": count, "sample_keys": [str(k) for k in sample or []]}


def estimate_rows(conn, table: str) -> int | None:
    """Postgres' own row estimate (no scan), for progress lines only."""
    with conn.cursor() as cur:
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", (table,))
        row = cur.fetchone()
    return int(row[0]) if row and row[0] and row[0] > 0 else None


class DuplicateKeys:
    """Counts the keys that occur more than once in batches sorted by key (the snapshot's
    ORDER BY): equal keys are then adjacent, so each batch is compared with itself shifted by
    one row, and its first key with the previous batch's last. Vectorised, one pass, no sort."""

    def __init__(self, column: str):
        self.column = column
        self.count = 0  # distinct keys seen more than once
        self.sample: list = []
        self.previous = None  # the last key of the previous batch
        self.last_repeated = None  # the last key counted

    def add(self, batch: pa.RecordBatch) -> None:
        keys = batch.column(self.column)
        if not len(keys):
            return
        repeated = keys[1:].filter(pc.equal(keys[1:], keys[:-1]))  # nulls compare as null: dropped
        first = keys[0].as_py()
        if first is not None and first == self.previous:
            repeated = pa.concat_arrays([keys[:1], repeated])
        self.previous = keys[-1].as_py()
        if not len(repeated):
            return
        distinct = pc.unique(repeated).to_pylist()  # sorted, so only the first may be counted
        if distinct[0] == self.last_repeated:
            distinct = distinct[1:]
        if distinct:
            self.count += len(distinct)
            self.sample += distinct[: DUPLICATE_SAMPLE - len(self.sample)]
            self.last_repeated = distinct[-1]

    def message(self, spec: JobSpec, kind: str, as_of: datetime) -> str:
        return (
            f"job {spec.name}: source {spec.source.table} has {self.count:,} duplicated "
            f"value(s) of its key column {self.column} in the {kind} snapshot as of "
            f"{as_of.isoformat()}, e.g. {self.sample}: predictions are keyed by it, so it must "
            "be unique per row; fix the source (a view: its joins) or set source.key to a "
            "unique column. No snapshot was written."
        )


def copy_to_parquet(
    conn, query_text, csv_schema, schema, sink, row_group_rows, progress, keys=None
) -> tuple[int, int]:
    """Stream `COPY (query) TO STDOUT` through Arrow's CSV reader into fixed-size row groups;
    every batch also goes through `keys` (a DuplicateKeys), if given."""
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb", buffering=1 << 20) as pipe, conn.cursor() as cur:
                cur.copy_expert(f"COPY ({query_text}) TO STDOUT WITH (FORMAT csv)", pipe)
        except BaseException as exc:  # re-raised in the reading thread
            failure.append(exc)

    producer = threading.Thread(target=produce, name="copy-out", daemon=True)
    producer.start()
    rows = row_groups = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    # Buffered, so Arrow gets whole blocks: a raw pipe read returns at most 64 KiB, and Arrow
    # would then parse and cast ~1,000 tiny batches per million rows.
    with os.fdopen(read_fd, "rb", buffering=CSV_BLOCK_BYTES) as source:
        try:
            reader = open_csv_reader(source, csv_schema)
            with pq.ParquetWriter(sink, schema, **PARQUET_OPTIONS) as writer:
                for batch in reader or ():
                    batch = conform(batch, schema)
                    if keys is not None:
                        keys.add(batch)
                    pending.append(batch)
                    pending_rows += batch.num_rows
                    progress.advance(batch.num_rows)
                    while pending_rows >= row_group_rows:
                        table = pa.Table.from_batches(pending, schema)
                        writer.write_table(table.slice(0, row_group_rows))
                        rest = table.slice(row_group_rows)
                        pending, pending_rows = rest.to_batches(), rest.num_rows
                        rows += row_group_rows
                        row_groups += 1
                if pending_rows:
                    writer.write_table(pa.Table.from_batches(pending, schema))
                    rows += pending_rows
                    row_groups += 1
        finally:
            source.close()
            producer.join()
    if failure:
        raise PipelineError(f"COPY from the warehouse failed: {failure[0]}") from failure[0]
    progress.finish()
    return rows, row_groups


def open_csv_reader(source, schema: pa.Schema):
    """Arrow's streaming CSV reader typed by `schema`; None when COPY produced no rows."""
    try:
        return pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(
                column_names=schema.names, block_size=CSV_BLOCK_BYTES, use_threads=True
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=schema,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                true_values=["t"],
                false_values=["f"],
            ),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            return None
        raise


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Mark UTC timestamps (COPY sends them as naive UTC) so the batch matches `schema`."""
    return batch.cast(schema) if batch.schema != schema else batch


def load_manifest(uri: str) -> Manifest:
    """The manifest written beside a snapshot's data file (`uri` of either)."""
    root = DataRoot()
    path = root.path_of(uri)
    if not path.endswith("manifest.json"):
        path = path.rsplit("/", 1)[0] + "/manifest.json"
    return Manifest.from_json(root.read_json(path))


def verified_path(root: DataRoot, ref: SnapshotRef | Manifest) -> str:
    """The snapshot's path, after checking its sha256 against the manifest."""
    path = root.path_of(ref.uri)
    if not root.exists(path):
        raise PipelineError(f"snapshot {ref.uri} is missing (pruned or moved?)")
    actual = root.sha256(path)
    if actual != ref.sha256:
        raise PipelineError(
            f"snapshot {ref.uri} has sha256 {actual[:16]}..., but its manifest records "
            f"{ref.sha256[:16]}...: the file was changed after it was written"
        )
    return path


@contextmanager
def open_snapshot(manifest: SnapshotRef | Manifest) -> Iterator[pq.ParquetFile]:
    """The snapshot's Parquet file, verified once; read any columns or row groups of it."""
    root = DataRoot()
    with root.open_input(verified_path(root, manifest)) as src:
        yield pq.ParquetFile(src)


def read_snapshot_table(
    manifest: SnapshotRef | Manifest, columns: list[str] | None = None
) -> pa.Table:
    """The whole snapshot as an Arrow table (verified first)."""
    with open_snapshot(manifest) as parquet:
        return parquet.read(columns=columns)


def read_snapshot(manifest: SnapshotRef | Manifest, columns: list[str] | None = None):
    """The whole snapshot as a pandas DataFrame (verified first)."""
    return read_snapshot_table(manifest, columns).to_pandas()


def file_json(manifest: Manifest) -> dict:
    """The manifest as written beside the data and in scoring.snapshots: without the row's id."""
    data = manifest.to_json()
    data.pop("snapshot_id", None)
    return data


def record_snapshot(url: str, manifest: Manifest, run_id: str | None = None) -> int:
    """Upsert the scoring.snapshots row for (job, kind, as_of, sha256); returns its id. With
    `run_id`, the id also goes on that run's row (`<kind>_snapshot_id`), unless the run is
    already published: a re-run's snapshot must not re-point predictions made from another."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        snapshot_id = upsert(
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
                "manifest": file_json(manifest),
                "created_at": datetime.now(UTC),
            },
            key=("job", "kind", "as_of", "sha256"),
            returning="id",
        )
        if run_id is not None:
            cur.execute(
                sql.SQL(
                    "UPDATE scoring.scoring_runs SET {} = %s"
                    " WHERE job = %s AND run_id = %s AND status <> 'published'"
                ).format(sql.Identifier(f"{manifest.kind}_snapshot_id")),
                (snapshot_id, manifest.job, run_id),
            )
    return snapshot_id


SNAPSHOT_BY_ID = (
    "SELECT id, kind, as_of, row_count, sha256, uri, manifest FROM scoring.snapshots"
    " WHERE job = %s AND id = %s"
)
# The snapshot with that content, the same kind and as_of first: `as_of`, else that of the run
# that registered the model `version` (for a model's training snapshot).
SNAPSHOT_BY_SHA256 = (
    "SELECT id, kind, as_of, row_count, sha256, uri, manifest FROM scoring.snapshots"
    " WHERE job = %(job)s AND sha256 = %(sha256)s"
    " ORDER BY kind = %(kind)s DESC, (as_of = coalesce(%(as_of)s::timestamptz, ("
    "  SELECT r.as_of FROM scoring.model_versions AS m JOIN scoring.scoring_runs AS r"
    "  ON r.job = m.job AND r.run_id = m.run_id"
    "  WHERE m.job = %(job)s AND m.version = %(version)s))) IS TRUE DESC, created_at, id"
    " LIMIT 1"
)


def recorded_snapshot(
    url: str,
    job: str,
    snapshot_id: int | None,
    sha256: str | None,
    kind: str,
    what: str,
    as_of: datetime | None = None,
    model_version: int | None = None,
) -> dict | None:
    """The scoring.snapshots row a run or model recorded (`what` names it for the log), by
    its id; None if that row is gone (pruned).

    Rows written before snapshot ids (migration 005) have only the sha256: then the snapshot
    with that content, preferring the same kind and as_of (`as_of`, or for a model's training
    snapshot that of the run that registered `model_version`): another snapshot with the same
    bytes, e.g. one `suggest-expectations` took, may sit in another folder.
    """
    if snapshot_id is not None:
        return db.fetch_one(url, SNAPSHOT_BY_ID, (job, snapshot_id))
    if sha256 is None:
        return None
    log.info(
        "%s was recorded before snapshot ids (migration 005): looking up its %s snapshot by "
        "sha256 %s, same kind and as_of first",
        what,
        kind,
        sha256[:16],
    )
    return db.fetch_one(
        url,
        SNAPSHOT_BY_SHA256,
        {"job": job, "sha256": sha256, "kind": kind, "as_of": as_of, "version": model_version},
    )


def recorded_manifest(row: dict) -> Manifest:
    """The manifest of a scoring.snapshots row, with the row's id."""
    return Manifest.from_json({**row["manifest"], "snapshot_id": row["id"]})
