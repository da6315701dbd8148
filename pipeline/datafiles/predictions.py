"""A run's prediction files (one Parquet part per scoring partition) read back as CSV chunks
for COPY into Postgres, a few chunks ahead in a background thread."""

import io
import queue
import threading
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.contracts import ScoredPartition, SnapshotRef
from pipeline.datafiles.root import DataRoot
from pipeline.datafiles.snapshots import verified_path
from pipeline.progress import Progress

BATCH_ROWS = 25_000  # rows per CSV chunk: 100k held ~80 MiB more in flight, no faster
PREFETCH = 4  # CSV chunks made ahead of COPY: enough to keep Postgres busy, little memory


def prediction_chunks(
    parts: list[ScoredPartition], constants: dict, progress: Progress
) -> Iterator[bytes]:
    """Every part's predictions as CSV chunks in `COPY_COLUMNS` order of
    `pipeline.warehouse.predictions`, made `PREFETCH` ahead."""
    return prefetched(csv_chunks(DataRoot(), parts, constants, progress), PREFETCH)


def csv_chunks(
    root: DataRoot, parts: list[ScoredPartition], constants: dict, progress
) -> Iterator[bytes]:
    """Every part's predictions as CSV chunks, in partition order."""
    for part in sorted(parts, key=lambda p: p.index):
        with root.open_input(root.path_of(part.uri)) as src:
            for batch in pq.ParquetFile(src).iter_batches(batch_size=BATCH_ROWS):
                yield csv_rows(batch, constants)
                progress.advance(batch.num_rows)


def left_key_chunks(change: dict) -> Iterator[bytes]:
    """The keys an incremental run's change drops (its `left.parquet`, sha256 checked) as CSV
    chunks of one column."""
    root = DataRoot()
    path = verified_path(root, SnapshotRef(uri=change["left_uri"], sha256=change["left_sha256"]))
    with root.open_input(path) as src:
        for batch in pq.ParquetFile(src).iter_batches(batch_size=BATCH_ROWS):
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, pacsv.WriteOptions(include_header=False))
            yield buffer.getvalue()


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


def csv_rows(batch: pa.RecordBatch, constants: dict) -> bytes:
    """One prediction batch as CSV, columns in the order of
    `pipeline.warehouse.predictions.COPY_COLUMNS`, with the run's constants filled in."""
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
