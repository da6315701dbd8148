"""Commands that look back at runs and models: runs, lineage, reproduce, performance, audit,
approvals."""

from pathlib import Path

from pipeline import config
from pipeline.cli.connect import migrated_warehouse
from pipeline.contracts import dumps
from pipeline.maintenance.lineage import format_lineage, key_lineage
from pipeline.maintenance.reproduce import reproduce_run
from pipeline.monitoring.performance import measure_performance
from pipeline.reports.dossier import gather_dossier
from pipeline.spec import find_spec
from pipeline.warehouse.models import awaiting_approval
from pipeline.warehouse.monitoring import performance_of_job
from pipeline.warehouse.runs import list_runs


def cmd_runs(args) -> int:
    """The job's latest runs; runs whose process died are marked abandoned first."""
    spec = find_spec(args.job, config.jobs_dir())
    found = list_runs(migrated_warehouse(), spec.name, args.limit)
    if not found:
        print(f"{spec.name}: no runs yet (start one: python -m pipeline run {spec.name})")
    for run in found:
        error = (run.error or "").splitlines()[0][:120] if run.error else ""
        print(
            f"{run.run_id:<44} {run.status:<10} as_of {run.as_of:%Y-%m-%d %H:%M}"
            f"  last report {run.seen:%Y-%m-%d %H:%M:%S}  rows {run.rows_scored or '-'}"
            + (f"\n    {error}" if error else "")
        )
    return 0


def cmd_lineage(args) -> int:
    """Which data, model and code made a key's latest prediction."""
    spec = find_spec(args.job, config.jobs_dir())
    print(format_lineage(spec, key_lineage(migrated_warehouse(), spec, args.key)))
    return 0


def cmd_reproduce(args) -> int:
    """Rebuild a run's model from its snapshot, re-score, compare; exit 1 on any difference."""
    result = reproduce_run(migrated_warehouse(), args.job, args.run)
    print(
        f"run {result.run_id}: spec sha256 {result.spec_sha256 or '-'}, "
        f"suites sha256 {result.suites_sha256 or '-'}"
    )
    if not result.rebuilt:
        print(
            f"run {result.run_id}: its model was trained on rows since erased: re-scored with "
            "the registered model file (sha256 verified), not rebuilt from its snapshot"
        )
    if result.exact:
        n, total = result.matched, result.scored or result.compared
        note = result.erasure_note()
        print(
            f"run {result.run_id}: reproduced {n}/{total} predictions exactly"
            + (f"; {note}" if note else "")
        )
        return 0
    print(
        f"run {result.run_id}: {result.compared - result.matched} of {result.compared} "
        "predictions differ; first differences:"
    )
    for diff in result.differences:
        print(f"  {diff}")
    return 1


def cmd_performance(args) -> int:
    """Judge the job's published runs against the labels that arrived since; print the table.
    Exit 1 when a trusted figure is an alert."""
    spec = find_spec(args.job, config.jobs_dir())
    url = migrated_warehouse()
    alerts = measure_performance(url, spec)
    rows = performance_of_job(url, spec.name)
    if not rows:
        print(f"{spec.name}: no published run has labels that arrived after its as_of yet")
        return 0
    print(
        f"{'run':<40} {'model':>5} {'metric':<18} {'value':>8} {'holdout':>8} {'worse by':>8} "
        "labelled of eligible"
    )
    for r in rows:
        value = "-" if r.value is None else f"{r.value:.4f}"
        holdout = "-" if r.holdout is None else f"{r.holdout:.4f}"
        gap = "-" if r.worse_by is None else f"{r.worse_by:.4f}"
        eligible = "-" if r.eligible is None else f"{r.eligible:,}"
        flag = " ALERT" if r.alert else ("" if r.trusted else " (too few labels)")
        print(
            f"{r.run_id:<40} v{r.model_version:<4} {r.metric:<18} {value:>8} "
            f"{holdout:>8} {gap:>8} {r.labelled:,} of {eligible}{flag}"
        )
    if rows:
        print(f"tolerance {spec.monitoring.performance.tolerance} (worse by more: an alert)")
    for alert in alerts:
        print(f"PERFORMANCE ALERT: {alert.message}")
    return 1 if alerts else 0


def cmd_audit(args) -> int:
    """Write a model version's audit dossier (HTML, and JSON beside it) into --out."""
    spec = find_spec(args.job, config.jobs_dir())
    dossier = gather_dossier(migrated_warehouse(), spec.name, args.version)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{spec.name}-v{dossier.facts['version']}-audit"
    page, facts = folder / f"{name}.html", folder / f"{name}.json"
    page.write_text(dossier.html)
    facts.write_text(dumps(dossier.facts, indent=2, sort_keys=True) + "\n")
    print(f"{spec.name} v{dossier.facts['version']}: audit dossier {page} (facts: {facts})")
    return 0


def cmd_approvals(args) -> int:
    """The versions waiting for a person's approval, oldest first."""
    job = find_spec(args.job, config.jobs_dir()).name if args.job else None
    waiting = awaiting_approval(migrated_warehouse(), job)
    if not waiting:
        print(f"{job or 'no job'}: nothing awaits approval" if job else "nothing awaits approval")
    for version in waiting:
        request = version.approval or {}
        asked = request.get("requested_at")
        where = (
            f"asked {asked[:16]}, answer by {request.get('deadline', '?')[:16]} on Airflow's "
            f"Required Actions page (DAG {version.job}_approval)"
            if asked
            else f"not asked yet: trigger the DAG {version.job}_approval"
        )
        print(
            f"{version.job} v{version.version} (run {version.run_id}): "
            f"{'; '.join(request.get('conditions', []))}\n    {where}"
        )
    return 0
