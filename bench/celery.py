"""`python -m bench.celery`: one scoring run's wall time on 1 and 2 Celery workers, same data.

For each worker count it starts the `make airflow WORKERS=N` stack in a private home, on the
same `bench.customers_<rows>` table and the same champion (trained once, before the first
timed run), triggers a run with `retrain=never` through the REST API and reports the run's
wall time (Airflow's start to end) and the span of its `score` tasks.
"""

import argparse
import json
import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path

from bench.harness import configure_logging, ensure_table, write_bench_job
from pipeline.config import warehouse_url
from pipeline.local import airflow_stack
from pipeline.local.embedded import start_for_cli
from pipeline.warehouse.migrate import migrate

log = logging.getLogger("bench.celery")


def seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def timed_run(folder: Path, url: str, workers: int, conf: dict) -> dict:
    """One run on a fresh stack of `workers` Celery workers: wall time and the score span."""
    os.environ["AIRFLOW_HOME"] = str(folder / f"airflow-{workers}w")
    try:
        api = airflow_stack.Client(
            airflow_stack.start(url, workers=workers, port=airflow_stack.free_port())
        )
        run = api.run_to_end("bench_churn", conf)
        path = f"/api/v2/dags/bench_churn/dagRuns/{run['dag_run_id']}/taskInstances"
        tasks = api.call("GET", path)["task_instances"]
    finally:
        airflow_stack.stop()
    if run["state"] != "success":
        raise SystemExit(f"run on {workers} worker(s) ended {run['state']}: {tasks}")
    scored = [t for t in tasks if t["task_id"] == "score"]
    return {
        "workers": workers,
        "run_s": round(seconds(run["start_date"], run["end_date"]), 1),
        "score_span_s": round(
            seconds(min(t["start_date"] for t in scored), max(t["end_date"] for t in scored)), 1
        ),
        "partitions": len(scored),
        "hosts": sorted({t["hostname"] for t in scored}),
    }


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.celery", description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    configure_logging()
    url = warehouse_url(fallback=start_for_cli)
    migrate(url)
    ensure_table(url, args.rows)
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as tmp:
        folder = Path(tmp)
        spec = write_bench_job(folder, args.rows)
        os.environ["SCORING_JOBS_DIR"] = str(folder / "jobs")
        os.environ["SCORING_EXPECTATIONS_DIR"] = str(folder / "expectations")
        (folder / "jobs").mkdir()
        spec.rename(folder / "jobs" / "bench_churn.yaml")
        timed_run(folder, url, 2, {"retrain": "always"})  # the champion every timed run uses
        results = [
            timed_run(folder, url, int(n), {"retrain": "never"}) for n in args.workers.split(",")
        ]
    report = {"rows": args.rows, "runs": results}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
