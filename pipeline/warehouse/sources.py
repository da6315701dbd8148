"""The source tables a job reads: their columns, the snapshot query, COPY out, and the demo
tables' loading. Identifiers come from a validated spec and are quoted; values are bound."""

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

import psycopg2
from psycopg2 import sql

from pipeline.errors import PipelineError
from pipeline.spec import MAX_CLASSES, JobSpec
from pipeline.spec.names import KINDS
from pipeline.warehouse import db

log = logging.getLogger(__name__)

TIMESTAMPTZ = "timestamp with time zone"
# what a source may be: table, partitioned table, view, materialized view, foreign table
SOURCE_KINDS = ("r", "p", "v", "m", "f")


def table_columns(conn, qualified_name: str) -> dict[str, str]:
    """Column name -> Postgres data type, in column order; a clear error if the relation is
    missing. A source may be a table, a view or a materialized view (or a partitioned or
    foreign table): a view's columns have the types of the expressions it selects.

    Read from the catalog, which any login sees: the owner deploying a job's objects needs its
    key's type without being allowed to read the rows.
    """
    schema, table = qualified_name.split(".")
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute AS a"
            " JOIN pg_class AS c ON c.oid = a.attrelid"
            " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND c.relkind = ANY(%s)"
            " AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY a.attnum",
            (schema, table, list(SOURCE_KINDS)),
        )
        rows = cur.fetchall()
    if not rows:
        raise PipelineError(f"table {qualified_name} does not exist or has no columns")
    return dict(rows)


def build_snapshot_query(
    spec: JobSpec, kind: str, column_types: dict[str, str], changed: bool = False
) -> sql.Composed:
    """SELECT the snapshot's columns as of `%(as_of)s`, ordered by key; identifiers quoted.
    `changed`: only the rows with a timestamp at or after `%(since)s` (an incremental run)."""
    if kind not in KINDS:
        raise ValueError(f"snapshot kind must be one of {KINDS}, not {kind!r}")
    select = []
    for column in spec.snapshot_columns(kind):
        ident = sql.Identifier(column)
        if column_types[column] == TIMESTAMPTZ:
            select.append(sql.SQL("{} AT TIME ZONE 'UTC' AS {}").format(ident, ident))
        else:
            select.append(ident)
    conditions = in_snapshot(spec, kind)
    if changed:
        conditions.append(sql.SQL("{} >= %(since)s").format(sql.Identifier(spec.source.timestamp)))
    return sql.SQL("SELECT {columns} FROM {table} WHERE {where} ORDER BY {key}").format(
        columns=sql.SQL(", ").join(select),
        table=db.table_ident(spec.source.table),
        where=sql.SQL(" AND ").join(conditions),
        key=sql.Identifier(spec.source.key),
    )


def in_snapshot(spec: JobSpec, kind: str) -> list[sql.Composable]:
    """The conditions a source row meets to be in a `kind` snapshot as of `%(as_of)s`."""
    ts, target = sql.Identifier(spec.source.timestamp), sql.Identifier(spec.target)
    label_ts = spec.source.label_timestamp and sql.Identifier(spec.source.label_timestamp)
    conditions: list[sql.Composable] = [sql.SQL("{} < %(as_of)s").format(ts)]
    if kind == "training":
        conditions.append(sql.SQL("{} IS NOT NULL").format(target))
        if label_ts:  # only labels already known at the cut-off
            conditions.append(sql.SQL("{} < %(as_of)s").format(label_ts))
    elif spec.scoring.rows == "unlabelled":  # the complement of a training row's label
        unknown = (
            sql.SQL("{} IS NULL OR {} IS NULL OR {} >= %(as_of)s").format(
                target, label_ts, label_ts
            )
            if label_ts
            else sql.SQL("{} IS NULL").format(target)
        )
        conditions.append(sql.SQL("({})").format(unknown))
    return conditions


def build_left_query(spec: JobSpec) -> sql.Composed:
    """The keys `<job>_latest` holds that a full scoring snapshot as of `%(as_of)s` would not:
    rows deleted, moved past the cut-off, or (rows: unlabelled) labelled since; by key."""
    return sql.SQL(
        "SELECT l.key FROM {latest} AS l WHERE NOT EXISTS"
        " (SELECT 1 FROM {table} AS s WHERE s.{key} = l.key AND {where}) ORDER BY l.key"
    ).format(
        latest=db.scoring_ident(spec.latest_view),
        table=db.table_ident(spec.source.table),
        key=sql.Identifier(spec.source.key),
        where=sql.SQL(" AND ").join(in_snapshot(spec, "scoring")),
    )


def build_in_scope_query(spec: JobSpec) -> sql.Composed:
    """The keys a full scoring snapshot as of `%(as_of)s` would hold, by key."""
    return sql.SQL("SELECT {key} FROM {} WHERE {} ORDER BY {key}").format(
        db.table_ident(spec.source.table),
        sql.SQL(" AND ").join(in_snapshot(spec, "scoring")),
        key=sql.Identifier(spec.source.key),
    )


@contextmanager
def source_connection(url: str) -> Iterator:
    """A connection to read a source with, timestamps in UTC; closed when the block ends."""
    conn = db.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
        yield conn
    finally:
        conn.close()


def query_text(conn, query: sql.Composed, params: dict) -> str:
    """The query with its values bound, as the text a manifest records and COPY runs."""
    with conn.cursor() as cur:
        return cur.mogrify(query, params).decode()


def copy_out(conn, query_text: str) -> Callable[[BinaryIO], None]:
    """A writer of the query's rows as CSV (`COPY (query) TO STDOUT`) into a binary file. A lost
    connection (the server restarting) stays what it is, for a retry; any other error of the
    query is the source's, a PipelineError no retry fixes."""

    def write(out: BinaryIO) -> None:
        try:
            with conn.cursor() as cur:
                cur.copy_expert(f"COPY ({query_text}) TO STDOUT WITH (FORMAT csv)", out)
        except psycopg2.OperationalError:
            raise
        except psycopg2.Error as exc:
            raise PipelineError(f"COPY from the warehouse failed: {exc}") from exc

    return write


def count_future_rows(conn, spec: JobSpec, shown: Callable = str) -> dict:
    """Rows whose timestamp is later than now: bad clocks or bad loads, never in a snapshot.
    `shown` writes a sampled key (a personal key: masked)."""
    query = sql.SQL("SELECT {key} FROM {table} WHERE {ts} > now() ORDER BY {key}").format(
        key=sql.Identifier(spec.source.key),
        table=db.table_ident(spec.source.table),
        ts=sql.Identifier(spec.source.timestamp),
    )
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*), (array_agg(k))[1:5] FROM ({}) AS f(k)").format(query))
        count, sample = cur.fetchone()
    keys = [shown(k) for k in sample or []]
    if count:
        log.warning(
            "%s: %d rows have %s in the future, e.g. keys %s",
            spec.source.table,
            count,
            spec.source.timestamp,
            keys,
        )
    return {"count": count, "sample_keys": keys}


def estimate_rows(conn, table: str) -> int | None:
    """Postgres' own row estimate (no scan), for progress lines only."""
    with conn.cursor() as cur:
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", (table,))
        row = cur.fetchone()
    return int(row[0]) if row and row[0] and row[0] > 0 else None


def distinct_target_values(conn, spec: JobSpec) -> list:
    """Up to MAX_CLASSES + 1 distinct non-null target values of the rows a run would train on
    now: enough to tell a class set from a number, without reading every value."""
    query = sql.SQL(
        "SELECT DISTINCT {target} FROM {table} WHERE {target} IS NOT NULL AND {ts} < now() LIMIT %s"
    ).format(
        target=sql.Identifier(spec.target),
        table=db.table_ident(spec.source.table),
        ts=sql.Identifier(spec.source.timestamp),
    )
    with conn.cursor() as cur:
        cur.execute(query, (MAX_CLASSES + 1,))
        return [row[0] for row in cur.fetchall()]


def table_exists(url: str, table: str) -> bool:
    with db.transaction(url) as conn:
        return db.relation_exists(conn, table)


def load_table(url: str, table: str, ddl_file: str, chunks: Iterable[bytes]) -> float:
    """(Re)create `schema.table` from a DDL file of sql/ (`{table}` is filled in) and load the
    CSV `chunks` into it by COPY, in one transaction; returns the seconds taken."""
    started = time.perf_counter()
    with db.transaction(url) as conn, conn.cursor() as cur:
        ident = db.table_ident(table)
        schema = sql.Identifier(table.split(".")[0])
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
        cur.execute(sql.SQL(db.read_sql_file(ddl_file)).format(table=ident))
        copy = sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv)").format(ident).as_string(conn)
        cur.copy_expert(copy, db.ChunkReader(iter(chunks)))
        cur.execute(sql.SQL("ANALYZE {}").format(ident))
    return time.perf_counter() - started


def run_sql_file(url: str, name: str, params: dict | None = None) -> None:
    """Run one file of sql/ in a transaction (the demo's changes to its own tables)."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(db.read_sql_file(name), params)
