"""Probe: faults end in a clear, recorded state: a full disk, a lost connection, a file that is
no model, a tampered champion, secrets in the texts of errors."""

import hashlib
import io
import logging
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import psycopg2
import pytest
import yaml

from helpers import query, run_stages, trigger_for
from pipeline import alerts, flow
from pipeline.datafiles.layout import predictions_dir
from pipeline.datafiles.root import DataRoot
from pipeline.errors import ConfigError, ModelIntegrityError
from pipeline.faults import explain_permanent
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.maintenance.reproduce import reproduce_run
from pipeline.model.files import load_model
from pipeline.spec import load_spec
from pipeline.stages.snapshot import take_snapshot
from pipeline.warehouse import db

pytestmark = pytest.mark.integration


@pytest.fixture
def deliveries(warehouse, jobs):
    seed_table(warehouse, "demo.deliveries", 2_000)
    return warehouse, load_spec(jobs / "delivery_delay.yaml")


def test_a_full_disk_while_scoring_fails_at_once_and_leaves_no_partial_file(deliveries):
    url, spec = deliveries
    trigger = trigger_for(spec, demo_as_of(), "run-full-disk")
    results = flow.run_stages(url, trigger, until="plan")
    folder = Path(predictions_dir(DataRoot(), spec.name, "run-full-disk"))
    folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(folder)], check=True)
    try:
        with pytest.raises(OSError) as raised:
            flow.run_stages(url, trigger, given=results, until="score")
        message = explain_permanent(raised.value)
        assert message and message.startswith("no space left on the device that holds")
        assert "retrying will not help" in message
        assert list(folder.iterdir()) == []  # no truncated part, no unfinished file
    finally:
        subprocess.run(["umount", str(folder)], check=True)
    [(status, error)] = query(
        url, "SELECT status, error FROM scoring.scoring_runs WHERE run_id = 'run-full-disk'"
    )
    assert status == "failed" and "No space left on device" in error


def test_a_connection_lost_in_the_snapshot_is_for_a_retry_and_leaves_no_file(deliveries):
    """The server ends the snapshot's session mid-COPY (as a restart does): the error is not a
    permanent one (Airflow retries the task) and no file is left behind."""
    url, spec = deliveries
    query(
        url,
        "ALTER TABLE demo.deliveries RENAME TO deliveries_table;"
        " CREATE VIEW demo.deliveries AS SELECT * FROM demo.deliveries_table"
        " WHERE pg_sleep(0.005) IS NOT NULL",  # about 10 s of COPY for 2,000 rows
    )
    failure: list[BaseException] = []

    def snapshot() -> None:
        try:
            take_snapshot(spec, "scoring", demo_as_of(), url)
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=snapshot)
    worker.start()
    deadline = time.monotonic() + 30
    while not query(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'nightly-scoring' AND query LIKE 'COPY%%'",
        (),
    ):
        assert time.monotonic() < deadline, "the snapshot's COPY never started"
        time.sleep(0.2)
    worker.join(60)
    [exc] = failure
    assert isinstance(exc, psycopg2.OperationalError), repr(exc)
    assert explain_permanent(exc) is None  # a retry may well succeed
    leftovers = [p for p in Path(DataRoot().base).rglob("*") if p.is_file()]
    assert leftovers == []


def test_a_zip_that_is_no_model_fails_as_an_integrity_error_whatever_its_hash(tmp_path):
    root = DataRoot(str(tmp_path))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", "{}")
    for payload in (b"not a zip at all", buffer.getvalue()):
        path = root.path("m", "model.skops")
        root.write_bytes(path, payload)
        with pytest.raises(ModelIntegrityError, match="not a readable skops model file"):
            load_model(root.uri(path), hashlib.sha256(payload).hexdigest())


def test_reproduce_refuses_a_run_whose_champion_file_was_tampered_with(deliveries):
    url, spec = deliveries
    run_stages(url, spec, demo_as_of(), "run-1")
    [(uri,)] = query(url, "SELECT artifact_uri FROM scoring.model_versions WHERE version = 1")
    path = Path(uri)
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.raises(ModelIntegrityError, match="the file was modified or replaced"):
        reproduce_run(url, spec.name, "latest")


def test_a_webhook_url_with_a_space_never_prints_its_token(deliveries, monkeypatch, caplog):
    url, spec = deliveries
    monkeypatch.setenv("AIRFLOW_CONN_BAD_HOOK", '{"conn_type": "http", "extra": {"url": '
                       '"http://127.0.0.1:9/hook?token=Sekr3t value"}}')  # fmt: skip
    path = Path(spec.path)
    raw = yaml.safe_load(path.read_text())
    raw["alerts"] = {"webhook": {"connection": "bad_hook"}}
    path.write_text(yaml.safe_dump(raw))
    with caplog.at_level(logging.WARNING, logger="pipeline.alerts"):
        delivered = alerts.send(
            load_spec(path), alerts.Alert(job=spec.name, kind="drift", title="t")
        )
    assert delivered == []
    assert caplog.records and all("Sekr3t" not in r.getMessage() for r in caplog.records)


def test_a_password_with_a_bad_percent_escape_is_never_echoed(warehouse):
    bad = warehouse.replace("postgres:@", "postgres:pa%zzss-Sekr3t@").replace(
        "postgres@", "postgres:pa%zzss-Sekr3t@"
    )
    assert "Sekr3t" in bad
    with pytest.raises(ConfigError) as raised:
        db.connect(bad)
    assert "Sekr3t" not in str(raised.value) and "zzss" not in str(raised.value)


def test_the_model_card_keeps_no_markup_from_the_description(warehouse, jobs):
    seed_table(warehouse, "demo.deliveries", 2_000)
    path = jobs / "delivery_delay.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["description"] = 'Late <script>alert(1)</script> & <img src=x onerror="y">'
    path.write_text(yaml.safe_dump(raw))
    run_stages(warehouse, load_spec(path), demo_as_of(), "run-1")
    [(uri,)] = query(warehouse, "SELECT artifact_uri FROM scoring.model_versions")
    card = (Path(uri).parent / "MODEL_CARD.md").read_text()
    assert "<script>" not in card and "<img" not in card
    assert "&lt;script&gt;" in card
