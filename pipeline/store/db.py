"""Connections and safe SQL building: identifiers are quoted, values are bound."""

import logging
import re
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
    except (psycopg2.OperationalError, psycopg2.ProgrammingError) as exc:  # refused / invalid dsn
        detail = f"({redact(url)}): {redact(str(exc).strip())}"
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


# scheme://user:PASSWORD@host — up to the last "@" before the path, as a password may hold "@".
_URL_PASSWORD = re.compile(r"(://[^\s:/@]*:)[^\s/]+(?=@)")
# password=... (libpq key=value, URL query; also sslpassword, PGPASSWORD, passwd, pwd), quoted
# or bare; a bare value ends at whitespace or at an "&" that starts the next query parameter.
# "password": "..." is the JSON of an Airflow connection's extra, also percent-encoded (%22).
# An existing mask *** is kept as is, so that redacting twice keeps "password=***)" intact.
_KEY_PASSWORD = re.compile(
    r"""( (?:password|passwd|pwd)\s*=\s*
        | (?:"|%22)(?:password|passwd|pwd)(?:"|%22)\s*(?::|%3A)(?:\s|\+|%20)* )
        ( \*\*\*(?=[^\w*]|$)
        | '(?:[^'\\]|\\.)*(?:'|$) | "(?:[^"\\]|\\.)*(?:"|$) | %22.*?(?:(?<!%5C)%22|$)
        | (?:[^\s&]|&(?!\w+=))+ )""",
    re.IGNORECASE | re.VERBOSE,
)


def redact(text: str) -> str:
    """`text` (a URL, a libpq DSN, an error quoting them...) with every password as `***`."""
    text = _URL_PASSWORD.sub(r"\1***", text)
    return _KEY_PASSWORD.sub(r"\1***", text)


class RedactingFilter(logging.Filter):
    """Passes every record, with passwords masked in its message and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_redaction() -> None:
    """Mask passwords in whatever the root logger's handlers write (the CLI, Airflow tasks)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def table_ident(qualified_name: str) -> sql.Identifier:
    """`schema.table` (already validated by the spec) as a quoted identifier."""
    schema, table = qualified_name.split(".")
    return sql.Identifier(schema, table)


def scoring_ident(name: str) -> sql.Identifier:
    return sql.Identifier(SCHEMA, name)


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
