"""Test helpers: read the warehouse, and run a job's stages without Airflow, as the DAG does."""

from datetime import datetime

import psycopg2

from pipeline import flow
from pipeline.contracts import Trigger
from pipeline.spec import JobSpec


def query(url: str, text: str, params=None) -> list[tuple]:
    """Run one statement and commit; returns its rows (empty for statements without any)."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(text, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def trigger_for(spec: JobSpec, as_of: datetime, run_id: str, **options) -> Trigger:
    """A trigger of `spec`'s file at `as_of`; options: retrain (bool or auto/always/never),
    force_promote."""
    retrain = options.get("retrain", "always")
    if isinstance(retrain, bool):
        retrain = "always" if retrain else "never"
    return Trigger(
        job=spec.name,
        spec_path=spec.path,
        run_id=run_id,
        logical_date=as_of.isoformat(),
        run_after=as_of.isoformat(),
        force_promote=options.get("force_promote", False),
        retrain=retrain,
    )


def run_stages(url: str, spec: JobSpec, as_of: datetime, run_id: str, **options) -> dict:
    """Every stage of `pipeline.flow`, in the DAG's order; their JSON results by stage name."""
    return flow.run_stages(url, trigger_for(spec, as_of, run_id, **options))


def as_role(url: str, role: str, statement: str):
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SET ROLE {role}")
            cur.execute(statement)
            return cur.fetchall() if cur.description else None
    finally:
        conn.rollback()
        conn.close()
