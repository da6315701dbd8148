"""Connections and safe SQL building: identifiers are quoted, values are bound."""

import logging
from contextlib import contextmanager

import psycopg2
from psycopg2 import sql

from pipeline.config import PROJECT_ROOT
from pipeline.errors import ConfigError, PipelineError

log = logging.getLogger(__name__)

SQL_DIR = PROJECT_ROOT / "sql"
SCHEMA = "scoring"


def connect(url: str):
    """A psycopg2 connection; the error names the host, never the password."""
    try:
        return psycopg2.connect(url, application_name="nightly-scoring")
    except psycopg2.OperationalError as exc:
        raise ConfigError(f"cannot connect to the warehouse ({redact(url)}): {exc}") from None


@contextmanager
def transaction(url: str):
    """One connection, one transaction: committed on success, rolled back on any error."""
    conn = connect(url)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def redact(url: str) -> str:
    """The URL with any password replaced, for logs and errors."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def table_ident(qualified_name: str) -> sql.Identifier:
    """`schema.table` (already validated by the spec) as a quoted identifier."""
    schema, table = qualified_name.split(".")
    return sql.Identifier(schema, table)


def scoring_ident(name: str) -> sql.Identifier:
    return sql.Identifier(SCHEMA, name)


def table_columns(conn, qualified_name: str) -> dict[str, str]:
    """Column name -> Postgres data type, in table order; a clear error if the table is missing."""
    schema, table = qualified_name.split(".")
    with conn.cursor() as cur:
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, table),
        )
        rows = cur.fetchall()
    if not rows:
        raise PipelineError(f"table {qualified_name} does not exist or has no columns")
    return dict(rows)


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
