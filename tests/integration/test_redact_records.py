"""A failed run's recorded error never keeps a password, whatever form the DSN was in."""

import psycopg2
import pytest

from pipeline.stages.run import mark_failed

pytestmark = pytest.mark.integration

ERROR = "connection to postgresql://u:hunter2@h/db?password=hunter2 failed; host=h password=hunter2"


def test_mark_failed_stores_the_error_with_passwords_masked(warehouse):
    with psycopg2.connect(warehouse) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO scoring.scoring_runs (job, run_id, dag_run_id, as_of, status)"
            " VALUES ('j', 'r', 'r', now(), 'running')"
        )
    conn.close()

    mark_failed(warehouse, "j", "r", ERROR)

    with psycopg2.connect(warehouse) as conn, conn.cursor() as cur:
        cur.execute("SELECT status, error FROM scoring.scoring_runs")
        rows = cur.fetchall()
    conn.close()
    assert len(rows) == 1
    status, error = rows[0]
    assert status == "failed"
    assert "hunter2" not in error
    assert "postgresql://u:***@h/db" in error and "host=h" in error
