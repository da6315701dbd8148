"""Test helpers: read the warehouse, and run the pipeline stages in DAG order without Airflow."""

from datetime import datetime

import psycopg2

from pipeline import candidate, drift, publish, runs, score, snapshot, validate
from pipeline.spec import JobSpec


def query(url: str, text: str, params=()) -> list[tuple]:
    """Run one statement and commit; returns its rows (empty for statements without any)."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(text, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def run_stages(url: str, spec: JobSpec, as_of: datetime, run_id: str, **options) -> dict:
    """snapshot -> validate -> train -> gate -> score -> publish, as the DAG wires them."""
    run = runs.start_run(url, spec, run_id, as_of, as_of)
    training = snapshot.take_snapshot(spec, "training", as_of, url)
    scoring = snapshot.take_snapshot(spec, "scoring", as_of, url)
    checks = [validate.validate_snapshot(url, spec, m, run_id) for m in (training, scoring)]
    if options.get("retrain", True):
        cand = candidate.train_candidate(spec, training, run_id)
        model = candidate.gate(url, spec, cand, run_id, options.get("force_promote", False))
    else:
        cand, model = None, candidate.serving_model(url, spec)
    plan = score.plan_partitions(scoring, spec.source.key, spec.scoring.partitions)
    parts = [score.score_partition(spec, scoring, model, p, run_id) for p in plan]
    lineage = {
        "model_version": model["version"],
        "training_snapshot_sha256": training["sha256"],
        "scoring_snapshot_sha256": scoring["sha256"],
        "validation": [{"suite": c["suite"], "success": c["success"]} for c in checks],
        "timings": {},
    }
    published = publish.publish_run(url, spec, run, parts, lineage)
    drifted = drift.measure_drift(url, spec, scoring, model["version"], run_id)
    return {
        "drift": drifted,
        "training": training,
        "scoring": scoring,
        "checks": checks,
        "candidate": cand,
        "model": model,
        "parts": parts,
        "published": published,
    }
