"""The role SQL of docs/operations.md "Roles", run verbatim on a fresh server: the owner
deploys, two writer logins run jobs in turn without any DDL right, and a reader reads and can
neither write nor block."""

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from psycopg2 import errors

from helpers import query, run_stages
from pipeline import cli
from pipeline.errors import ConfigError, PipelineError
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.spec import load_spec
from pipeline.warehouse.migrate import migrate

pytestmark = pytest.mark.integration

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def documented_role_sql() -> str:
    block = OPERATIONS.read_text().split("<!-- roles-sql -->")[1].split("<!-- /roles-sql -->")[0]
    return re.search(r"```sql\n(.*?)```", block, re.S).group(1)


def as_login(url: str, login: str) -> str:
    """The same server and database, connecting as `login` (the test server trusts it)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{login}@{parts.hostname or ''}"))


@pytest.fixture
def fresh_server(tmp_path, monkeypatch, jobs):
    """A new PostgreSQL cluster, so the documented CREATE ROLE statements run as written."""
    import pgserver

    server = pgserver.get_server(str(tmp_path / "pg"), cleanup_mode="delete")
    url = server.get_uri()
    monkeypatch.setenv("SCORING_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    try:
        yield url
    finally:
        server.cleanup()


def test_the_documented_roles_deploy_run_and_read(fresh_server, jobs, monkeypatch):
    admin = fresh_server
    seed_table(admin, "demo.customers", 500)
    seed_table(admin, "demo.deliveries", 2_000)
    query(admin, documented_role_sql())

    writer_a, writer_b = as_login(admin, "nightly_a"), as_login(admin, "nightly_b")
    with pytest.raises(ConfigError, match="scoring_owner"):  # a writer cannot deploy
        migrate(writer_a)

    monkeypatch.setenv("DATABASE_URL", as_login(admin, "scoring_deploy"))
    assert cli.main(["migrate"]) == 0

    spec = load_spec(jobs / "delivery_delay.yaml")
    day = demo_as_of()
    for login, run_id, as_of in (
        (writer_a, "run-a", day),
        (writer_b, "run-b", day + timedelta(days=1)),
        (writer_a, "run-c", day + timedelta(days=2)),
    ):
        assert migrate(login) == []  # nothing pending: no DDL, no error
        result = run_stages(login, spec, as_of, run_id)
        assert result["publish"]["rows"] == result["snapshot_scoring"]["row_count"] > 1_000
    runs = query(admin, "SELECT run_id, status FROM scoring.scoring_runs ORDER BY as_of")
    assert runs == [("run-a", "published"), ("run-b", "published"), ("run-c", "published")]

    not_owned = query(
        admin,
        "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'scoring' AND c.relkind IN ('r', 'v')"
        " AND pg_get_userbyid(c.relowner) <> 'scoring_owner'",
    )
    assert not_owned == []

    with pytest.raises(errors.InsufficientPrivilege):
        query(writer_b, "CREATE TABLE scoring.mine (x int)")

    reader = as_login(admin, "alice")
    latest = query(reader, "SELECT count(*), min(run_id) FROM scoring.delivery_delay_latest")
    assert latest == [(result["publish"]["rows"], "run-c")]
    for statement in (
        "DELETE FROM scoring.delivery_delay_predictions",
        "SELECT 1 FROM scoring.jobs FOR UPDATE",
        "LOCK TABLE scoring.jobs IN ROW EXCLUSIVE MODE",
        "LOCK TABLE scoring.delivery_delay_predictions IN SHARE MODE",
    ):
        with pytest.raises(errors.InsufficientPrivilege):
            query(reader, statement)


def test_a_writer_login_stops_clearly_when_a_jobs_objects_are_not_deployed(
    fresh_server, jobs, monkeypatch
):
    admin = fresh_server
    seed_table(admin, "demo.customers", 500)
    seed_table(admin, "demo.deliveries", 1_000)
    query(admin, documented_role_sql())
    migrate(as_login(admin, "scoring_deploy"))  # the schema only, no job objects yet

    spec = load_spec(jobs / "delivery_delay.yaml")
    with pytest.raises(PipelineError, match="python -m pipeline migrate") as raised:
        run_stages(as_login(admin, "nightly_a"), spec, demo_as_of(), "run-1")
    assert "missing" in str(raised.value)
    status, error = query(admin, "SELECT status, error FROM scoring.scoring_runs")[0]
    assert status == "failed" and error.startswith("start_run: ")  # before any work
