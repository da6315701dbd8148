"""The end-of-run summary: printed by `python -m pipeline run|demo`, and logged by the run's
last task (`monitor`), so the Airflow UI shows the same at the end of that task's log."""

import logging
from datetime import UTC, datetime
from pathlib import Path

from pipeline.config import airflow_ui_url, data_root, jobs_dir
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
    for snap in snapshot_rows(url, job, run):
        out.append(
            f"snapshot {snap['kind']:<9} {snap['row_count']:>10,} rows"
            f"  sha256 {snap['sha256'][:16]}  {snap['uri']}"
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
    if run.get("report_uri"):
        out.append(f"report: {page_link(run['report_uri'])}")
    if run["status"] == "published":
        out.append(f"rows scored {run['rows_scored']:,}")
        timings = run["timings"] or {}
        out.append("seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
        out += analyst_sql(spec)
    out.append("=" * 72)
    return out


def snapshot_rows(url: str, job: str, run: dict) -> list[dict]:
    """The run's own snapshots, by the ids its stages recorded; by sha256 for runs recorded
    before snapshot ids (migration 005)."""
    ids = [run.get(f"{kind}_snapshot_id") for kind in ("training", "scoring")]
    if any(i is not None for i in ids):
        return fetch_all(
            url,
            "SELECT kind, row_count, sha256, uri FROM scoring.snapshots"
            " WHERE job = %s AND id = ANY(%s) ORDER BY kind",
            (job, [i for i in ids if i is not None]),
        )
    hashes = (run["training_snapshot_sha256"], run["scoring_snapshot_sha256"])
    if not any(hashes):
        return []
    log.info("run %s was recorded before snapshot ids: its snapshots by sha256", run["run_id"])
    return fetch_all(
        url,
        "SELECT DISTINCT ON (kind) kind, row_count, sha256, uri FROM scoring.snapshots"
        " WHERE job = %s AND sha256 IN (%s, %s)"
        " ORDER BY kind, (as_of = %s) IS TRUE DESC, created_at",
        (job, *hashes, run["as_of"]),
    )


def page_link(uri: str) -> str:
    """A run's page as the Airflow UI serves it (pipeline.orchestration.plugin), else its path."""
    base = airflow_ui_url()
    path = Path(uri).resolve()
    root = Path(data_root()).resolve()
    if not base or "://" in uri or not path.is_relative_to(root):
        return uri
    return f"{base}/scoring-files/{path.relative_to(root)}"


def model_lines(url: str, spec: JobSpec, run: dict) -> list[str]:
    """This run's model decision: the candidate against the champion re-scored on the same
    holdout, or why no candidate was fitted; then the version that scored."""
    out = []
    candidate = fetch_one(
        url,
        "SELECT version, status, primary_metric, metrics, champion_version, champion_metrics,"
        " decision_reason, forced FROM scoring.model_versions WHERE job = %s AND run_id = %s",
        (spec.name, run["run_id"]),
    )
    retrain = run.get("retrain")
    if retrain and retrain["due"]:
        out.append(f"retrain: {retrain['reason']}")
    if candidate:
        out.append("model: " + decision_line(candidate))
        out.append(f"   {candidate['decision_reason']}")
    elif retrain and not retrain["due"]:
        out.append(f"model: no candidate this run ({retrain['reason']})")
    if run["model_version"]:
        serving = fetch_one(
            url,
            "SELECT primary_metric, metrics, run_id FROM scoring.model_versions"
            " WHERE job = %s AND version = %s",
            (spec.name, run["model_version"]),
        )
        metric = serving["primary_metric"]
        out.append(
            f"scored with model v{run['model_version']} (holdout {metric} "
            f"{serving['metrics'][metric]:.4f}, trained by run {serving['run_id']})"
        )
    return out


def decision_line(version: dict) -> str:
    """`champion v1 roc_auc 0.9449 on this holdout vs candidate v2 0.9449: kept v1`."""
    metric, new = version["primary_metric"], version["metrics"][version["primary_metric"]]
    number = version["version"]
    promoted = version["status"] == "champion" or version["forced"]
    forced = " (forced)" if version["forced"] else ""
    if version["champion_version"] is None:
        return f"candidate v{number} holdout {metric} {new:.4f}: first model, champion{forced}"
    old = version["champion_version"]
    verdict = f"promoted v{number}{forced}" if promoted else f"kept v{old}"
    if not version["champion_metrics"]:
        return f"champion v{old} could not be scored; candidate v{number} {new:.4f}: {verdict}"
    before = version["champion_metrics"][metric]
    return (
        f"champion v{old} {metric} {before:.4f} on this holdout vs candidate v{number} "
        f"{new:.4f}: {verdict}"
    )


def drift_lines(url: str, spec: JobSpec, run: dict) -> list[str]:
    """Drift alerts and features to watch, realised-performance alerts, what the policy did."""
    rows = fetch_all(
        url,
        "SELECT feature, statistic, value, threshold, watch, level FROM scoring.drift_reports"
        " WHERE job = %s AND run_id = %s AND level IN ('alert', 'watch')"
        " ORDER BY level, feature, statistic",
        (spec.name, run["run_id"]),
    )
    out = []
    for level in ("alert", "watch"):
        found = [r for r in rows if r["level"] == level]
        if found:
            items = ", ".join(
                f"{r['feature']} {r['statistic']} {r['value']:.3f}"
                f" > {r['threshold'] if level == 'alert' else r['watch']}"
                for r in found
            )
            out.append(f"{'DRIFT ALERTS' if level == 'alert' else 'drift to watch'}: {items}")
    monitoring = run.get("monitoring") or {}
    if monitoring:
        out += performance_lines(url, spec)
    for alert in monitoring.get("performance_alerts", []):
        out.append(f"PERFORMANCE ALERT: {alert}")
    if not out and monitoring:
        out.append("drift: nothing above its thresholds; no performance alert")
    alerted = monitoring.get("drift_alerts") or monitoring.get("performance_alerts")
    if alerted and spec.retrain.policy == "on_drift":
        out.append("the next run retrains (retrain.policy on_drift)")
    return out


def performance_lines(url: str, spec: JobSpec, runs: int = 3) -> list[str]:
    """The primary metric of the newest runs judged on late labels, beside their holdout."""
    rows = fetch_all(
        url,
        "SELECT p.run_id, p.model_version, p.value, p.holdout, p.labelled, p.trusted"
        " FROM scoring.model_performance AS p JOIN scoring.scoring_runs AS r"
        " ON r.job = p.job AND r.run_id = p.run_id WHERE p.job = %s AND p.metric = %s"
        " ORDER BY r.as_of DESC LIMIT %s",
        (spec.name, spec.primary_metric, runs),
    )
    return [
        f"realised {spec.primary_metric} of run {r['run_id']} (v{r['model_version']}): "
        + ("-" if r["value"] is None else f"{r['value']:.4f}")
        + f" over {r['labelled']:,} late labels, holdout "
        + ("-" if r["holdout"] is None else f"{r['holdout']:.4f}")
        + ("" if r["trusted"] else " (too few labels to judge)")
        for r in rows
    ]


def analyst_sql(spec: JobSpec) -> list[str]:
    """Queries for a person to copy; shown, never executed."""
    columns = "probabilities, " if spec.task == "classification" else ""
    return [
        '\nWhat an analyst runs (psql "$DATABASE_URL", or make psql):',
        f"  SELECT key, score, label, {columns}model_version"  # noqa: S608
        f" FROM scoring.{spec.latest_view}",
        "  ORDER BY score DESC LIMIT 20;",
        f"  -- joined to the source: SELECT c.*, l.score FROM {spec.source.table} c"  # noqa: S608
        f" JOIN scoring.{spec.latest_view} l ON l.key = c.{spec.source.key};",
    ]
