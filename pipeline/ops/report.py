"""The end-of-run summary: printed by `python -m pipeline run|demo`, and logged by the run's
last task (`monitor`), so the Airflow UI shows the same at the end of that task's log."""

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from pipeline.config import data_root, jobs_dir
from pipeline.spec import JobSpec, find_spec
from pipeline.store.db import fetch_all, fetch_one

log = logging.getLogger(__name__)


def fetch_run(url: str, job: str, logical_date: datetime) -> dict | None:
    return fetch_one(
        url,
        "SELECT * FROM scoring.scoring_runs WHERE job = %s AND logical_date = %s"
        " ORDER BY started_at DESC LIMIT 1",
        (job, logical_date),
    )


def print_run_summary(url: str, job: str, logical_date: datetime, seconds: float) -> None:
    """The summary of the job's run at `logical_date`, printed (the CLI's `run` and `demo`)."""
    spec = find_spec(job, jobs_dir())
    run = fetch_run(url, job, logical_date)
    if run is None:
        print(f"{job}: no run was recorded for logical date {logical_date.isoformat()}")
        return
    print("\n" + "\n".join(run_summary(url, spec, run, seconds)))


def log_run_summary(url: str, spec: JobSpec, run_id: str) -> None:
    """The same summary, in the log of the run's last task (what the UI shows)."""
    run = fetch_one(
        url,
        "SELECT * FROM scoring.scoring_runs WHERE job = %s AND run_id = %s",
        (spec.name, run_id),
    )
    seconds = (datetime.now(UTC) - run["started_at"]).total_seconds()
    for line in run_summary(url, spec, run, seconds):
        log.info("%s", line)


def run_summary(url: str, spec: JobSpec, run: dict, seconds: float) -> list[str]:
    """A run in a few lines: status, why it stopped, data, checks, model, drift, timings, SQL."""
    job = spec.name
    out = ["=" * 72]
    out.append(f"job {job}  run {run['run_id']}  status {run['status'].upper()}  ({seconds:.1f} s)")
    out.append(f"as_of {run['as_of'].isoformat()}  code {run['code_version'] or '-'}")
    if run["error"]:
        out.append(f"\nWHY IT STOPPED:\n{run['error']}\n")
        published = fetch_one(
            url,
            "SELECT run_id FROM scoring.scoring_runs WHERE job = %s AND status = 'published'"
            " AND as_of <= now() ORDER BY as_of DESC, published_at DESC LIMIT 1",
            (job,),
        )
        out.append(
            f"Analysts still see run {published['run_id']} in scoring.{spec.latest_view}."
            if published
            else f"Nothing was published for {job} yet: scoring.{spec.latest_view} shows no run."
        )
    snapshots = fetch_all(
        url,
        "SELECT DISTINCT kind, row_count, sha256 FROM scoring.snapshots"
        " WHERE job = %s AND sha256 IN (%s, %s) ORDER BY kind",
        (job, run["training_snapshot_sha256"], run["scoring_snapshot_sha256"]),
    )
    for snap in snapshots:
        out.append(
            f"snapshot {snap['kind']:<9} {snap['row_count']:>10,} rows"
            f"  sha256 {snap['sha256'][:16]}"
        )
    for check in fetch_all(
        url,
        "SELECT suite, success, critical_failed, warnings_failed, failures, docs_uri FROM"
        " scoring.validation_results WHERE job = %s AND run_id = %s ORDER BY suite",
        (job, run["run_id"]),
    ):
        verdict = "passed" if check["success"] else "FAILED"
        out.append(
            f"validation {check['suite']}: {verdict} "
            f"({check['critical_failed']} critical, {check['warnings_failed']} warning(s) failed)"
        )
        for failure in check["failures"]:
            out.append(f"   {failure['severity'].upper()}: {failure['message']}")
        out.append(f"   Data Docs: {page_link(check['docs_uri'])}")
    out += model_lines(url, spec, run)
    out += drift_lines(url, spec, run)
    if run["status"] == "published":
        out.append(f"rows scored {run['rows_scored']:,}")
        timings = run["timings"] or {}
        out.append("seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
        out += analyst_sql(spec)
    out.append("=" * 72)
    return out


def page_link(uri: str) -> str:
    """A run's page as the Airflow UI serves it (pipeline.orchestration.plugin), else its path."""
    base = os.environ.get("AIRFLOW__API__BASE_URL")
    path = Path(uri).resolve()
    root = Path(data_root()).resolve()
    if not base or "://" in uri or not path.is_relative_to(root):
        return uri
    return f"{base.rstrip('/')}/scoring-files/{path.relative_to(root)}"


def model_lines(url: str, spec: JobSpec, run: dict) -> list[str]:
    out = []
    versions = fetch_all(
        url,
        "SELECT version, status, primary_metric, metrics, champion_metrics, decision_reason"
        " FROM scoring.model_versions WHERE job = %s AND (run_id = %s OR version = %s)"
        " ORDER BY version",
        (spec.name, run["run_id"], run["model_version"] or -1),
    )
    for version in versions:
        metric = version["primary_metric"]
        out.append(
            f"model v{version['version']} ({version['status']}): holdout {metric} "
            f"{version['metrics'][metric]:.4f}; {version['decision_reason']}"
        )
    if run["model_version"]:
        out.append(f"scored with model v{run['model_version']}")
    return out


def drift_lines(url: str, spec: JobSpec, run: dict) -> list[str]:
    rows = fetch_all(
        url,
        "SELECT feature, value, threshold FROM scoring.drift_reports"
        " WHERE job = %s AND run_id = %s AND alert ORDER BY value DESC",
        (spec.name, run["run_id"]),
    )
    if rows:
        alerts = ", ".join(f"{r['feature']} (PSI {r['value']:.2f})" for r in rows)
        return [f"DRIFT ALERTS (PSI > {rows[0]['threshold']}): {alerts}"]
    if run["status"] == "published":
        return ["drift: no feature above its PSI threshold"]
    return []


def analyst_sql(spec: JobSpec) -> list[str]:
    """Queries for a person to copy; shown, never executed."""
    return [
        '\nWhat an analyst runs (psql "$DATABASE_URL", or make psql):',
        f"  SELECT key, score, label, model_version FROM scoring.{spec.latest_view}",  # noqa: S608
        "  ORDER BY score DESC LIMIT 20;",
        f"  -- joined to the source: SELECT c.*, l.score FROM {spec.source.table} c"  # noqa: S608
        f" JOIN scoring.{spec.latest_view} l ON l.key = c.{spec.source.key};",
    ]
