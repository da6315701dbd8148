"""The end-of-run summary printed by `python -m pipeline run|demo`."""

from datetime import datetime

from pipeline.config import jobs_dir
from pipeline.spec import JobSpec, find_spec
from pipeline.store.db import fetch_all, fetch_one


def fetch_run(url: str, job: str, logical_date: datetime) -> dict | None:
    return fetch_one(
        url,
        "SELECT * FROM scoring.scoring_runs WHERE job = %s AND logical_date = %s"
        " ORDER BY started_at DESC LIMIT 1",
        (job, logical_date),
    )


def print_run_summary(url: str, job: str, logical_date: datetime, seconds: float) -> None:
    spec = find_spec(job, jobs_dir())
    run = fetch_run(url, job, logical_date)
    print()
    print("=" * 72)
    if run is None:
        print(f"{job}: no run was recorded for logical date {logical_date.isoformat()}")
        return
    print(f"job {job}  run {run['run_id']}  status {run['status'].upper()}  ({seconds:.1f} s)")
    print(f"as_of {run['as_of'].isoformat()}  code {run['code_version'] or '-'}")
    if run["error"]:
        print(f"\nWHY IT STOPPED:\n{run['error']}\n")
        print(f"Analysts still see the last published run in scoring.{spec.latest_view}.")
    snapshots = fetch_all(
        url,
        "SELECT DISTINCT kind, row_count, sha256 FROM scoring.snapshots"
        " WHERE job = %s AND sha256 IN (%s, %s) ORDER BY kind",
        (job, run["training_snapshot_sha256"], run["scoring_snapshot_sha256"]),
    )
    for snap in snapshots:
        print(
            f"snapshot {snap['kind']:<9} {snap['row_count']:>10,} rows"
            f"  sha256 {snap['sha256'][:16]}"
        )
    for check in fetch_all(
        url,
        "SELECT suite, success, critical_failed, warnings_failed, failures FROM"
        " scoring.validation_results WHERE job = %s AND run_id = %s ORDER BY suite",
        (job, run["run_id"]),
    ):
        verdict = "passed" if check["success"] else "FAILED"
        print(
            f"validation {check['suite']}: {verdict} "
            f"({check['critical_failed']} critical, {check['warnings_failed']} warning(s) failed)"
        )
        for failure in check["failures"]:
            print(f"   {failure['severity'].upper()}: {failure['message']}")
    print_model(url, spec, run)
    print_drift(url, spec, run)
    if run["status"] == "published":
        print(f"rows scored {run['rows_scored']:,}")
        timings = run["timings"] or {}
        print("seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
        print_analyst_sql(spec)
    print("=" * 72)


def print_model(url: str, spec: JobSpec, run: dict) -> None:
    versions = fetch_all(
        url,
        "SELECT version, status, primary_metric, metrics, champion_metrics, decision_reason"
        " FROM scoring.model_versions WHERE job = %s AND (run_id = %s OR version = %s)"
        " ORDER BY version",
        (spec.name, run["run_id"], run["model_version"] or -1),
    )
    for version in versions:
        metric = version["primary_metric"]
        print(
            f"model v{version['version']} ({version['status']}): holdout {metric} "
            f"{version['metrics'][metric]:.4f}; {version['decision_reason']}"
        )
    if run["model_version"]:
        print(f"scored with model v{run['model_version']}")


def print_drift(url: str, spec: JobSpec, run: dict) -> None:
    rows = fetch_all(
        url,
        "SELECT feature, value, threshold FROM scoring.drift_reports"
        " WHERE job = %s AND run_id = %s AND alert ORDER BY value DESC",
        (spec.name, run["run_id"]),
    )
    if rows:
        alerts = ", ".join(f"{r['feature']} (PSI {r['value']:.2f})" for r in rows)
        print(f"DRIFT ALERTS (PSI > {rows[0]['threshold']}): {alerts}")
    elif run["status"] == "published":
        print("drift: no feature above its PSI threshold")


def print_analyst_sql(spec: JobSpec) -> None:
    """Queries for a person to copy; printed, never executed."""
    print('\nWhat an analyst runs (psql "$DATABASE_URL", or make psql):')
    print(f"  SELECT key, score, label, model_version FROM scoring.{spec.latest_view}")  # noqa: S608
    print("  ORDER BY score DESC LIMIT 20;")
    print(
        f"  -- joined to the source: SELECT c.*, l.score FROM {spec.source.table} c"  # noqa: S608
        f" JOIN scoring.{spec.latest_view} l ON l.key = c.{spec.source.key};"
    )
