"""The model registry: a gated candidate becomes a numbered version (its files copied to
`models/<job>/vNNNN/`, its row in scoring.model_versions), and a broken champion can be retired.
"""

import logging
from datetime import UTC, datetime

from pipeline.contracts import Candidate, Decision
from pipeline.datafiles.layout import model_dir
from pipeline.datafiles.root import DataRoot
from pipeline.errors import ModelIntegrityError, PipelineError
from pipeline.faults import explain_permanent
from pipeline.model.files import ARTIFACT, COMPANIONS, load_model
from pipeline.provenance import code_version, library_versions
from pipeline.spec import JobSpec
from pipeline.warehouse import db, models
from pipeline.warehouse.jobs import lock_job
from pipeline.warehouse.models import ModelVersion

log = logging.getLogger(__name__)


def register_candidate(
    url: str,
    spec: JobSpec,
    run_id: str,
    candidate: Candidate,
    champion_metrics: dict | None,
    champion: ModelVersion | None,
    status: str,
    reason: str,
    forced: bool,
    approval: dict | None = None,
) -> Decision:
    """Copy the candidate to models/<job>/vNNNN and record it with the gate's `status`:
    champion (promoted), rejected, or awaiting_approval (with its request, `approval`).

    Re-running the same run replaces its own version row instead of adding another.
    """
    root = DataRoot()
    with db.transaction(url) as conn, conn.cursor() as cur:
        lock_job(cur, spec.name)
        version, status_before = models.version_for_run(cur, spec.name, run_id)
        if status_before == "champion" and status != "champion":
            raise PipelineError(
                f"job {spec.name}: run {run_id} already registered version {version} as "
                "champion; a re-run cannot demote it"
            )
        folder = model_dir(root, spec.name, version)
        source = root.path_of(candidate.folder_uri)
        for name in (ARTIFACT, *COMPANIONS):
            root.copy(f"{source}/{name}", f"{folder}/{name}")
        artifact_uri = root.uri(f"{folder}/{ARTIFACT}")
        if root.sha256(f"{folder}/{ARTIFACT}") != candidate.artifact_sha256:
            raise ModelIntegrityError(f"copy of the candidate to {artifact_uri} is corrupt")
        models.write_version(
            cur,
            {
                "job": spec.name,
                "version": version,
                "run_id": run_id,
                "status": status,
                "artifact_uri": artifact_uri,
                "artifact_sha256": candidate.artifact_sha256,
                "training_snapshot_sha256": candidate.training_snapshot_sha256,
                "training_snapshot_id": candidate.training_snapshot_id,
                "estimator": spec.model.estimator,
                "params": candidate.params,
                "primary_metric": spec.primary_metric,
                "metrics": candidate.metrics,
                "champion_version": champion.version if champion else None,
                "champion_metrics": champion_metrics,
                "decision_reason": reason,
                "forced": forced,
                "code_version": code_version(),
                "library_versions": library_versions(),
                "promoted_at": datetime.now(UTC) if status == "champion" else None,
                "approval": approval,
            },
        )
    log.info("job %s: version %d %s: %s", spec.name, version, status, reason)
    return Decision(version=version, status=status, reason=reason, forced=forced)


def retire_champion(url: str, job: str, reason: str) -> dict:
    """Retire the job's champion (e.g. its file is missing or tampered) and fall back.

    In one transaction, under the lock registering takes: the champion becomes `retired` with
    `; retired: <reason>` appended to its decision_reason, then the newest earlier version that
    was champion once (and not itself retired by this function) and whose file still verifies
    (`load_model`) is champion again. When none verifies the job has no champion, and its next
    run trains one. Returns {"job", "retired": version, "champion": version or None,
    "skipped": [{"version", "reason"}]}: the earlier versions passed over, and why.
    """
    with db.transaction(url) as conn, conn.cursor() as cur:
        lock_job(cur, job)
        retired = models.retire(cur, job, reason)
        if retired is None:
            raise PipelineError(f"job {job}: there is no champion to retire")
        champion_now, skipped = None, []
        for version, uri, sha256 in models.former_champions(cur, job, retired):
            try:
                load_model(uri, sha256)
            except Exception as exc:  # a file that no longer loads is passed over, not fatal
                if explain_permanent(exc):
                    raise  # no rights on the data root: every file would look broken
                skipped.append({"version": version, "reason": f"{type(exc).__name__}: {exc}"})
                continue
            note = (
                f"; champion again: v{retired} was retired ({reason}) and this version's "
                "file verified"
            )
            models.reinstate(cur, job, version, note)
            champion_now = version
            break
    log.info(
        "job %s: retired v%d (%s); champion now %s",
        job,
        retired,
        reason,
        f"v{champion_now}" if champion_now else "none",
    )
    return {"job": job, "retired": retired, "champion": champion_now, "skipped": skipped}
