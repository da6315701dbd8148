"""Model registry: artifacts on the data root, their rows in scoring.model_versions, the gate.

Artifacts are skops files. Loading checks the recorded sha256 first and then refuses any type
outside the estimators' trusted types, so a model file cannot run code the way a pickle can.
"""

import hashlib
import io
import logging
import warnings
from contextlib import contextmanager
from datetime import UTC, datetime

from pipeline.contracts import Candidate, Decision
from pipeline.errors import ModelIntegrityError, PipelineError
from pipeline.model.estimators import trusted_types
from pipeline.provenance import code_version, library_versions
from pipeline.spec import JobSpec
from pipeline.store import db
from pipeline.store.records import lock_job, upsert
from pipeline.store.storage import DataRoot

log = logging.getLogger(__name__)

TRUSTED_TYPES = trusted_types()
ARTIFACT = "model.skops"


@contextmanager
def quiet_skops():
    """Silence the warnings skops' module walk (`skops.io._utils.whichmodule`) sets off.

    To name an object without `__module__` (a scipy ufunc), skops reads that name from every
    loaded module: it does so for all of scipy.special when skops.io is imported, and again
    when a model is saved. In an Airflow task that trips Airflow's deprecation shims (e.g.
    `airflow.utils.timezone.*`), each raising a `DeprecatedImportWarning` (a FutureWarning,
    not a DeprecationWarning): about 1,160 log lines per task. Only FutureWarnings raised in
    skops.io._utils, where the walk is, are dropped.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"skops\.io\._utils$")
        yield


def skops_io():
    """skops.io, imported under `quiet_skops` (importing it runs the module walk)."""
    with quiet_skops():
        import skops.io

    return skops.io


def untrusted_types(payload: bytes) -> list[str]:
    """Types in a skops payload outside skops' defaults and `TRUSTED_TYPES`."""
    with quiet_skops():
        return sorted(set(skops_io().get_untrusted_types(data=payload)) - set(TRUSTED_TYPES))


def save_model(root: DataRoot, folder: str, model, metadata: dict, card: str) -> dict:
    """Write model.skops, metadata.json and MODEL_CARD.md; returns the artifact's uri and sha256."""
    with quiet_skops():
        payload = skops_io().dumps(model)
    untrusted = untrusted_types(payload)
    if untrusted:
        raise ModelIntegrityError(
            f"the fitted pipeline holds types outside the trusted list: {untrusted}; "
            "review them and add them to the estimator's row in pipeline/model/estimators.py"
        )
    path = f"{folder}/{ARTIFACT}"
    root.write_bytes(path, payload)
    artifact = {"uri": root.uri(path), "sha256": hashlib.sha256(payload).hexdigest()}
    root.write_json(f"{folder}/metadata.json", {**metadata, "artifact": artifact})
    root.write_bytes(f"{folder}/MODEL_CARD.md", card.encode())
    return artifact


def verified_payload(uri: str, sha256: str) -> bytes:
    """An artifact's bytes, after checking them against the sha256 the registry recorded."""
    root = DataRoot()
    path = root.path_of(uri)
    if not root.exists(path):
        raise ModelIntegrityError(f"model artifact {uri} is missing")
    payload = root.read_bytes(path)
    actual = hashlib.sha256(payload).hexdigest()
    if actual != sha256:
        raise ModelIntegrityError(
            f"refusing to load {uri}: its sha256 is {actual[:16]}..., the registry recorded "
            f"{sha256[:16]}...; the file was modified or replaced"
        )
    return payload


def load_model(uri: str, sha256: str):
    """Load an artifact after verifying its sha256; refuses tampered files and untrusted types."""
    payload = verified_payload(uri, sha256)
    untrusted = untrusted_types(payload)
    if untrusted:
        raise ModelIntegrityError(f"refusing to load {uri}: untrusted types {untrusted}")
    with quiet_skops():
        return skops_io().load(io.BytesIO(payload), trusted=TRUSTED_TYPES)


def champion(url: str, job: str) -> dict | None:
    """The current champion's model_versions row, or None before the first model."""
    return fetch_version(url, job, status="champion")


def fetch_version(url: str, job: str, version: int | None = None, status: str | None = None):
    """The newest model_versions row of `job` with that version and/or status, or None."""
    return db.fetch_one(
        url,
        "SELECT * FROM scoring.model_versions WHERE job = %s"
        " AND (%s::int IS NULL OR version = %s) AND (%s::text IS NULL OR status = %s)"
        " ORDER BY version DESC LIMIT 1",
        (job, version, version, status, status),
    )


def model_folder(root: DataRoot, job: str, version: int) -> str:
    return root.path("models", job, f"v{version:04d}")


def register(
    url: str,
    spec: JobSpec,
    run_id: str,
    candidate: Candidate,
    champion_metrics: dict | None,
    champion_row: dict | None,
    promote: bool,
    reason: str,
    forced: bool,
) -> Decision:
    """Copy the candidate to models/<job>/vNNNN and record it; promote it if the gate said so.

    Re-running the same run replaces its own version row instead of adding another.
    """
    root = DataRoot()
    with db.transaction(url) as conn, conn.cursor() as cur:
        lock_job(cur, spec.name)
        cur.execute(
            "SELECT version, status FROM scoring.model_versions WHERE job = %s AND run_id = %s",
            (spec.name, run_id),
        )
        existing = cur.fetchone()
        if existing and existing[1] == "champion" and not promote:
            raise PipelineError(
                f"job {spec.name}: run {run_id} already registered version {existing[0]} as "
                "champion; a re-run cannot demote it"
            )
        if existing:
            version = existing[0]
        else:
            cur.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM scoring.model_versions WHERE job = %s",
                (spec.name,),
            )
            version = cur.fetchone()[0]
        folder = model_folder(root, spec.name, version)
        source = root.path_of(candidate.folder_uri)
        for name in (ARTIFACT, "metadata.json", "MODEL_CARD.md"):
            root.copy(f"{source}/{name}", f"{folder}/{name}")
        artifact_uri = root.uri(f"{folder}/{ARTIFACT}")
        if root.sha256(f"{folder}/{ARTIFACT}") != candidate.artifact_sha256:
            raise ModelIntegrityError(f"copy of the candidate to {artifact_uri} is corrupt")
        if promote:
            cur.execute(
                "UPDATE scoring.model_versions SET status = 'retired'"
                " WHERE job = %s AND status = 'champion' AND version <> %s",
                (spec.name, version),
            )
        status = "champion" if promote else "rejected"
        upsert(
            cur,
            "model_versions",
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
                "champion_version": champion_row["version"] if champion_row else None,
                "champion_metrics": champion_metrics,
                "decision_reason": reason,
                "forced": forced,
                "code_version": code_version(),
                "library_versions": library_versions(),
                "promoted_at": datetime.now(UTC) if promote else None,
            },
            key=("job", "version"),
        )
    log.info("job %s: version %d %s: %s", spec.name, version, status, reason)
    return Decision(version=version, status=status, reason=reason, forced=forced)


RETIRED_MARK = "; retired: "


def retire_champion(url: str, job: str, reason: str) -> dict:
    """Retire the job's champion (e.g. its file is missing or tampered) and fall back.

    In one transaction, under the lock `register` takes: the champion becomes `retired` with
    `; retired: <reason>` appended to its decision_reason, then the newest earlier version that
    was champion once (and not itself retired by this function) and whose file still verifies
    (`load_model`) is champion again. When none verifies the job has no champion, and its next
    run trains one. Returns {"job", "retired": version, "champion": version or None,
    "skipped": [{"version", "reason"}]}: the earlier versions passed over, and why.
    """
    from pipeline.errors import explain_permanent

    with db.transaction(url) as conn, conn.cursor() as cur:
        lock_job(cur, job)
        cur.execute(
            "UPDATE scoring.model_versions SET status = 'retired',"
            " decision_reason = decision_reason || %s"
            " WHERE job = %s AND status = 'champion' RETURNING version",
            (f"{RETIRED_MARK}{reason}", job),
        )
        row = cur.fetchone()
        if row is None:
            raise PipelineError(f"job {job}: there is no champion to retire")
        retired = row[0]
        cur.execute(
            "SELECT version, artifact_uri, artifact_sha256 FROM scoring.model_versions"
            " WHERE job = %s AND version < %s AND status = 'retired'"
            " AND promoted_at IS NOT NULL AND strpos(decision_reason, %s) = 0"
            " ORDER BY version DESC",
            (job, retired, RETIRED_MARK),
        )
        champion_now, skipped = None, []
        for version, uri, sha256 in cur.fetchall():
            try:
                load_model(uri, sha256)
            except Exception as exc:  # a file that no longer loads is passed over, not fatal
                if explain_permanent(exc):
                    raise  # no rights on the data root: every file would look broken
                skipped.append({"version": version, "reason": f"{type(exc).__name__}: {exc}"})
                continue
            cur.execute(
                "UPDATE scoring.model_versions SET status = 'champion', promoted_at = now(),"
                " decision_reason = decision_reason || %s WHERE job = %s AND version = %s",
                (
                    f"; champion again: v{retired} was retired ({reason}) and this version's "
                    "file verified",
                    job,
                    version,
                ),
            )
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
