"""Apply the SQL migrations in `sql/migrations/` once each, in order: the deploy step.

Run by a login in `scoring_owner` (docs/operations.md "Roles"), which ends up owning every
object. A run calls it too, but then it only reads which migrations are applied: with none
pending it does no DDL, so a `scoring_writer` login never needs rights it does not have.
"""

import logging

from psycopg2 import errors

from pipeline.errors import ConfigError
from pipeline.warehouse.db import SQL_DIR, read_sql_file, relation_exists, transaction

log = logging.getLogger(__name__)

LOCK_ID = 7_203_311  # advisory lock: concurrent migrators wait for each other
LOCK_TIMEOUT = "10s"  # a migration never queues readers behind it for longer
OWNER = "scoring_owner"


def applied_migrations(conn) -> set[str]:
    """Names of the migrations already applied (none before the first)."""
    if not relation_exists(conn, "scoring.schema_migrations"):
        return set()
    with conn.cursor() as cur:
        cur.execute("SELECT name FROM scoring.schema_migrations")
        return {row[0] for row in cur.fetchall()}


def pending_migrations(conn) -> list:
    done = applied_migrations(conn)
    return [p for p in sorted((SQL_DIR / "migrations").glob("*.sql")) if p.name not in done]


def can_act_as_owner(cur) -> bool:
    """Whether this login may SET ROLE scoring_owner (a member, or a superuser)."""
    cur.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)"
        " AND pg_has_role(current_user, %s, 'MEMBER')",
        (OWNER, OWNER),
    )
    return cur.fetchone()[0]


def migrate(url: str) -> list[str]:
    """Apply pending migrations as the owner; returns the names applied now."""
    with transaction(url) as conn:
        if not pending_migrations(conn):
            return []
    try:
        return apply_pending(url)
    except errors.InsufficientPrivilege as exc:
        raise ConfigError(
            f"cannot migrate the scoring schema as this login: {exc.diag.message_primary}. "
            f"Run `python -m pipeline migrate` as a member of {OWNER} (docs/operations.md 'Roles')"
        ) from None
    except errors.LockNotAvailable:
        raise ConfigError(
            f"migrate waited {LOCK_TIMEOUT} for a table another session holds (an analyst's "
            "open transaction, or a run); nothing was applied: try again"
        ) from None


def apply_pending(url: str) -> list[str]:
    applied_now = []
    with transaction(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
        cur.execute("SET LOCAL lock_timeout = %s", (LOCK_TIMEOUT,))
        cur.execute("CREATE SCHEMA IF NOT EXISTS scoring")
        cur.execute(
            "CREATE TABLE IF NOT EXISTS scoring.schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for path in pending_migrations(conn):  # again: another migrator may have gone first
            log.info("applying migration %s", path.name)
            cur.execute(path.read_text())
            cur.execute("INSERT INTO scoring.schema_migrations (name) VALUES (%s)", (path.name,))
            applied_now.append(path.name)
        cur.execute(read_sql_file("hand_over.sql"))
    return applied_now
