"""Command line: `python -m pipeline <command>`; `python -m pipeline --help` lists them.

The commands live in this package's modules by concern: `jobs` (migrate, check, run,
suggest-expectations), `demo` (seed, demo), `inspect` (runs, lineage, reproduce, performance,
audit, approvals), `maintain` (prune, erase, retire) and `local` (airflow, stop-airflow, psql,
stop-db).
The parser names each by "module:function" and imports only the one that runs, so `--help` or
`runs` does not load pandas, scikit-learn and Great Expectations.
"""

import argparse
import logging
import sys
from collections.abc import Callable
from importlib import import_module

from pipeline.errors import PipelineError
from pipeline.redaction import install_redaction, redact

log = logging.getLogger("pipeline")


def command_function(target: str) -> Callable[[argparse.Namespace], int]:
    module, _, name = target.partition(":")
    return getattr(import_module(f"pipeline.cli.{module}"), name)


def parser() -> argparse.ArgumentParser:
    """Every command, with its options and help."""
    p = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Nightly batch scoring. The warehouse is DATABASE_URL (or the Airflow "
        "connection env AIRFLOW_CONN_WAREHOUSE); when neither is set, an embedded Postgres "
        "in .pgdata/ is started and used.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, target: str, help_text: str) -> argparse.ArgumentParser:
        """A subcommand run by `target`, "module:function" of `pipeline.cli`."""
        c = sub.add_parser(name, help=help_text, description=help_text)
        c.set_defaults(target=target)
        return c

    command("migrate", "jobs:cmd_migrate", "create or upgrade the scoring schema")
    c = command("seed", "demo:cmd_seed", "(re)create the demo tables with seeded synthetic rows")
    c.add_argument("--rows", type=int, help="rows in demo.customers (default 200000)")
    c = command(
        "check",
        "jobs:cmd_check",
        "check job specs: keys, table columns and types, GX suites; exit 1 on any problem",
    )
    c.add_argument("jobs", nargs="*", help="the jobs to check (default: all)")
    c = command(
        "run", "jobs:cmd_run", "run one job's DAG once through Airflow; non-zero exit if it failed"
    )
    c.add_argument("job")
    c.add_argument("--as-of", help="cut-off timestamp (ISO-8601); default: now")
    c.add_argument("--force-promote", action="store_true", help="promote the candidate regardless")
    c.add_argument("--retrain", choices=["auto", "always", "never"], default="auto")
    c.add_argument(
        "--full", action="store_true", help="score the whole table (a job in incremental mode)"
    )
    c = command(
        "backfill",
        "jobs:cmd_backfill",
        "run a job for every cut-off from --from to --to, oldest first, through Airflow; "
        "published cut-offs are skipped; stops at the first failure (exit 1)",
    )
    c.add_argument("job")
    c.add_argument("--from", dest="start", required=True, help="the first cut-off (ISO-8601)")
    c.add_argument("--to", dest="end", required=True, help="the last cut-off, inclusive")
    c.add_argument(
        "--every",
        default="1d",
        help="the step between cut-offs: 1d, 1w, 1mo (any count: 7d, 3mo) or a 5-field cron "
        "expression in UTC, e.g. '0 2 * * *' (default 1d)",
    )
    c.add_argument("--rerun", action="store_true", help="run published cut-offs again too")
    c.add_argument("--retrain", choices=["auto", "always", "never"], default="auto")
    c = command("demo", "demo:cmd_demo", "demo data + one customer_churn run (embedded Postgres)")
    c.add_argument("--rows", type=int, help="rows in demo.customers (default 200000)")
    c.add_argument("--reseed", action="store_true", help="recreate the demo tables first")
    c.add_argument(
        "--drift",
        action="store_true",
        help="three runs showing monitoring: late labels, drift on two features and an unseen "
        "category, an alert to a local webhook, a retrain on drift",
    )
    c = command("suggest-expectations", "jobs:cmd_suggest", "write starter GX suites for a job")
    c.add_argument("job")
    c.add_argument("--overwrite", action="store_true")
    c.add_argument(
        "--as-of",
        help="profile the table as of this cut-off (ISO-8601; default now): for suites of a "
        "backfilled history",
    )
    c = command(
        "reproduce", "inspect:cmd_reproduce", "rebuild a run's model from its snapshot and compare"
    )
    c.add_argument("job")
    c.add_argument("--run", default="latest", help="a run id, or latest (default)")
    c = command(
        "lineage", "inspect:cmd_lineage", "which data, model and code made a key's prediction"
    )
    c.add_argument("job")
    c.add_argument("key")
    c = command(
        "performance",
        "inspect:cmd_performance",
        "realised performance: each published run judged on the labels that arrived since",
    )
    c.add_argument("job")
    c = command(
        "audit",
        "inspect:cmd_audit",
        "write a model version's audit dossier: its data, validation, gate decision, runs, "
        "realised performance and model card, from the stored records (HTML and JSON)",
    )
    c.add_argument("job")
    c.add_argument("--version", type=int, help="the model version (default: the champion)")
    c.add_argument("--out", default=".", help="the folder to write into (default: here)")
    c = command(
        "approvals",
        "inspect:cmd_approvals",
        "the model versions waiting for a person's approval (governance.approval), with why",
    )
    c.add_argument("job", nargs="?", help="one job (default: every job)")
    c = command(
        "prune",
        "maintain:cmd_prune",
        "delete prediction history beyond the job's retention, and old snapshots nothing kept "
        "points to",
    )
    c.add_argument("job")
    c.add_argument("--keep-days", type=int, help="default: SCORING_RETENTION_DAYS or 30")
    c = command(
        "erase",
        "maintain:cmd_erase",
        "remove keys from every snapshot, prediction and page of a job (an erasure request), "
        "with the pending requests of scoring.erasure_requests",
    )
    c.add_argument("job")
    c.add_argument(
        "--key", dest="keys", action="append", default=[], help="a key to erase (repeatable)"
    )
    c.add_argument("--reason", help="why (required with --key): kept with every change made")
    c = command(
        "retire",
        "maintain:cmd_retire",
        "retire the champion (e.g. its file is missing or tampered) and fall back to the "
        "previous good version",
    )
    c.add_argument("job")
    c.add_argument(
        "--reason",
        default="by python -m pipeline retire, no reason given",
        help="why; appended to the champion's decision_reason",
    )
    c = command("runs", "inspect:cmd_runs", "list a job's latest runs; mark dead ones abandoned")
    c.add_argument("job")
    c.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    c = command("airflow", "local:cmd_airflow", "start Airflow's UI, scheduler and workers here")
    c.add_argument("--workers", type=int, default=0, help="Celery workers (0: LocalExecutor)")
    c.add_argument("--port", type=int, default=8080, help="the UI's port (default 8080)")
    command("stop-airflow", "local:cmd_stop_airflow", "stop what `airflow` started")
    command("psql", "local:cmd_psql", "open psql on the warehouse")
    command("stop-db", "local:cmd_stop_db", "stop the embedded Postgres")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_redaction()
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)  # libraries stay at WARNING
    try:
        return command_function(args.target)(args)
    except PipelineError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
