"""scoring.validation_results: each suite's verdict on a run's snapshot, keyed by job, run and
suite (a re-run replaces it), with where the full result and its Data Docs page are."""

from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.contracts import Validation
from pipeline.warehouse import db


@dataclass(frozen=True)
class ValidationRow(db.Row):
    """A row of scoring.validation_results."""

    suite: str
    success: bool
    critical_failed: int
    warnings_failed: int
    failures: list
    statistics: dict | None = None
    docs_uri: str | None = None
    result_uri: str | None = None


def record_validation(url: str, job: str, run_id: str, summary: Validation, statistics) -> None:
    with db.transaction(url) as conn, conn.cursor() as cur:
        db.upsert(
            cur,
            "validation_results",
            {
                "job": job,
                "run_id": run_id,
                "suite": summary.suite,
                "snapshot_sha256": summary.snapshot_sha256,
                "success": summary.success,
                "critical_failed": summary.critical_failed,
                "warnings_failed": summary.warnings_failed,
                "statistics": dict(statistics),
                "failures": summary.failures,
                "result_uri": summary.result_uri,
                "docs_uri": summary.docs_uri,
                "validated_at": datetime.now(UTC),
            },
            key=("job", "run_id", "suite"),
        )


def validations_of_run(url: str, job: str, run_id: str) -> list[ValidationRow]:
    """The run's validations, by suite name."""
    return db.fetch_rows(
        url,
        ValidationRow,
        "SELECT suite, success, critical_failed, warnings_failed, statistics, failures,"
        " docs_uri, result_uri FROM scoring.validation_results WHERE job = %s AND run_id = %s"
        " ORDER BY suite",
        (job, run_id),
    )
