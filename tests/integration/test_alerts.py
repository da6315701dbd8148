"""Alerts reach people: a real HTTP receiver and a real SMTP server on 127.0.0.1 get what the
job's `alerts:` asks for, through Airflow connections given as AIRFLOW_CONN_<ID> URIs."""

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from email import message_from_bytes
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from pipeline import alerts
from pipeline.alerts import Alert
from pipeline.spec import JobSpec, load_spec

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2]
TOKEN = "tok-Sekr3t-webhook"
SMTP_LOGIN, SMTP_PASSWORD = "alerts@example.com", "smtp-Pa55-word"
RUN_ID = "scheduled__2026-11-24T02:00:00+00:00"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver(BaseHTTPRequestHandler):
    """Records each POST on its server (`received`) and answers with the server's `status`."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(
            {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
        )
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def webhook():
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    server.received, server.status = [], 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "login": session.auth_data,
                "message": message_from_bytes(envelope.content, policy=email_policy),
            }
        )
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login.decode() == SMTP_LOGIN and auth_data.password.decode() == SMTP_PASSWORD
    login = auth_data.login.decode() if ok else None
    return AuthResult(success=ok, handled=False, auth_data=login)


@pytest.fixture
def smtp():
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticate,
        auth_require_tls=False,  # a test server without TLS; the client is told starttls=false
    )
    controller.start()
    mailbox.port = controller.port
    yield mailbox
    controller.stop()


def spec_with(tmp_path, alerts_section: dict | None) -> JobSpec:
    raw = yaml.safe_load((PROJECT / "dags" / "jobs" / "customer_churn.yaml").read_text())
    raw.pop("alerts", None)
    if alerts_section is not None:
        raw["alerts"] = alerts_section
    path = tmp_path / "customer_churn.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_spec(path)


def smtp_uri(port: int, starttls: bool = False) -> str:
    login = SMTP_LOGIN.replace("@", "%40")
    return (
        f"smtp://{login}:{SMTP_PASSWORD}@127.0.0.1:{port}"
        f"?from=scoring%40example.com&starttls={str(starttls).lower()}"
    )


@pytest.fixture
def both(tmp_path, monkeypatch, webhook, smtp):
    """A spec with both targets, each receiving every kind."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPS_WEBHOOK",
        f"http://:{TOKEN}@127.0.0.1:{webhook.server_address[1]}/hooks/scoring",
    )
    monkeypatch.setenv("AIRFLOW_CONN_OPS_SMTP", smtp_uri(smtp.port))
    spec = spec_with(
        tmp_path,
        {
            "webhook": {"connection": "ops_webhook"},
            "email": {"connection": "ops_smtp", "to": ["oncall@example.com", "ds@example.com"]},
        },
    )
    return spec


def drift_alert(job="customer_churn") -> Alert:
    return Alert(
        job=job,
        kind="drift",
        title="2 features\ndrifted",
        details=["tenure_months: PSI 0.31 > 0.25", "region: 7% unseen categories"],
        run_id=RUN_ID,
        link="http://airflow.example.com/dags/customer_churn/runs/x",
    )


def test_webhook_and_email_receive_the_alert(both, webhook, smtp):
    assert alerts.send(both, drift_alert()) == ["webhook", "email"]

    [hit] = webhook.received
    assert hit["path"] == "/hooks/scoring"
    assert hit["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert hit["headers"]["Content-Type"] == "application/json"
    body = hit["json"]
    assert {k: body[k] for k in ("job", "run_id", "what", "title", "details", "link")} == {
        "job": "customer_churn",
        "run_id": RUN_ID,
        "what": "drift",
        "title": "2 features drifted",  # one line
        "details": ["tenure_months: PSI 0.31 > 0.25", "region: 7% unseen categories"],
        "link": "http://airflow.example.com/dags/customer_churn/runs/x",
    }
    assert "tenure_months: PSI 0.31 > 0.25" in body["text"]

    [mail] = smtp.messages
    assert mail["login"] == SMTP_LOGIN
    assert mail["from"] == "scoring@example.com"
    assert mail["to"] == ["oncall@example.com", "ds@example.com"]
    message = mail["message"]
    assert message["Subject"] == "[scoring] customer_churn: 2 features drifted"
    assert message["To"] == "oncall@example.com, ds@example.com"
    text = message.get_content()
    for part in (
        "what: drift",
        f"run: {RUN_ID}",
        "- tenure_months: PSI 0.31 > 0.25",
        "- region: 7% unseen categories",
        "report: http://airflow.example.com/dags/customer_churn/runs/x",
    ):
        assert part in text


def test_only_the_kinds_a_target_lists_are_sent(tmp_path, monkeypatch, webhook, smtp):
    monkeypatch.setenv(
        "AIRFLOW_CONN_KINDS_HOOK",
        json.dumps(
            {
                "conn_type": "http",
                "extra": {"url": f"http://127.0.0.1:{webhook.server_address[1]}/h?key=K"},
            }
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_KINDS_SMTP", smtp_uri(smtp.port))
    spec = spec_with(
        tmp_path,
        {
            "webhook": {"connection": "kinds_hook", "kinds": ["failure", "validation_warning"]},
            "email": {"connection": "kinds_smtp", "to": ["a@example.com"], "kinds": ["drift"]},
        },
    )
    sent = {
        kind: alerts.send(spec, Alert(job=spec.name, kind=kind, title=f"a {kind}", run_id="r1"))
        for kind in ("failure", "validation_warning", "drift", "performance")
    }
    assert sent == {
        "failure": ["webhook"],
        "validation_warning": ["webhook"],
        "drift": ["email"],
        "performance": [],
    }
    assert [(h["path"], h["json"]["what"]) for h in webhook.received] == [
        ("/h?key=K", "failure"),
        ("/h?key=K", "validation_warning"),
    ]
    assert "Authorization" not in webhook.received[0]["headers"]  # no password, no token
    assert [m["message"]["Subject"] for m in smtp.messages] == ["[scoring] customer_churn: a drift"]


def test_nothing_arrives_when_nothing_is_wrong(both, webhook, smtp):
    """Targets are configured, but no alert is sent and no failure is notified."""
    assert webhook.received == [] and smtp.messages == []


def test_a_job_without_alerts_sends_nothing_and_imports_no_airflow(tmp_path):
    spec = spec_with(tmp_path, None)
    assert spec.alerts.targets("failure") == []
    code = (
        "import sys; from pipeline import alerts; from pipeline.spec import load_spec;"
        f"spec = load_spec({str(tmp_path / 'customer_churn.yaml')!r});"
        "print(alerts.send(spec, alerts.Alert(job=spec.name, kind='drift', title='t')),"
        " alerts.notify_failure(spec, {'run_id': 'r'}),"
        " sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('airflow', 'pandas', 'sklearn', 'pyarrow', 'great_expectations')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[] [] []"


def test_a_dead_or_slow_receiver_only_logs_a_warning(tmp_path, monkeypatch, caplog):
    dead = free_port()  # nothing listens there
    slow = socket.socket()  # accepts connections, never answers
    slow.bind(("127.0.0.1", 0))
    slow.listen(4)
    slow_port = slow.getsockname()[1]
    monkeypatch.setattr(alerts, "TIMEOUT", 1.0)
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEAD_HOOK",
        json.dumps(
            {
                "conn_type": "http",
                "password": TOKEN,
                "extra": {"url": f"http://127.0.0.1:{dead}/hooks/PATH-SECRET?token=Q-SECRET"},
            }
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_DEAD_SMTP", smtp_uri(slow_port))
    spec = spec_with(
        tmp_path,
        {
            "webhook": {"connection": "dead_hook"},
            "email": {"connection": "dead_smtp", "to": ["a@example.com"]},
        },
    )
    caplog.set_level(logging.INFO, logger="pipeline.alerts")
    started = time.monotonic()
    try:
        assert alerts.send(spec, drift_alert()) == []
    finally:
        slow.close()
    assert time.monotonic() - started < 8

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    hook, mail = warnings
    assert hook.startswith("drift alert for customer_churn not sent to webhook ")
    assert f"http://127.0.0.1:{dead} (connection dead_hook)" in hook
    assert f"email smtp://127.0.0.1:{slow_port} (connection dead_smtp)" in mail
    assert "timed out" in mail.lower()
    for secret in (TOKEN, SMTP_PASSWORD, "PATH-SECRET", "Q-SECRET"):
        assert secret not in caplog.text


def test_an_unknown_connection_or_refused_login_only_logs_a_warning(
    tmp_path, monkeypatch, caplog, smtp
):
    wrong = smtp_uri(smtp.port).replace(SMTP_PASSWORD, "wrong-Pa55-word")
    monkeypatch.setenv("AIRFLOW_CONN_WRONG_SMTP", wrong)
    spec = spec_with(
        tmp_path,
        {
            "webhook": {"connection": "no_such_conn"},
            "email": {"connection": "wrong_smtp", "to": ["a@example.com"]},
        },
    )
    caplog.set_level(logging.WARNING, logger="pipeline.alerts")
    assert alerts.send(spec, drift_alert()) == []
    hook, mail = [r.getMessage() for r in caplog.records if r.name == "pipeline.alerts"]
    assert "webhook (connection no_such_conn)" in hook and "isn't defined" in hook
    assert "SMTPAuthenticationError" in mail
    assert "wrong-Pa55-word" not in caplog.text and smtp.messages == []


def test_starttls_is_the_default_so_a_password_never_goes_out_in_clear(
    tmp_path, monkeypatch, caplog, smtp
):
    uri = smtp_uri(smtp.port).replace("&starttls=false", "")
    monkeypatch.setenv("AIRFLOW_CONN_PLAIN_SMTP", uri)
    spec = spec_with(tmp_path, {"email": {"connection": "plain_smtp", "to": ["a@example.com"]}})
    caplog.set_level(logging.WARNING, logger="pipeline.alerts")
    assert alerts.send(spec, drift_alert()) == []
    assert "STARTTLS" in caplog.text and smtp.messages == []


def failure_context(spec: JobSpec) -> dict:
    """What Airflow 3 passes a task's on_failure_callback (the parts the notifier reads)."""
    ti = SimpleNamespace(
        dag_id=spec.name,
        task_id="score",
        map_index=2,
        try_number=3,
        run_id=RUN_ID,
        log_url=f"http://airflow.example.com/dags/{spec.name}/runs/{RUN_ID}/tasks/score/mapped/2",
    )
    error = RuntimeError(
        "could not connect to postgresql://scorer:hunter2-pw@db.internal:5432/warehouse"
    )
    return {
        "dag": None,
        "run_id": RUN_ID,
        "dag_run": SimpleNamespace(run_id=RUN_ID, dag_id=spec.name),
        "ti": ti,
        "task_instance": ti,
        "task": SimpleNamespace(task_id="score"),
        "exception": error,
        "logical_date": None,
        "params": {},
    }


def test_failure_notifier_sends_the_failure_with_the_exception_redacted(both, webhook, smtp):
    from airflow.sdk import BaseNotifier

    from pipeline.orchestration.notifier import FailureNotifier

    notifier = FailureNotifier(both)
    assert isinstance(notifier, BaseNotifier)
    notifier(failure_context(both))  # as Airflow calls it: __call__ -> notify

    [hit] = webhook.received
    body = hit["json"]
    assert body["what"] == "failure" and body["job"] == "customer_churn"
    assert body["run_id"] == RUN_ID
    assert body["title"] == "task score[2] failed"
    assert body["details"] == [
        "task: score[2]",
        "attempt: 3",
        "error: RuntimeError: could not connect to "
        "postgresql://scorer:***@db.internal:5432/warehouse",
    ]
    assert body["link"].endswith("/tasks/score/mapped/2")
    [mail] = smtp.messages
    assert mail["message"]["Subject"] == "[scoring] customer_churn: task score[2] failed"
    assert "scorer:***@db.internal" in mail["message"].get_content()
    assert "hunter2-pw" not in json.dumps(body) + mail["message"].as_string()


def test_failure_notifier_as_a_dag_callback_and_by_job_name(both, webhook, smtp):
    """A DAG's on_failure_callback gets the run id and a reason, no exception."""
    from pipeline.orchestration.notifier import FailureNotifier

    FailureNotifier(both).notify({"dag": None, "run_id": RUN_ID, "reason": "task_failure"})
    [hit] = webhook.received
    assert hit["json"]["title"] == "run failed"
    assert hit["json"]["details"] == ["reason: task_failure"]
    assert len(smtp.messages) == 1

    # by name, the spec in dags/jobs/ (which configures no alerts): nothing is sent
    FailureNotifier("customer_churn").notify(failure_context(both))
    assert len(webhook.received) == 1 and len(smtp.messages) == 1


def test_the_spec_refuses_incomplete_targets(tmp_path):
    from pipeline.errors import SpecError

    for section, message in (
        ({"email": {"connection": "ops_smtp"}}, "list the recipients in 'to'"),
        ({"email": {"to": ["a@example.com"]}}, "name the SMTP server's Airflow connection"),
        ({"email": {"connection": "s", "to": ["nobody"]}}, "'nobody' is not an email address"),
        ({"webhook": {"connection": "h", "kinds": []}}, "list at least one kind"),
        ({"webhook": {"connection": "h", "kinds": ["outage"]}}, "alerts.webhook.kinds[0]"),
        ({"webhook": {"connection": "bad id"}}, "is not an Airflow connection id"),
        ({"webhook": "ops_webhook"}, "alerts.webhook"),
    ):
        with pytest.raises(SpecError) as raised:
            spec_with(tmp_path, section)
        assert message in str(raised.value), (section, str(raised.value))
