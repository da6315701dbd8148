"""Errors no retry fixes are recognised and explained in one line; anything else is not."""

import errno

import pyarrow.fs as pafs
import pytest

from pipeline.faults import explain_permanent


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("SCORING_DATA_ROOT", str(root))
    return root


def test_permission_denied_names_the_path_and_the_data_root(data_root):
    path = str(data_root / "snapshots" / "x.parquet")
    message = explain_permanent(PermissionError(errno.EACCES, "Permission denied", path))
    assert message.startswith(f"permission denied on {path} (under the data root ")
    assert "SCORING_DATA_ROOT" in message and "grant" in message
    assert "\n" not in message


def test_a_read_only_file_system_says_so(data_root):
    path = str(data_root / "models")
    message = explain_permanent(OSError(errno.EROFS, "Read-only file system", path))
    assert message.startswith(f"read-only file system: cannot write {path}")
    assert "SCORING_DATA_ROOT" in message


def test_pyarrow_wording_without_a_filename_still_names_the_path(data_root):
    path = f"{data_root}/runs/job"
    pyarrow_style = PermissionError(
        errno.EACCES, f"Cannot create directory '{path}'. Detail: [errno 13] Permission denied"
    )
    assert explain_permanent(pyarrow_style).startswith(f"permission denied on {path} (under")
    read_only = OSError(f"Failed to open local file '{path}'. Detail: Read-only file system")
    assert explain_permanent(read_only).startswith(f"read-only file system: cannot write {path}")


def test_a_real_pyarrow_permission_error_is_recognised():
    """sysfs refuses new directories even to root (EPERM); skipped where it does not."""
    try:
        pafs.LocalFileSystem().create_dir("/sys/scoring-permanent-errors-test", recursive=True)
    except OSError as exc:
        message = explain_permanent(exc)
    else:
        pytest.skip("this system lets us create directories in /sys")
    assert message.startswith("permission denied on /sys/scoring-permanent-errors-test")


def test_a_path_outside_the_data_root_is_not_blamed_on_it(data_root):
    message = explain_permanent(PermissionError(errno.EPERM, "Operation not permitted", "/etc/x"))
    assert message.startswith("permission denied on /etc/x;")


def test_the_cause_of_a_wrapping_error_counts(data_root):
    try:
        try:
            raise PermissionError(errno.EACCES, "Permission denied", str(data_root))
        except PermissionError as exc:
            raise RuntimeError("writing the snapshot failed") from exc
    except RuntimeError as wrapped:
        assert explain_permanent(wrapped).startswith(f"permission denied on {data_root}")


@pytest.mark.parametrize(
    "exc",
    [
        FileNotFoundError(errno.ENOENT, "No such file or directory", "/x"),
        OSError(errno.ECONNRESET, "Connection reset by peer"),
        TimeoutError("timed out"),
        ValueError("Permission denied"),  # the wording alone counts only on an OSError
        RuntimeError("boom"),
    ],
)
def test_errors_a_retry_may_fix_are_not_permanent(exc):
    assert explain_permanent(exc) is None
