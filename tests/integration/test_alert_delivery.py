"""Alerts from whole runs reach a real webhook receiver and a real SMTP server.

The job's spec (in the `jobs` folder) names both targets, each taking every kind, through
Airflow connections given as AIRFLOW_CONN_<ID> URIs. The receivers are test_alerts.py's.
A run that has nothing to say sends nothing; drift, a realised-performance drop and a failed
task each send exactly their alert, with what a person needs to read in it.
"""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import test_alerts
import yaml
from test_monitoring import ROWS, churn_spec, people_job, run_after_drift_on_two_features

from helpers import query, run_stages
from pipeline import alerts
from pipeline.alerts import MAX_DETAIL
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.spec import ALERT_KINDS, load_spec

pytestmark = pytest.mark.integration

# the receivers: an HTTP server keeping each POST, an aiosmtpd server keeping each message
webhook = test_alerts.webhook
smtp = test_alerts.smtp

TO = ["oncall@example.com", "ds@example.com"]
ALERTS = {
    "webhook": {"connection": "ops_webhook"},
    "email": {"connection": "ops_smtp", "to": TO},
}
SETTLE = 1.0  # seconds to wait before saying that nothing (more) arrived


@pytest.fixture
def targets(monkeypatch, webhook, smtp):
    """The Airflow connections of both targets, pointing at the local receivers."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPS_WEBHOOK",
        f"http://:{test_alerts.TOKEN}@127.0.0.1:{webhook.server_address[1]}/hooks/scoring",
    )
    monkeypatch.setenv("AIRFLOW_CONN_OPS_SMTP", test_alerts.smtp_uri(smtp.port))
    return webhook, smtp


def delivered(webhook, smtp) -> tuple[list[dict], list]:
    """What the receivers hold, once deliveries had a moment to land."""
    time.sleep(SETTLE)
    return [hit["json"] for hit in webhook.received], [m["message"] for m in smtp.messages]


def by_kind(bodies: list[dict], messages: list) -> tuple[dict, dict]:
    """Webhook bodies and emails, by kind (an email's kind is the `what:` line of its body)."""
    hooks: dict[str, list[dict]] = {}
    for body in bodies:
        hooks.setdefault(body["what"], []).append(body)
    mails: dict[str, list] = {}
    for message in messages:
        kind = next(
            line.removeprefix("what: ")
            for line in message.get_content().splitlines()
            if line.startswith("what: ")
        )
        mails.setdefault(kind, []).append(message)
    return hooks, mails


def subject(message) -> str:
    """The Subject as a mail client shows it. A subject longer than a header line is folded
    onto a continuation line ("Subject:\\r\\n [scoring] ..."), which Python's parser reads back
    with the leading space that clients drop."""
    return str(message["Subject"]).strip()


def assert_same_alert(body: dict, message, run_id: str) -> None:
    """The email says what the webhook's JSON says; both are addressed as the spec says."""
    assert body["run_id"] == run_id
    assert subject(message) == f"[scoring] {body['job']}: {body['title']}"
    assert message["To"] == ", ".join(TO)
    assert message["From"] == "scoring@example.com"
    text = message.get_content().replace("\r\n", "\n")  # as sent over SMTP: CRLF lines
    assert text.startswith(f"{body['job']}: {body['title']}\n")
    assert f"what: {body['what']}\n" in text and f"run: {run_id}\n" in text
    for line in body["details"]:
        assert f"- {line}\n" in text
    assert body["text"] == text  # the chat text is the email's body


def test_a_clean_run_sends_nothing_to_either_target(warehouse, jobs, targets):
    webhook, smtp = targets
    seed_table(warehouse, "demo.customers", ROWS)
    spec = churn_spec(jobs, alerts=ALERTS)
    for kind in ALERT_KINDS:  # both targets would take any alert
        assert len(spec.alerts.targets(kind)) == 2, kind

    first = run_stages(warehouse, spec, demo_as_of(), "run-1")  # no champion: trains
    later = demo_as_of() + timedelta(seconds=1)
    second = run_stages(warehouse, spec, later, "run-2", retrain=False)

    for result in (first, second):
        assert result["publish"] is not None
        assert result["monitor"]["alerts"] == [] and result["monitor"]["performance_alerts"] == []
        assert all(result[v]["success"] for v in ("validate_training", "validate_scoring"))
    assert query(
        warehouse,
        "SELECT count(*) FROM scoring.validation_results WHERE warnings_failed > 0",
    ) == [(0,)]
    assert delivered(webhook, smtp) == ([], [])


def test_drift_on_two_features_sends_one_drift_alert_to_each_target(warehouse, jobs, targets):
    """region gets a category training never had for 30% of rows, has_partner is NULL for 40%.

    Both also break the suites' `mostly` bounds (region's value set, has_partner's NULL share),
    which are warnings: each validated snapshot (training and scoring) sends one
    validation_warning alert naming them. The drift alert comes once, from monitor.
    """
    webhook, smtp = targets
    seed_table(warehouse, "demo.customers", ROWS)
    spec = churn_spec(jobs, alerts=ALERTS)
    run_stages(warehouse, spec, demo_as_of(), "run-1")
    assert delivered(webhook, smtp) == ([], [])

    result = run_after_drift_on_two_features(warehouse, spec)
    assert result["monitor"]["alerts"] == ["has_partner", "region"]

    bodies, messages = delivered(webhook, smtp)
    hooks, mails = by_kind(bodies, messages)
    # in the order the stages ran: validate_training, validate_scoring, monitor
    assert [(b["what"], b["title"]) for b in bodies] == [
        ("validation_warning", "2 validation warning(s) in the training snapshot"),
        ("validation_warning", "2 validation warning(s) in the scoring snapshot"),
        ("drift", "drift on has_partner, region"),
    ]
    assert [subject(m) for m in messages] == [
        "[scoring] customer_churn: 2 validation warning(s) in the training snapshot",
        "[scoring] customer_churn: 2 validation warning(s) in the scoring snapshot",
        "[scoring] customer_churn: drift on has_partner, region",
    ]
    assert sorted(hooks) == sorted(mails) == ["drift", "validation_warning"]
    for hit in webhook.received:
        assert hit["path"] == "/hooks/scoring"
        assert hit["headers"]["Authorization"] == f"Bearer {test_alerts.TOKEN}"

    # drift: one line per statistic above its threshold, exactly the stored figures
    [drift] = hooks["drift"]
    stored = query(
        warehouse,
        "SELECT feature, statistic, value, threshold FROM scoring.drift_reports"
        " WHERE run_id = 'run-2' AND level = 'alert'",
    )
    assert {row[0] for row in stored} == {"has_partner", "region"}
    assert sorted(drift["details"]) == sorted(
        f"{feature}: {statistic} {value:.3f} > {threshold}"
        for feature, statistic, value, threshold in stored
    )
    figures = {f"{feature}.{statistic}": value for feature, statistic, value, _ in stored}
    assert figures["region.unseen_share"] == pytest.approx(0.3, abs=0.01)
    assert figures["has_partner.null_rate_change"] == pytest.approx(0.35, abs=0.03)
    assert any(line.startswith("region: unseen_share 0.3") for line in drift["details"])
    assert any(line.startswith("has_partner: null_rate_change ") for line in drift["details"])
    [drift_mail] = mails["drift"]
    assert_same_alert(drift, drift_mail, "run-2")
    # the run's page in the Airflow UI when a base_url is configured (an earlier test's stack
    # may have set one in this session), else no link
    assert drift["link"] == alerts.run_link("customer_churn", "run-2")

    # validation warnings: the failed warning-level expectations of each suite, as stored
    warned = zip(hooks["validation_warning"], mails["validation_warning"], strict=True)
    for (body, message), kind in zip(warned, ("training", "scoring"), strict=True):
        [(failures,)] = query(
            warehouse,
            "SELECT failures FROM scoring.validation_results WHERE run_id = 'run-2' AND suite = %s",
            (f"customer_churn.{kind}",),
        )
        assert body["details"] == [
            f["message"][:MAX_DETAIL] for f in failures if f["severity"] == "warning"
        ]
        assert {f["column"] for f in failures} == {"region", "has_partner"}
        region, partner = sorted(body["details"], key=lambda line: "has_partner" in line)
        assert region.startswith("expect_column_values_to_be_in_set; column 'region'")
        assert "'arctic'" in region
        assert partner.startswith("expect_column_values_to_not_be_null; column 'has_partner'")
        assert_same_alert(body, message, "run-2")


def test_a_realised_performance_drop_sends_a_performance_alert(warehouse, jobs, targets):
    """Late labels contradict what run 1's model learned: the next run judges run 1 on them."""
    webhook, smtp = targets
    path = Path(people_job(warehouse, jobs, min_labelled=400).path)
    raw = yaml.safe_load(path.read_text())
    raw["alerts"] = ALERTS
    path.write_text(yaml.safe_dump(raw))
    spec = load_spec(path)
    as_of = datetime(2026, 3, 1, tzinfo=UTC)
    run_stages(warehouse, spec, as_of, "run-1")
    assert delivered(webhook, smtp) == ([], [])

    query(
        warehouse,
        "UPDATE perf.people SET bought = NOT (x + (person_id % 7) > 8) WHERE bought IS NULL",
    )
    result = run_stages(warehouse, spec, as_of + timedelta(days=1), "run-2", retrain=False)
    assert result["monitor"]["alerts"] == []
    [line] = result["monitor"]["performance_alerts"]

    bodies, messages = delivered(webhook, smtp)
    [body] = bodies
    [message] = messages
    value, holdout, labelled = query(
        warehouse,
        "SELECT value, holdout, labelled FROM scoring.model_performance"
        " WHERE run_id = 'run-1' AND metric = 'roc_auc' AND alert",
    )[0]
    assert labelled == 500 and value < holdout - 0.05
    assert body["what"] == "performance" and body["job"] == "people"
    assert body["title"] == "realised performance dropped for 1 run(s)"
    assert body["details"] == [line]
    assert line == (
        f"run run-1 (v1) roc_auc {value:.4f} vs holdout {holdout:.4f}: worse by "
        f"{holdout - value:.4f} > tolerance 0.05 (labelled 500 of 500 eligible)"
    )
    assert_same_alert(body, message, "run-2")


def airflow_states(dag_id: str, logical_date: datetime) -> dict[str, str]:
    """Task id -> state of the DAG run at `logical_date` (one entry per task id)."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        dag_run = session.query(DagRun).filter_by(dag_id=dag_id, logical_date=logical_date).one()
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}


@pytest.mark.airflow
@pytest.mark.slow
def test_a_failed_task_through_airflow_sends_the_failure_alert(
    warehouse, jobs, airflow_db, targets
):
    """A run through real Airflow whose scoring snapshot fails a critical expectation:
    `validate_scoring` fails at once (no retry fixes data) and its on_failure_callback
    (FailureNotifier, which build_dag attaches when the spec has failure targets) sends the
    alert. Tasks downstream never run (upstream_failed), so they send nothing.

    Airflow 3's `dag.test` runs each task in this process through the worker's own task
    runner (supervisor.run_task_in_process: task_runner.run, then finalize), and finalize
    calls on_failure_callback with the exception in the context, as on a worker: this is
    the callback path of a deployment, not a simulation of it.
    """
    from pipeline.orchestration.dags import run_once

    webhook, smtp = targets
    seed_table(warehouse, "demo.customers", 3_000)
    churn_spec(jobs, alerts=ALERTS)
    # five customers without an outcome yet (so only in the scoring snapshot) get an
    # infinite charge: the scoring suite's critical bound on monthly_charges fails
    query(
        warehouse,
        "UPDATE demo.customers SET monthly_charges = 'Infinity' WHERE customer_id IN"
        " (SELECT customer_id FROM demo.customers WHERE churned IS NULL"
        "  ORDER BY customer_id LIMIT 5)",
    )
    logical_date = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    assert run_once("customer_churn", logical_date, {"as_of": None}) == "failed"

    states = airflow_states("customer_churn", logical_date)
    assert [task for task, state in states.items() if state == "failed"] == ["validate_scoring"]
    assert states["validate_training"] == "success"
    run_id, status, error = query(
        warehouse, "SELECT run_id, status, error FROM scoring.scoring_runs"
    )[0]
    assert status == "failed" and error.startswith("validate_scoring: ")
    assert "monthly_charges" in error and "critical" in error

    bodies, messages = delivered(webhook, smtp)
    [body] = bodies
    [message] = messages
    assert body["what"] == "failure" and body["job"] == "customer_churn"
    assert body["title"] == "task validate_scoring failed"
    assert body["details"] == [
        "task: validate_scoring",
        "attempt: 1",
        f"error: AirflowFailException: {error.removeprefix('validate_scoring: ')}"[:MAX_DETAIL],
    ]
    assert "monthly_charges" in body["details"][2]
    assert f"/dags/customer_churn/runs/{quote(run_id)}/tasks/validate_scoring" in body["link"]
    assert_same_alert(body, message, run_id)
    assert webhook.received[0]["headers"]["Authorization"] == f"Bearer {test_alerts.TOKEN}"
