"""Score a scoring snapshot with the champion, in key-range partitions that can run in parallel.

A snapshot is ordered by key and cut into fixed row groups, so a contiguous run of row groups
is a key range. Each partition streams its row groups, predicts batch by batch and writes one
Parquet file of (key, score, label, probabilities); re-running a partition rewrites the same file.
"""

import json
import logging
import time
from contextlib import ExitStack

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.contracts import Context, Manifest, Partition, ScoredPartition, ServingModel
from pipeline.datafiles.layout import partition_path, shadow_partition_path
from pipeline.datafiles.root import DataRoot
from pipeline.datafiles.snapshots import open_snapshot
from pipeline.logic.partitions import partition_ranges
from pipeline.model.files import load_model
from pipeline.model.fitting import Predictions, feature_frame, predict
from pipeline.progress import Progress
from pipeline.spec import JobSpec

log = logging.getLogger(__name__)


def plan(ctx: Context, manifest: Manifest, check) -> list[Partition]:
    """The scoring snapshot's partitions, planned once its validation (`check`) passed."""
    return plan_partitions(manifest, ctx.spec.source.key, ctx.spec.scoring.partitions)


def score(ctx: Context, manifest: Manifest, model: ServingModel, partition: Partition):
    """Score one partition with the serving model."""
    return score_partition(ctx.spec, manifest, model, partition, ctx.run.run_id)


def plan_partitions(manifest: Manifest, key: str, partitions: int) -> list[Partition]:
    """Split the snapshot's row groups into at most `partitions` contiguous key ranges."""
    with open_snapshot(manifest) as parquet:
        meta = parquet.metadata
    key_index = meta.schema.to_arrow_schema().get_field_index(key)
    groups = []
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(key_index).statistics
        known = stats is not None and stats.has_min_max
        groups.append(
            (
                meta.row_group(g).num_rows,
                stats.min if known else None,
                stats.max if known else None,
            )
        )
    parts = partition_ranges(groups, partitions)
    log.info("scoring %d rows in %d partition(s)", meta.num_rows, len(parts))
    return parts


def score_partition(
    spec: JobSpec, manifest: Manifest, model_ref: ServingModel, partition: Partition, run_id: str
) -> ScoredPartition:
    """Predict every row of one partition (with the challenger in shadow too, into a file of
    its own, when there is one); returns where the predictions are and how many."""
    started = time.perf_counter()
    root = DataRoot()
    scorers = [(load_model(model_ref.artifact_uri, model_ref.artifact_sha256), partition_path)]
    if model_ref.shadow:
        shadow = model_ref.shadow
        scorers.append(
            (load_model(shadow["artifact_uri"], shadow["artifact_sha256"]), shadow_partition_path)
        )
    first, last = partition.row_groups
    key = spec.source.key
    paths = [path(root, spec.name, run_id, partition.index) for _, path in scorers]
    progress = Progress(log, f"score {spec.name} partition {partition.index}", partition.rows)
    with open_snapshot(manifest) as source, ExitStack() as files:
        key_type = source.schema_arrow.field(key).type
        schema = pa.schema(
            [
                ("key", key_type),
                ("score", pa.float64()),
                ("label", pa.string()),
                ("probabilities", pa.string()),
            ]
        )
        writers = [
            files.enter_context(pq.ParquetWriter(files.enter_context(root.open_output(p)), schema))
            for p in paths
        ]
        if last > first:
            batches = source.iter_batches(
                batch_size=spec.scoring.batch_rows,
                row_groups=list(range(first, last)),
                columns=[key, *spec.features.all],
            )
            for batch in batches:
                for (model, _), writer in zip(scorers, writers, strict=True):
                    writer.write_table(predict_batch(model, spec, batch, schema))
                progress.advance(batch.num_rows)
    seconds = progress.finish()
    return ScoredPartition(
        index=partition.index,
        rows=progress.done,
        uri=root.uri(paths[0]),
        seconds=round(time.perf_counter() - started, 3),
        predict_seconds=round(seconds, 3),
        shadow_uri=root.uri(paths[1]) if len(paths) > 1 else None,
    )


def predict_batch(model, spec: JobSpec, batch: pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    frame = batch.to_pandas()
    out = predict(model, feature_frame(frame, spec), spec)
    rows = len(out.score)
    return pa.table(
        [
            batch.column(0),
            pa.array(out.score, pa.float64()),
            pa.nulls(rows, pa.string()) if out.label is None else pa.array(out.label, pa.string()),
            probabilities_json(out),
        ],
        schema=schema,
    )


def probabilities_json(out: Predictions) -> pa.Array:
    """Each row's class probabilities as a JSON object text, e.g. `{"a": 0.1, "b": 0.9}`, built
    column-wise by Arrow (a float's text is its shortest round-trip form); nulls for a regression.
    """
    if out.probabilities is None:
        return pa.nulls(len(out.score), pa.string())
    pieces = []
    for i, name in enumerate(out.classes):
        pieces.append(("{" if i == 0 else ", ") + json.dumps(name) + ": ")
        pieces.append(pc.cast(pa.array(out.probabilities[:, i], pa.float64()), pa.string()))
    pieces.append("}")
    return pc.binary_join_element_wise(*pieces, "")
