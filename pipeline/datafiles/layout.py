"""Where each file lives under the data root: the one place that names its folders.

```
snapshots/<job>/<kind>/<as_of>/<sha256 prefix>/data.parquet, manifest.json
                                              validation/<run folder>/<kind>.json, .html
runs/<job>/index.html
runs/<job>/<run folder>/report.html, candidate/, predictions/part-NNNNN.parquet
models/<job>/vNNNN/model.skops, metadata.json, MODEL_CARD.md, holdout_scores.parquet
```
"""

from datetime import UTC, datetime

from pipeline.datafiles.root import DataRoot

REPORT = "report.html"
INDEX = "index.html"


SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def run_folder(run_id: str) -> str:
    """A run id as a folder name, one to one: letters, digits, `-`, `_` and `.` stay, every
    other byte is written `~xx` (hex), so two run ids never share a folder
    (`manual__2026-12-01T19:18:04+00:00` is `manual__2026-12-01T19~3a18~3a04~2b00~3a00`)."""
    if run_id in ("", ".", ".."):
        return "~" + run_id.encode().hex()
    return "".join(c if c in SAFE else "".join(f"~{b:02x}" for b in c.encode()) for c in run_id)


def snapshot_dir(root: DataRoot, job: str, kind: str, as_of: datetime) -> str:
    """The folder of a job's `kind` snapshots as of `as_of` (one subfolder per content)."""
    return root.path("snapshots", job, kind, as_of.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ"))


def validation_path(root: DataRoot, snapshot_uri: str, run_id: str, kind: str) -> str:
    """A run's full GX result for one snapshot, beside the snapshot (`.html`: its Data Docs)."""
    folder = root.path_of(snapshot_uri).rsplit("/", 1)[0]
    return f"{folder}/validation/{run_folder(run_id)}/{kind}.json"


def run_dir(root: DataRoot, job: str, run_id: str) -> str:
    """The folder of what one run wrote besides its snapshots."""
    return root.path("runs", job, run_folder(run_id))


def candidate_dir(root: DataRoot, job: str, run_id: str) -> str:
    return f"{run_dir(root, job, run_id)}/candidate"


def predictions_dir(root: DataRoot, job: str, run_id: str) -> str:
    return f"{run_dir(root, job, run_id)}/predictions"


def eligible_path(root: DataRoot, job: str, run_id: str) -> str:
    """The keys a run scored that had no label at its as_of (realised performance's)."""
    return f"{run_dir(root, job, run_id)}/eligible.parquet"


def partition_path(root: DataRoot, job: str, run_id: str, index: int) -> str:
    return f"{predictions_dir(root, job, run_id)}/part-{index:05d}.parquet"


def shadow_partition_path(root: DataRoot, job: str, run_id: str, index: int) -> str:
    """A partition's predictions by the challenger in shadow."""
    return f"{predictions_dir(root, job, run_id)}/shadow-{index:05d}.parquet"


def report_path(root: DataRoot, job: str, run_id: str) -> str:
    return f"{run_dir(root, job, run_id)}/{REPORT}"


def index_path(root: DataRoot, job: str) -> str:
    return root.path("runs", job, INDEX)


def model_dir(root: DataRoot, job: str, version: int) -> str:
    return root.path("models", job, f"v{version:04d}")
