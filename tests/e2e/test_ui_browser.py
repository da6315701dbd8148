"""A newcomer's way through Airflow's UI, in headless Chromium at 1400x900: sign in with the
password `airflow_stack` made, open customer_churn (its DAG made paused by a CLI run before the
stack started, as after `make demo`: the stack unpaused it), press Trigger, set retrain=never
in the form, submit; the run's Grid and Graph, the publish task's log with the run's summary;
then "Scoring files" from the UI's navigation, and from it the run's report, a Data Docs page
and the model card, each in the UI's frame. Each page's content is checked and screenshotted.

The browser is Debian's (`apt-get install chromium`; the Makefile's venv rule does it), driven
by Playwright; no browser is ever downloaded. The test owns the Airflow stack it starts and
always stops it. Screenshots of each step are kept under the test's tmp path, which it prints.
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from playwright.sync_api import FrameLocator, Page

from helpers import query
from pipeline.local import airflow_home, airflow_stack
from pipeline.local.demo_data import seed_table
from pipeline.reports.summary import WIDTH
from pipeline.warehouse import models

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

JOB = "customer_churn"
ROWS = 3_000
UI_TIMEOUT_MS = 60_000  # one page step, generous for a busy 2-core machine
RUN_DEADLINE_S = 480  # the scheduled run the unpause starts, then ours
VIEWPORT = {"width": 1400, "height": 900}
APPROVER = "risk-officer"


def api(login: airflow_stack.Login, path: str, token: str | None = None, body=None) -> dict:
    """One call of the api-server's REST API (JSON in, JSON out)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{login.url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def wait_for(what: str, probe, deadline: float, every_s: float = 3):
    """Poll `probe` until it returns a truthy value; fail naming `what` at the deadline."""
    last = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except OSError as exc:  # the api-server restarting, a 404 before the DAG is parsed
            value, last = None, exc
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


def made_paused_by_a_cli_run() -> None:
    """The job's DAG in the metadata DB, paused, as a CLI run (`make demo`) leaves it."""
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True)
    airflow_home.ensure_metadata_db()
    airflow = str(Path(sys.executable).parent / "airflow")
    env = {**os.environ, "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True"}
    done = subprocess.run(
        [airflow, "dags", "reserialize"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture
def airflow(warehouse, jobs, tmp_path, monkeypatch):
    """`airflow_stack` (api-server, scheduler, dag-processor, triggerer; LocalExecutor) on a
    free port with a private AIRFLOW_HOME, serving only a small customer_churn."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))  # before start() reads it
    seed_table(warehouse, "demo.customers", ROWS)
    for other in jobs.glob("*.yaml"):  # other jobs' scheduled runs would fail on unseeded tables
        if other.stem != JOB:
            other.unlink()
    path = jobs / f"{JOB}.yaml"
    spec = yaml.safe_load(path.read_text())
    # two key-range partitions: plan splits by row group, so two row groups are needed too
    spec["scoring"] = {"partitions": 2, "batch_rows": ROWS // 2}
    # a forced promotion waits for APPROVER (the stack makes the user)
    spec["governance"] = {"approval": {"when": ["force_promote"], "approvers": [APPROVER]}}
    path.write_text(yaml.safe_dump(spec))
    made_paused_by_a_cli_run()
    try:
        yield airflow_stack.start(warehouse, workers=0, port=airflow_stack.free_port())
    finally:
        airflow_stack.stop()


class Shots:
    """Screenshots of each step, numbered in order, in the test's tmp folder."""

    def __init__(self, folder: Path):
        self.folder, self.count = folder, 0
        folder.mkdir()
        print(f"\nscreenshots: {folder}")

    def __call__(self, page: Page, name: str) -> None:
        self.count += 1
        page.screenshot(path=self.folder / f"{self.count:02d}-{name}.png")


def summary_lines(login, token: str, run_path: str) -> list[str]:
    """The lines the run's summary wrote to the publish task's log (its last try)."""
    log = api(login, f"{run_path}/taskInstances/publish/logs/1?full_content=true", token)
    records = [r for r in log["content"] if isinstance(r, dict)]
    return [r["event"] for r in records if r.get("logger") == "pipeline.reports.summary"]


def scoring_files(page: Page, back: bool = False) -> FrameLocator:
    """The Scoring files index in the UI's frame, reached from the navigation, or `back` from a
    page it opened (the UI keeps its frame where it is when the entry is clicked again)."""
    if back:
        page.go_back()
    else:
        page.get_by_role("link", name="Scoring files", exact=True).click()
    page.wait_for_url("**/plugin/scoring-files**")
    frame = page.frame_locator('iframe[title="Scoring files"]')
    frame.get_by_role("heading", name="Scoring files", exact=True).wait_for()
    return frame


def test_a_newcomer_triggers_a_run_and_reads_its_pages_in_the_ui(
    browser, airflow, warehouse, tmp_path
):
    login = airflow
    shoot = Shots(tmp_path / "screenshots")
    deadline = time.monotonic() + RUN_DEADLINE_S
    token = api(login, "/auth/token", body={"username": login.user, "password": login.password})
    token = token["access_token"]
    dag = api(login, f"/api/v2/dags/{JOB}", token)
    assert dag["is_paused"] is False, dag  # made paused, unpaused when the stack started
    # the unpause started the latest scheduled run at once: it ends before anyone triggers
    runs_path = f"/api/v2/dags/{JOB}/dagRuns"
    wait_for(
        "the latest scheduled run to end",
        lambda: (
            (runs := api(login, runs_path, token)["dag_runs"])
            and all(r["state"] in ("success", "failed") for r in runs)
        ),
        deadline,
        every_s=5,
    )

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    console: list[str] = []
    page.on("console", lambda m: m.type == "error" and console.append(m.text))
    try:
        page.goto(login.url)
        page.wait_for_url("**/auth/login**")
        page.get_by_label("Username").wait_for()
        shoot(page, "login")
        page.get_by_label("Username").fill(login.user)
        page.get_by_label("Password").fill(login.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/auth/login" not in url)

        page.goto(f"{login.url}/dags/{JOB}")
        # loaded: the header's details and the grid's task list
        page.get_by_text("Latest Dag Version", exact=True).wait_for()
        page.get_by_text("start_run", exact=True).first.wait_for()
        shoot(page, "dag")

        # the form: no field starred as required; the cut-off explained against Logical Date
        page.get_by_test_id("trigger-dag-button").click()  # "Trigger", top right
        form = page.get_by_role("dialog")
        form.get_by_text(f"Trigger Dag - {JOB}").wait_for()
        form.get_by_text("Cut-off (as_of)").wait_for()
        text = form.inner_text()
        assert "*" not in [line.strip() for line in text.splitlines()], text
        assert "Empty: the cut-off is the Logical Date above" in text, text
        assert "whatever the Logical Date" in text, text
        form.get_by_role("combobox", name="Retrain").click()
        page.get_by_role("option", name=re.compile(r"^never")).click()
        assert form.locator("input[name=element_retrain]").input_value() == "never"
        shoot(page, "trigger-form")
        form.get_by_test_id("trigger-dag-submit").click()

        page.wait_for_url(f"**/dags/{JOB}/runs/**")  # the UI opens the run it made
        run_id = unquote(urlsplit(page.url).path.rsplit("/", 1)[1])
        runs = api(login, f"{runs_path}?order_by=-run_after", token)["dag_runs"]
        manual = [r for r in runs if r["run_type"] == "manual"]
        assert [r["dag_run_id"] for r in manual] == [run_id], runs  # one press, one run
        assert manual[0]["conf"]["retrain"] == "never"

        run_path = f"{runs_path}/{run_id}"
        state = wait_for(
            f"run {run_id} to finish",
            lambda: (s := api(login, run_path, token)["state"]) in ("success", "failed") and s,
            deadline,
            every_s=5,
        )
        tasks = api(login, f"{run_path}/taskInstances", token)["task_instances"]
        summary = sorted((t["task_id"], t["map_index"], t["state"]) for t in tasks)
        home = airflow_stack.home()
        assert state == "success", (
            summary,
            (home / "logs" / "scheduler.log").read_text()[-3000:],
        )
        assert sum(1 for t in tasks if t["task_id"] == "score") == 2, summary

        run_url = f"{login.url}/dags/{JOB}/runs/{run_id}"
        page.goto(run_url)
        page.get_by_text("Success", exact=True).first.wait_for()
        page.get_by_text("End Date").first.wait_for()
        shoot(page, "run-grid")

        # the Graph: the stage order, one edge per stage it waits for (none from start_run to
        # every task, one into publish)
        downstream = {
            t["task_id"]: set(t["downstream_task_ids"])
            for t in api(login, f"/api/v2/dags/{JOB}/tasks", token)["tasks"]
        }
        edges = sum(len(down) for down in downstream.values())
        assert downstream["start_run"] == {"snapshot_training", "snapshot_scoring"}
        assert [t for t, down in downstream.items() if "publish" in down] == ["monitor"]
        assert downstream["register"] == {"score", "request_approval"}  # beside the scoring path
        page.get_by_role("button", name="Graph").first.click()
        page.locator(".react-flow__node").first.wait_for()
        page.wait_for_function(f"document.querySelectorAll('.react-flow__edge').length >= {edges}")
        assert page.locator(".react-flow__edge").count() == edges == 14
        shoot(page, "run-graph")

        # the publish task's log ends with the summary: lines fit the side panel, the report
        # once, as a link the UI serves
        page.goto(f"{run_url}/tasks/publish")
        page.get_by_text(re.compile(r"rows scored [\d,]+")).first.wait_for()
        shoot(page, "publish-log")
        lines = summary_lines(login, token, run_path)
        long = [line for line in lines if len(line) > WIDTH and "://" not in line]
        assert not long, long
        reports = [line for line in lines if line.startswith("report: ")]
        assert reports == [
            f"report: {login.url}/scoring-files/runs/{JOB}/{report_folder(warehouse, run_id)}"
        ], lines
        assert any(line.startswith("data root ") for line in lines), lines
        assert all(not line.strip().startswith("/") for line in lines), lines  # paths shortened

        # Scoring files, from the navigation: the run's report, Data Docs and card side by side
        frame = scoring_files(page)
        row = frame.locator("tr").filter(has=frame.locator("code.run", has_text=run_id))
        for link in ("report", "scoring", "training"):
            row.get_by_role("link", name=link, exact=True).wait_for()
        card = row.get_by_role("link", name=re.compile(r"^v\d+$"))
        assert card.count() == 1  # retrain=never: the champion's card, no candidate's
        assert str(tmp_path) not in frame.locator("body").inner_text()  # no path dump
        shoot(page, "scoring-files")

        row.get_by_role("link", name="report", exact=True).click()
        frame.get_by_role("heading", name=f"Run report: {JOB}").wait_for()
        assert frame.get_by_text("No candidate this run").count() >= 1  # retrain=never
        assert frame.locator("svg#score-histogram").count() == 1
        shoot(page, "run-report")

        frame = scoring_files(page, back=True)
        row = frame.locator("tr").filter(has=frame.locator("code.run", has_text=run_id))
        row.get_by_role("link", name="training", exact=True).click()
        frame.get_by_text("Expectation Validation Result").first.wait_for()
        docs = frame.locator("body").inner_text()
        assert "__none__" not in docs and "Data asset: None" not in docs, docs[:2000]
        assert f"Data asset: {JOB} training snapshot" in docs, docs[:2000]
        for label, value in (("Job", JOB), ("Suite", f"{JOB}.training"), ("Run id", run_id)):
            assert re.search(rf"{label}\s+{re.escape(value)}", docs), (label, docs[:2000])
        assert re.search(r"As of\s+\d{4}-\d\d-\d\dT", docs), docs[:2000]
        shoot(page, "data-docs")
        frame.get_by_role("link", name="Run report", exact=True).click()  # the breadcrumb
        frame.get_by_role("heading", name=f"Run report: {JOB}").wait_for()
        page.go_back()  # to the Data Docs page

        frame = scoring_files(page, back=True)
        row = frame.locator("tr").filter(has=frame.locator("code.run", has_text=run_id))
        row.get_by_role("link", name=re.compile(r"^v\d+$")).click()
        frame.get_by_role("heading", name=f"Model card: {JOB}").wait_for()
        frame.get_by_role("heading", name="Holdout metrics").wait_for()
        assert frame.locator("table td", has_text="roc_auc").count() == 1
        card_text = frame.locator("body").inner_text()
        assert "## " not in card_text and "| --- |" not in card_text  # rendered, not source
        shoot(page, "model-card")

        # the report opened on its own: self-contained, nothing fetched besides it
        fetched: list[str] = []
        page.on("request", lambda request: fetched.append(request.url))
        report_url = f"{login.url}/scoring-files/runs/{JOB}/{report_folder(warehouse, run_id)}"
        page.goto(report_url)
        page.get_by_role("heading", name=f"Run report: {JOB}").wait_for()
        assert fetched == [report_url], fetched
    except Exception:
        shoot(page, "failure")
        raise
    finally:
        if console:
            print(f"browser console errors ({len(console)}): {console[:5]}")
        context.close()

    # without the login: refused, with the same policy
    alone = browser.new_context(viewport=VIEWPORT)
    try:
        response = alone.request.get(report_url)
        assert response.status == 401, response.status
        assert "frame-ancestors 'self'" in response.headers["content-security-policy"]
    finally:
        alone.close()

    as_of, status, rows = query(
        warehouse,
        "SELECT as_of, status, rows_scored FROM scoring.scoring_runs"
        " WHERE job = %s AND run_id = %s",
        (JOB, run_id),
    )[0]
    expected = query(
        warehouse, "SELECT count(*) FROM demo.customers WHERE updated_at < %s", (as_of,)
    )
    assert (status, rows) == ("published", expected[0][0])
    assert 0 < rows <= ROWS
    print(f"run {run_id}: as_of {as_of}, {rows} rows scored; screenshots: {shoot.folder}")

    approve_in_required_actions(browser, login, warehouse, shoot)


def approve_in_required_actions(browser, login, warehouse, shoot: Shots) -> None:
    """A forced promotion waits: the run publishes with the champion, the approval DAG asks
    on Required Actions; the admin (not an approver) is refused by the REST API the UI uses;
    the approver opens the request, reads the evidence, cannot answer without a reason, gives
    one and approves; the version is champion with the record."""
    api = airflow_stack.Client(login)
    champion = models.champion(warehouse, JOB).version
    run = api.run_to_end(JOB, {"force_promote": True, "retrain": "always"}, RUN_DEADLINE_S)
    assert run["state"] == "success", run
    waiting = models.awaiting_approval(warehouse, JOB)
    assert [v.run_id for v in waiting] == [run["dag_run_id"]]
    version = waiting[0].version
    assert query(  # tonight's scores are published with the champion while it waits
        warehouse,
        f"SELECT DISTINCT model_version FROM scoring.{JOB}_latest",  # noqa: S608
    ) == [(champion,)]

    dag_runs = f"/api/v2/dags/{JOB}_approval/dagRuns"
    asked = wait_for(
        "the approval request",
        lambda: next(
            (
                r
                for r in api.call("GET", dag_runs)["dag_runs"]
                if api.call("GET", f"{dag_runs}/{r['dag_run_id']}/taskInstances/approve")["state"]
                == "awaiting_input"
            ),
            None,
        ),
        time.monotonic() + RUN_DEADLINE_S,
    )
    answer_path = f"{dag_runs}/{asked['dag_run_id']}/taskInstances/approve/-1/hitlDetails"
    with pytest.raises(urllib.error.HTTPError) as refused:
        api.call("PATCH", answer_path, {"chosen_options": ["Approve"], "params_input": {}})
    assert refused.value.code == 403, refused.value.read()

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page.goto(login.url)
        page.wait_for_url("**/auth/login**")
        page.get_by_label("Username").fill(APPROVER)
        page.get_by_label("Password").fill(airflow_stack.password(airflow_stack.home(), APPROVER))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/auth/login" not in url)
        page.goto(f"{login.url}/required_actions")
        subject = f"{JOB}: promote model v{version}?"
        page.get_by_role("link", name=subject).click()
        page.get_by_text(f"The gate would promote v{version} of").wait_for()
        text = page.locator("body").inner_text()
        assert "force_promote set at trigger time" in text, text
        assert "roc_auc (primary, higher is better)" in text, text
        assert f"champion v{champion}" in text, text
        report = page.get_by_role("link", name="Run report").get_attribute("href")
        assert report.startswith(f"{login.url}/scoring-files/runs/{JOB}/"), report
        approve = page.get_by_role("button", name="Approve", exact=True)
        assert approve.is_disabled()  # no reason yet
        shoot(page, "required-action")
        page.locator("input[name=element_reason]").fill("forced after the plan codes changed")
        approve.click()
        page.get_by_text("approve response successful").wait_for()
        shoot(page, "approved")
    except Exception:
        shoot(page, "approval-failure")
        raise
    finally:
        context.close()

    path = f"{dag_runs}/{asked['dag_run_id']}"
    wait_for(
        "the approval to be recorded",
        lambda: api.call("GET", path)["state"] == "success",
        time.monotonic() + RUN_DEADLINE_S,
    )
    approved = models.fetch_version(warehouse, JOB, version=version)
    assert approved.status == "champion"
    assert approved.approval["answered_by"] == {"id": APPROVER, "name": APPROVER}
    assert approved.approval["reason"] == "forced after the plan codes changed"


def report_folder(url: str, run_id: str) -> str:
    """The run's report, relative to the job's runs folder, as recorded on the run."""
    [(uri,)] = query(
        url, "SELECT report_uri FROM scoring.scoring_runs WHERE run_id = %s", (run_id,)
    )
    root = Path(os.environ["SCORING_DATA_ROOT"]).resolve()
    return str(Path(uri).resolve().relative_to(root / "runs" / JOB))
