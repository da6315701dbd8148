"""The end-of-run summary: printed by `python -m pipeline run|demo`, and logged by the run's
last task (`publish`), so the Airflow UI shows the same at the end of that task's log, its lines
fitted to the width of the Graph view's side panel."""

import logging
from datetime import UTC, datetime

from pipeline.config import airflow_ui_url, jobs_dir
from pipeline.datafiles.root import DataRoot
from pipeline.spec import JobSpec, find_spec
from pipeline.warehouse import models, monitoring, runs, snapshots, validations
from pipeline.warehouse.alerts import alerts_of_run
from pipeline.warehouse.models import ModelVersion
from pipeline.warehouse.monitoring import PerformanceRow
from pipeline.warehouse.runs import RunRow
from pipeline.warehouse.snapshots import SnapshotRow

log = logging.getLogger(__name__)

WIDTH = 100  # characters of a logged line: what the Graph view's side panel shows


def print_run_summary(url: str, job: str, logical_date: datetime, seconds: float) -> None:
    """The summary of the job's run at `logical_date`, printed (the CLI's `run` and `demo`)."""
    spec = find_spec(job, jobs_dir())
    run = runs.fetch_run_at(url, job, logical_date)
    if run is None:
        print(f"{job}: no run was recorded for logical date {logical_date.isoformat()}")
        return
    print("\n" + "\n".join(run_summary(url, spec, run, seconds)))


def log_run_summary(url: str, spec: JobSpec, run_id: str) -> None:
    """The same summary, in the log of the run's last task (what the UI shows), its lines
    `fitted` to the Graph view's side panel."""
    run = runs.fetch_run(url, spec.name, run_id)
    if run is None or run.started_at is None:
        return
    seconds = (datetime.now(UTC) - run.started_at).total_seconds()
    for entry in run_summary(url, spec, run, seconds):
        for line in filter(None, entry.split("\n")):  # a blank log line shows as a bare prefix
            for part in fitted(line):
                log.info("%s", part)


def fitted(line: str, width: int = WIDTH) -> list[str]:
    """One line as lines of at most `width` characters: broken after a clause (`, `, `; `,
    `: `) in the last part of the line when there is one, else between words; continued lines
    indented three spaces more. A line holding a path or a link stays whole: cut in two, it
    opens nothing."""
    if len(line) <= width or any("/" in word and len(word) > 40 for word in line.split()):
        return [line]
    indent = line[: len(line) - len(line.lstrip())]
    out, prefix, rest = [], indent, line.lstrip()
    while len(prefix) + len(rest) > width:
        room = width - len(prefix)
        cut = rest.rfind(" ", 0, room + 1)
        if cut <= 0:  # a word longer than the room: break after it
            cut = rest.find(" ", room)
            if cut < 0:
                break
        clause = max(rest.rfind(sep, 0, cut + 1) for sep in (", ", "; ", ": "))
        if clause > room * 0.6:
            cut = clause + 1
        out.append(prefix + rest[:cut].rstrip())
        prefix, rest = indent + "   ", rest[cut:].lstrip()
    return [*out, prefix + rest]


def run_summary(url: str, spec: JobSpec, run: RunRow, seconds: float) -> list[str]:
    """A run in a few lines: status, why it stopped, data, checks, model, drift, timings, SQL."""
    job = spec.name
    out = ["=" * 72]
    out.append(f"job {job}  run {run.run_id}  status {run.status.upper()}  ({seconds:.1f} s)")
    as_of = run.as_of.isoformat() if run.as_of else "-"
    out.append(f"as_of {as_of}  code {run.code_version or '-'}")
    snaps = run_snapshots(url, run)
    if (run.spec or {}).get("scoring", {}).get("mode") == "incremental":
        out += scope_lines(run, snaps)
    if any(in_data_root(snap.uri) != snap.uri for snap in snaps):
        out.append(f"data root {DataRoot().uri_prefix}")
    if run.error:
        out.append(f"\nWHY IT STOPPED:\n{run.error}\n")
        published = runs.latest_published(url, job)
        out.append(
            f"Analysts still see run {published.run_id} in scoring.{spec.latest_view}."
            if published
            else f"Nothing was published for {job} yet: scoring.{spec.latest_view} shows no run."
        )
    for snap in snaps:
        out.append(f"snapshot {snap.kind:<9} {snap.row_count:>10,} rows  sha256 {snap.sha256[:16]}")
        out.append(f"   {in_data_root(snap.uri)}")
    for check in validations.validations_of_run(url, job, run.run_id):
        verdict = "passed" if check.success else "FAILED"
        out.append(
            f"validation {check.suite}: {verdict} "
            f"({check.critical_failed} critical, {check.warnings_failed} warning(s) failed)"
        )
        for failure in check.failures:
            out.append(f"   {failure['severity'].upper()}: {failure['message']}")
        out.append(f"   Data Docs: {page_link(check.docs_uri or '-')}")
    out += model_lines(url, spec, run)
    out += drift_lines(url, spec, run)
    if run.report_uri:
        out.append(f"report: {page_link(run.report_uri)}")
    if run.status == "published":
        out.append(f"rows scored {run.rows_scored or 0:,}")
        out.append("seconds per stage: " + timings_text(run.timings or {}))
        out += analyst_sql(spec)
    out.append("=" * 72)
    return out


def scope_lines(run: RunRow, snaps: list[SnapshotRow]) -> list[str]:
    """What the run scored, the whole table or only what changed (its scoring snapshot's
    `change`), and why."""
    scope = run.scope or {}
    if not scope:
        return []
    lines = [f"scope {scope['mode']}: {scope['reason']}"]
    for snap in snaps:
        change = snap.kind == "scoring" and (snap.manifest or {}).get("change")
        if change:
            lines.append(
                f"   {snap.row_count:,} rows new or changed, {change['left']:,} keys left; "
                f"{change['table_rows']:,} rows in the table"
            )
    return lines


def timings_text(timings: dict) -> str:
    """Every stage's seconds, slowest first: `score 3.1, publish 2.0, ...`."""
    ordered = sorted(timings.items(), key=lambda item: -float(item[1]))
    return ", ".join(f"{stage} {float(seconds):.1f}" for stage, seconds in ordered)


def run_snapshots(url: str, run: RunRow) -> list[SnapshotRow]:
    """The run's own snapshots (by id; by sha256 for runs from before snapshot ids)."""
    return snapshots.snapshots_of_run(
        url,
        run.job,
        [run.training_snapshot_id, run.scoring_snapshot_id],
        (run.training_snapshot_sha256, run.scoring_snapshot_sha256),
        run.as_of,
    )


def in_data_root(uri: str) -> str:
    """A file's uri relative to the data root (shown once, at the top), else as it is."""
    relative = DataRoot().relative(uri)
    return uri if relative is None else relative


def page_link(uri: str) -> str:
    """A run's page as the Airflow UI serves it (pipeline.orchestration.plugin), else its uri."""
    base = airflow_ui_url()
    relative = DataRoot().relative(uri)
    if not base or relative is None:
        return uri
    return f"{base}/scoring-files/{relative}"


def model_lines(url: str, spec: JobSpec, run: RunRow) -> list[str]:
    """This run's model decision: the candidate against the champion re-scored on the same
    holdout, or why no candidate was fitted; then the version that scored."""
    out = []
    candidate = models.model_of_run(url, spec.name, run.run_id)
    retrain = run.retrain
    if retrain and retrain["due"]:
        out.append(f"retrain: {retrain['reason']}")
    if candidate:
        out.append("model: " + decision_line(candidate))
        out.append(f"   {candidate.decision_reason}")
    elif retrain and not retrain["due"]:
        out.append(f"model: no candidate this run ({retrain['reason']})")
    if run.model_version:
        serving = models.fetch_version(url, spec.name, version=run.model_version)
        if serving is not None:
            out.append(
                f"scored with model v{run.model_version} (holdout {serving.primary_metric} "
                f"{serving.primary_value:.4f}, trained by run {serving.run_id})"
            )
    return out


def decision_line(version: ModelVersion) -> str:
    """`champion v1 roc_auc 0.9449 on this holdout vs candidate v2 0.9449: kept v1`."""
    metric, new = version.primary_metric, version.primary_value
    number = version.version
    promoted = version.status == "champion" or version.forced
    forced = " (forced)" if version.forced else ""
    if version.champion_version is None:
        outcome = "awaits approval" if version.status == "awaiting_approval" else "champion"
        return f"candidate v{number} holdout {metric} {new:.4f}: first model, {outcome}{forced}"
    old = version.champion_version
    verdict = f"promoted v{number}{forced}" if promoted else f"kept v{old}"
    if version.status == "awaiting_approval":
        verdict = f"kept v{old}, v{number} awaits approval"
    if not version.champion_metrics:
        return f"champion v{old} could not be scored; candidate v{number} {new:.4f}: {verdict}"
    before = version.champion_metrics[metric]
    return (
        f"champion v{old} {metric} {before:.4f} on this holdout vs candidate v{number} "
        f"{new:.4f}: {verdict}"
    )


def drift_lines(url: str, spec: JobSpec, run: RunRow) -> list[str]:
    """The run's alerts (the rows every surface reads), features to watch, the realised
    performance of the newest runs, and what the retrain policy does next."""
    raised = alerts_of_run(url, spec.name, run.run_id)
    out = [f"ALERTS ({len(raised)}):"] if raised else []
    out += [f"  [{a.kind}] {a.message}" for a in raised]
    watch = [
        r for r in monitoring.drift_of_run(url, spec.name, run.run_id, ("watch",)) if r.decides
    ]
    if watch:
        items = ", ".join(f"{r.feature} {r.statistic} {r.value:.3f} >= {r.watch}" for r in watch)
        out.append(f"drift to watch: {items}")
    measured = run.monitoring is not None
    if measured:
        out += performance_lines(url, spec)
    if measured and not raised:
        out.append("drift: nothing above its thresholds; no performance alert")
    drifting = any(a.kind in ("drift", "performance") for a in raised)
    if drifting and spec.retrain.policy == "on_drift":
        out.append("the next run retrains (retrain.policy on_drift)")
    return out


def performance_lines(url: str, spec: JobSpec, shown: int = 3) -> list[str]:
    """The primary metric of the newest runs judged on late labels, beside their holdout."""
    rows = monitoring.performance_of_job(url, spec.name, spec.primary_metric)[-shown:][::-1]
    return [f"realised {spec.primary_metric} of {performance_text(r)}" for r in rows]


def performance_text(row: PerformanceRow) -> str:
    """`run X (v1): 0.7469, holdout 0.7713, worse by 0.0244 (tolerance 0.05); labelled 2,035
    of 4,000 eligible`, and whether it is trusted."""
    value = "-" if row.value is None else f"{row.value:.4f}"
    holdout = "-" if row.holdout is None else f"{row.holdout:.4f}"
    text = f"run {row.run_id} (v{row.model_version}): {value}, holdout {holdout}"
    if row.worse_by is not None:
        text += f", worse by {row.worse_by:.4f} (tolerance {row.tolerance})"
    eligible = "-" if row.eligible is None else f"{row.eligible:,}"
    text += f"; labelled {row.labelled:,} of {eligible} eligible"
    return text + ("" if row.trusted else " (too few labels to judge)")


def analyst_sql(spec: JobSpec) -> list[str]:
    """Queries for a person to copy; shown, never executed."""
    columns = "probabilities, " if spec.task == "classification" else ""
    return [
        '\nWhat an analyst runs (psql "$DATABASE_URL", or make psql):',
        f"  SELECT key, score, label, {columns}model_version"  # noqa: S608
        f" FROM scoring.{spec.latest_view}",
        "  ORDER BY score DESC LIMIT 20;",
        "  -- joined to the source:",
        f"  SELECT c.*, l.score FROM {spec.source.table} c",  # noqa: S608
        f"  JOIN scoring.{spec.latest_view} l ON l.key = c.{spec.source.key};",
    ]
