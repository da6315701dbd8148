"""An embedded PostgreSQL (the `pgserver` wheel ships the binaries) for demos and tests.

Used only when `DATABASE_URL` is unset. The server keeps running after the command so an
analyst can query the results; `make stop-db` (or `python -m pipeline stop-db`) stops it.
"""

import logging
import os
from pathlib import Path

from pipeline.config import PROJECT_ROOT

log = logging.getLogger(__name__)

DEFAULT_DIR = PROJECT_ROOT / ".pgdata"


def start(data_dir: Path = DEFAULT_DIR) -> str:
    """Start (or reuse) the embedded server in `data_dir`; returns its URL."""
    import pgserver

    logging.getLogger("pgserver").setLevel(logging.WARNING)  # its handle bookkeeping is noise
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(data_dir), cleanup_mode=None)
    url = server.get_uri()
    log.info("embedded Postgres running in %s", data_dir)
    return url


def bin_dir() -> Path:
    """The folder of the PostgreSQL binaries shipped in the pgserver wheel."""
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def start_for_cli() -> str:
    """Start the embedded server and export its URL as `DATABASE_URL` for Airflow's tasks."""
    log.info("DATABASE_URL is unset: using the embedded Postgres in %s", DEFAULT_DIR)
    os.environ["DATABASE_URL"] = start()
    return os.environ["DATABASE_URL"]


def stop(data_dir: Path = DEFAULT_DIR) -> bool:
    """Stop the embedded server if it runs (fast shutdown); returns whether one was signalled."""
    import signal

    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return False
    return True
