"""`python -m pipeline demo --drift` as a person runs it: three runs through real Airflow on a
fresh database, printing drift alerts, realised performance, the retrain they cause, what the
command's own webhook receiver got and where each run's report is."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT, scratch_database

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

# Airflow's own log lines (structlog, on stdout too): `2026-11-25T21:32:33.12Z [info     ] ...`
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[")
HEADER = re.compile(r"^job customer_churn  run (\S+)  status (\w+)  \(")
WEBHOOK = re.compile(r"^the webhook at (http://127\.0\.0\.1:\d+/alerts) received (\d+) alert")


@pytest.fixture
def fresh_database(server_url):
    """An empty database of its own: the demo migrates it and creates its tables."""
    with scratch_database(server_url, "scoring_demo") as url:
        yield url


def printed(stdout: str) -> list[str]:
    """What the command printed itself, without the task logs Airflow writes beside it."""
    return [line for line in stdout.splitlines() if not LOG_LINE.match(line)]


def run_blocks(lines: list[str]) -> list[tuple[str, str, list[str]]]:
    """(run id, status, summary lines) of each printed run summary, in order."""
    blocks = []
    for i, line in enumerate(lines):
        found = HEADER.match(line)
        if found:
            end = lines.index("=" * 72, i)
            blocks.append((found[1], found[2], lines[i + 1 : end]))
    return blocks


def test_drift_demo_shows_alerts_performance_retrain_webhook_and_reports(
    fresh_database, airflow_db, tmp_path
):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORING_")}
    env["AIRFLOW__API__BASE_URL"] = ""  # no UI to link to: report links are file paths
    env.update(DATABASE_URL=fresh_database, SCORING_DATA_ROOT=str(tmp_path))
    assert env["AIRFLOW_HOME"] == str(airflow_db)  # the session's home, its DB migrated
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "demo", "--drift"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "XCom not found" not in done.stdout  # mapped results are read by index, no probing
    lines = printed(done.stdout)

    runs = run_blocks(lines)
    assert [status for _, status, _ in runs] == ["PUBLISHED"] * 3, lines
    (first, _, run1), (second, _, run2), (_, _, run3) = runs

    # run 1: as usual
    assert "drift: nothing above its thresholds; no performance alert" in run1
    assert not any(line.startswith("ALERTS") for line in run1)

    # run 2: drift alerts on exactly the shifted features, the unseen category and the score
    items = [
        line.removeprefix("  [drift] ").replace(":", "", 1)
        for line in run2
        if line.startswith("  [drift] ")
    ]
    assert {item.split(" ")[0] for item in items} == {
        "(score)",
        "last_login_days",
        "monthly_charges",
        "payment_method",
    }
    for statistic in (
        "monthly_charges psi",
        "last_login_days psi",
        "payment_method unseen_share",
    ):
        assert any(item.startswith(f"{statistic} ") for item in items), (statistic, items)
    unseen = next(i for i in items if i.startswith("payment_method unseen_share "))
    assert float(unseen.split(" ")[2]) == pytest.approx(1 / 8, abs=0.01)  # every 8th customer
    # ... and judges run 1 on the labels that arrived since
    realised = [line for line in run2 if line.startswith(f"realised roc_auc of run {first} ")]
    assert len(realised) == 1, run2
    assert re.fullmatch(
        rf"realised roc_auc of run {re.escape(first)} \(v1\): 0\.\d{{4}}, holdout 0\.\d{{4}},"
        r" worse by -?0\.\d{4} \(tolerance 0\.05\); labelled [\d,]+ of [\d,]+ eligible",
        realised[0],
    )
    assert "the next run retrains (retrain.policy on_drift)" in run2

    # run 3: retrains because of run 2's alerts
    [retrain] = [line for line in run3 if line.startswith("retrain: ")]
    assert retrain.startswith(f"retrain: retrain.policy on_drift: alerts since run {second}: ")
    assert "monthly_charges" in retrain and "last_login_days" in retrain
    assert any(line.startswith("model: ") and "candidate v2" in line for line in run3), run3

    # what the webhook received, as the command lists it
    [start] = [i for i, line in enumerate(lines) if WEBHOOK.match(line)]
    count = int(WEBHOOK.match(lines[start])[2])
    received = [line for line in lines[start + 1 :] if line.startswith("  [")]
    assert len(received) == count
    kinds = [line.split("]")[0].removeprefix("  [") for line in received]
    assert kinds.count("drift") == 1 and set(kinds) <= {"drift", "validation_warning"}, kinds
    [drift] = [line for line in received if line.startswith("  [drift] ")]
    assert drift == "  [drift] drift on (score), last_login_days, monthly_charges, payment_method"
    details = []
    for line in lines[lines.index(drift) + 1 :]:
        if not line.startswith("      "):
            break
        details.append(line.strip())
    assert any(d.startswith("payment_method: unseen_share 0.1") for d in details), details
    assert any(d.startswith("monthly_charges: psi ") for d in details), details

    # a report per run, each a file that exists under the data root
    reports = [line.removeprefix("report: ") for line in lines if line.startswith("report: ")]
    assert len(reports) == 3, reports
    for report in reports:
        path = Path(report)
        assert path.is_file() and path.is_relative_to(tmp_path), report
        assert path.name == "report.html" and path.stat().st_size > 0
