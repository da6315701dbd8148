"""The demo: seeded demo tables and one run of customer_churn (or three, with `--drift`)."""

import time

from pipeline.cli.connect import warehouse
from pipeline.cli.jobs import run_job
from pipeline.local.demo_data import seed_table
from pipeline.local.drift_demo import run_drift_demo
from pipeline.reports.summary import print_run_summary
from pipeline.warehouse.migrate import migrate
from pipeline.warehouse.sources import table_exists

DEMO_JOB = "customer_churn"
DEMO_CUSTOMERS = 200_000
DEMO_DELIVERIES = 20_000


def cmd_seed(args) -> int:
    """(Re)create the demo tables with seeded synthetic rows."""
    url = warehouse()
    for table, rows in demo_tables(args.rows).items():
        seed_table(url, table, rows)
    return 0


def demo_tables(customers: int | None) -> dict[str, int]:
    """Demo table -> rows; `--rows` sizes demo.customers."""
    return {"demo.customers": customers or DEMO_CUSTOMERS, "demo.deliveries": DEMO_DELIVERIES}


def prepare_demo(url: str, rows: int | None = None, reseed: bool = False) -> None:
    """The scoring schema, and the demo tables unless they are there."""
    migrate(url)
    for table, count in demo_tables(rows).items():
        if reseed or not table_exists(url, table):
            seed_table(url, table, count)


def cmd_demo(args) -> int:
    """Seed the demo tables if missing and run customer_churn once (three runs: `--drift`)."""
    url = warehouse()
    prepare_demo(url, args.rows, args.reseed)
    if args.drift:
        return run_drift_demo(url, lambda job: run_job(job, None, False, "auto"), print_run_summary)
    started = time.perf_counter()
    state, logical_date = run_job(DEMO_JOB, None, False, "auto")
    print_run_summary(url, DEMO_JOB, logical_date, time.perf_counter() - started)
    return 0 if state == "success" else 1
