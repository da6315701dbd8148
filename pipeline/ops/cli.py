"""Command line: `python -m pipeline <command>`; `python -m pipeline --help` lists them."""

import argparse
import logging
import sys
import time
from datetime import UTC, datetime

from pipeline import config
from pipeline.errors import PipelineError

log = logging.getLogger("pipeline")

DEMO_JOB = "customer_churn"
DEMO_CUSTOMERS = 200_000
DEMO_DELIVERIES = 20_000


def warehouse() -> str:
    """The configured warehouse, else the embedded Postgres (started if needed)."""
    from pipeline.ops import embedded

    return config.warehouse_url(fallback=embedded.start_for_cli)


def migrated_warehouse() -> str:
    """The warehouse with the scoring schema up to date: pending migrations are applied first
    (or, for a login that may not, a one-line error says to run `migrate`)."""
    from pipeline.store.migrate import migrate

    url = warehouse()
    migrate(url)
    return url


def cmd_migrate(args) -> int:
    """The deploy step: migrations, then each job's table and views where missing or changed."""
    from pipeline.spec import scan_specs
    from pipeline.stages.publish import ensure_job_objects
    from pipeline.store.migrate import migrate

    url = warehouse()
    applied = migrate(url)
    print(f"migrations applied: {applied or 'none (up to date)'}")
    specs, broken = scan_specs(config.jobs_dir())
    for path, exc in broken.items():
        print(f"FAIL {path}: {exc}")
    problems = len(broken)
    for spec in specs:
        try:
            changed = ensure_job_objects(url, spec)
        except PipelineError as exc:
            problems += 1
            print(f"FAIL {spec.name}: {exc}")
            continue
        state = "deployed" if changed else "up to date"
        print(f"ok   {spec.name}: scoring.{spec.latest_view} {state}")
    return 1 if problems else 0


def cmd_seed(args) -> int:
    from pipeline.ops.demo_data import seed_table

    url = warehouse()
    for table, rows in demo_tables(args.rows).items():
        seed_table(url, table, rows)
    return 0


def demo_tables(customers: int | None) -> dict[str, int]:
    """Demo table -> rows; `--rows` sizes demo.customers."""
    return {"demo.customers": customers or DEMO_CUSTOMERS, "demo.deliveries": DEMO_DELIVERIES}


def cmd_check(args) -> int:
    """Check the named jobs (all when none is named): the spec parses, its columns are in the
    warehouse with the right types, its target's values fit its task, its suites exist. Each job
    is checked on its own: one that fails blocks no other. Exit 0 when all are ok, 1 otherwise."""
    import psycopg2

    from pipeline.errors import explain_sql_error
    from pipeline.ops.suggest import check_target_in_table
    from pipeline.spec import scan_specs
    from pipeline.stages.snapshot import KINDS
    from pipeline.stages.validate import read_suite

    url = warehouse()
    specs, broken = scan_specs(config.jobs_dir())
    if args.jobs:
        unknown = sorted(set(args.jobs) - {s.name for s in specs})
        specs = [s for s in specs if s.name in args.jobs]
        broken = {p: e for p, e in broken.items() if p.stem in unknown}
        for job in unknown:
            if not any(p.stem == job for p in broken):
                print(f"FAIL {job}: no job of that name in {config.jobs_dir()}")
        problems = len(unknown)
    else:
        problems = len(broken)
    for spec in specs:
        try:
            target = check_target_in_table(url, spec)
            for kind in KINDS:
                read_suite(spec.name, kind)
        except PipelineError as exc:
            problems += 1
            print(f"FAIL {spec.name}: {exc}")
            continue
        except psycopg2.Error as exc:  # e.g. no right to read the table: this job's problem only
            problems += 1
            print(f"FAIL {spec.name}: {explain_sql_error(exc) or ' '.join(str(exc).split())}")
            continue
        print(f"ok   {spec.name}: {spec.source.table} -> scoring.{spec.latest_view}; {target}")
    for path, exc in broken.items():
        print(f"FAIL {path}: {str(exc).removeprefix(f'{path}: ')}")
    return 1 if problems else 0


def run_job(job: str, as_of: str | None, force_promote: bool, retrain: str) -> tuple[str, datetime]:
    """Run one job's DAG through Airflow; returns (state, logical date).

    What can be checked before Airflow starts is: the spec, its suites, the cut-off, and that
    no other run of the job is active.
    """
    from pipeline.ops import airflow_home
    from pipeline.spec import find_spec
    from pipeline.stages.run import (
        check_not_future,
        end_dead_runs,
        parse_timestamp,
        refuse_if_active,
    )
    from pipeline.stages.snapshot import KINDS
    from pipeline.stages.validate import read_suite
    from pipeline.store import db

    find_spec(job, config.jobs_dir())
    for kind in KINDS:
        read_suite(job, kind)
    logical_date = parse_timestamp(as_of) if as_of else datetime.now(UTC).replace(microsecond=0)
    check_not_future(logical_date)
    with db.transaction(warehouse()) as conn, conn.cursor() as cur:
        end_dead_runs(cur, job, "run command")
        refuse_if_active(cur, job, "")
    airflow_home.ensure_metadata_db()
    from sqlalchemy.exc import IntegrityError

    from pipeline.orchestration.dags import run_once

    conf = {"as_of": as_of, "force_promote": force_promote, "retrain": retrain}
    try:
        state = run_once(job, logical_date, conf)
    except IntegrityError:
        raise PipelineError(
            f"job {job}: another run with logical date {logical_date.isoformat()} is being "
            "started from this machine; wait for it to end (python -m pipeline runs "
            f"{job})"
        ) from None
    return state, logical_date


def cmd_run(args) -> int:
    from pipeline.ops.report import print_run_summary
    from pipeline.store.migrate import migrate

    url = warehouse()
    migrate(url)
    started = time.perf_counter()
    state, logical_date = run_job(args.job, args.as_of, args.force_promote, args.retrain)
    print_run_summary(url, args.job, logical_date, time.perf_counter() - started)
    return 0 if state == "success" else 1


def prepare_demo(url: str, rows: int | None = None, reseed: bool = False) -> None:
    """The scoring schema, and the demo tables unless they are there."""
    from pipeline.ops.demo_data import seed_table
    from pipeline.store.migrate import migrate

    migrate(url)
    for table, count in demo_tables(rows).items():
        if reseed or not table_exists(url, table):
            seed_table(url, table, count)


def cmd_demo(args) -> int:
    from pipeline.ops.report import print_run_summary

    url = warehouse()
    prepare_demo(url, args.rows, args.reseed)
    if args.drift:
        from pipeline.ops.drift_demo import run_drift_demo

        return run_drift_demo(url, lambda job: run_job(job, None, False, "auto"), print_run_summary)
    started = time.perf_counter()
    state, logical_date = run_job(DEMO_JOB, None, False, "auto")
    print_run_summary(url, DEMO_JOB, logical_date, time.perf_counter() - started)
    return 0 if state == "success" else 1


def table_exists(url: str, table: str) -> bool:
    from pipeline.store import db

    with db.transaction(url) as conn:
        return db.relation_exists(conn, table)


def cmd_suggest(args) -> int:
    """Write starter suites; a target that does not fit the task is refused (exit 1) first."""
    from pipeline.errors import DataValidationError
    from pipeline.ops.suggest import write_suggestions
    from pipeline.spec import find_spec

    spec = find_spec(args.job, config.jobs_dir())
    try:
        paths = write_suggestions(migrated_warehouse(), spec, overwrite=args.overwrite)
    except DataValidationError as exc:
        print(f"error: {exc}; no suite was written", file=sys.stderr)
        return 1
    for path in paths:
        print(f"wrote {path}: review every bound and severity, then commit it")
    return 0


def cmd_psql(args) -> int:
    """Replace this process with psql on the warehouse (the embedded server's psql if needed)."""
    import os
    import shutil

    from psycopg2.extensions import make_dsn, parse_dsn

    from pipeline.ops import embedded

    params = parse_dsn(warehouse())
    password = params.pop("password", None)  # in the environment, not on a command line
    env = {**os.environ, **({"PGPASSWORD": password} if password else {})}
    psql = shutil.which("psql") or str(embedded.bin_dir() / "psql")
    os.execve(psql, [psql, make_dsn(**params)], env)


def cmd_reproduce(args) -> int:
    from pipeline.ops.reproduce import reproduce_run

    result = reproduce_run(migrated_warehouse(), args.job, args.run)
    print(
        f"run {result.run_id}: spec sha256 {result.spec_sha256 or '-'}, "
        f"suites sha256 {result.suites_sha256 or '-'}"
    )
    if result.exact:
        n, total = result.matched, result.compared
        print(f"run {result.run_id}: reproduced {n}/{total} predictions exactly")
        return 0
    print(
        f"run {result.run_id}: {result.compared - result.matched} of {result.compared} "
        "predictions differ; first differences:"
    )
    for diff in result.differences:
        print(f"  {diff}")
    return 1


def cmd_lineage(args) -> int:
    from pipeline.ops.lineage import format_lineage, key_lineage
    from pipeline.spec import find_spec

    spec = find_spec(args.job, config.jobs_dir())
    print(format_lineage(spec, key_lineage(migrated_warehouse(), spec, args.key)))
    return 0


def cmd_performance(args) -> int:
    """Judge the job's published runs against the labels that arrived since; print the table.
    Exit 1 when a trusted figure is an alert."""
    from pipeline.spec import find_spec
    from pipeline.stages.performance import measure_performance
    from pipeline.store import db

    spec = find_spec(args.job, config.jobs_dir())
    url = migrated_warehouse()
    alerts = measure_performance(url, spec)
    rows = db.fetch_all(
        url,
        "SELECT p.run_id, p.model_version, p.metric, p.value, p.holdout, p.labelled, p.scored,"
        " p.trusted, p.alert FROM scoring.model_performance AS p JOIN scoring.scoring_runs AS r"
        " ON r.job = p.job AND r.run_id = p.run_id WHERE p.job = %s ORDER BY r.as_of, p.metric",
        (spec.name,),
    )
    if not rows:
        print(f"{spec.name}: no published run has labels that arrived after its as_of yet")
        return 0
    print(f"{'run':<40} {'model':>5} {'metric':<18} {'value':>8} {'holdout':>8} labelled")
    for r in rows:
        value = "-" if r["value"] is None else f"{r['value']:.4f}"
        holdout = "-" if r["holdout"] is None else f"{r['holdout']:.4f}"
        flag = " ALERT" if r["alert"] else ("" if r["trusted"] else " (too few labels)")
        print(
            f"{r['run_id']:<40} v{r['model_version']:<4} {r['metric']:<18} {value:>8} "
            f"{holdout:>8} {r['labelled']:,}/{r['scored']:,}{flag}"
        )
    for alert in alerts:
        print(f"PERFORMANCE ALERT: {alert}")
    return 1 if alerts else 0


def cmd_prune(args) -> int:
    from pipeline.ops.retention import keep_days, prune_snapshots
    from pipeline.spec import find_spec
    from pipeline.stages.publish import prune_predictions

    spec = find_spec(args.job, config.jobs_dir())
    url = warehouse()
    runs = prune_predictions(url, spec)
    print(f"{spec.name}: pruned the predictions of {len(runs)} run(s) ({spec.retention})")
    days = args.keep_days if args.keep_days is not None else keep_days()
    pruned = prune_snapshots(url, spec.name, days)
    print(f"{spec.name}: pruned {len(pruned)} snapshot(s) older than {days} days")
    return 0


def cmd_retire(args) -> int:
    """Retire a job's champion; the newest earlier champion whose file verifies takes over."""
    from pipeline.model.registry import retire_champion
    from pipeline.spec import find_spec

    spec = find_spec(args.job, config.jobs_dir())
    result = retire_champion(migrated_warehouse(), spec.name, args.reason)
    print(f"{spec.name}: v{result['retired']} retired ({args.reason})")
    for passed in result["skipped"]:
        print(f"{spec.name}: v{passed['version']} passed over: {passed['reason']}")
    if result["champion"] is None:
        print(f"{spec.name}: no champion now; the next run trains one")
    else:
        print(f"{spec.name}: v{result['champion']} is champion again")
    return 0


def cmd_runs(args) -> int:
    """The job's latest runs; runs whose process died are marked abandoned first."""
    from pipeline.stages.run import list_runs

    for run in list_runs(migrated_warehouse(), args.job, args.limit):
        error = (run["error"] or "").splitlines()[0][:120] if run["error"] else ""
        print(
            f"{run['run_id']:<44} {run['status']:<10} as_of {run['as_of']:%Y-%m-%d %H:%M}"
            f"  last report {run['seen']:%Y-%m-%d %H:%M:%S}  rows {run['rows_scored'] or '-'}"
            + (f"\n    {error}" if error else "")
        )
    return 0


def cmd_airflow(args) -> int:
    """Start Airflow's services on this machine (and Celery workers) and print the login."""
    from pipeline.ops import airflow_stack

    url = warehouse()
    prepare_demo(url)
    login = airflow_stack.start(url, workers=args.workers, port=args.port)
    executor = f"CeleryExecutor, {args.workers} worker(s)" if args.workers else "LocalExecutor"
    print(f"Airflow is up ({executor}); logs in {airflow_stack.home() / 'logs'}")
    print(f"  open  {login.url}")
    print(f"  user  {login.user}")
    print(f"  password  {login.password}")
    print("Stop it with `make stop-airflow`.")
    return 0


def cmd_stop_airflow(args) -> int:
    from pipeline.ops import airflow_stack

    print("Airflow stopped" if airflow_stack.stop() else "Airflow was not running")
    return 0


def cmd_stop_db(args) -> int:
    from pipeline.ops import embedded

    print("embedded Postgres stopped" if embedded.stop() else "embedded Postgres was not running")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Nightly batch scoring. The warehouse is DATABASE_URL (or the Airflow "
        "connection env AIRFLOW_CONN_WAREHOUSE); when neither is set, an embedded Postgres "
        "in .pgdata/ is started and used.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name, fn, help_text):
        c = sub.add_parser(name, help=help_text, description=help_text)
        c.set_defaults(fn=fn)
        return c

    command("migrate", cmd_migrate, "create or upgrade the scoring schema")
    c = command("seed", cmd_seed, "(re)create the demo tables with seeded synthetic rows")
    c.add_argument("--rows", type=int, help="rows in demo.customers (default 200000)")
    c = command(
        "check",
        cmd_check,
        "check job specs: keys, table columns and types, GX suites; exit 1 on any problem",
    )
    c.add_argument("jobs", nargs="*", help="the jobs to check (default: all)")
    c = command(
        "run", cmd_run, "run one job's DAG once through Airflow; non-zero exit if it failed"
    )
    c.add_argument("job")
    c.add_argument("--as-of", help="cut-off timestamp (ISO-8601); default: now")
    c.add_argument("--force-promote", action="store_true", help="promote the candidate regardless")
    c.add_argument("--retrain", choices=["auto", "always", "never"], default="auto")
    c = command("demo", cmd_demo, "demo data + one customer_churn run (embedded Postgres)")
    c.add_argument("--rows", type=int, help="rows in demo.customers (default 200000)")
    c.add_argument("--reseed", action="store_true", help="recreate the demo tables first")
    c.add_argument(
        "--drift",
        action="store_true",
        help="three runs showing monitoring: late labels, drift on two features and an unseen "
        "category, an alert to a local webhook, a retrain on drift",
    )
    c = command("suggest-expectations", cmd_suggest, "write starter GX suites for a job")
    c.add_argument("job")
    c.add_argument("--overwrite", action="store_true")
    c = command("reproduce", cmd_reproduce, "rebuild a run's model from its snapshot and compare")
    c.add_argument("job")
    c.add_argument("--run", default="latest", help="a run id, or latest (default)")
    c = command("lineage", cmd_lineage, "which data, model and code made a key's prediction")
    c.add_argument("job")
    c.add_argument("key")
    c = command(
        "performance",
        cmd_performance,
        "realised performance: each published run judged on the labels that arrived since",
    )
    c.add_argument("job")
    c = command(
        "prune",
        cmd_prune,
        "delete prediction history beyond the job's retention, and old snapshots nothing kept "
        "points to",
    )
    c.add_argument("job")
    c.add_argument("--keep-days", type=int, help="default: SCORING_RETENTION_DAYS or 30")
    c = command(
        "retire",
        cmd_retire,
        "retire the champion (e.g. its file is missing or tampered) and fall back to the "
        "previous good version",
    )
    c.add_argument("job")
    c.add_argument(
        "--reason",
        default="by python -m pipeline retire, no reason given",
        help="why; appended to the champion's decision_reason",
    )
    c = command("runs", cmd_runs, "list a job's latest runs; mark dead ones abandoned")
    c.add_argument("job")
    c.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    c = command("airflow", cmd_airflow, "start Airflow's UI, scheduler and workers here")
    c.add_argument("--workers", type=int, default=0, help="Celery workers (0: LocalExecutor)")
    c.add_argument("--port", type=int, default=8080, help="the UI's port (default 8080)")
    command("stop-airflow", cmd_stop_airflow, "stop what `airflow` started")
    command("psql", cmd_psql, "open psql on the warehouse")
    command("stop-db", cmd_stop_db, "stop the embedded Postgres")
    return p


def main(argv: list[str] | None = None) -> int:
    from pipeline.store.db import install_redaction, redact

    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_redaction()
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)  # libraries stay at WARNING
    try:
        return args.fn(args)
    except PipelineError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
