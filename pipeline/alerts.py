"""Alerts that reach people: a webhook and/or an email per alert, as the job's `alerts:` says.

A job spec's `alerts` (pipeline/spec/sections.py: Alerts, docs/jobs.md "Alerts") names Airflow
connections; each target has a `kinds` list of the alerts it receives: `failure`,
`validation_warning`, `drift`, `performance`. A job without `alerts` sends nothing, and this
module then imports nothing from Airflow (`Connection`, to read a target's connection, is
imported when an alert is sent).

What to call:

- From a stage that found something wrong (validate: warnings; monitor: drift, realised
  performance), once per run and kind, only when there is something to say::

      from pipeline import alerts

      alerts.send(ctx.spec, alerts.Alert(
          job=ctx.spec.name, kind="drift", run_id=ctx.run.run_id,
          title="3 features drifted", details=["age: PSI 0.31 > 0.25", ...],
          link=alerts.run_link(ctx.spec.name, ctx.run.run_id),
      ))

  `send` never raises for a target that cannot be reached (it logs a warning naming the
  target, redacted) and returns the targets that took the alert.

- For failures, in the DAG builder (pipeline/orchestration/), one notifier per job::

      from pipeline.orchestration.notifier import FailureNotifier

      default_args["on_failure_callback"] = FailureNotifier(spec)   # each task's final failure
      # or DAG(..., on_failure_callback=FailureNotifier(spec))      # once per failed run

  As a task callback (`default_args`), the alert names the task and its exception (redacted);
  it runs in the task's process after its last retry, and a failing mapped task alerts once per
  map index. As a DAG callback it runs in the DAG processor once per failed run, and Airflow
  passes the failure's reason and the last task, not the exception.

Deliveries time out after `TIMEOUT` seconds. Passwords and tokens come from the connections only;
what is logged about a target is its kind, connection id and host, never a path, query string
(webhook URLs often hold a token there) or password.
"""

import json
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import quote, urlsplit
from urllib.request import Request, urlopen

from pipeline.config import airflow_ui_url
from pipeline.redaction import redact
from pipeline.spec import ALERT_KINDS, EmailAlerts, JobSpec, WebhookAlerts

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds, per delivery
MAX_DETAIL = 2000  # characters of one detail line (an exception's text may be long)
SUBJECT_PREFIX = "[scoring]"
QUERY = re.compile(r"\?[^'\"\n]*")  # from a ? to the end of the quoted URL or the line


@dataclass(frozen=True)
class Alert:
    """One thing people should know about a job's run.

    `title` is one line; `details` are lines of plain text; `link` points to the run's report
    (the Airflow UI) when known. Passwords in any of them are masked on construction.
    """

    job: str
    kind: str  # one of pipeline.spec.ALERT_KINDS
    title: str
    details: tuple[str, ...] = ()
    run_id: str | None = None
    link: str | None = None

    def __post_init__(self):
        if self.kind not in ALERT_KINDS:
            raise ValueError(f"alert kind {self.kind!r} is not one of {list(ALERT_KINDS)}")
        title = redact(" ".join(str(self.title).split()))
        lines = (self.details,) if isinstance(self.details, str) else self.details
        details = tuple(redact(str(line))[:MAX_DETAIL] for line in lines)
        object.__setattr__(self, "title", title)
        object.__setattr__(self, "details", details)

    def payload(self) -> dict:
        """The webhook's JSON: job, run_id, what, title, details, link, and `text` (the same
        as plain text, which chat webhooks such as Slack's or Mattermost's display)."""
        return {
            "job": self.job,
            "run_id": self.run_id,
            "what": self.kind,
            "title": self.title,
            "details": list(self.details),
            "link": self.link,
            "text": self.text(),
        }

    def subject(self) -> str:
        return f"{SUBJECT_PREFIX} {self.job}: {self.title}"

    def text(self) -> str:
        """The alert as plain text: the email's body."""
        lines = [
            f"{self.job}: {self.title}",
            "",
            f"what: {self.kind}",
            f"job: {self.job}",
            f"run: {self.run_id or '-'}",
        ]
        if self.details:
            lines += ["", *(f"- {line}" for line in self.details)]
        if self.link:
            lines += ["", f"report: {self.link}"]
        return "\n".join(lines) + "\n"


def send_for_run(spec: JobSpec, run_id: str, kind: str, title: str, details) -> list[str]:
    """`send` what a run's stage found, with the link to the run; the stages' one way to alert."""
    alert = Alert(
        job=spec.name,
        kind=kind,
        title=title,
        details=tuple(details),
        run_id=run_id,
        link=run_link(spec.name, run_id),
    )
    return send(spec, alert)


def send(spec: JobSpec, alert: Alert) -> list[str]:
    """Deliver `alert` to each of the job's targets whose `kinds` include its kind.

    Returns the targets that took it (`webhook`, `email`). A target that cannot be reached or
    refuses the alert is logged as a warning; this never raises for it.
    """
    delivered = []
    for target in spec.alerts.targets(alert.kind):
        if target.connection is None:
            continue
        name = "webhook" if isinstance(target, WebhookAlerts) else "email"
        where = f"{name} (connection {target.connection})"
        try:
            conn = _connection(target.connection)
            where = f"{name} {redact(_describe(name, conn))} (connection {target.connection})"
            if isinstance(target, WebhookAlerts):
                _post(conn, alert)
            else:
                _mail(conn, target, alert)
        except Exception as exc:  # a receiver down, a timeout, a bad connection: never the run's
            log.warning(
                "%s alert for %s not sent to %s: %s: %s",
                alert.kind,
                alert.job,
                where,
                type(exc).__name__,
                without_queries(redact(str(exc))),
            )
            continue
        log.info("%s alert for %s sent to %s", alert.kind, alert.job, where)
        delivered.append(name)
    return delivered


def without_queries(text: str) -> str:
    """`text` with every URL query string hidden: webhook URLs often carry a token there, and
    an error about a URL (one with a space, say) may quote it."""
    return QUERY.sub("?(query hidden)", text)


def run_link(job: str, run_id: str | None) -> str | None:
    """The run's page in the Airflow UI, when Airflow's `[api] base_url` is set; else None."""
    base = airflow_ui_url()
    if not run_id or not base:
        return None
    return f"{base}/dags/{quote(job)}/runs/{quote(run_id)}"


def failure_alert(spec: JobSpec, context: dict) -> Alert:
    """The failure alert for an Airflow callback's context (task or DAG callback)."""
    ti = context.get("task_instance") or context.get("ti")
    dag_run = context.get("dag_run")
    run_id = context.get("run_id") or getattr(dag_run, "run_id", None)
    task_id = getattr(ti, "task_id", None)
    map_index = getattr(ti, "map_index", None)
    if task_id and isinstance(map_index, int) and map_index >= 0:
        task_id = f"{task_id}[{map_index}]"
    exc = context.get("exception")
    reason = context.get("reason")
    title = f"task {task_id} failed" if task_id else "run failed"
    details = []
    if task_id:
        details.append(f"task: {task_id}")
        try_number = getattr(ti, "try_number", None)
        if isinstance(try_number, int):
            details.append(f"attempt: {try_number}")
    if exc is not None:
        text = str(exc).strip()
        details.append(f"error: {type(exc).__name__}" + (f": {text}" if text else ""))
    if reason:
        details.append(f"reason: {reason}")
    link = None
    try:
        link = getattr(ti, "log_url", None) if ti is not None else None
    except Exception:  # the URL needs Airflow's config; the alert does not
        link = None
    return Alert(
        job=spec.name,
        kind="failure",
        title=title,
        details=tuple(details),
        run_id=run_id,
        link=link if isinstance(link, str) else run_link(spec.name, run_id),
    )


def notify_failure(spec: JobSpec, context: dict) -> list[str]:
    """Send the failure alert for a callback's context; never raises."""
    if not spec.alerts.targets("failure"):
        return []
    try:
        alert = failure_alert(spec, context)
    except Exception:
        log.warning("failure alert for %s not built", spec.name, exc_info=True)
        return []
    return send(spec, alert)


def _connection(conn_id: str):
    """The Airflow connection (metadata DB, secrets backend, or AIRFLOW_CONN_<ID>)."""
    from airflow.sdk import Connection

    return Connection.get(conn_id)


def _extra(conn) -> dict:
    extra = conn.extra_dejson
    return extra if isinstance(extra, dict) else {}


def _flag(value, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def webhook_url(conn) -> str:
    """The webhook's URL: the connection's extra `url`, else built from its parts."""
    url = _extra(conn).get("url")
    if url:
        return str(url)
    if not conn.host:
        raise ValueError("the connection has neither a host nor an extra 'url'")
    scheme = conn.conn_type if conn.conn_type in ("http", "https") else "https"
    port = f":{conn.port}" if conn.port else ""
    path = (conn.schema or "").lstrip("/")
    return f"{scheme}://{conn.host}{port}/{path}"


def _describe(name: str, conn) -> str:
    """Where a target is, for the log: scheme, host and port only (no path, query or login)."""
    if name == "webhook":
        try:
            parts = urlsplit(webhook_url(conn))
            return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        except ValueError:
            return "(no URL)"
    return f"smtp://{conn.host}" + (f":{conn.port}" if conn.port else "")


def _post(conn, alert: Alert) -> None:
    headers = {"Content-Type": "application/json", "User-Agent": "nightly-scoring-alerts"}
    extra_headers = _extra(conn).get("headers") or {}
    if isinstance(extra_headers, str):
        extra_headers = json.loads(extra_headers)
    headers.update({str(k): str(v) for k, v in extra_headers.items()})
    if conn.password:
        headers["Authorization"] = f"Bearer {conn.password}"
    body = json.dumps(alert.payload()).encode()
    request = Request(webhook_url(conn), data=body, headers=headers, method="POST")
    with urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 (the URL is the operator's)
        response.read()  # an HTTP error status raises HTTPError


def _mail(conn, target: EmailAlerts, alert: Alert) -> None:
    extra = _extra(conn)
    if not conn.host:
        raise ValueError("the SMTP connection has no host")
    sender = extra.get("from") or extra.get("from_email")
    if not sender and conn.login and "@" in conn.login:
        sender = conn.login
    if not sender:
        raise ValueError("the SMTP connection has no extra 'from' (and its login is no address)")
    message = EmailMessage()
    message["Subject"] = alert.subject()
    message["From"] = sender
    message["To"] = ", ".join(target.to)
    message.set_content(alert.text())
    implicit_tls = _flag(extra.get("ssl"), False)
    smtp: smtplib.SMTP
    if implicit_tls:
        smtp = smtplib.SMTP_SSL(
            conn.host, conn.port or 465, timeout=TIMEOUT, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(conn.host, conn.port or 25, timeout=TIMEOUT)
    with smtp:
        if not implicit_tls and _flag(extra.get("starttls"), True):
            smtp.starttls(context=ssl.create_default_context())
        if conn.login:
            smtp.login(conn.login, conn.password or "")
        smtp.send_message(message, to_addrs=list(target.to))
