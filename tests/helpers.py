"""Test helpers: read the warehouse, and run a job's stages without Airflow, as the DAG does."""

from datetime import datetime
from html.parser import HTMLParser

import psycopg2

from pipeline import flow
from pipeline.contracts import Trigger
from pipeline.spec import JobSpec

# the identities of the test session's S3 server (tests/conftest.py): one writes, one reads
S3_KEYS = {"admin": "admin-secret-key", "reader": "reader-secret-key"}


def query(url: str, text: str, params=None) -> list[tuple]:
    """Run one statement and commit; returns its rows (empty for statements without any)."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(text, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def trigger_for(spec: JobSpec, as_of: datetime, run_id: str, **options) -> Trigger:
    """A trigger of `spec`'s file at `as_of`; options: retrain (bool or auto/always/never),
    force_promote, full."""
    retrain = options.get("retrain", "always")
    if isinstance(retrain, bool):
        retrain = "always" if retrain else "never"
    return Trigger(
        job=spec.name,
        spec_path=spec.path,
        run_id=run_id,
        logical_date=as_of.isoformat(),
        run_after=as_of.isoformat(),
        force_promote=options.get("force_promote", False),
        retrain=retrain,
        full=options.get("full", False),
    )


def run_stages(url: str, spec: JobSpec, as_of: datetime, run_id: str, **options) -> dict:
    """Every stage of `pipeline.flow`, in the DAG's order; their JSON results by stage name."""
    return flow.run_stages(url, trigger_for(spec, as_of, run_id, **options))


def as_role(url: str, role: str, statement: str):
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SET ROLE {role}")
            cur.execute(statement)
            return cur.fetchall() if cur.description else None
    finally:
        conn.rollback()
        conn.close()


def plugin_client(logged_in: bool):
    """The UI plugin's app mounted at its prefix as the api-server does, with a signed-in user
    or none (Airflow's `get_user` itself answers 401 to a request without a token); `get`
    takes a path under the prefix."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from pipeline.orchestration import plugin

    class Mounted(TestClient):
        def get(self, path: str, **kwargs):  # type: ignore[override]
            return super().get(f"{plugin.PREFIX}{path}", **kwargs)

    plugin.app.dependency_overrides.clear()
    if logged_in:
        plugin.app.dependency_overrides[plugin.get_user] = lambda: object()
    server = FastAPI()
    server.mount(plugin.PREFIX, plugin.app)
    return Mounted(server, raise_server_exceptions=False, follow_redirects=False)


class Links(HTMLParser):
    """The hrefs of a page's links (anchors within the page left out)."""

    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a" and (href := dict(attrs).get("href")) and not href.startswith("#"):
            self.hrefs.append(href)
