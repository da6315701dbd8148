"""Which failures no retry fixes, and the one line that tells a person what to do about them.

Airflow retries a failed task; for missing rights, a read-only file system or a missing table a
retry only delays the failure, so the adapter fails those at once with this module's message.
"""

import errno
import re
import sys
from pathlib import Path

from pipeline.config import data_root, data_root_shown

DENIED = ("Permission denied", "Operation not permitted")
READ_ONLY = "Read-only file system"
NO_SPACE = "No space left on device"
# how pyarrow's S3 filesystem words a refusal (the AWS error code) and a missing bucket
S3_REFUSED = ("ACCESS_DENIED", "INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH")
S3_NO_BUCKET = re.compile(r"Bucket '([^']+)' not found|NO_SUCH_BUCKET")


def explain_permanent(exc: BaseException | None) -> str | None:
    """One line naming what failed and what to do, if `exc` (or its cause) is an error no retry
    fixes: missing rights or a read-only file system on a path, or the warehouse refusing
    (insufficient privilege, read-only transaction, missing table). None for anything else.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        message = explain_object_storage_error(exc) or explain_os_error(exc)
        message = message or explain_sql_error(exc)
        if message:
            return message
        exc = exc.__cause__
    return None


def explain_os_error(exc: BaseException) -> str | None:
    """Rights, a read-only or full file system: Python's OSError, or pyarrow's wording of one."""
    if not isinstance(exc, OSError):
        return None
    text = str(exc)
    if exc.errno == errno.ENOSPC or NO_SPACE in text:
        path = failed_path(exc)
        note = data_root_note(path)
        return (
            f"no space left on the device that holds {path or 'a file being written'}"
            + (f" ({note})" if note else "")
            + "; free space there or point SCORING_DATA_ROOT at a larger volume (retrying "
            "will not help until then); the partial file was removed"
        )
    read_only = exc.errno == errno.EROFS or READ_ONLY in text
    denied = (
        isinstance(exc, PermissionError)
        or exc.errno in (errno.EACCES, errno.EPERM)
        or any(word in text for word in DENIED)
    )
    if not (read_only or denied):
        return None
    path = failed_path(exc)
    note = data_root_note(path)
    target = f"{path} ({note})" if note else path or f"a path ({text})"
    if read_only:
        return (
            f"read-only file system: cannot write {target}; point SCORING_DATA_ROOT at a "
            "writable location or remount it read-write (retrying will not help)"
        )
    return (
        f"permission denied on {target}; grant the user running the pipeline read and write "
        "rights there, or point SCORING_DATA_ROOT at a folder it may write "
        "(retrying will not help)"
    )


def explain_object_storage_error(exc: BaseException) -> str | None:
    """Object storage refusing the keys, or a bucket that does not exist (pyarrow's S3)."""
    if not isinstance(exc, OSError):
        return None
    text = str(exc)
    root = f"SCORING_DATA_ROOT={data_root_shown()}"
    missing = S3_NO_BUCKET.search(text)
    if missing:
        bucket = missing.group(1) or "of the data root"
        return (
            f"object storage: bucket {bucket} does not exist ({root}); create it, or point "
            "SCORING_DATA_ROOT at one that does (retrying will not help)"
        )
    code = next((c for c in S3_REFUSED if c in text), None)
    if code is None:
        return None
    where = re.search(r"key '([^']+)' in bucket '([^']+)'", text)
    target = f"s3://{where.group(2)}/{where.group(1)}" if where else "the data root"
    return (
        f"object storage refused {target} ({code}, {root}): give the keys the pipeline uses "
        "(AWS_ACCESS_KEY_ID) read and write rights on the data "
        "root's prefix (retrying will not help)"
    )


def failed_path(exc: OSError) -> str | None:
    """The path an OSError names: its filename, else the first quoted path in pyarrow's text."""
    if exc.filename:
        return str(exc.filename)
    quoted = re.search(r"'([^']+)'", str(exc))
    return quoted.group(1) if quoted else None


def data_root_note(path: str | None) -> str | None:
    """'under the data root SCORING_DATA_ROOT=...' when `path` is there."""
    if path is None:
        return None
    root = data_root()
    local = "://" not in root
    inside = (
        Path(path).resolve().is_relative_to(Path(root).resolve())
        if local
        else path.startswith(root.split("://", 1)[1])
    )
    return f"under the data root SCORING_DATA_ROOT={data_root_shown()}" if inside else None


def explain_sql_error(exc: BaseException) -> str | None:
    """The warehouse refusing: insufficient privilege, a read-only transaction, a missing table."""
    # imported here, not at the top: DAG files import this module and must not load psycopg2;
    # and when nothing imported psycopg2, exc cannot be one of its errors
    if "psycopg2" not in sys.modules:
        return None
    from psycopg2 import errors

    advice = (
        (
            errors.InsufficientPrivilege,
            "grant the role the pipeline connects as the rights it needs (docs/operations.md "
            "'Roles': scoring_writer, plus SELECT on each source table)",
        ),
        (
            errors.ReadOnlySqlTransaction,
            "the warehouse is read-only (a replica or default_transaction_read_only): point "
            "DATABASE_URL or the Airflow connection 'warehouse' at a writable primary",
        ),
        (
            errors.UndefinedTable,
            "create the table: run `python -m pipeline migrate` for the scoring schema, or fix "
            "the job spec's source.table",
        ),
    )
    for kind, fix in advice:
        if isinstance(exc, kind):
            diag = getattr(exc, "diag", None)
            primary = (diag and diag.message_primary) or " ".join(str(exc).split()) or kind.__name__
            return f"warehouse error: {primary}; {fix} (retrying will not help)"
    return None
