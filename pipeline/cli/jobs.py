"""Commands that deploy, check and run jobs: migrate, check, run, suggest-expectations."""

import sys
import time
from datetime import UTC, datetime

import psycopg2

from pipeline import config
from pipeline.cli.connect import migrated_warehouse, warehouse
from pipeline.datafiles.root import DataRoot
from pipeline.errors import DataValidationError, PipelineError
from pipeline.faults import explain_permanent, explain_sql_error
from pipeline.local import airflow_home
from pipeline.logic.cutoffs import check_not_future, cutoff_series, parse_timestamp
from pipeline.maintenance.suggest import check_target_in_table, write_suggestions
from pipeline.reports.summary import print_run_summary
from pipeline.spec import find_spec, scan_specs
from pipeline.spec.names import KINDS
from pipeline.validation.suites import build_suite, read_suite, suite_path
from pipeline.warehouse import db, runs
from pipeline.warehouse.jobs import ensure_job_objects
from pipeline.warehouse.migrate import migrate


def cmd_migrate(args) -> int:
    """The deploy step: migrations, then each job's table and views where missing or changed."""
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


def cmd_check(args) -> int:
    """Check the named jobs (all when none is named): the spec parses, its columns are in the
    warehouse with the right types, its target's values fit its task, its suites exist. Each job
    is checked on its own: one that fails blocks no other. Then the data root: reachable and
    writable. Exit 0 when all are ok, 1 otherwise."""
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
                build_suite(read_suite(spec.name, kind), str(suite_path(spec.name, kind)))
        except PipelineError as exc:
            problems += 1
            print(f"FAIL {spec.name}: {exc}")
            continue
        except psycopg2.Error as exc:  # e.g. no right to read the table: this job's problem only
            problems += 1
            print(f"FAIL {spec.name}: {explain_sql_error(exc) or ' '.join(str(exc).split())}")
            continue
        print(f"ok   {spec.name}: {spec.source.table} -> scoring.{spec.latest_view}; {target}")
    for path, error in broken.items():
        print(f"FAIL {path}: {str(error).removeprefix(f'{path}: ')}")
    problems += check_data_root()
    return 1 if problems else 0


def check_data_root() -> int:
    """Print whether the data root can be written and read; 1 when it cannot."""
    try:
        root = DataRoot()
        root.probe()
    except OSError as exc:
        print(f"FAIL data root {config.data_root_shown()}: {explain_permanent(exc) or exc}")
        return 1
    print(f"ok   data root {root.uri_prefix}: reachable and writable")
    return 0


def run_job(
    job: str, as_of: str | None, force_promote: bool, retrain: str, full: bool = False
) -> tuple[str, datetime]:
    """Run one job's DAG through Airflow; returns (state, logical date).

    What can be checked before Airflow starts is: the spec, its suites, the cut-off (not in the
    future, not before the DAG's `schedule.start`), and that no other run of the job is active.
    """
    spec = find_spec(job, config.jobs_dir())
    for kind in KINDS:
        read_suite(job, kind)
    logical_date = parse_timestamp(as_of) if as_of else datetime.now(UTC).replace(microsecond=0)
    check_not_future(logical_date)
    if logical_date.date() < spec.schedule.start:
        raise PipelineError(
            f"job {job}: as_of {logical_date.isoformat()} is before the DAG's start date "
            f"{spec.schedule.start} (schedule.start in {spec.path}): Airflow runs no logical "
            "date before it. Set schedule.start to that date or earlier"
        )
    with db.transaction(warehouse()) as conn, conn.cursor() as cur:
        runs.end_dead_runs(cur, job, "run command")
        runs.refuse_if_active(cur, job, "")
    airflow_home.ensure_metadata_db()
    # Airflow reads its configuration when first imported: only now that the local home is set
    from sqlalchemy.exc import IntegrityError

    from pipeline.orchestration.dags import run_once

    conf = {"as_of": as_of, "force_promote": force_promote, "retrain": retrain, "full": full}
    try:
        state = run_once(job, logical_date, conf)
    except IntegrityError:
        raise PipelineError(
            f"job {job}: another run with logical date {logical_date.isoformat()} is being "
            "started from this machine; wait for it to end (python -m pipeline runs "
            f"{job})"
        ) from None
    return state, logical_date


def recorded_run(url: str, job: str, logical_date: datetime, state: str) -> runs.RunRow:
    """The run Airflow made for `logical_date`; an error saying so when it made none."""
    run = runs.fetch_run_at(url, job, logical_date)
    if run is None:
        raise PipelineError(
            f"job {job}: Airflow ended the DAG run for logical date {logical_date.isoformat()} "
            f"as {state}, but no run of the job was recorded: its first task never ran. See "
            "the DAG run's task states in the Airflow UI (`make airflow`)"
        )
    return run


def cmd_run(args) -> int:
    """Run one job once through Airflow and print its summary; exit 1 if the run failed, 2 if
    Airflow made no run of it."""
    url = warehouse()
    migrate(url)
    started = time.perf_counter()
    state, logical_date = run_job(args.job, args.as_of, args.force_promote, args.retrain, args.full)
    recorded_run(url, args.job, logical_date, state)
    print_run_summary(url, args.job, logical_date, time.perf_counter() - started)
    return 0 if state == "success" else 1


def cmd_backfill(args) -> int:
    """Run the job's cut-offs from `--from` to `--to`, oldest first, each through Airflow;
    cut-offs already published are skipped unless `--rerun`. One line per cut-off and a
    total; the first failure stops the backfill (exit 1), the runs before it stay."""
    url = warehouse()
    migrate(url)
    spec = find_spec(args.job, config.jobs_dir())
    cutoffs = cutoff_series(
        parse_timestamp(args.start, "--from"), parse_timestamp(args.end, "--to"), args.every
    )
    published = runs.published_as_ofs(url, spec.name)
    started = time.perf_counter()
    counts = {"published": 0, "skipped": 0, "failed": 0}
    print(f"backfill {spec.name}: {len(cutoffs)} cut-off(s), every {args.every}, oldest first")
    for as_of in cutoffs:
        if as_of in published and not args.rerun:
            counts["skipped"] += 1
            print(
                f"{as_of.isoformat()}  skipped    published by run {published[as_of]}"
                " (--rerun to run it again)"
            )
            continue
        began = time.perf_counter()
        state, logical_date = run_job(spec.name, as_of.isoformat(), False, args.retrain)
        run = recorded_run(url, spec.name, logical_date, state)
        seconds = time.perf_counter() - began
        if state != "success" or run.status != "published":
            counts["failed"] += 1
            why = (run.error or state).splitlines()[0]
            print(f"{as_of.isoformat()}  FAILED     run {run.run_id} in {seconds:.1f} s: {why}")
            break
        counts["published"] += 1
        mode = (run.scope or {}).get("mode", "full")
        print(
            f"{as_of.isoformat()}  published  {run.rows_scored or 0:>10,} rows {mode:<11}  "
            f"model v{run.model_version}  {seconds:6.1f} s  run {run.run_id}"
        )
    latest = runs.latest_published(url, spec.name)
    shown = latest.as_of.isoformat() if latest and latest.as_of else "no run"
    print(
        f"backfill {spec.name}: {counts['published']} published, {counts['skipped']} skipped, "
        f"{counts['failed']} failed in {time.perf_counter() - started:.1f} s; "
        f"scoring.{spec.latest_view} shows as_of {shown}"
    )
    return 1 if counts["failed"] else 0


def cmd_suggest(args) -> int:
    """Write starter suites; a target that does not fit the task is refused (exit 1) first."""
    spec = find_spec(args.job, config.jobs_dir())
    try:
        as_of = parse_timestamp(args.as_of) if args.as_of else None
        paths = write_suggestions(migrated_warehouse(), spec, args.overwrite, as_of)
    except DataValidationError as exc:
        print(f"error: {exc}; no suite was written", file=sys.stderr)
        return 1
    for path in paths:
        print(f"wrote {path}: review every bound and severity, then commit it")
    return 0
