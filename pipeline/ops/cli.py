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


def cmd_migrate(args) -> int:
    from pipeline.store.migrate import migrate

    applied = migrate(warehouse())
    print(f"migrations applied: {applied or 'none (up to date)'}")
    return 0


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
    """Parse every spec, then check its columns in the warehouse and that its suites exist."""
    from pipeline.spec import check_columns, load_specs
    from pipeline.stages.validate import KINDS, read_suite
    from pipeline.store import db

    url = warehouse()
    problems = 0
    for spec in load_specs(config.jobs_dir()):
        try:
            with db.transaction(url) as conn:
                check_columns(spec, db.table_columns(conn, spec.source.table))
            for kind in KINDS:
                read_suite(spec.name, kind)
        except PipelineError as exc:
            problems += 1
            print(f"FAIL {spec.name}: {exc}")
            continue
        print(f"ok   {spec.name}: {spec.source.table} -> scoring.{spec.latest_view}")
    return 1 if problems else 0


def run_job(job: str, as_of: str | None, force_promote: bool, retrain: str) -> tuple[str, datetime]:
    """Run one job's DAG through Airflow; returns (state, logical date)."""
    from pipeline.ops import airflow_home
    from pipeline.spec import find_spec
    from pipeline.stages.run import parse_timestamp
    from pipeline.stages.validate import KINDS, read_suite

    find_spec(job, config.jobs_dir())  # spec and suite problems surface before Airflow starts
    for kind in KINDS:
        read_suite(job, kind)
    airflow_home.ensure_metadata_db()
    from pipeline.orchestration.dags import run_once

    logical_date = parse_timestamp(as_of) if as_of else datetime.now(UTC).replace(microsecond=0)
    conf = {"as_of": as_of, "force_promote": force_promote, "retrain": retrain}
    state = run_once(job, logical_date, conf)
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


def cmd_demo(args) -> int:
    from pipeline.ops.demo_data import seed_table
    from pipeline.ops.report import print_run_summary
    from pipeline.store.migrate import migrate

    url = warehouse()
    migrate(url)
    for table, rows in demo_tables(args.rows).items():
        if args.reseed or not table_exists(url, table):
            seed_table(url, table, rows)
    started = time.perf_counter()
    state, logical_date = run_job(DEMO_JOB, None, False, "auto")
    print_run_summary(url, DEMO_JOB, logical_date, time.perf_counter() - started)
    return 0 if state == "success" else 1


def table_exists(url: str, table: str) -> bool:
    from pipeline.store import db

    with db.transaction(url) as conn:
        return db.relation_exists(conn, table)


def cmd_suggest(args) -> int:
    from pipeline.ops.suggest import write_suggestions
    from pipeline.spec import find_spec

    spec = find_spec(args.job, config.jobs_dir())
    paths = write_suggestions(warehouse(), spec, overwrite=args.overwrite)
    for path in paths:
        print(f"wrote {path}: review every bound and severity, then commit it")
    return 0


def cmd_psql(args) -> int:
    """Replace this process with psql on the warehouse (the embedded server's psql if needed)."""
    import os
    import shutil

    from pipeline.ops import embedded

    url = warehouse()
    psql = shutil.which("psql") or str(embedded.bin_dir() / "psql")
    os.execv(psql, [psql, url])


def cmd_reproduce(args) -> int:
    from pipeline.ops.reproduce import reproduce_run

    result = reproduce_run(warehouse(), args.job, args.run)
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
    print(format_lineage(spec, key_lineage(warehouse(), spec, args.key)))
    return 0


def cmd_prune(args) -> int:
    from pipeline.ops.retention import keep_days, prune_snapshots
    from pipeline.spec import find_spec

    spec = find_spec(args.job, config.jobs_dir())
    days = args.keep_days if args.keep_days is not None else keep_days()
    pruned = prune_snapshots(warehouse(), spec.name, days)
    print(f"{spec.name}: pruned {len(pruned)} snapshot(s) older than {days} days")
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
    command("check", cmd_check, "check every job spec: keys, table columns, GX suites")
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
    c = command("suggest-expectations", cmd_suggest, "write starter GX suites for a job")
    c.add_argument("job")
    c.add_argument("--overwrite", action="store_true")
    c = command("reproduce", cmd_reproduce, "rebuild a run's model from its snapshot and compare")
    c.add_argument("job")
    c.add_argument("--run", default="latest", help="a run id, or latest (default)")
    c = command("lineage", cmd_lineage, "which data, model and code made a key's prediction")
    c.add_argument("job")
    c.add_argument("key")
    c = command("prune", cmd_prune, "delete old snapshots nothing kept points to")
    c.add_argument("job")
    c.add_argument("--keep-days", type=int, help="default: SCORING_RETENTION_DAYS or 30")
    command("psql", cmd_psql, "open psql on the warehouse")
    command("stop-db", cmd_stop_db, "stop the embedded Postgres")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)  # libraries stay at WARNING
    try:
        return args.fn(args)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
