"""Least privilege: analysts read predictions and run records; only the writer role writes."""

import psycopg2
import pytest
from psycopg2 import errors

from helpers import as_role

pytestmark = pytest.mark.integration


def test_reader_selects_the_latest_view_history_and_run_records(published):
    for table in (
        "delivery_delay_latest",
        "delivery_delay_predictions",
        "scoring_runs",
        "delivery_delay_drift",
    ):
        rows = as_role(published, "scoring_reader", f"SELECT count(*) FROM scoring.{table}")
        assert rows[0][0] > 0, table
    for table in ("delivery_delay_performance", "model_performance"):  # no label arrived yet
        assert as_role(published, "scoring_reader", f"SELECT count(*) FROM scoring.{table}")


def test_the_analyst_views_say_what_their_columns_mean(published):
    described = as_role(
        published,
        "scoring_reader",
        "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " WHERE c.relname IN ('delivery_delay_drift', 'delivery_delay_performance')"
        " AND col_description(a.attrelid, a.attnum) IS NOT NULL",
    )
    assert ("delivery_delay_drift", "statistic") in described
    assert ("delivery_delay_drift", "level") in described
    assert ("delivery_delay_performance", "labelled") in described
    assert ("delivery_delay_performance", "holdout") in described


WRITES = (
    "DELETE FROM scoring.delivery_delay_predictions",
    "UPDATE scoring.scoring_runs SET status = 'failed'",
    "INSERT INTO scoring.model_versions (job) VALUES ('x')",
    "CREATE TABLE scoring.mine (x int)",
)


def test_reader_cannot_write(published):
    for statement in WRITES:
        with pytest.raises(errors.InsufficientPrivilege):
            as_role(published, "scoring_reader", statement)


def test_writer_replaces_runs_and_reads_sources_only_when_granted(published):
    deleted = as_role(
        published,
        "scoring_writer",
        "DELETE FROM scoring.delivery_delay_predictions WHERE run_id = 'run-1' RETURNING 1",
    )
    assert len(deleted) == 2_000
    with pytest.raises(errors.InsufficientPrivilege):
        as_role(published, "scoring_writer", "SELECT count(*) FROM demo.deliveries")
    conn = psycopg2.connect(published)
    try:
        with conn.cursor() as cur:  # the grant docs/operations.md "Roles" asks for, per source
            cur.execute("GRANT USAGE ON SCHEMA demo TO scoring_writer")
            cur.execute("GRANT SELECT ON demo.deliveries TO scoring_writer")
            cur.execute("SET ROLE scoring_writer")
            cur.execute("SELECT count(*) FROM demo.deliveries")
            assert cur.fetchone()[0] == 2_000
    finally:
        conn.rollback()
        conn.close()
