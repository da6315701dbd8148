"""Writes to the scoring schema's run records: one keyed upsert helper for every table.

Everything a run writes is keyed by the job and the run (or the snapshot's as_of and hash), so
writing again replaces a row and never adds a second one.
"""

from psycopg2 import sql

from pipeline.contracts import dumps
from pipeline.store.db import scoring_ident


def upsert(cur, table: str, row: dict, key: tuple[str, ...], returning: str | None = None):
    """INSERT `row` into scoring.`table`, or update every other column where `key` matches.

    Dict and list values are stored as JSON. Returns the `returning` column's value, if asked.
    """
    columns = list(row)
    values = [dumps(v) if isinstance(v, (dict, list)) else v for v in row.values()]
    updates = [c for c in columns if c not in key]
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


def lock_job(cur, job: str) -> None:
    """Hold the job's row of scoring.jobs until the transaction ends: publishes and registers
    of one job take turns. A row lock needs UPDATE, which readers lack, so unlike an advisory
    lock no analyst session can take it and hold a run up."""
    cur.execute("INSERT INTO scoring.jobs (job) VALUES (%s) ON CONFLICT DO NOTHING", (job,))
    cur.execute("SELECT 1 FROM scoring.jobs WHERE job = %s FOR UPDATE", (job,))
