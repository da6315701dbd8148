"""Model files: skops artifacts on the data root, verified before they are loaded.

Loading checks the recorded sha256 first and then refuses any type outside the estimators'
trusted types, so a model file cannot run code the way a pickle can.
"""

import hashlib
import io
import warnings
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.datafiles.root import DataRoot
from pipeline.errors import ModelIntegrityError
from pipeline.spec.estimators import trusted_types

TRUSTED_TYPES = trusted_types()
ARTIFACT = "model.skops"
HOLDOUT_SCORES = "holdout_scores.parquet"
COMPANIONS = ("metadata.json", "MODEL_CARD.md", HOLDOUT_SCORES)  # written beside every artifact


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


def save_model(
    root: DataRoot, folder: str, model, metadata: dict, card: str, holdout_scores: np.ndarray
) -> dict:
    """Write model.skops, metadata.json, MODEL_CARD.md and the model's scores on its holdout
    (whose sha256 metadata.json records); returns the artifact's uri and sha256."""
    with quiet_skops():
        payload = skops_io().dumps(model)
    untrusted = untrusted_types(payload)
    if untrusted:
        raise ModelIntegrityError(
            f"the fitted pipeline holds types outside the trusted list: {untrusted}; "
            "review them and add them to the estimator's row in pipeline/spec/estimators.py"
        )
    path = f"{folder}/{ARTIFACT}"
    root.write_bytes(path, payload)
    artifact = {"uri": root.uri(path), "sha256": hashlib.sha256(payload).hexdigest()}
    scores = parquet_bytes(pa.table({"score": pa.array(holdout_scores, pa.float64())}))
    root.write_bytes(f"{folder}/{HOLDOUT_SCORES}", scores)
    recorded = {"sha256": hashlib.sha256(scores).hexdigest(), "rows": len(holdout_scores)}
    metadata_json, card_md, _ = COMPANIONS
    root.write_json(
        f"{folder}/{metadata_json}", {**metadata, "artifact": artifact, "holdout_scores": recorded}
    )
    root.write_bytes(f"{folder}/{card_md}", card.encode())
    return artifact


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def companion_path(root: DataRoot, artifact_uri: str, name: str) -> str:
    """Where a file written beside a model's artifact (one of `COMPANIONS`) is."""
    return f"{root.path_of(artifact_uri).rsplit('/', 1)[0]}/{name}"


def stored_holdout_scores(artifact_uri: str) -> np.ndarray | None:
    """The scores a model gave its holdout when it was fitted, read from beside its artifact
    and checked against the sha256 its metadata.json recorded; None for a model saved without
    them (before they were kept) or whose file does not match."""
    root = DataRoot()
    metadata_json, _, scores_file = COMPANIONS
    path = companion_path(root, artifact_uri, scores_file)
    metadata = companion_path(root, artifact_uri, metadata_json)
    if not (root.exists(path) and root.exists(metadata)):
        return None
    recorded = root.read_json(metadata).get("holdout_scores") or {}
    payload = root.read_bytes(path)
    if hashlib.sha256(payload).hexdigest() != recorded.get("sha256"):
        return None
    return pq.read_table(io.BytesIO(payload)).column("score").to_numpy()


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
    """Load an artifact after verifying its sha256; refuses tampered files, untrusted types
    and anything that is not a skops file (whatever its hash)."""
    payload = verified_payload(uri, sha256)
    try:
        untrusted = untrusted_types(payload)
        if untrusted:
            raise ModelIntegrityError(f"refusing to load {uri}: untrusted types {untrusted}")
        with quiet_skops():
            return skops_io().load(io.BytesIO(payload), trusted=TRUSTED_TYPES)
    except ModelIntegrityError:
        raise
    except Exception as exc:  # a zip that is no skops file, a truncated one: never a retry
        raise ModelIntegrityError(
            f"refusing to load {uri}: not a readable skops model file ({type(exc).__name__}: {exc})"
        ) from None
