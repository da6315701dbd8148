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

from pipeline.contracts import Context, Manifest
from pipeline.datafiles.layout import snapshot_dir
from pipeline.datafiles.parquet import arrow_schemas, csv_to_parquet
from pipeline.datafiles.root import DataRoot
from pipeline.errors import DataValidationError
from pipeline.logic.keys import DuplicateKeys
from pipeline.progress import Progress
from pipeline.provenance import code_version, library_versions
from pipeline.spec import JobSpec, check_columns
from pipeline.warehouse import sources
from pipeline.warehouse.snapshots import record_snapshot

log = logging.getLogger(__name__)


def snapshot(ctx: Context, kind: str) -> Manifest:
    """The run's `kind` snapshot as of its cut-off, recorded on the run's row; an incremental
    run's scoring snapshot holds only what changed."""
    as_of = datetime.fromisoformat(ctx.run.as_of)
    since = ctx.run.scope["since"] if kind == "scoring" and ctx.run.incremental else None
    return take_snapshot(ctx.spec, kind, as_of, ctx.url, run_id=ctx.run.run_id, since=since)


def take_snapshot(
    spec: JobSpec,
    kind: str,
    as_of: datetime,
    url: str,
    run_id: str | None = None,
    since: str | None = None,
) -> Manifest:
    """Write the snapshot and its manifest, record it in scoring.snapshots (and, for a run's
    snapshot, its id on the run's row); returns the manifest with its `snapshot_id`.

    The folder is `<as_of>/<sha256 prefix>/`: if the table was changed in place under an old
    timestamp, a second snapshot of the same as_of sits beside the first, never over it. A key
    that occurs twice fails the snapshot (DataValidationError) and leaves no file.

    `since` (an incremental run's scoring snapshot): only the rows with a timestamp at or
    after it, and beside them `left.parquet`, the keys `<job>_latest` holds that a full
    snapshot would not (deleted, or no longer in scope); the manifest's `change` says so.
    """
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
            future = sources.count_future_rows(conn, spec)
            log.info("snapshot %s/%s as of %s: %s", spec.name, kind, as_of.isoformat(), text)
            duplicates = DuplicateKeys(spec.source.key)
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
            if since:
                change = snapshot_left(conn, spec, schema, params, f"{incoming}-left")
                change["since"] = since
    except BaseException:
        root.remove(incoming)
        root.remove(f"{incoming}-left")
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


def snapshot_left(conn, spec: JobSpec, schema: pa.Schema, params: dict, path: str) -> dict:
    """Write the keys that left the scored set since `<job>_latest` (by key) to `path`; the
    change's counts: `left`, and `table_rows`, what a full snapshot would hold."""
    left = pa.schema([schema.field(spec.source.key)])
    text = sources.query_text(conn, sources.build_left_query(spec), params)
    with DataRoot().open_output(path, atomic=False) as sink:
        count, _ = csv_to_parquet(
            sources.copy_out(conn, text),
            left,
            left,
            sink,
            spec.scoring.batch_rows,
            Progress(log, f"keys left {spec.name}", None),
        )
    return {"left": count, "table_rows": sources.count_scoring_rows(conn, spec, params["as_of"])}
