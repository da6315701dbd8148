"""The data root: snapshots, models and run outputs, on any pyarrow filesystem.

A plain folder by default, or object storage: `SCORING_DATA_ROOT=s3://bucket/prefix`, with
the endpoint and keys from the environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_REGION`), never from the URI. What is stored and shown (the
database, XComs, the summary) is the canonical URI, `s3://bucket/prefix/...`: no credentials
and no query parameters.
"""

import hashlib
import json
import uuid
from contextlib import contextmanager
from pathlib import Path

import pyarrow.fs as pafs

from pipeline.config import data_root
from pipeline.errors import PipelineError

CHUNK = 1 << 20


def filesystem(root: str | None = None) -> tuple[pafs.FileSystem, str]:
    """The filesystem and base path of the data root."""
    root = root or data_root()
    if "://" in root:
        return pafs.FileSystem.from_uri(root)
    local = pafs.LocalFileSystem()
    return local, str(Path(root).resolve())


def canonical_prefix(root: str, base: str) -> str:
    """What a path under the root is shown as: the local folder, or `scheme://base` (the
    root's URI without its query, which may carry an endpoint, and without user info)."""
    if "://" not in root:
        return base
    return f"{root.split('://', 1)[0]}://{base.strip('/')}"


class DataRoot:
    """Paths under the data root, and the few I/O operations the pipeline needs."""

    def __init__(self, root: str | None = None):
        root = root or data_root()
        self.fs, self.base = filesystem(root)
        self.uri_prefix = canonical_prefix(root, self.base)
        self.remote = "://" in root

    def path(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *parts])

    def uri(self, path: str) -> str:
        """A path as users see it: the local path, or the canonical URI for remote roots."""
        if self.remote:
            return self.uri_prefix.rstrip("/") + path[len(self.base.rstrip("/")) :]
        return path

    def path_of(self, uri: str) -> str:
        """Inverse of `uri` (a remote path without its scheme is taken as it is). A local path
        under a remote root is a file recorded under another data root: an error that says so."""
        if self.remote and "://" in uri:
            return uri.split("://", 1)[1]
        if self.remote and uri.startswith("/"):
            raise PipelineError(
                f"{uri} was recorded under another data root than SCORING_DATA_ROOT="
                f"{self.uri_prefix}: copy that root's files to {self.uri_prefix}, keeping "
                "their paths under it, or point SCORING_DATA_ROOT back at it"
            )
        return uri

    def probe(self) -> None:
        """Write, read back and delete a small file at the root: raises the storage's OSError
        when the root is unreachable, missing or not writable."""
        path = self.path(f".probe-{uuid.uuid4().hex}")
        self.write_bytes(path, b"probe")
        try:
            if self.read_bytes(path) != b"probe":
                raise OSError(f"{self.uri(path)} read back other bytes than were written")
        finally:
            self.discard(path)

    def relative(self, uri: str) -> str | None:
        """A file's path under the root, from its uri; None for a uri outside the root."""
        prefix = self.uri_prefix.rstrip("/") + "/"
        return uri[len(prefix) :] if uri.startswith(prefix) else None

    def makedirs(self, path: str) -> None:
        self.fs.create_dir(path, recursive=True)

    @contextmanager
    def open_output(self, path: str, atomic: bool = True):
        """A stream writing `path`. Atomic (default): written under an `.incoming-` name and
        moved into place when complete, so a failure (a full disk, a killed process) leaves no
        partial file under the real name; the unfinished file is removed."""
        folder, name = path.rsplit("/", 1)
        self.makedirs(folder)
        target = f"{folder}/.incoming-{uuid.uuid4().hex}-{name}" if atomic else path
        try:
            with self.fs.open_output_stream(target) as out:
                yield out
        except BaseException:
            self.discard(target)
            raise
        if atomic:
            self.fs.move(target, path)

    def open_input(self, path: str):
        return self.fs.open_input_file(path)

    def write_bytes(self, path: str, data: bytes) -> None:
        with self.open_output(path) as out:
            out.write(data)

    def read_bytes(self, path: str) -> bytes:
        with self.fs.open_input_stream(path) as src:
            return src.read()

    def write_json(self, path: str, payload: dict) -> None:
        self.write_bytes(path, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())

    def read_json(self, path: str) -> dict:
        return json.loads(self.read_bytes(path))

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def sha256(self, path: str) -> str:
        digest = hashlib.sha256()
        with self.fs.open_input_stream(path) as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def remove_incoming(self, *parts: str) -> list[str]:
        """Delete `.incoming-*` files (writes a dead process left unfinished) under a folder."""
        selector = pafs.FileSelector(self.path(*parts), recursive=True, allow_not_found=True)
        doomed = [
            info.path
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File and info.base_name.startswith(".incoming-")
        ]
        for path in doomed:
            self.discard(path)
        return doomed

    def files(self, folder: str, prefix: str = "", suffix: str = "") -> list[str]:
        """The paths of the files directly in `folder` named `prefix...suffix`, sorted."""
        selector = pafs.FileSelector(folder, allow_not_found=True)
        return sorted(
            info.path
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
            and info.base_name.startswith(prefix)
            and info.base_name.endswith(suffix)
        )

    def folders(self, folder: str) -> list[str]:
        """The names of the folders directly in `folder` (never a symlink), sorted."""
        selector = pafs.FileSelector(folder, allow_not_found=True)
        return sorted(
            info.base_name
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.Directory
            and (self.remote or not Path(info.path).is_symlink())
        )

    def existing(self, paths: list[str]) -> set[str]:
        """Those of `paths` that are files (one listing call)."""
        infos = self.fs.get_file_info(paths) if paths else []
        return {info.path for info in infos if info.type == pafs.FileType.File}

    def discard(self, path: str) -> None:
        """Delete a file or a folder with all it holds, local or object storage, and check
        that nothing is left under that path (retention and erasure both delete this way)."""
        info = self.fs.get_file_info(path)
        if info.type == pafs.FileType.Directory:
            self.fs.delete_dir(path)
        elif info.type != pafs.FileType.NotFound:
            self.fs.delete_file(path)
        if self.exists(path):
            raise OSError(f"{self.uri(path)} is still there after it was deleted")

    def move(self, src: str, dst: str) -> None:
        self.makedirs(dst.rsplit("/", 1)[0])
        self.fs.move(src, dst)

    def copy(self, src: str, dst: str) -> None:
        self.makedirs(dst.rsplit("/", 1)[0])
        self.fs.copy_file(src, dst)
