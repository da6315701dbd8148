"""Point-in-time snapshots: the rows with timestamp < as_of, streamed by COPY into Parquet.

The same as_of gives the same bytes (rows ordered by key, fixed row groups and writer
settings), so the manifest's sha256 identifies the data a model saw or a run scored.
"""

import hashlib
import logging
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.contracts import Context, Manifest
from pipeline.datafiles.layout import snapshot_dir
from pipeline.datafiles.parquet import PARQUET_OPTIONS, arrow_schemas, csv_to_parquet
from pipeline.datafiles.root import DataRoot
from pipeline.datafiles.snapshots import read_snapshot_table
from pipeline.errors import DataValidationError, PipelineError
from pipeline.logic.keys import DuplicateKeys, not_in
from pipeline.logic.personal import mask
from pipeline.progress import Progress
from pipeline.provenance import code_version, library_versions
from pipeline.spec import JobSpec, check_columns
from pipeline.warehouse import sources
from pipeline.warehouse.predictions import changed_keys
from pipeline.warehouse.runs import fetch_run
from pipeline.warehouse.snapshots import record_snapshot, recorded_snapshot

log = logging.getLogger(__name__)


def snapshot(ctx: Context, kind: str) -> Manifest:
    """The run's `kind` snapshot as of its cut-off, recorded on the run's row; an incremental
    run's scoring snapshot holds only what changed."""
    as_of = datetime.fromisoformat(ctx.run.as_of)
    scope = ctx.run.scope if kind == "scoring" and ctx.run.incremental else None
    return take_snapshot(ctx.spec, kind, as_of, ctx.url, run_id=ctx.run.run_id, scope=scope)


def take_snapshot(
    spec: JobSpec,
    kind: str,
    as_of: datetime,
    url: str,
    run_id: str | None = None,
    scope: dict | None = None,
) -> Manifest:
    """Write the snapshot and its manifest, record it in scoring.snapshots (and, for a run's
    snapshot, its id on the run's row); returns the manifest with its `snapshot_id`.

    The folder is `<as_of>/<sha256 prefix>/`: if the table was changed in place under an old
    timestamp, a second snapshot of the same as_of sits beside the first, never over it. A key
    that occurs twice fails the snapshot (DataValidationError) and leaves no file.

    `scope` (an incremental run's scoring snapshot, pipeline.logic.scope): only the rows with
    a timestamp at or after its `since`, and beside them `left.parquet`, the keys
    `<job>_latest` holds that a full snapshot would not (deleted, or no longer in scope); the
    manifest's `change` says so.
    """
    since = scope["since"] if scope else None
    started = time.perf_counter()
    root = DataRoot()
    incoming = f"{snapshot_dir(root, spec.name, kind, as_of)}/.incoming-{uuid.uuid4().hex}"
    params = {"as_of": as_of, "since": since and datetime.fromisoformat(since)}
    try:  # a failed snapshot leaves no file behind
        with sources.source_connection(url) as conn:
            column_types = sources.table_columns(conn, spec.source.table)
            check_columns(spec, column_types)
            csv_schema, schema = arrow_schemas(spec, kind, column_types)
            query = sources.build_snapshot_query(spec, kind, column_types, changed=bool(since))
            text = sources.query_text(conn, query, params)
            estimate = sources.estimate_rows(conn, spec.source.table)
            personal = spec.source.key in spec.personal
            future = sources.count_future_rows(conn, spec, mask if personal else str)
            log.info("snapshot %s/%s as of %s: %s", spec.name, kind, as_of.isoformat(), text)
            duplicates = DuplicateKeys(spec.source.key, mask if personal else repr)
            with root.open_output(incoming, atomic=False) as sink:
                rows, row_groups = csv_to_parquet(
                    sources.copy_out(conn, text),
                    csv_schema,
                    schema,
                    sink,
                    spec.scoring.batch_rows,
                    Progress(log, f"snapshot {spec.name}/{kind}", None if since else estimate),
                    duplicates.add,
                )
            if duplicates.count:
                raise DataValidationError(
                    duplicates.message(spec.name, spec.source.table, kind, as_of.isoformat())
                )
            change = None
            if scope:
                left_at = f"{incoming}-left"
                change = snapshot_left(conn, url, spec, schema, params, left_at, scope)
                change["since"] = since
    except BaseException:
        root.discard(incoming)
        root.discard(f"{incoming}-left")
        raise
    sha256 = root.sha256(incoming)
    name = sha256
    if change:  # the same changed rows with other keys left are another snapshot
        change["left_sha256"] = root.sha256(f"{incoming}-left")
        name = hashlib.sha256((sha256 + change["left_sha256"]).encode()).hexdigest()
    folder = f"{snapshot_dir(root, spec.name, kind, as_of)}/{name[:16]}"
    data_path = f"{folder}/data.parquet"
    root.move(incoming, data_path)
    if change:
        root.move(f"{incoming}-left", f"{folder}/left.parquet")
        change["left_uri"] = root.uri(f"{folder}/left.parquet")
        log.info(
            "change since %s: %d rows new or changed, %d keys left; %d rows in the table",
            since,
            rows,
            change["left"],
            change["table_rows"],
        )
    manifest = Manifest(
        job=spec.name,
        kind=kind,
        source_table=spec.source.table,
        as_of=as_of.astimezone(UTC).isoformat(),
        query=text,
        row_count=rows,
        row_groups=row_groups,
        future_rows=future,
        schema=[{"name": f.name, "type": str(f.type)} for f in schema],
        sha256=sha256,
        uri=root.uri(data_path),
        code_version=code_version(),
        library_versions=library_versions(),
        seconds=round(time.perf_counter() - started, 3),
        change=change,
    )
    root.write_json(f"{folder}/manifest.json", manifest.file_json())
    manifest = replace(manifest, snapshot_id=record_snapshot(url, manifest, run_id))
    log.info(
        "snapshot %s/%s: %d rows, sha256 %s, %s", spec.name, kind, rows, sha256[:16], manifest.uri
    )
    return manifest


def snapshot_left(
    conn, url: str, spec: JobSpec, schema: pa.Schema, params: dict, path: str, scope: dict
) -> dict:
    """Write the keys that left the scored set since `<job>_latest` (by key) to `path`; the
    change's counts: `left`, and `table_rows`, what a full snapshot would hold.

    The keys in scope come from the source (one column); the keys the view holds from the
    base run's snapshot and the changes since, so no row of the history is read. When the base
    snapshot is gone, the server compares the view with the source instead."""
    field = schema.field(spec.source.key)
    keys = pa.schema([field])
    in_scope = copy_keys(conn, spec, sources.build_in_scope_query(spec), params, keys)
    held = held_keys(url, spec, scope["base_run_id"], field.type)
    if held is None:
        left = copy_keys(conn, spec, sources.build_left_query(spec), params, keys)
    else:
        left = not_in(held, in_scope)
    with DataRoot().open_output(path, atomic=False) as sink:
        pq.write_table(pa.table([left], schema=keys), sink, **PARQUET_OPTIONS)
    return {"left": len(left), "table_rows": len(in_scope)}


def copy_keys(conn, spec: JobSpec, query, params: dict, keys: pa.Schema) -> pa.Array:
    """The keys a query selects, streamed by COPY into Parquet in memory (bounded by the
    compressed keys, not the CSV), as one Arrow array."""
    buffer = pa.BufferOutputStream()
    csv_to_parquet(
        sources.copy_out(conn, sources.query_text(conn, query, params)),
        keys,
        keys,
        buffer,
        spec.scoring.batch_rows,
        Progress(log, f"keys of {spec.name}", None),
    )
    return pq.read_table(pa.BufferReader(buffer.getvalue())).column(0).combine_chunks()


def held_keys(url: str, spec: JobSpec, base_run_id: str, key_type: pa.DataType):
    """The keys `<job>_latest` holds: the base run's snapshot's less the changed keys, plus
    those rescored; None when the base run's snapshot can no longer be read."""
    base = fetch_run(url, spec.name, base_run_id)
    ids = (base.scoring_snapshot_id, base.scoring_snapshot_sha256) if base else (None, None)
    what = f"run {base_run_id}"
    row = recorded_snapshot(url, spec.name, *ids, "scoring", what, base.as_of if base else None)
    if row is None:
        log.info("base run %s recorded no scoring snapshot", base_run_id)
        return None
    try:
        table = read_snapshot_table(row.recorded_manifest, [spec.source.key])
    except PipelineError as exc:  # pruned, moved or changed: the server compares instead
        log.info("base run %s: its snapshot cannot be read (%s)", base_run_id, exc)
        return None
    scored = table.column(0).combine_chunks()
    keys, deleted = changed_keys(url, spec)
    changed = pa.array(keys, key_type)
    kept = scored.filter(pc.invert(pc.is_in(scored, value_set=changed)))
    rescored = changed.filter(pc.invert(pa.array(deleted, pa.bool_())))
    return pa.concat_arrays([kept, rescored])
