"""The Airflow notifier that sends a job's failure alert (`on_failure_callback`)."""

import logging

from airflow.sdk import BaseNotifier

from pipeline.alerts import notify_failure
from pipeline.config import jobs_dir
from pipeline.spec import JobSpec, find_spec

log = logging.getLogger(__name__)


class FailureNotifier(BaseNotifier):
    """Sends the job's failure alert after a task's last try (or once per failed run, as a DAG
    callback). Holds the spec, or the job's name to look its spec up when it fires."""

    def __init__(self, job: JobSpec | str):
        super().__init__()
        self.job = job

    @property
    def spec(self) -> JobSpec:
        if isinstance(self.job, JobSpec):
            return self.job
        return find_spec(self.job, jobs_dir())

    def notify(self, context) -> None:
        try:
            spec = self.spec
        except Exception:
            log.warning("failure alert for %s not sent: its spec did not load", self.job)
            return
        notify_failure(spec, context)
