"""`python -m pipeline demo --drift`: monitoring shown end to end on the demo table.

Three runs of customer_churn through Airflow, with `retrain.policy: on_drift` and a webhook
alert target that this command serves itself on 127.0.0.1:
1. a run as usual;
2. labels arrive for the customers run 1 scored without one, then two features shift
   (`monthly_charges`, `last_login_days`) and an unseen `payment_method` appears; the run
   raises drift alerts, judges run 1 on its late labels, and the alert reaches the webhook;
3. the next run retrains because run 2 raised alerts.
The job spec used is customer_churn's with those two settings, written under the data root.
"""

import json
import os
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from pipeline.config import data_root, jobs_dir
from pipeline.datafiles.layout import index_path
from pipeline.datafiles.root import DataRoot
from pipeline.local.demo_data import seed_table
from pipeline.warehouse.sources import run_sql_file

JOB = "customer_churn"
CONNECTION = "demo_webhook"
SHIFTED = ("monthly_charges", "last_login_days")
UNSEEN = "crypto"


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1 that keeps what it was sent."""

    def __init__(self):
        self.received: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler):  # noqa: N805 (the server is `self` here)
                body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
                self.received.append(json.loads(body or b"{}"))
                handler.send_response(204)
                handler.end_headers()

            def log_message(handler, *args):  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, name="webhook", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/alerts"


def drift_spec(folder: Path) -> Path:
    """customer_churn's spec with `retrain.policy: on_drift` and the demo webhook."""
    raw = yaml.safe_load((jobs_dir() / f"{JOB}.yaml").read_text())
    raw["retrain"] = {"policy": "on_drift"}
    raw["alerts"] = {"webhook": {"connection": CONNECTION}}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{JOB}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def demo_folder() -> Path:
    """Where the demo's job spec is written: beside the data under a local data root, else in
    a temporary folder (a spec is a local file, whatever the data root)."""
    root = data_root()
    if "://" in root:
        return Path(tempfile.mkdtemp(prefix="drift-demo-"))
    return Path(root) / "drift-demo"


def run_drift_demo(url: str, run_job, print_summary) -> int:
    """The three runs; prints their summaries, what the webhook got and where the reports are.
    `run_job(job) -> (state, logical_date)` and `print_summary(url, job, logical_date, seconds)`
    are the CLI's."""
    receiver = Receiver()
    os.environ[f"AIRFLOW_CONN_{CONNECTION.upper()}"] = receiver.url
    os.environ["SCORING_JOBS_DIR"] = str(drift_spec(demo_folder() / "jobs").parent)
    seed_table(url, "demo.customers", 20_000)
    states = []
    for step in (1, 2, 3):
        if step == 2:
            print("\nlabels arrive for the customers run 1 scored without one;")
            print(f"{', '.join(SHIFTED)} shift and payment_method gains '{UNSEEN}'")
            run_sql_file(url, "demo/late_labels.sql")
            run_sql_file(url, "demo/drift.sql", {"unseen": UNSEEN})
        started = time.perf_counter()
        state, logical_date = run_job(JOB)
        print_summary(url, JOB, logical_date, time.perf_counter() - started)
        states.append(state)
    print(f"\nthe webhook at {receiver.url} received {len(receiver.received)} alert(s):")
    for alert in receiver.received:
        print(f"  [{alert['what']}] {alert['title']}")
        for line in alert["details"]:
            print(f"      {line}")
    receiver.shutdown()
    root = DataRoot()
    print(f"\nevery run's HTML report is listed in {root.uri(index_path(root, JOB))}")
    return 0 if states == ["success"] * 3 and receiver.received else 1
