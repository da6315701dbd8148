"""Erasure and personal data on a real Postgres, years in the past: keys erased from every
snapshot, prediction and page of a job with several runs, the rest of each file unchanged,
`reproduce` of the oldest run exact on what is left; and `source.pii` values found nowhere a
run writes but its data files."""

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import test_alerts
import yaml

from helpers import query, run_stages
from pipeline.datafiles.root import DataRoot
from pipeline.maintenance.lineage import format_lineage, key_lineage
from pipeline.maintenance.reproduce import reproduce_run
from pipeline.spec import load_spec
from pipeline.stages.erasure import process_erasures, request_erasure
from pipeline.warehouse import db

pytestmark = pytest.mark.integration

# the receivers of test_alerts.py: an HTTP server keeping each POST, an SMTP server each mail
webhook = test_alerts.webhook
smtp = test_alerts.smtp

START = datetime(2018, 6, 1, tzinfo=UTC)
NIGHTS = [datetime(2018, 9, 1, tzinfo=UTC) + timedelta(days=i) for i in range(3)]
ROWS = 2_000
SECRET = "Zorbulon"  # in every sampled nickname: found by grep if it leaks
ODD_KEYS = [f"odd.{i}@example.org" for i in range(4)]  # fail the key pattern: sampled by GX
DDL = """
DROP SCHEMA IF EXISTS gdpr CASCADE;
CREATE SCHEMA gdpr;
CREATE TABLE gdpr.people (
    email       text PRIMARY KEY,
    updated_at  timestamptz NOT NULL,
    nickname    text,
    age         double precision,
    plan        text,
    churned     boolean
)"""
SPEC = {
    "name": "people",
    "source": {"table": "gdpr.people", "key": "email", "timestamp": "updated_at"},
    "features": {"numeric": ["age"], "categorical": ["nickname", "plan"]},
    "target": "churned",
    "task": "classification",
    "model": {"estimator": "logistic_regression"},
    "retrain": {"policy": "never"},
    "scoring": {"partitions": 2, "batch_rows": 1_000},
}
WARNINGS = [
    {
        "type": "expect_column_values_to_match_regex",
        "kwargs": {"column": "email", "regex": "^person"},
        "meta": {"severity": "warning"},
    },
    {
        "type": "expect_column_values_to_match_regex",
        "kwargs": {"column": "nickname", "regex": "^nick"},
        "meta": {"severity": "warning"},
    },
]


def people(rng, n: int) -> pd.DataFrame:
    """`n` people before the first night; a few with keys and nicknames a warning samples."""
    emails = [f"person.{i:05d}@example.org" for i in range(n - len(ODD_KEYS))] + ODD_KEYS
    stamps = pd.to_datetime(START) + pd.to_timedelta(rng.uniform(0, 80, n), unit="D")
    nick = [f"nick{i % 40}" for i in range(n)]
    for i in rng.choice(n, 6, replace=False):
        nick[i] = f"{SECRET}{i}"
    age = rng.normal(40, 12, n).round(1)
    return pd.DataFrame(
        {
            "email": emails,
            "updated_at": stamps,
            "nickname": nick,
            "age": age,
            "plan": rng.choice(["basic", "pro"], n),
            "churned": rng.random(n) < 1 / (1 + np.exp(-(age - 40) / 10)),
        }
    )


@pytest.fixture
def table(warehouse):
    query(warehouse, DDL)
    csv = people(np.random.default_rng(7), ROWS).to_csv(
        index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f+00"
    )
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.copy_expert(
            "COPY gdpr.people FROM STDIN WITH (FORMAT csv)", db.ChunkReader(iter([csv.encode()]))
        )
        # a row dated in the future, and one with every feature NULL: their keys are sampled
        cur.execute(
            "INSERT INTO gdpr.people VALUES ('later@example.org', '2090-01-01', 'nick1', 30,"
            " 'basic', NULL), ('blank@example.org', '2018-07-01', NULL, NULL, NULL, true)"
        )
    return warehouse


def write_job(jobs: Path, raw: dict):
    (jobs / "people.yaml").write_text(yaml.safe_dump(raw))
    folder = jobs.parent / "expectations" / "people"
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("training", "scoring"):
        suite = {"name": f"people.{kind}", "expectations": WARNINGS}
        (folder / f"{kind}.json").write_text(json.dumps(suite))
    return load_spec(jobs / "people.yaml")


def text_files(root: Path) -> dict[str, str]:
    """Every file a run wrote under the data root that a person reads (pages, JSON, cards)."""
    return {
        str(p): p.read_text(errors="replace")
        for p in root.rglob("*")
        if p.is_file() and p.suffix in (".html", ".json", ".md")
    }


def records(url: str) -> str:
    """The scoring schema's records (not the predictions tables) as one text."""
    tables = [
        "snapshots",
        "validation_results",
        "scoring_runs",
        "alerts",
        "drift_reports",
        "model_versions",
        "model_performance",
    ]
    return "\n".join(
        str(r[0])
        for t in tables
        for r in query(url, f"SELECT row_to_json(t)::text FROM scoring.{t} AS t")  # noqa: S608
    )


def parquet_keys(root: Path) -> dict[str, set[str]]:
    """The keys in each Parquet file of the job (a snapshot's first column, a partition's key)."""
    found = {}
    for path in root.rglob("*.parquet"):
        names = pq.read_schema(path).names
        column = "key" if "predictions" in path.parts else names[0]
        if column in names and path.name != "holdout_scores.parquet":
            found[str(path)] = set(map(str, pq.read_table(path, columns=[column])[column]))
    return found


def test_personal_values_appear_nowhere_a_run_writes(
    table, jobs, caplog, monkeypatch, webhook, smtp
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPS_WEBHOOK",
        f"http://:{test_alerts.TOKEN}@127.0.0.1:{webhook.server_address[1]}/hooks/scoring",
    )
    monkeypatch.setenv("AIRFLOW_CONN_OPS_SMTP", test_alerts.smtp_uri(smtp.port))
    alerting = {
        "webhook": {"connection": "ops_webhook"},
        "email": {"connection": "ops_smtp", "to": ["dpo@example.com"]},
    }
    source = {**SPEC["source"], "pii": ["email", "nickname"]}
    spec = write_job(jobs, {**SPEC, "source": source, "alerts": alerting})
    caplog.set_level(logging.INFO)
    run_stages(table, spec, NIGHTS[0], "pii-1", retrain="always")
    run_stages(table, spec, NIGHTS[1], "pii-2", retrain="auto")
    root = Path(DataRoot().base)
    pages = text_files(root)
    assert any(p.endswith(".html") for p in pages) and any("report" in p for p in pages)
    seeded = [SECRET, "odd.0@example.org", "later@example.org", "blank@example.org", "person.0"]
    time.sleep(1)  # deliveries land
    assert webhook.received and smtp.messages  # the validation warnings were sent
    written = {
        "log": caplog.text,
        "records": records(table),
        "webhook": json.dumps([hit["json"] for hit in webhook.received]),
        "email": "\n".join(str(m["message"]) for m in smtp.messages),
        **pages,
    }
    leaks = {(value, where) for value in seeded for where, text in written.items() if value in text}
    assert not leaks
    # what was sampled is there, masked: the warnings still name how many and which tokens
    failures = query(table, "SELECT failures FROM scoring.validation_results")[0][0]
    assert {"features_not_all_null", "timestamps_not_in_the_future"} <= {
        f["expectation"] for f in failures
    }
    samples = [s for f in failures for s in f["samples"] or []]
    assert samples and all(str(s).startswith("pii:") for s in samples if s != "NaN")


def test_erasure_removes_keys_everywhere_and_reproduce_is_exact_on_the_rest(table, jobs):
    spec = write_job(jobs, {**SPEC, "governance": {"on_erasure": "retrain"}})
    run_stages(table, spec, NIGHTS[0], "night-1", retrain="always")
    run_stages(table, spec, NIGHTS[1], "night-2", retrain="auto")
    root = Path(DataRoot().base)
    erased = [ODD_KEYS[0], "person.00010@example.org", "person.00011@example.org"]
    before_files = {
        p: pq.ParquetFile(p)
        for p in parquet_keys(root)
        if set(erased) & parquet_keys(root)[p] and "snapshots" in Path(p).parts
    }
    before = {p: (f.read(), f.metadata.num_row_groups) for p, f in before_files.items()}
    assert len(before) >= 3  # both runs' scoring snapshots and the training snapshot
    assert any(ODD_KEYS[0] in text for text in text_files(root).values())  # a sampled key
    scored = query(
        table, "SELECT count(*) FROM scoring.people_predictions WHERE run_id = %s", ("night-1",)
    )
    query(table, "DELETE FROM gdpr.people WHERE email = ANY(%s)", (erased,))

    ids = request_erasure(table, "people", erased, "GDPR art. 17 request #42")
    done = process_erasures(table, spec, by="test")
    assert done.request_ids == ids and done.rows_removed >= 3 * len(erased)

    # gone from every file, page and record
    for path, keys in parquet_keys(root).items():
        assert not set(erased) & keys, path
    for path, text in text_files(root).items():
        assert not [k for k in erased if k in text], path
    assert not [k for k in erased if k in records(table)]
    for relation in ("people_predictions", "people_latest", "people_changes"):
        left = query(
            table, f"SELECT count(*) FROM scoring.{relation} WHERE key = ANY(%s)", (erased,)
        )
        assert left == [(0,)], relation
    # the other rows: the same values, order and row groups; the record says what changed
    recorded = dict(query(table, "SELECT uri, manifest FROM scoring.snapshots"))
    for path, (old, groups) in before.items():
        new = pq.ParquetFile(path)
        expected = old.filter(~old.column(0).to_pandas().isin(erased).to_numpy())
        assert new.read().equals(expected)
        assert new.metadata.num_row_groups == groups
        manifest = recorded[path]
        assert manifest["sha256"] == DataRoot().sha256(path) != manifest["original_sha256"]
        assert manifest["erasures"][0]["reason"] == "GDPR art. 17 request #42"
    assert query(table, "SELECT count(*) FROM scoring.erasure_requests WHERE processed_at IS NULL")[
        0
    ] == (0,)

    # the model trained on them is flagged, its card says so, the next run retrains
    flagged = query(table, "SELECT version, erased_rows FROM scoring.model_versions")
    assert flagged == [(1, len(erased))]
    card = (root / "models" / "people" / "v0001" / "MODEL_CARD.md").read_text()
    assert "## Erasure" in card and "since erased" in card
    third = run_stages(table, spec, NIGHTS[2], "night-3", retrain="auto")
    assert third["decide_retrain"]["due"]
    assert "erased" in third["decide_retrain"]["reason"]

    # reproduce of the oldest run: exact on the rest, says how many were erased and why
    result = reproduce_run(table, "people", "night-1")
    assert result.exact and not result.rebuilt
    assert result.scored == scored[0][0]
    assert result.matched == result.scored - result.erased_keys
    assert result.erased_keys == len(erased)
    assert f"3 keys erased on {datetime.now(UTC):%Y-%m-%d} (request" in result.erasure_note()
    # lineage of a remaining key shows its snapshots were rewritten, and why
    kept = query(table, "SELECT key FROM scoring.people_latest ORDER BY key LIMIT 1")[0][0]
    text = format_lineage(spec, key_lineage(table, spec, kept))
    assert "erasure" in text and "GDPR art. 17 request #42" in text


def test_the_next_run_carries_out_a_request_filed_in_the_table_as_the_writer(table, jobs):
    spec = write_job(jobs, SPEC)
    run_stages(table, spec, NIGHTS[0], "night-1", retrain="always")
    key = "person.00020@example.org"
    # an upstream system files the request; the person's row left the source already
    query(table, "DELETE FROM gdpr.people WHERE email = %s", (key,))
    query(
        table,
        "INSERT INTO scoring.erasure_requests (job, key, reason) VALUES ('people', %s, 'crm')",
        (key,),
    )
    query(table, "GRANT USAGE ON SCHEMA gdpr TO scoring_writer")
    query(table, "GRANT SELECT ON gdpr.people TO scoring_writer")
    writer = f"{table}{'&' if '?' in table else '?'}options=-c%20role%3Dscoring_writer"
    assert query(writer, "SELECT current_user") == [("scoring_writer",)]
    run_stages(writer, spec, NIGHTS[1], "night-2", retrain="auto")
    assert query(table, "SELECT processed_by FROM scoring.erasure_requests") == [("run night-2",)]
    root = Path(DataRoot().base)
    assert not [p for p, keys in parquet_keys(root).items() if key in keys]
    history = query(table, "SELECT count(*) FROM scoring.people_predictions WHERE key = %s", (key,))
    assert history == [(0,)]
    assert query(table, "SELECT erased_rows FROM scoring.model_versions") == [(1,)]
