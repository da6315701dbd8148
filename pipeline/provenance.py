"""What made a result: the code version and the versions of the libraries that matter."""

import hashlib
import json
import os
import subprocess
from functools import cache
from importlib import metadata

from pipeline.config import PROJECT_ROOT

LIBRARIES = (
    "scikit-learn",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "great-expectations",
    "skops",
    "apache-airflow",
    "psycopg2-binary",
)


@cache
def code_version() -> str:
    """`CODE_VERSION` if set (images), else the git commit (+dirty), else a hash of the sources."""
    if os.environ.get("CODE_VERSION"):
        return os.environ["CODE_VERSION"]
    try:
        commit = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--", "pipeline", "sql"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        return f"git:{commit[:12]}" + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"src:{source_hash()[:12]}"


def source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted((PROJECT_ROOT / "pipeline").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


# the code between a source row and its score: the snapshot's query and types, the feature
# frame, prediction; a change to any makes yesterday's scores no longer today's
FEATURE_CODE = (
    "pipeline/warehouse/sources.py",
    "pipeline/datafiles/parquet.py",
    "pipeline/model/fitting.py",
    "pipeline/stages/score.py",
)


def features_sha256(spec_features: dict) -> str:
    """A fingerprint of what turns a row into a score, the model aside: the spec's part of it
    (`spec_features`, JSON) and the code in FEATURE_CODE."""
    digest = hashlib.sha256(json.dumps(spec_features, sort_keys=True).encode())
    for name in FEATURE_CODE:
        digest.update((PROJECT_ROOT / name).read_bytes())
    return digest.hexdigest()


@cache
def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
