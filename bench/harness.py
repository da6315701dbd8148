"""Benchmark: score-and-publish against the floors of Postgres and the model, and the naive peer.

For each size the harness seeds `bench.customers_<rows>` (once), then runs every arm in a fresh
process, after a warm-up COPY that brings the table into the caches:

- `ours/<w>w`: a whole run of `pipeline.flow.STAGES` (what the DAG runs), each stage in a warm
  worker process of its own and the partitions on a pool of w; the model is the champion
  (`retrain=never`), and ours' time is that of the scoring path: snapshot_scoring, plan, score
  and publish;
- `copy_out`: raw `COPY (snapshot query) TO STDOUT`, the bytes discarded;
- `predict`: the model's predict on the snapshot's rows already in memory (only predict timed);
- `copy_in`: raw `COPY ... FROM STDIN` of the published prediction rows into an equivalent table;
- `naive`: `pandas.read_sql` -> predict -> `DataFrame.to_sql`, what users would otherwise write;
- `validate`: ours' validate_scoring stage, the job's scoring suite on ours' snapshot (reported
  beside the arms, outside the floor comparison: validation runs before scoring in the DAG).

The floor is copy_out + predict + copy_in. Before reporting, the harness checks that every arm
produced the same row count and every predicting arm the same prediction checksum.
"""

import json
import logging
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import yaml
from psycopg2 import sql

from pipeline import flow
from pipeline.config import expectations_dir, jobs_dir
from pipeline.contracts import Manifest, Run, ServingModel, Trigger
from pipeline.datafiles.snapshots import load_manifest, read_snapshot_table
from pipeline.errors import PipelineError
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.model.files import load_model
from pipeline.model.fitting import feature_frame, predict
from pipeline.provenance import code_version, library_versions
from pipeline.spec import JobSpec, find_spec, load_spec
from pipeline.stages import snapshot
from pipeline.stages.train import gate, train_candidate
from pipeline.warehouse import db, sources
from pipeline.warehouse.migrate import migrate

log = logging.getLogger(__name__)

BASE_JOB = "customer_churn"
JOB = "bench_churn"
SCHEMA = "bench"
COPY_IN_TABLE = "copy_in_floor"
NAIVE_TABLE = "naive_predictions"
SCORE_SCALE = 1e9  # checksums compare scores rounded to 1e-9
KEY_MODULUS = 9973  # ties scores to keys; a batch of up to 900k rows stays within int64


def write_bench_job(
    folder: Path, rows: int, incremental: bool = False, chunk_rows: int | None = None
) -> Path:
    """The demo churn job, renamed, reading `bench.customers_<rows>`, as a spec file in `folder`
    beside a copy of its suites (`folder/expectations`); returns the spec's path. Incremental:
    in `scoring.mode: incremental`, reading a copy, `bench.incremental_<rows>`, it may change.
    `chunk_rows`: its `validation.chunk_rows`, if given."""
    base = find_spec(BASE_JOB, jobs_dir()).model_dump(mode="json")
    table = f"{SCHEMA}.incremental_{rows}" if incremental else bench_table(rows)
    spec = {**base, "name": JOB, "source": {**base["source"], "table": table}}
    if incremental:
        spec["scoring"] = {**spec["scoring"], "mode": "incremental"}
    if chunk_rows:
        spec["validation"] = {**spec.get("validation", {}), "chunk_rows": chunk_rows}
    path = folder / f"{JOB}-{rows}{'-incremental' if incremental else ''}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    suites = folder / "expectations" / JOB
    if not suites.exists():
        shutil.copytree(expectations_dir() / BASE_JOB, suites)
    return path


def bench_table(rows: int) -> str:
    return f"{SCHEMA}.customers_{rows}"


def bench_spec(config: dict) -> JobSpec:
    return load_spec(config["spec_path"])


def count_rows(url: str, table: str) -> int | None:
    """Rows in `table`, or None if it does not exist."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        if not db.relation_exists(conn, table):
            return None
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(db.table_ident(table)))
        return cur.fetchone()[0]


def ensure_table(url: str, rows: int) -> None:
    """Seed `bench.customers_<rows>` unless it already holds exactly that many rows."""
    table = bench_table(rows)
    if count_rows(url, table) != rows:
        seed_table(url, "demo.customers", rows, into=table)


def train_model(url: str, spec_path: Path, rows: int) -> dict:
    """Fit and promote the demo model on `bench.customers_<rows>`: the champion every arm uses."""
    spec = load_spec(spec_path)
    manifest = snapshot.take_snapshot(spec, "training", demo_as_of(), url)
    fitted = train_candidate(spec, manifest, f"bench-train-{rows}")
    return gate(url, spec, fitted, f"bench-train-{rows}", force_promote=True).to_json()


class Checksum:
    """Order-independent: row count, sum of rounded scores, and their sum weighted by key."""

    def __init__(self):
        self.rows = self.total = self.weighted = 0

    def add(self, keys: np.ndarray, scores: np.ndarray) -> None:
        rounded = np.rint(scores * SCORE_SCALE).astype(np.int64)
        self.rows += len(rounded)
        self.total += int(rounded.sum())
        self.weighted += int(((keys.astype(np.int64) % KEY_MODULUS + 1) * rounded).sum())

    def value(self) -> str:
        return f"{self.rows}:{self.total}:{self.weighted}"


def table_checksum(url: str, table: sql.Composable, run_id: str | None = None) -> str:
    """The same checksum as `Checksum`, computed by Postgres over (key, score) of `table`."""
    where = sql.SQL("WHERE run_id = %(run_id)s") if run_id else sql.SQL("")
    query = sql.SQL(
        "SELECT count(*), coalesce(sum(s), 0), coalesce(sum((mod(key, {m}) + 1) * s), 0)"
        " FROM (SELECT key, round(score * {scale}::float8)::bigint AS s FROM {table} {where}) t"
    ).format(m=sql.Literal(KEY_MODULUS), scale=sql.Literal(SCORE_SCALE), table=table, where=where)
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(query, {"run_id": run_id})
        rows, total, weighted = cur.fetchone()
    return f"{rows}:{total}:{weighted}"


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM: unlike ru_maxrss, it restarts at exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise PipelineError("peak RSS needs Linux's /proc/self/status")


def configure_logging() -> None:
    """As the CLI does: the package's progress lines at INFO, libraries at WARNING."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in ("pipeline", "bench"):
        logging.getLogger(name).setLevel(logging.INFO)


def warm_worker(ready) -> None:
    """Pool initializer: import what an Airflow task process has loaded before a stage starts
    (the Task SDK, whose configuration the summary reads) and what scoring needs, then wait
    until every worker is up."""
    import airflow.sdk  # noqa: F401
    import sklearn.ensemble  # noqa: F401

    configure_logging()
    ready.wait()


def start_pool(workers: int):
    """`workers` spawned processes, warm, like Airflow workers waiting for mapped tasks.

    Each gets its share of the cores for OpenMP (as `OMP_NUM_THREADS` should be set on a
    worker host): more threads than cores makes every tree's parallel loop wait for a thread
    the scheduler has parked, and predict then runs several times slower.
    """
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(workers + 1)
    pool = context.Pool(workers, initializer=warm_worker, initargs=(ready,))
    ready.wait()
    return pool


def in_worker(fn, *args):
    """Run one task as an Airflow worker would; returns its result and the worker's peak RSS."""
    return fn(*args), peak_rss_mib()


class StageRunner:
    """`flow.run_stages`' runner: every stage in warm worker processes started before its clock
    starts, one for a single stage and `workers` for an expanded one, as Airflow runs tasks."""

    def __init__(self, workers: int):
        self.workers = workers
        self.seconds: dict[str, float] = {}
        self.peak_rss_mib: dict[str, float] = {}

    def __call__(self, stage: flow.Stage, url: str, trigger: Trigger, inputs: dict, items):
        calls = [(flow.execute, stage, url, trigger, inputs, item) for item in items or [None]]
        with start_pool(self.workers if items is not None else 1) as pool:
            started = time.perf_counter()
            try:
                done = pool.starmap(in_worker, calls, chunksize=1)
            finally:
                self.seconds[stage.name] = time.perf_counter() - started
        self.peak_rss_mib[stage.name] = max(rss for _, rss in done)
        results = [result for result, _ in done]
        return results if items is not None else results[0]


def run_whole(
    url: str, spec_path: str, run_id: str, as_of: datetime, workers: int, full: bool = False
) -> tuple[dict, StageRunner]:
    """A whole run of the DAG's stages with the champion (`retrain=never`), each stage in warm
    workers; its results and the runner that timed them."""
    trigger = Trigger(
        job=JOB,
        spec_path=spec_path,
        run_id=run_id,
        logical_date=as_of.isoformat(),
        run_after=as_of.isoformat(),
        retrain="never",
        full=full,
    )
    runner = StageRunner(workers)
    return flow.run_stages(url, trigger, runner=runner), runner


def forget_predictions(cur, spec: JobSpec) -> None:
    """Start the job from no published state: its predictions and changes dropped (the next
    run deploys them again), what `_latest` showed forgotten, its runs' rows marked pruned."""
    for name in (spec.predictions_table, spec.changes_table):
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(db.scoring_ident(name)))
    cur.execute(
        "UPDATE scoring.jobs SET latest_run_id = NULL, base_run_id = NULL WHERE job = %s",
        (spec.name,),
    )
    cur.execute(  # their rows are gone: realised performance has nothing left to judge
        "UPDATE scoring.scoring_runs SET predictions_pruned_at = now()"
        " WHERE job = %s AND predictions_pruned_at IS NULL",
        (spec.name,),
    )


def arm_ours(config: dict) -> dict:
    """A whole run of the DAG's stages with the champion; ours' time is its scoring path."""
    url, rows, workers = config["url"], config["rows"], config["workers"]
    spec = bench_spec(config)
    run_id = f"bench-{rows}-{workers}w"
    table = db.scoring_ident(spec.predictions_table)
    with db.transaction(url) as conn, conn.cursor() as cur:
        forget_predictions(cur, spec)
    results, runner = run_whole(url, config["spec_path"], run_id, demo_as_of(), workers)
    path = ("snapshot_scoring", "plan", "score", "publish")
    manifest = Manifest.from_json(results["snapshot_scoring"])
    validation = results["validate_scoring"]
    return {
        "seconds": sum(runner.seconds[name] for name in path),
        "rows": results["publish"]["rows"],
        "peak_rss_mib": max(runner.peak_rss_mib[name] for name in path),
        "peak_rss_mib_by_task": runner.peak_rss_mib,
        "checksum": table_checksum(url, table, run_id),
        "stages": runner.seconds,
        "partitions": len(results["plan"]),
        "manifest_uri": manifest.uri,
        "run_id": run_id,
        "validation": {
            "seconds": runner.seconds["validate_scoring"],
            "peak_rss_mib": runner.peak_rss_mib["validate_scoring"],
            "expectations": validation["evaluated"],
            "warnings_failed": validation["warnings_failed"],
        },
    }


class Discard:
    """A file-like sink for COPY TO STDOUT that only counts lines."""

    def __init__(self):
        self.lines = 0

    def write(self, data) -> int:
        self.lines += data.count(b"\n")
        return len(data)


def arm_copy_out(config: dict) -> dict:
    """Raw COPY of the snapshot query (same rows, columns and order) in text format."""
    url, spec = config["url"], bench_spec(config)
    conn = db.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            types = sources.table_columns(conn, spec.source.table)
            since = config.get("since")
            query = sources.build_snapshot_query(spec, "scoring", types, changed=bool(since))
            copy = sql.SQL("COPY ({}) TO STDOUT").format(query)
            as_of = datetime.fromisoformat(config.get("as_of") or demo_as_of().isoformat())
            params = {"as_of": as_of, "since": since and datetime.fromisoformat(since)}
            text = cur.mogrify(copy, params).decode()
            sink = Discard()
            started = time.perf_counter()
            cur.copy_expert(text, sink)
            seconds = time.perf_counter() - started
    finally:
        conn.close()
    return {"seconds": seconds, "rows": sink.lines, "peak_rss_mib": peak_rss_mib()}


def arm_predict(config: dict) -> dict:
    """`predict` on the snapshot's rows, already in memory as frames; only predict timed.

    Timed with one OpenMP thread and with all cores; the faster is the floor.
    """
    from threadpoolctl import threadpool_limits

    spec = bench_spec(config)
    model_ref = ServingModel.from_json(config["model"])
    model = load_model(model_ref.artifact_uri, model_ref.artifact_sha256)
    manifest = load_manifest(config["manifest_uri"])
    key = spec.source.key
    table = read_snapshot_table(manifest, [key, *spec.features.all])
    checksum, seconds = Checksum(), dict.fromkeys(sorted({1, os.cpu_count() or 1}), 0.0)
    for batch in table.to_batches(spec.scoring.batch_rows):
        frame = batch.to_pandas()
        features = feature_frame(frame, spec)
        for threads in seconds:
            with threadpool_limits(threads):
                started = time.perf_counter()
                scores = predict(model, features, spec).score
                seconds[threads] += time.perf_counter() - started
        checksum.add(frame[key].to_numpy(), scores)
    return {
        "seconds": min(seconds.values()),
        "seconds_by_threads": seconds,
        "rows": checksum.rows,
        "peak_rss_mib": peak_rss_mib(),
        "checksum": checksum.value(),
    }


def arm_copy_in(config: dict) -> dict:
    """Raw COPY FROM STDIN of a run's published rows into an empty table like the real one."""
    url, spec = config["url"], bench_spec(config)
    source = db.scoring_ident(spec.predictions_table)
    target = sql.Identifier(SCHEMA, COPY_IN_TABLE)
    with tempfile.TemporaryFile() as rows_file:
        with db.transaction(url) as conn, conn.cursor() as cur:
            dump = sql.SQL("COPY (SELECT * FROM {} WHERE run_id = %s) TO STDOUT").format(source)
            cur.copy_expert(cur.mogrify(dump, (config["run_id"],)).decode(), rows_file)
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            cur.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(target, source))
        rows_file.seek(0)
        started = time.perf_counter()
        with db.transaction(url) as conn, conn.cursor() as cur:
            cur.copy_expert(sql.SQL("COPY {} FROM STDIN").format(target).as_string(conn), rows_file)
        seconds = time.perf_counter() - started
    peak = peak_rss_mib()
    checksum = table_checksum(url, target)
    return {
        "seconds": seconds,
        "rows": int(checksum.split(":")[0]),
        "peak_rss_mib": peak,
        "checksum": checksum,
    }


def arm_naive(config: dict) -> dict:
    """`pandas.read_sql` -> predict -> `DataFrame.to_sql`, with a SQLAlchemy engine."""
    import pandas as pd
    import sqlalchemy

    url, spec = config["url"], bench_spec(config)
    model_ref = ServingModel.from_json(config["model"])
    model = load_model(model_ref.artifact_uri, model_ref.artifact_sha256)
    key = spec.source.key
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    with db.transaction(url) as conn:
        query = sql.SQL("SELECT {} FROM {} WHERE {} < %(as_of)s").format(
            sql.SQL(", ").join(map(sql.Identifier, [key, *spec.features.all])),
            db.table_ident(spec.source.table),
            sql.Identifier(spec.source.timestamp),
        )
        query_text = query.as_string(conn)
    started = time.perf_counter()
    frame = pd.read_sql_query(query_text, engine, params={"as_of": demo_as_of()})
    out = predict(model, feature_frame(frame, spec), spec)
    out = pd.DataFrame({"key": frame[key], "score": out.score, "label": out.label})
    out.to_sql(NAIVE_TABLE, engine, schema=SCHEMA, if_exists="replace", index=False)
    seconds = time.perf_counter() - started
    peak = peak_rss_mib()
    engine.dispose()
    return {
        "seconds": seconds,
        "rows": len(out),
        "peak_rss_mib": peak,
        "checksum": table_checksum(url, sql.Identifier(SCHEMA, NAIVE_TABLE)),
    }


def arm_incremental(config: dict) -> dict:
    """A published full run, then a night's changes (`fraction` of rows updated, a tenth of
    that deleted and as many inserted), then the incremental run, timed against a full run on
    the same data and against the floors of the changed rows; `_latest` after each compared
    key for key and bit for bit."""
    url, rows, workers, fraction = (config[k] for k in ("url", "rows", "workers", "fraction"))
    spec = bench_spec(config)
    table, base = db.table_ident(spec.source.table), db.table_ident(bench_table(rows))
    with db.transaction(url) as conn, conn.cursor() as cur:
        forget_predictions(cur, spec)
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        cur.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(table, base))
        cur.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(table, base))
        cur.execute(sql.SQL("ANALYZE {}").format(table))
    night, next_night = demo_as_of(), demo_as_of() + timedelta(days=1)
    run_whole(url, config["spec_path"], f"bench-inc-{rows}-base", night, workers)
    made = change_table(url, spec, fraction, night)
    log.info("changed %s: %s", spec.source.table, made)
    run_id = f"bench-inc-{rows}"
    results, runner = run_whole(url, config["spec_path"], run_id, next_night, workers)
    scope = Run.from_json(results[flow.FIRST]).scope
    if scope["mode"] != "incremental":
        raise PipelineError(f"the incremental arm ran in full: {scope['reason']}")
    latest = db.scoring_ident(spec.latest_view)
    kept = sql.Identifier(SCHEMA, "incremental_latest")
    columns = sql.SQL("key, score, label, probabilities::text")
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(kept))
        cur.execute(sql.SQL("CREATE TABLE {} AS SELECT {} FROM {}").format(kept, columns, latest))
    full, full_runner = run_whole(
        url, config["spec_path"], f"bench-inc-{rows}-full", next_night, workers, full=True
    )
    manifest = Manifest.from_json(results["snapshot_scoring"])
    window = {**config, "as_of": next_night.isoformat(), "since": scope["since"]}
    floors = {
        "copy_out": arm_copy_out(window)["seconds"],
        "predict": arm_predict({**config, "manifest_uri": manifest.uri})["seconds"],
        "copy_in": arm_copy_in({**config, "run_id": run_id})["seconds"],
    }
    seconds, full_seconds = sum(runner.seconds.values()), sum(full_runner.seconds.values())
    changed = manifest.row_count + manifest.change["left"]
    return {
        "seconds": round(seconds, 3),
        "full_seconds": round(full_seconds, 3),
        "speedup_vs_full": round(full_seconds / seconds, 2),
        "changed_rows": changed,
        "rescored_rows": manifest.row_count,
        "left_rows": manifest.change["left"],
        "made": made,
        "change_floor_s": round(sum(floors.values()), 3),
        "change_floors_s": {k: round(v, 3) for k, v in floors.items()},
        "ratio_to_change_floor": round(seconds / sum(floors.values()), 2),
        "peak_rss_mib": round(max(runner.peak_rss_mib.values()), 1),
        "full_peak_rss_mib": round(max(full_runner.peak_rss_mib.values()), 1),
        "stages_s": {k: round(v, 3) for k, v in runner.seconds.items()},
        "full_stages_s": {k: round(v, 3) for k, v in full_runner.seconds.items()},
        "latest_equals_full": differing_rows(url, kept, latest, columns) == 0,
        "rows": full["publish"]["rows"],
        "analyst": analyst_figures(url, spec),
    }


def change_table(url: str, spec: JobSpec, fraction: float, night: datetime) -> dict:
    """A night's writes after `night`: every 1/fraction-th key updated (charges up 10%), every
    10/fraction-th deleted and as many new keys inserted, an hour or two after `night`."""
    table, key = db.table_ident(spec.source.table), sql.Identifier(spec.source.key)
    ts = sql.Identifier(spec.source.timestamp)
    every = max(1, round(1 / fraction))
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT max({}) FROM {}").format(key, table))
        top = cur.fetchone()[0]
        cur.execute(
            sql.SQL(
                "UPDATE {t} SET monthly_charges = monthly_charges * 1.1, {ts} = %(at)s"
                " WHERE mod({k}, %(every)s) = 3"
            ).format(t=table, ts=ts, k=key),
            {"at": night + timedelta(hours=1), "every": every},
        )
        updated = cur.rowcount
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE born ON COMMIT DROP AS SELECT * FROM {t}"
                " WHERE mod({k}, %(every)s) = 11"
            ).format(t=table, k=key),
            {"every": every * 10},
        )
        cur.execute(
            sql.SQL("UPDATE born SET {k} = {k} + %(top)s, {ts} = %(at)s").format(k=key, ts=ts),
            {"top": top, "at": night + timedelta(hours=2)},
        )
        cur.execute(sql.SQL("INSERT INTO {} SELECT * FROM born").format(table))
        inserted = cur.rowcount
        cur.execute(
            sql.SQL("DELETE FROM {t} WHERE mod({k}, %(every)s) = 7").format(t=table, k=key),
            {"every": every * 10},
        )
        deleted = cur.rowcount
        cur.execute(sql.SQL("ANALYZE {}").format(table))
    return {"updated": updated, "inserted": inserted, "deleted": deleted}


def differing_rows(url: str, kept: sql.Composable, latest: sql.Composable, columns) -> int:
    """Rows in one of the two states and not the other (0: the same, key for key)."""
    query = sql.SQL(
        "SELECT count(*) FROM ((SELECT * FROM {kept} EXCEPT ALL SELECT {c} FROM {latest})"
        " UNION ALL (SELECT {c} FROM {latest} EXCEPT ALL SELECT * FROM {kept})) AS d"
    ).format(kept=kept, latest=latest, c=columns)
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchone()[0]


def analyst_figures(url: str, spec: JobSpec) -> dict:
    """What analysts pay on `<job>_latest` (the fastest of 3, milliseconds), and the bytes a
    prediction row of the history takes (heap, indexes and TOAST)."""
    latest = db.scoring_ident(spec.latest_view)
    predictions = db.scoring_ident(spec.predictions_table)
    queries = {
        "top20_by_score_ms": sql.SQL("SELECT key, score FROM {} ORDER BY score DESC LIMIT 20"),
        "count_above_threshold_ms": sql.SQL("SELECT count(*) FROM {} WHERE score > 0.9"),
        "lookup_by_key_ms": sql.SQL("SELECT * FROM {} WHERE key = 4242"),
    }
    out = {}
    with db.transaction(url) as conn, conn.cursor() as cur:
        for name, query in queries.items():
            times = []
            for _ in range(3):
                started = time.perf_counter()
                cur.execute(query.format(latest))
                cur.fetchall()
                times.append((time.perf_counter() - started) * 1000)
            out[name] = round(min(times), 1)
        cur.execute(
            sql.SQL("SELECT pg_total_relation_size(%s::regclass), count(*) FROM {}").format(
                predictions
            ),
            (f"scoring.{spec.predictions_table}",),
        )
        size, count = cur.fetchone()
    out["bytes_per_prediction_row"] = round(size / count, 1) if count else None
    return out


ARMS = {
    "ours": arm_ours,
    "copy_out": arm_copy_out,
    "predict": arm_predict,
    "copy_in": arm_copy_in,
    "naive": arm_naive,
    "incremental": arm_incremental,
}


def run_arm(arm: str, config: dict, repeat: int = 1) -> dict:
    """The fastest of `repeat` runs of one arm (the highest peak RSS of them all)."""
    results = [run_arm_once(arm, config) for _ in range(repeat)]
    fastest = min(results, key=lambda r: r["seconds"])
    return {**fastest, "peak_rss_mib": max(r["peak_rss_mib"] for r in results)}


def run_arm_once(arm: str, config: dict) -> dict:
    """Run one arm in a fresh Python process; its logs pass through, its result is JSON."""
    log.info("arm %s at %d rows: starting a fresh process", arm, config["rows"])
    code = "import sys; from bench.harness import arm_main; sys.exit(arm_main())"
    done = subprocess.run(
        [sys.executable, "-c", code, arm, json.dumps(config)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "SCORING_EXPECTATIONS_DIR": config["expectations_dir"]},
    )
    if done.returncode:
        raise PipelineError(f"benchmark arm {arm} at {config['rows']} rows failed")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    load = round(os.getloadavg()[0], 2)  # other work on the machine shows here
    log.info("arm %s at %d rows: %.2f s, load %.2f", arm, config["rows"], result["seconds"], load)
    return {"arm": arm, **result, "load_average_1m": load}


def arm_main() -> int:
    """Entry point of an arm's process: `arm_main <arm> <config json>` prints one JSON line."""
    configure_logging()
    arm, config = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(ARMS[arm](config)))
    return 0


def bench_size(
    url: str,
    rows: int,
    model: dict,
    workers: list[int],
    naive: bool,
    repeat: int,
    folder: Path,
    incremental: float | None = None,
) -> dict:
    """Every arm at one size, checked against each other; the size's summary and its arms."""
    base = {
        "url": url,
        "rows": rows,
        "model": model,
        "spec_path": str(write_bench_job(folder, rows)),
        "expectations_dir": str(folder / "expectations"),
    }
    run_arm_once("copy_out", base)  # warm-up: the table into the OS and Postgres caches
    arms = []
    for count in workers:
        result = run_arm("ours", {**base, "workers": count}, repeat)
        arms.append({**result, "arm": f"ours/{count}w", "workers": count})
    ours = arms[-1]
    arms.append(run_arm("copy_out", base, repeat))
    arms.append(run_arm("predict", {**base, "manifest_uri": ours["manifest_uri"]}, repeat))
    arms.append(run_arm("copy_in", {**base, "run_id": ours["run_id"]}, repeat))
    if naive:
        arms.append(run_arm("naive", base))
    arms.append({"arm": "validate", "rows": rows, **ours["validation"]})
    check_arms(rows, arms)
    by_arm = {a["arm"]: a for a in arms}
    floor = sum(by_arm[a]["seconds"] for a in ("copy_out", "predict", "copy_in"))
    naive_s = by_arm["naive"]["seconds"] if naive else None
    summary = {
        "ours_s": round(ours["seconds"], 3),
        "ours_workers": ours["workers"],
        "ours_s_by_workers": {
            str(a["workers"]): round(a["seconds"], 3) for a in arms[: len(workers)]
        },
        "ours_stages_s": {k: round(v, 3) for k, v in ours["stages"].items()},
        # the whole run a user pays for: every stage of a retrain=never run, one after another
        "whole_run_s": round(sum(ours["stages"].values()), 3),
        "whole_run_ratio_to_floor": round(sum(ours["stages"].values()) / floor, 3),
        "peak_rss_mib_by_stage": {k: round(v, 1) for k, v in ours["peak_rss_mib_by_task"].items()},
        "floor_s": round(floor, 3),
        "floors_s": {a: round(by_arm[a]["seconds"], 3) for a in ("copy_out", "predict", "copy_in")},
        "naive_s": round(naive_s, 3) if naive_s else None,
        "ratio_to_floor": round(ours["seconds"] / floor, 3),
        "snapshot_ratio_to_copy_out": round(
            ours["stages"]["snapshot_scoring"] / by_arm["copy_out"]["seconds"], 3
        ),
        "speedup_vs_naive": round(naive_s / ours["seconds"], 2) if naive_s else None,
        "peak_rss_mib": round(max(a["peak_rss_mib"] for a in arms[: len(workers)]), 1),
        "validate_s": round(by_arm["validate"]["seconds"], 3),
        "validate_peak_rss_mib": round(by_arm["validate"]["peak_rss_mib"], 1),
        "checksum": ours["checksum"],
    }
    if incremental:
        config = {
            **base,
            "workers": ours["workers"],
            "fraction": incremental,
            "spec_path": str(write_bench_job(folder, rows, incremental=True)),
        }
        summary["incremental"] = run_arm_once("incremental", config)
    return {"summary": summary, "arms": arms}


def check_arms(rows: int, arms: list[dict]) -> None:
    """Every arm saw `rows` rows and every predicting arm agrees on the checksum."""
    counts = {a["arm"]: a["rows"] for a in arms}
    checksums = {a["arm"]: a["checksum"] for a in arms if a.get("checksum")}
    if set(counts.values()) != {rows} or len(set(checksums.values())) != 1:
        raise PipelineError(
            f"benchmark arms disagree at {rows} rows: rows {counts}, checksums {checksums}"
        )


def machine() -> dict:
    """The hardware, software and load the figures were taken on."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def postgres_version(url: str) -> str:
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        return cur.fetchone()[0]


def run_bench(
    url: str,
    sizes: list[int],
    workers: list[int],
    naive_max_rows: int,
    train_rows: int,
    repeat: int = 1,
    json_path: str | None = None,
    incremental: float | None = None,
) -> dict:
    """Seed, train once, bench every size; print the table and optionally write the JSON."""
    migrate(url)
    for rows in sorted({train_rows, *sizes}):
        ensure_table(url, rows)
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as folder:
        report = bench_sizes(
            url, sizes, workers, naive_max_rows, train_rows, repeat, Path(folder), incremental
        )
    print(format_table(report))
    if json_path:
        with open(json_path, "w") as out:
            json.dump(report, out, indent=2, sort_keys=True)
        log.info("wrote %s", json_path)
    return report


def bench_sizes(
    url, sizes, workers, naive_max_rows, train_rows, repeat, folder: Path, incremental=None
) -> dict:
    """Train the champion once, then every size; the report."""
    model = train_model(url, write_bench_job(folder, train_rows), train_rows)
    report = {
        "machine": machine(),
        "postgres": postgres_version(url),
        "libraries": library_versions(),
        "code_version": code_version(),
        "model": {**model, "job": BASE_JOB, "trained_on_rows": train_rows},
        "repeat": repeat,
        "results": {},
        "arms": [],
    }
    for rows in sizes:
        naive = rows <= naive_max_rows
        size = bench_size(url, rows, model, workers, naive, repeat, folder, incremental)
        report["results"][str(rows)] = size["summary"]
        report["arms"] += [{k: v for k, v in a.items() if k != "url"} for a in size["arms"]]
    first = report["results"][str(min(sizes))]
    for summary in report["results"].values():
        summary["peak_rss_vs_smallest"] = round(summary["peak_rss_mib"] / first["peak_rss_mib"], 3)
        summary["stage_rss_vs_smallest"] = {
            stage: round(rss / first["peak_rss_mib_by_stage"][stage], 3)
            for stage, rss in summary["peak_rss_mib_by_stage"].items()
        }
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return report


def stage_profile(
    url: str, sizes: list[int], train_rows: int, chunk_rows: int | None = None
) -> dict[int, dict]:
    """Size -> every stage's seconds and peak RSS in a whole run (`ours`, one worker), and
    nothing else: what the memory test compares between sizes (`chunk_rows`: the job's
    `validation.chunk_rows`)."""
    migrate(url)
    for rows in sorted({train_rows, *sizes}):
        ensure_table(url, rows)
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as name:
        folder = Path(name)
        model = train_model(url, write_bench_job(folder, train_rows), train_rows)
        for rows in sizes:
            config = {
                "url": url,
                "rows": rows,
                "model": model,
                "workers": 1,
                "spec_path": str(write_bench_job(folder, rows, chunk_rows=chunk_rows)),
                "expectations_dir": str(folder / "expectations"),
            }
            result = run_arm("ours", config)
            out[rows] = {
                "seconds": result["stages"],
                "peak_rss_mib": result["peak_rss_mib_by_task"],
            }
    return out


def format_table(report: dict) -> str:
    """One line per arm: seconds, rows/s, peak RSS, ratio to the floor, speed-up over naive."""
    header = ("arm", "rows", "seconds", "rows/s", "peak RSS MiB", "x floor", "x faster than naive")
    lines = [header]
    for arm in report["arms"]:
        summary = report["results"][str(arm["rows"])]
        naive_s = summary["naive_s"]
        lines.append(
            (
                arm["arm"],
                f"{arm['rows']:,}",
                f"{arm['seconds']:.2f}",
                f"{arm['rows'] / arm['seconds']:,.0f}",
                f"{arm['peak_rss_mib']:.0f}",
                f"{arm['seconds'] / summary['floor_s']:.2f}",
                f"{naive_s / arm['seconds']:.1f}" if naive_s else "-",
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in lines]
    for rows, s in report["results"].items():
        text.append(
            f"{int(rows):,} rows: whole run {s['whole_run_s']:.2f} s = "
            f"{s['whole_run_ratio_to_floor']:.2f}x the floor; per stage (seconds, peak RSS MiB, "
            "x the smallest size's RSS): "
            + ", ".join(
                f"{stage} {s['ours_stages_s'][stage]:.1f} s {rss:.0f} MiB "
                f"{s['stage_rss_vs_smallest'][stage]:.2f}x"
                for stage, rss in s["peak_rss_mib_by_stage"].items()
            )
        )
        text.append(
            f"{int(rows):,} rows: ours {s['ours_s']:.2f} s with {s['ours_workers']} worker(s) "
            f"(stages {s['ours_stages_s']}), floor {s['floor_s']:.2f} s {s['floors_s']}, "
            f"snapshot {s['snapshot_ratio_to_copy_out']:.2f}x COPY out, "
            f"peak RSS {s['peak_rss_mib']:.0f} MiB "
            f"({s['peak_rss_vs_smallest']:.2f}x the smallest); "
            f"validation {s['validate_s']:.2f} s, peak RSS {s['validate_peak_rss_mib']:.0f} MiB"
        )
        inc = s.get("incremental")
        if inc:
            text.append(
                f"{int(rows):,} rows, incremental ({inc['changed_rows']:,} changed): "
                f"{inc['seconds']:.2f} s against {inc['full_seconds']:.2f} s in full = "
                f"{inc['speedup_vs_full']:.1f}x faster; {inc['ratio_to_change_floor']:.2f}x the "
                f"change's floor {inc['change_floor_s']:.2f} s; peak RSS {inc['peak_rss_mib']:.0f}"
                f" MiB (full {inc['full_peak_rss_mib']:.0f}); latest equals full: "
                f"{inc['latest_equals_full']}; analysts: {inc['analyst']}"
            )
    return "\n".join(text)
