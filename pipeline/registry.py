"""Model registry: artifacts on the data root, their rows in scoring.model_versions, the gate.

Artifacts are skops files. Loading checks the recorded sha256 first and then refuses any type
outside `TRUSTED_TYPES`, so a model file cannot run arbitrary code the way a pickle can.
"""

import hashlib
import io
import json
import logging
import warnings
from contextlib import contextmanager
from datetime import UTC, datetime

import skops.io as sio

from pipeline import db
from pipeline.errors import ModelIntegrityError, PipelineError
from pipeline.provenance import code_version, library_versions
from pipeline.spec import JobSpec
from pipeline.storage import DataRoot

log = logging.getLogger(__name__)

# Types skops does not trust by default that our pipelines legitimately contain.
TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
]
ARTIFACT = "model.skops"


@contextmanager
def quiet_skops():
    """skops looks up every loaded module's attributes, which trips Airflow's deprecation shims."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def untrusted_types(payload: bytes) -> list[str]:
    """Types in a skops payload outside skops' defaults and `TRUSTED_TYPES`."""
    with quiet_skops():
        return sorted(set(sio.get_untrusted_types(data=payload)) - set(TRUSTED_TYPES))


def save_model(root: DataRoot, folder: str, model, metadata: dict, card: str) -> dict:
    """Write model.skops, metadata.json and MODEL_CARD.md; returns the artifact's uri and sha256."""
    with quiet_skops():
        payload = sio.dumps(model)
    untrusted = untrusted_types(payload)
    if untrusted:
        raise ModelIntegrityError(
            f"the fitted pipeline holds types outside the trusted list: {untrusted}; "
            "review them and add them to pipeline.registry.TRUSTED_TYPES"
        )
    path = f"{folder}/{ARTIFACT}"
    root.write_bytes(path, payload)
    artifact = {"uri": root.uri(path), "sha256": root.sha256(path)}
    root.write_json(f"{folder}/metadata.json", {**metadata, "artifact": artifact})
    root.write_bytes(f"{folder}/MODEL_CARD.md", card.encode())
    return artifact


def load_model(uri: str, sha256: str):
    """Load an artifact after verifying its sha256; refuses tampered files and untrusted types."""
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
    untrusted = untrusted_types(payload)
    if untrusted:
        raise ModelIntegrityError(f"refusing to load {uri}: untrusted types {untrusted}")
    with quiet_skops():
        return sio.load(io.BytesIO(payload), trusted=TRUSTED_TYPES)


def champion(url: str, job: str) -> dict | None:
    """The current champion's model_versions row, or None before the first model."""
    return fetch_version(url, job, status="champion")


def fetch_version(url: str, job: str, version: int | None = None, status: str | None = None):
    query = "SELECT * FROM scoring.model_versions WHERE job = %s"
    params: list = [job]
    if version is not None:
        query += " AND version = %s"
        params.append(version)
    if status is not None:
        query += " AND status = %s"
        params.append(status)
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(query + " ORDER BY version DESC LIMIT 1", params)
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([c.name for c in cur.description], row, strict=True))


def model_folder(root: DataRoot, job: str, version: int) -> str:
    return root.path("models", job, f"v{version:04d}")


def register(
    url: str,
    spec: JobSpec,
    run_id: str,
    candidate: dict,
    champion_metrics: dict | None,
    champion_row: dict | None,
    promote: bool,
    reason: str,
    forced: bool,
) -> dict:
    """Copy the candidate to models/<job>/vNNNN and record it; promote it if the gate said so.

    Re-running the same run replaces its own version row instead of adding another.
    """
    root = DataRoot()
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"registry:{spec.name}",))
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
        source = root.path_of(candidate["folder_uri"])
        for name in (ARTIFACT, "metadata.json", "MODEL_CARD.md"):
            root.copy(f"{source}/{name}", f"{folder}/{name}")
        artifact_uri = root.uri(f"{folder}/{ARTIFACT}")
        if root.sha256(f"{folder}/{ARTIFACT}") != candidate["artifact_sha256"]:
            raise ModelIntegrityError(f"copy of the candidate to {artifact_uri} is corrupt")
        now = datetime.now(UTC)
        if promote:
            cur.execute(
                "UPDATE scoring.model_versions SET status = 'retired'"
                " WHERE job = %s AND status = 'champion' AND version <> %s",
                (spec.name, version),
            )
        status = "champion" if promote else "rejected"
        cur.execute(
            "INSERT INTO scoring.model_versions (job, version, run_id, status, artifact_uri,"
            " artifact_sha256, training_snapshot_sha256, estimator, params, primary_metric,"
            " metrics, champion_version, champion_metrics, decision_reason, forced,"
            " code_version, library_versions, promoted_at)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
            " ON CONFLICT (job, version) DO UPDATE SET status = EXCLUDED.status,"
            " artifact_uri = EXCLUDED.artifact_uri, artifact_sha256 = EXCLUDED.artifact_sha256,"
            " training_snapshot_sha256 = EXCLUDED.training_snapshot_sha256,"
            " params = EXCLUDED.params, metrics = EXCLUDED.metrics,"
            " champion_version = EXCLUDED.champion_version,"
            " champion_metrics = EXCLUDED.champion_metrics,"
            " decision_reason = EXCLUDED.decision_reason, forced = EXCLUDED.forced,"
            " code_version = EXCLUDED.code_version,"
            " library_versions = EXCLUDED.library_versions, promoted_at = EXCLUDED.promoted_at",
            (
                spec.name,
                version,
                run_id,
                status,
                artifact_uri,
                candidate["artifact_sha256"],
                candidate["training_snapshot_sha256"],
                spec.model.estimator,
                json.dumps(candidate["params"]),
                spec.primary_metric,
                json.dumps(candidate["metrics"]),
                champion_row["version"] if champion_row else None,
                json.dumps(champion_metrics) if champion_metrics is not None else None,
                reason,
                forced,
                code_version(),
                json.dumps(library_versions()),
                now if promote else None,
            ),
        )
    log.info("job %s: version %d %s: %s", spec.name, version, status, reason)
    return {
        "version": version,
        "status": status,
        "reason": reason,
        "forced": forced,
        "artifact_uri": artifact_uri,
        "artifact_sha256": candidate["artifact_sha256"],
    }
