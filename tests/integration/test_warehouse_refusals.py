"""The warehouse's refusals no retry fixes, raised by a real server, explained in one line."""

import uuid

import psycopg2
import pytest
from psycopg2 import errors

from pipeline.faults import explain_permanent

pytestmark = pytest.mark.integration


def raised_by(url: str, *statements: str) -> Exception:
    """The error the last of `statements` raises, in one rolled-back transaction."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            for statement in statements[:-1]:
                cur.execute(statement)
            with pytest.raises(psycopg2.Error) as caught:
                cur.execute(statements[-1])
        return caught.value
    finally:
        conn.rollback()
        conn.close()


@pytest.fixture
def role_without_rights(warehouse):
    """A NOLOGIN role with no grants on the scoring schema; dropped afterwards."""
    role = f"no_rights_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(warehouse)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} NOLOGIN")
    try:
        yield role
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP ROLE IF EXISTS {role}")
        conn.close()


def test_insufficient_privilege_names_the_refusal_and_the_grant(warehouse, role_without_rights):
    exc = raised_by(
        warehouse, f"SET ROLE {role_without_rights}", "SELECT * FROM scoring.model_versions"
    )
    assert isinstance(exc, errors.InsufficientPrivilege)
    message = explain_permanent(exc)
    assert message.startswith("warehouse error: permission denied for schema scoring;")
    assert "grant" in message and "\n" not in message


def test_a_read_only_transaction_points_at_a_writable_primary(warehouse):
    exc = raised_by(
        warehouse,
        "SET TRANSACTION READ ONLY",
        "DELETE FROM scoring.model_versions WHERE job = 'nobody'",
    )
    assert isinstance(exc, errors.ReadOnlySqlTransaction)
    assert "writable primary" in explain_permanent(exc)


def test_a_missing_table_names_it(warehouse):
    exc = raised_by(warehouse, "SELECT * FROM scoring.no_such_table")
    assert isinstance(exc, errors.UndefinedTable)
    message = explain_permanent(exc)
    assert 'relation "scoring.no_such_table" does not exist' in message
    assert "python -m pipeline migrate" in message


def test_a_timeout_is_left_to_retries(warehouse):
    exc = raised_by(warehouse, "SET LOCAL statement_timeout = 10", "SELECT pg_sleep(1)")
    assert isinstance(exc, errors.QueryCanceled)
    assert explain_permanent(exc) is None
