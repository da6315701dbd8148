"""Apply the SQL migrations in `sql/migrations/` once each, in order."""

import logging

from pipeline.store.db import SQL_DIR, transaction

log = logging.getLogger(__name__)

LOCK_ID = 7_203_311  # advisory lock: concurrent migrators wait for each other


def migrate(url: str) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    applied_now = []
    with transaction(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
        cur.execute("CREATE SCHEMA IF NOT EXISTS scoring")
        cur.execute(
            "CREATE TABLE IF NOT EXISTS scoring.schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur.execute("SELECT name FROM scoring.schema_migrations")
        done = {row[0] for row in cur.fetchall()}
        for path in sorted((SQL_DIR / "migrations").glob("*.sql")):
            if path.name in done:
                continue
            log.info("applying migration %s", path.name)
            cur.execute(path.read_text())
            cur.execute("INSERT INTO scoring.schema_migrations (name) VALUES (%s)", (path.name,))
            applied_now.append(path.name)
    return applied_now
