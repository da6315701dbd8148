"""Incremental scoring (`scoring.mode: incremental`) on a real Postgres, years in the past:
nights of updates, inserts, deletes and late writes, each incremental run's `_latest` equal,
key for key and bit for bit, to what a full run on the same data publishes."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg2
import pytest
import yaml

from helpers import query, run_stages
from pipeline.datafiles.root import DataRoot
from pipeline.errors import PipelineError
from pipeline.maintenance.lineage import key_lineage
from pipeline.maintenance.reproduce import reproduce_run
from pipeline.spec import load_spec
from pipeline.warehouse import db

pytestmark = pytest.mark.integration

TABLE = "inc.accounts"
START = datetime(2019, 1, 1, tzinfo=UTC)
FIRST = datetime(2019, 3, 1, tzinfo=UTC)  # the first (full) run's cut-off
ROWS = 3_000
DDL = """
DROP SCHEMA IF EXISTS inc CASCADE;
CREATE SCHEMA inc;
CREATE TABLE inc.accounts (
    account_id  bigint PRIMARY KEY,
    updated_at  timestamptz NOT NULL,
    labelled_at timestamptz,
    balance     double precision,
    visits      integer,
    plan        text,
    active      boolean,
    churned     boolean
)"""
SPEC = {
    "name": "accounts",
    "source": {
        "table": TABLE,
        "key": "account_id",
        "timestamp": "updated_at",
        "label_timestamp": "labelled_at",
    },
    "features": {"numeric": ["balance", "visits"], "categorical": ["plan"], "boolean": ["active"]},
    "target": "churned",
    "task": "classification",
    "model": {"estimator": "logistic_regression"},
    "retrain": {"policy": "never"},
    "scoring": {"partitions": 2, "batch_rows": 1_000, "mode": "incremental", "lookback": "1d"},
}
SCORING_SUITE = {
    "name": "accounts.scoring",
    "expectations": [
        {
            "type": "expect_table_row_count_to_be_between",
            "kwargs": {
                "min_value": {"$PARAMETER": "min_row_count"},
                "max_value": {"$PARAMETER": "max_row_count"},
            },
            "meta": {"severity": "critical"},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "balance", "min_value": -1000, "max_value": 10000},
            "meta": {"severity": "critical"},
        },
    ],
}


def accounts(rng, keys: np.ndarray, start: datetime, end: datetime) -> pd.DataFrame:
    """Rows for `keys` with timestamps in [start, end); labels known 2-6 days later."""
    n = len(keys)
    stamps = pd.to_datetime(start) + pd.to_timedelta(
        rng.uniform(0, (end - start).total_seconds(), n), unit="s"
    )
    balance = rng.normal(500, 150, n).round(2)
    visits = rng.poisson(4, n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    active = rng.random(n) < 0.7
    logit = -0.5 - 0.004 * (balance - 500) + 0.2 * (visits - 4) - 0.8 * active
    return pd.DataFrame(
        {
            "account_id": keys,
            "updated_at": stamps,
            "labelled_at": stamps + pd.to_timedelta(rng.uniform(2, 6, n), unit="D"),
            "balance": balance,
            "visits": visits,
            "plan": plan,
            "active": active,
            "churned": rng.random(n) < 1 / (1 + np.exp(-logit)),
        }
    )


def load(url: str, frame: pd.DataFrame) -> None:
    """Insert or replace `frame`'s rows of inc.accounts."""
    csv = frame.to_csv(index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f+00")
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE incoming (LIKE inc.accounts) ON COMMIT DROP")
        cur.copy_expert(
            "COPY incoming FROM STDIN WITH (FORMAT csv)", db.ChunkReader(iter([csv.encode()]))
        )
        cur.execute(
            "DELETE FROM inc.accounts WHERE account_id IN (SELECT account_id FROM incoming)"
        )
        cur.execute("INSERT INTO inc.accounts SELECT * FROM incoming")
        cur.execute("ANALYZE inc.accounts")


def change_night(url: str, rng, night: datetime, previous: datetime) -> dict:
    """One night's writes before cut-off `night`: 2% of rows updated (timestamps in
    [previous, night)), 0.5% deleted, 0.5% inserted, and a late write: an update stored under
    a timestamp before `previous`, inside the job's lookback."""
    keys = np.array([k for (k,) in query(url, "SELECT account_id FROM inc.accounts ORDER BY 1")])
    chosen = rng.permutation(keys)
    updated, deleted = chosen[: ROWS // 50], chosen[ROWS // 50 : ROWS // 50 + ROWS // 200]
    late = chosen[ROWS // 50 + ROWS // 200 : ROWS // 50 + ROWS // 200 + 3]
    new_keys = np.arange(keys.max() + 1, keys.max() + 1 + ROWS // 200)
    load(url, accounts(rng, np.concatenate([updated, new_keys]), previous, night))
    load(url, accounts(rng, late, previous - timedelta(hours=12), previous - timedelta(hours=1)))
    query(url, "DELETE FROM inc.accounts WHERE account_id = ANY(%s)", ([int(k) for k in deleted],))
    return {"updated": len(updated) + len(late), "inserted": len(new_keys), "deleted": len(deleted)}


def latest(url: str) -> list[tuple]:
    """What analysts see: key, score, label and probabilities of every key, by key."""
    return query(
        url,
        "SELECT key, score, label, probabilities::text FROM scoring.accounts_latest ORDER BY key",
    )


@pytest.fixture
def job(warehouse, jobs):
    """inc.accounts seeded with ROWS rows before FIRST; the accounts job and its suites."""
    query(warehouse, DDL)
    load(warehouse, accounts(np.random.default_rng(3), np.arange(1, ROWS + 1), START, FIRST))
    return write_job(warehouse, jobs, SPEC)


def write_job(url: str, jobs, raw: dict, scoring_suite: dict = SCORING_SUITE):
    (jobs / "accounts.yaml").write_text(yaml.safe_dump(raw))
    folder = jobs.parent / "expectations" / "accounts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "training.json").write_text(json.dumps({"name": "accounts.training"}))
    (folder / "scoring.json").write_text(json.dumps(scoring_suite))
    return url, load_spec(jobs / "accounts.yaml")


def first_night(url: str, spec, seed: int, run_id: str) -> tuple:
    """A published full run at FIRST, then a night of changes: (`_latest` then, the rng, the
    next cut-off)."""
    rng = np.random.default_rng(seed)
    run_stages(url, spec, FIRST, run_id, retrain="always")
    before = latest(url)
    day = FIRST + timedelta(days=1)
    change_night(url, rng, day, FIRST)
    return before, rng, day


def unlabelled_keys(url: str, as_of: datetime) -> list[tuple]:
    """The keys whose target is not known at `as_of`, by key."""
    return query(
        url,
        "SELECT account_id FROM inc.accounts WHERE updated_at < %(t)s"
        " AND (churned IS NULL OR labelled_at IS NULL OR labelled_at >= %(t)s) ORDER BY 1",
        {"t": as_of},
    )


def scope_of(url: str, run_id: str) -> dict:
    return query(url, "SELECT scope FROM scoring.scoring_runs WHERE run_id = %s", (run_id,))[0][0]


def history_rows(url: str, run_id: str) -> int:
    return query(
        url, "SELECT count(*) FROM scoring.accounts_predictions WHERE run_id = %s", (run_id,)
    )[0][0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_nights_equal_a_full_run_key_for_key(job, seed):
    url, spec = job
    rng = np.random.default_rng(seed)
    first = run_stages(url, spec, FIRST, "night-0", retrain="always")
    assert first["snapshot_scoring"]["change"] is None
    assert scope_of(url, "night-0")["mode"] == "full"
    previous = FIRST
    for night in (1, 2):
        as_of = FIRST + timedelta(days=night)
        made = change_night(url, rng, as_of, previous)
        result = run_stages(url, spec, as_of, f"night-{night}", retrain="never")
        scope = scope_of(url, f"night-{night}")
        assert scope["mode"] == "incremental", scope
        assert scope["previous_run_id"] == f"night-{night - 1}"
        change = result["snapshot_scoring"]["change"]
        assert change["left"] == made["deleted"]
        # the change holds the rows written since the previous cut-off less lookback: the
        # night's updates and inserts, the late write, and what fell inside the lookback
        assert result["snapshot_scoring"]["row_count"] >= made["updated"] + made["inserted"]
        assert result["snapshot_scoring"]["row_count"] < ROWS // 5
        assert change["table_rows"] == query(url, "SELECT count(*) FROM inc.accounts")[0][0]
        assert result["snapshot_training"] is None and result["validate_training"] is None
        assert history_rows(url, f"night-{night}") == result["snapshot_scoring"]["row_count"]
        previous = as_of
    incremental = latest(url)
    assert len(incremental) == query(url, "SELECT count(*) FROM inc.accounts")[0][0]
    run_stages(url, spec, previous, "night-2-full", retrain="never", full=True)
    assert scope_of(url, "night-2-full")["reason"].startswith("the trigger asked")
    assert latest(url) == incremental  # key for key, bit for bit
    assert query(url, "SELECT count(*) FROM scoring.accounts_changes") == [(0,)]


def test_each_reason_to_run_in_full_is_taken_and_said(job, jobs):
    url, spec = job
    rng = np.random.default_rng(5)
    day = [FIRST + timedelta(days=n) for n in range(8)]
    run_stages(url, spec, day[0], "r0", retrain="always")
    assert "no published run yet" in scope_of(url, "r0")["reason"]

    change_night(url, rng, day[1], day[0])
    run_stages(url, spec, day[1], "r1", retrain="never", full=True)
    assert "full: true" in scope_of(url, "r1")["reason"]

    run_stages(url, spec, FIRST - timedelta(days=3), "backfill", retrain="never")
    assert "a backfill runs in full" in scope_of(url, "backfill")["reason"]
    shown = query(url, "SELECT DISTINCT run_id FROM scoring.accounts_latest")
    assert shown == [("r1",)]  # the backfill went to history only

    run_stages(url, spec, day[2], "r2", retrain="always", force_promote=True)
    assert "retraining is due" in scope_of(url, "r2")["reason"]
    before = latest(url)
    quiet = run_stages(url, spec, day[3], "r3", retrain="never")
    assert scope_of(url, "r3")["mode"] == "incremental"  # v2 scored r2 and r3 alike
    assert quiet["snapshot_scoring"]["row_count"] == 0 and latest(url) == before  # a quiet night

    # the champion moved without a published run (e.g. a run promoted and then failed)
    set_champion(url, 1)
    run_stages(url, spec, day[4], "r4", retrain="never")
    scope = scope_of(url, "r4")
    assert scope["mode"] == "full" and "the champion is model v1" in scope["reason"], scope

    # visits read as a category now: the champion still finds every column it reads
    fewer = {**SPEC, "features": {**SPEC["features"], "numeric": ["balance"]}}
    fewer["features"]["categorical"] = ["plan", "visits"]
    url, spec = write_job(url, jobs, fewer)
    run_stages(url, spec, day[5], "r5", retrain="always", force_promote=True)
    scope = scope_of(url, "r5")
    assert scope["mode"] == "full" and "features" in scope["reason"], scope

    weekly = {**fewer, "scoring": {**fewer["scoring"], "full_every_days": 2}}
    url, spec = write_job(url, jobs, weekly)
    run_stages(url, spec, day[6], "r6", retrain="never")
    assert scope_of(url, "r6")["mode"] == "incremental"
    run_stages(url, spec, day[7], "r7", retrain="never")
    scope = scope_of(url, "r7")
    assert scope["mode"] == "full" and "full_every_days is 2" in scope["reason"], scope


def set_champion(url: str, version: int) -> None:
    query(
        url,
        "UPDATE scoring.model_versions SET status = 'retired'"
        " WHERE job = 'accounts' AND status = 'champion'",
    )
    query(
        url,
        "UPDATE scoring.model_versions SET status = 'champion' WHERE job = 'accounts'"
        " AND version = %s",
        (version,),
    )


def test_a_failed_incremental_run_moves_nothing_and_the_next_one_catches_up(job):
    url, spec = job
    before, rng, day = first_night(url, spec, 7, "n0")
    bad = int(query(url, "SELECT max(account_id) FROM inc.accounts")[0][0]) + 1
    query(
        url,
        "INSERT INTO inc.accounts VALUES (%s, %s, NULL, 99999, 1, 'pro', true, NULL)",
        (bad, day - timedelta(hours=1)),
    )
    with pytest.raises(Exception, match="balance"):
        run_stages(url, spec, day, "n1", retrain="never")
    assert scope_of(url, "n1")["mode"] == "incremental"
    assert query(url, "SELECT latest_run_id FROM scoring.jobs WHERE job = 'accounts'") == [("n0",)]
    assert latest(url) == before
    query(url, "UPDATE inc.accounts SET balance = 100 WHERE account_id = %s", (bad,))
    day2 = day + timedelta(days=1)
    change_night(url, rng, day2, day)
    result = run_stages(url, spec, day2, "n2", retrain="never")
    scope = scope_of(url, "n2")
    assert scope["mode"] == "incremental" and scope["previous_run_id"] == "n0"
    assert scope["since"] == (FIRST - timedelta(days=1)).isoformat()  # n0's watermark
    assert bad in {k for (k,) in query(url, "SELECT key FROM scoring.accounts_latest")}
    assert result["publish"]["rows"] == history_rows(url, "n2")


def test_reproduce_and_lineage_are_exact_for_an_incremental_run(job):
    url, spec = job
    _, _, day = first_night(url, spec, 9, "p0")
    result = run_stages(url, spec, day, "p1", retrain="never")
    again = reproduce_run(url, "accounts", "p1")
    assert again.exact and again.compared == result["snapshot_scoring"]["row_count"]

    # a late write p1 rescored (timestamp before p0's cut-off): outside p2's window
    rescored = query(
        url,
        "SELECT min(p.key) FROM scoring.accounts_predictions AS p JOIN inc.accounts AS a"
        " ON a.account_id = p.key WHERE p.run_id = 'p1' AND a.updated_at < %s",
        (FIRST,),
    )
    kept = query(url, "SELECT min(key) FROM scoring.accounts_latest WHERE run_id = 'p0'")
    day2 = day + timedelta(days=1)  # a quiet night
    run_stages(url, spec, day2, "p2", retrain="never")
    row = key_lineage(url, spec, str(rescored[0][0]))
    assert (
        row["run_id"] == "p1" and row["scoring_snapshot_uri"] == result["snapshot_scoring"]["uri"]
    )
    assert row["model_version"] == 1 and row["as_of"] == day
    assert key_lineage(url, spec, str(kept[0][0]))["run_id"] == "p0"
    gone = query(url, "SELECT key FROM scoring.accounts_changes WHERE deleted LIMIT 1")[0][0]
    with pytest.raises(PipelineError, match="no published prediction"):
        key_lineage(url, spec, str(gone))


def test_a_reader_during_an_incremental_publish_sees_a_whole_state(job):
    url, spec = job
    before, _, day = first_night(url, spec, 11, "w0")
    seen, stop = [], threading.Event()

    def read() -> None:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET ROLE scoring_reader")
            while not stop.is_set():
                cur.execute(
                    "SELECT key, score, label, probabilities::text FROM scoring.accounts_latest"
                    " ORDER BY key"
                )
                seen.append(cur.fetchall())
                time.sleep(0.01)
        conn.close()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        run_stages(url, spec, day, "w1", retrain="never")
    finally:
        stop.set()
        reader.join()
    after = latest(url)
    assert after != before and len(seen) > 10
    states = {id(s): "before" if s == before else "after" if s == after else "mixed" for s in seen}
    assert set(states.values()) <= {"before", "after"}, "a reader saw a half-published state"
    assert "before" in states.values() and "after" in states.values()


def test_unlabelled_rows_only_are_scored_and_the_view_says_so(job, jobs):
    url, spec = job
    raw = {**SPEC, "scoring": {**SPEC["scoring"], "rows": "unlabelled", "mode": "full"}}
    # the unlabelled rows shrink as labels land: no row-count bounds from night to night
    url, spec = write_job(url, jobs, raw, {"name": "accounts.scoring"})
    run_stages(url, spec, FIRST, "u0", retrain="always")
    unlabelled = unlabelled_keys(url, FIRST)
    scored = query(url, "SELECT key FROM scoring.accounts_latest ORDER BY key")
    assert scored == unlabelled and 0 < len(scored) < ROWS // 5
    comment = query(url, "SELECT obj_description('scoring.accounts_latest'::regclass)")[0][0]
    assert "was not known at the cut-off" in comment and "unlabelled" in comment

    incremental = {**raw, "scoring": {**raw["scoring"], "mode": "incremental"}}
    url, spec = write_job(url, jobs, incremental, {"name": "accounts.scoring"})
    run_stages(url, spec, FIRST + timedelta(days=1), "u1", retrain="never", full=True)
    day = FIRST + timedelta(days=4)  # labels landed for rows of the days before: they leave
    result = run_stages(url, spec, day, "u2", retrain="never")
    assert scope_of(url, "u2")["mode"] == "incremental"
    assert result["snapshot_scoring"]["change"]["left"] > 0
    scored = query(url, "SELECT key FROM scoring.accounts_latest ORDER BY key")
    assert scored == unlabelled_keys(url, day)


def test_volatile_columns_refuse_incremental_mode(job, jobs):
    url, _ = job
    raw = {**SPEC, "source": {**SPEC["source"], "volatile": ["visits"]}}
    with pytest.raises(Exception, match="source.volatile names \\['visits'\\]"):
        write_job(url, jobs, raw)
    full = {**raw, "scoring": {**SPEC["scoring"], "mode": "full"}}
    assert write_job(url, jobs, full)[1].source.volatile == ["visits"]
    with pytest.raises(Exception, match="not a column the job reads"):
        write_job(url, jobs, {**full, "source": {**SPEC["source"], "volatile": ["nope"]}})


def test_a_champion_reading_a_dropped_feature_is_named_not_a_traceback(job, jobs):
    url, spec = job
    run_stages(url, spec, FIRST, "d0", retrain="always")
    fewer = {**SPEC, "features": {**SPEC["features"], "numeric": ["balance"]}}
    url, spec = write_job(url, jobs, fewer)
    day = FIRST + timedelta(days=1)
    with pytest.raises(PipelineError, match=r"champion v1 reads columns .*\['visits'\]"):
        run_stages(url, spec, day, "d1", retrain="always")
    forced = run_stages(url, spec, day, "d2", retrain="always", force_promote=True)
    decision = forced["register"]["decision"]
    assert decision["status"] == "champion" and decision["forced"], decision
    assert "no longer listed" in decision["reason"]


def test_the_keys_that_left_are_found_on_the_server_once_the_base_snapshot_is_gone(job):
    url, spec = job
    _, rng, day = first_night(url, spec, 13, "g0")
    (uri,) = query(
        url,
        "SELECT s.uri FROM scoring.scoring_runs AS r JOIN scoring.snapshots AS s"
        " ON s.id = r.scoring_snapshot_id WHERE r.run_id = 'g0'",
    )[0]
    Path(DataRoot().path_of(uri)).unlink()  # retention pruned it, say
    result = run_stages(url, spec, day, "g1", retrain="never")
    assert result["snapshot_scoring"]["change"]["left"] == ROWS // 200
    incremental = latest(url)
    run_stages(url, spec, day, "g1-full", retrain="never", full=True)
    assert latest(url) == incremental
