"""Snapshot files written: a CSV stream (COPY out of Postgres) typed by Arrow, cut into fixed
row groups of Parquet with fixed writer settings, so the same rows give the same bytes."""

import os
import threading
from collections.abc import Callable
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.errors import PipelineError
from pipeline.progress import Progress
from pipeline.spec import JobSpec

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
# CSV read per block: Arrow parses a few blocks ahead, so this bounds what a snapshot holds;
# 4 MiB (about 30k rows of a dozen columns) is as fast as 8 and reaches that bound on a
# table a tenth the size (flat peak RSS from 200k rows on)
CSV_BLOCK_BYTES = 4 << 20


def arrow_schemas(
    spec: JobSpec, kind: str, column_types: dict[str, str]
) -> tuple[pa.Schema, pa.Schema]:
    """The schema COPY's CSV is parsed with, and the snapshot's schema (timestamptz as UTC)."""
    fields = []
    for column in spec.snapshot_columns(kind):
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


def csv_to_parquet(
    write_csv: Callable[[BinaryIO], None],
    csv_schema: pa.Schema,
    schema: pa.Schema,
    sink,
    row_group_rows: int,
    progress: Progress,
    on_batch: Callable[[pa.RecordBatch], None] | None = None,
) -> tuple[int, int]:
    """Stream the CSV that `write_csv` writes (in another thread, e.g. COPY out of Postgres)
    through Arrow's CSV reader into fixed-size row groups of `sink`; every batch also goes to
    `on_batch`, if given. Returns (rows, row groups)."""
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb", buffering=1 << 20) as pipe:
                write_csv(pipe)
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
                    if on_batch is not None:
                        on_batch(batch)
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
        # as it was: a lost connection (a restarting server) is for a retry, which Airflow makes
        raise failure[0]
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


def key_hits(values, keys: set[str]):
    """Which of a key column's values, compared as text, are one of `keys`."""
    return pc.is_in(pc.cast(values, pa.string()), value_set=pa.array(sorted(keys), pa.string()))


def holds_any(parquet: pq.ParquetFile, column: str, keys: set[str]) -> bool:
    """Whether `column` of `parquet` holds one of `keys`: read one row group of it at a time."""
    return any(
        pc.any(key_hits(parquet.read_row_group(i, columns=[column]).column(0), keys)).as_py()
        for i in range(parquet.num_row_groups)
    )


def rewrite_without(parquet: pq.ParquetFile, sink, column: str, keys: set[str]) -> pa.Table:
    """Write `parquet`'s rows whose `column` (as text) is not one of `keys` to `sink`: the same
    schema and writer settings, each row group kept as one group of its remaining rows in their
    order (a group left empty is dropped). Returns the rows removed."""
    removed = []
    with pq.ParquetWriter(sink, parquet.schema_arrow, **PARQUET_OPTIONS) as writer:
        for index in range(parquet.num_row_groups):
            group = parquet.read_row_group(index)
            hit = key_hits(group.column(column), keys)
            removed.append(group.filter(hit))
            kept = group.filter(pc.invert(hit))
            if kept.num_rows:
                writer.write_table(kept, row_group_size=kept.num_rows)
    return pa.concat_tables(removed) if removed else parquet.schema_arrow.empty_table()
