"""Connections, safe SQL building and the row mapper: identifiers are quoted, values are bound.

The warehouse layer is the only place with SQL: each module of `pipeline.warehouse` owns one
family of tables (runs, snapshots, models, validations, predictions, monitoring, jobs, the
source tables); this one holds what they share.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any, Self, TypeVar

import psycopg2
from psycopg2 import sql

from pipeline.config import PROJECT_ROOT
from pipeline.contracts import dumps
from pipeline.errors import ConfigError
from pipeline.redaction import redact, secrets_in

log = logging.getLogger(__name__)

SQL_DIR = PROJECT_ROOT / "sql"
SCHEMA = "scoring"


def connect(url: str):
    """A psycopg2 connection; the error names the host, never the password."""
    try:
        return psycopg2.connect(url, application_name="nightly-scoring")
    except (psycopg2.OperationalError, psycopg2.ProgrammingError) as exc:  # refused / invalid dsn
        # libpq may quote the password itself (a bad percent-escape in it): masked too
        detail = f"({redact(url)}): {redact(str(exc).strip(), secrets_in(url))}"
        raise ConfigError(f"cannot connect to the warehouse {detail}") from None


@contextmanager
def transaction(url: str):
    """One connection, one transaction: committed on success, rolled back on any error."""
    conn = connect(url)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def table_ident(qualified_name: str) -> sql.Identifier:
    """`schema.table` (already validated by the spec) as a quoted identifier."""
    schema, table = qualified_name.split(".")
    return sql.Identifier(schema, table)


def scoring_ident(name: str) -> sql.Identifier:
    return sql.Identifier(SCHEMA, name)


def relation_exists(conn, qualified_name: str) -> bool:
    """Whether a table or view `schema.name` exists."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified_name,))
        return cur.fetchone()[0]


def fetch_all(url: str, query, params=()) -> list[dict]:
    """Rows of one query as dicts keyed by column name (the package's one row mapper)."""
    with transaction(url) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def fetch_one(url: str, query, params=()) -> dict | None:
    """The first row of one query as a dict, or None."""
    rows = fetch_all(url, query, params)
    return rows[0] if rows else None


def read_sql_file(name: str) -> str:
    return (SQL_DIR / name).read_text()


R = TypeVar("R", bound="Row")


def fetch_rows(url: str, row_type: type[R], query, params=()) -> list[R]:
    """Rows of one query as `row_type` records."""
    return [row_type.from_row(row) for row in fetch_all(url, query, params)]


def fetch_row(url: str, row_type: type[R], query, params=()) -> R | None:
    """The first row of one query as a `row_type` record, or None."""
    rows = fetch_rows(url, row_type, query, params)
    return rows[0] if rows else None


class Row:
    """Base of the warehouse's typed rows (frozen dataclasses): built from a query's columns by
    name; a column the record does not declare is ignored, one the query left out is None."""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Self:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in row.items() if k in names})


def upsert(
    cur,
    table: str,
    row: dict,
    key: tuple[str, ...],
    returning: str | None = None,
    keep: tuple[str, ...] = (),
):
    """INSERT `row` into scoring.`table`, or update every other column (but those in `keep`)
    where `key` matches.

    Everything a run writes is keyed by the job and the run (or the snapshot's as_of and hash),
    so writing again replaces a row and never adds a second one. Dict and list values are
    stored as JSON. Returns the `returning` column's value, if asked.
    """
    columns = list(row)
    values = [dumps(v) if isinstance(v, (dict, list)) else v for v in row.values()]
    updates = [c for c in columns if c not in key and c not in keep]
    query = sql.SQL(
        "INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({key}) "
    ).format(
        table=scoring_ident(table),
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        key=sql.SQL(", ").join(map(sql.Identifier, key)),
    )
    query += sql.SQL("DO UPDATE SET {}").format(
        sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in updates)
    )
    if returning:
        query += sql.SQL(" RETURNING {}").format(sql.Identifier(returning))
    cur.execute(query, values)
    return cur.fetchone()[0] if returning else None


def insert_rows(cur, table: str, rows: list[dict]) -> None:
    """INSERT each of `rows` (dicts with the same keys) into scoring.`table`."""
    if not rows:
        return
    columns = list(rows[0])
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        scoring_ident(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    cur.executemany(query, [[row[c] for c in columns] for row in rows])


class ChunkReader:
    """The file-like `read()` that `copy_expert` needs, over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks = chunks

    def read(self, size: int = -1) -> bytes:
        return next(self.chunks, b"")
