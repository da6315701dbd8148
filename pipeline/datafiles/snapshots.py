"""Reading snapshot files: each opened only after its sha256 matches its manifest."""

from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.contracts import Manifest, SnapshotRef
from pipeline.datafiles.root import DataRoot
from pipeline.errors import PipelineError


def load_manifest(uri: str) -> Manifest:
    """The manifest written beside a snapshot's data file (`uri` of either)."""
    root = DataRoot()
    path = root.path_of(uri)
    if not path.endswith("manifest.json"):
        path = path.rsplit("/", 1)[0] + "/manifest.json"
    return Manifest.from_json(root.read_json(path))


def verified_path(root: DataRoot, ref: SnapshotRef | Manifest) -> str:
    """The snapshot's path, after checking its sha256 against the manifest."""
    path = root.path_of(ref.uri)
    if not root.exists(path):
        raise PipelineError(f"snapshot {ref.uri} is missing (pruned or moved?)")
    actual = root.sha256(path)
    if actual != ref.sha256:
        raise PipelineError(
            f"snapshot {ref.uri} has sha256 {actual[:16]}..., but its manifest records "
            f"{ref.sha256[:16]}...: the file was changed after it was written"
        )
    return path


@contextmanager
def open_snapshot(manifest: SnapshotRef | Manifest) -> Iterator[pq.ParquetFile]:
    """The snapshot's Parquet file, verified once; read any columns or row groups of it."""
    root = DataRoot()
    with root.open_input(verified_path(root, manifest)) as src:
        yield pq.ParquetFile(src)


def read_snapshot_table(
    manifest: SnapshotRef | Manifest, columns: list[str] | None = None
) -> pa.Table:
    """The whole snapshot as an Arrow table (verified first)."""
    with open_snapshot(manifest) as parquet:
        return parquet.read(columns=columns)


def read_snapshot(
    manifest: SnapshotRef | Manifest, columns: list[str] | None = None
) -> pd.DataFrame:
    """The whole snapshot as a pandas DataFrame (verified first)."""
    return read_snapshot_table(manifest, columns).to_pandas()


def read_column(parquet: pq.ParquetFile, column: str):
    """One column of an open snapshot as a NumPy array (NULLs as None or NaN)."""
    return parquet.read(columns=[column]).column(0).to_numpy(zero_copy_only=False)
