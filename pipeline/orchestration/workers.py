"""The name Airflow records as the host of each task (`[core] hostname_callable`)."""

import os
import socket


def hostname() -> str:
    """`SCORING_WORKER_NAME` where several workers share a machine, else the host's name."""
    return os.environ.get("SCORING_WORKER_NAME") or socket.getfqdn()
