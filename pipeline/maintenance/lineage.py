"""Which data, model and code made a key's latest prediction (from the `<job>_lineage` view)."""

from pipeline.errors import PipelineError
from pipeline.spec import JobSpec
from pipeline.warehouse.erasures import erasures_of
from pipeline.warehouse.predictions import key_lineage_row
from pipeline.warehouse.snapshots import recorded_snapshot


def key_lineage(url: str, spec: JobSpec, key: str) -> dict:
    """The lineage row of one key's latest published prediction."""
    row = key_lineage_row(url, spec, key)
    if row is None:
        raise PipelineError(
            f"job {spec.name}: key {key!r} has no published prediction in "
            f"scoring.{spec.latest_view}"
        )
    row = with_snapshot_uris(url, spec, row)
    ids = [row.get("scoring_snapshot_id"), row.get("training_snapshot_id")]
    row["erasures"] = erasures_of(url, spec.name, ids)
    return row


def with_snapshot_uris(url: str, spec: JobSpec, row: dict) -> dict:
    """The view joins the run's and the model's snapshots by id; rows recorded before snapshot
    ids (or a view not yet redeployed) have none: look those snapshots up by sha256."""
    whose = {
        "scoring": (f"run {row['run_id']} of {spec.name}", {"as_of": row["as_of"]}),
        "training": (
            f"model v{row['model_version']} of {spec.name}",
            {"model_version": row["model_version"]},
        ),
    }
    for kind, (what, hint) in whose.items():
        if row.get(f"{kind}_snapshot_id") is None:
            sha256 = row[f"{kind}_snapshot_sha256"]
            found = recorded_snapshot(url, spec.name, None, sha256, kind, what, **hint)
            row[f"{kind}_snapshot_uri"] = found.uri if found else None
    return row


def erasure_lines(row: dict) -> list[str]:
    """A line per rewrite of the row's snapshots since it was scored: when, why, what."""
    kinds = {row.get("scoring_snapshot_id"): "scoring", row.get("training_snapshot_id"): "training"}
    return [
        f"  erasure    {kinds.get(e['snapshot_id'], e['kind'])} snapshot ({e['kind']} file) "
        f"rewritten {e['erased_at']:%Y-%m-%d}: {e['rows_removed']} row(s) erased, requests "
        f"{e['request_ids']} ({e['reason']}); sha256 {e['old_sha256'][:16]} -> "
        f"{e['new_sha256'][:16]}"
        for e in row.get("erasures") or []
    ]


def format_lineage(spec: JobSpec, row: dict) -> str:
    metric = row["primary_metric"]
    checks = ", ".join(
        f"{v['suite']} {'passed' if v['success'] else 'FAILED'}" for v in row["validation"] or []
    )
    return "\n".join(
        [
            f"{spec.name} key {row['key']}: score {row['score']:.6f}"
            + (f", label {row['label']}" if row["label"] is not None else ""),
            f"  run        {row['run_id']} (Airflow dag run {row['dag_run_id']})",
            f"             as_of {row['as_of'].isoformat()}, scored {row['scored_at'].isoformat()}",
            f"  data       scoring snapshot sha256 {row['scoring_snapshot_sha256']}",
            f"             {row['scoring_snapshot_uri'] or '(snapshot file pruned)'}",
            f"  validation {checks or '-'}",
            f"  model      v{row['model_version']}, artifact sha256 {row['artifact_sha256']}",
            f"             trained on snapshot sha256 {row['training_snapshot_sha256']}",
            f"             {row.get('training_snapshot_uri') or '(snapshot file pruned)'}",
            f"             holdout {metric} {row['model_metrics'][metric]:.5f}; "
            f"{row['decision_reason']}",
            *erasure_lines(row),
            f"  code       run {row['run_code_version']}, model {row['model_code_version']}",
            f"  spec       sha256 {row.get('spec_sha256') or '-'}, "
            f"suites sha256 {row.get('suites_sha256') or '-'}",
            # printed for a person to copy, never executed
            f"  SQL        SELECT * FROM scoring.{spec.lineage_view} WHERE key = {row['key']!r};",  # noqa: S608
        ]
    )
