"""A person's way through Airflow's UI, in headless Chromium: sign in with the password
`airflow_stack` made, open customer_churn, press Trigger, set retrain=never in the form, submit;
the run succeeds and is published in the warehouse.

The browser is Debian's (`apt-get install chromium`; the Makefile's venv rule does it), driven
by Playwright; no browser is ever downloaded. The test owns the Airflow stack it starts and
always stops it. Screenshots of each step are kept under the test's tmp path, which it prints.
"""

import json
import os
import time
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from playwright.sync_api import Page

from helpers import query
from pipeline.local import airflow_stack
from pipeline.local.demo_data import seed_table

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

JOB = "customer_churn"
ROWS = 3_000
UI_TIMEOUT_MS = 60_000  # one page step, generous for a busy 2-core machine
RUN_DEADLINE_S = 480  # the run; the scheduler's own latest scheduled run may go first


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
    path.write_text(yaml.safe_dump(spec))
    try:
        yield airflow_stack.start(warehouse, workers=0, port=airflow_stack.free_port())
    finally:
        airflow_stack.stop()


def shoot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=folder / f"{name}.png")


def test_trigger_from_the_ui_with_retrain_never(browser, airflow, warehouse, tmp_path):
    login = airflow
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    deadline = time.monotonic() + RUN_DEADLINE_S
    token = api(login, "/auth/token", body={"username": login.user, "password": login.password})
    token = token["access_token"]
    wait_for(
        f"the DAG {JOB} to be parsed",
        lambda: api(login, f"/api/v2/dags/{JOB}", token).get("dag_id"),
        deadline,
    )

    # viewport tall enough for the whole trigger form, its submit button included
    page = browser.new_page(viewport={"width": 1400, "height": 1150})
    page.set_default_timeout(UI_TIMEOUT_MS)
    console = []
    page.on("console", lambda m: m.type == "error" and console.append(m.text))
    try:
        page.goto(login.url)
        page.wait_for_url("**/auth/login**")
        page.get_by_label("Username").wait_for()
        shoot(page, shots, "01-login")
        page.get_by_label("Username").fill(login.user)
        page.get_by_label("Password").fill(login.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/auth/login" not in url)

        page.goto(f"{login.url}/dags/{JOB}")
        # loaded: the header's details and the grid's task list
        page.get_by_text("Latest Dag Version", exact=True).wait_for()
        page.get_by_text("start_run", exact=True).first.wait_for()
        shoot(page, shots, "02-dag")

        page.get_by_test_id("trigger-dag-button").click()  # "Trigger", top right
        form = page.get_by_role("dialog")
        form.get_by_text(f"Trigger Dag - {JOB}").wait_for()
        form.get_by_role("combobox", name="Retrain").click()
        page.get_by_role("option", name="never", exact=True).click()
        assert form.locator("input[name=element_retrain]").input_value() == "never"
        shoot(page, shots, "03-trigger-form")
        form.get_by_test_id("trigger-dag-submit").click()

        page.wait_for_url(f"**/dags/{JOB}/runs/**")  # the UI opens the run it made
        run_id = unquote(urlsplit(page.url).path.rsplit("/", 1)[1])
        runs = api(login, f"/api/v2/dags/{JOB}/dagRuns?order_by=-run_after", token)["dag_runs"]
        ours = [r for r in runs if (r["conf"] or {}).get("retrain") == "never"]
        assert [r["dag_run_id"] for r in ours] == [run_id], runs
        assert ours[0]["run_type"] == "manual"

        run_path = f"/api/v2/dags/{JOB}/dagRuns/{run_id}"
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

        page.reload()
        page.get_by_text("Success", exact=True).first.wait_for()
        page.get_by_text("End Date").wait_for()
        shoot(page, shots, "04-finished-run")

        # the run's HTML report, as the summary links it: behind the UI's login, self-contained
        [(report_uri,)] = query(
            warehouse,
            "SELECT report_uri FROM scoring.scoring_runs WHERE job = %s AND run_id = %s",
            (JOB, run_id),
        )
        root = Path(os.environ["SCORING_DATA_ROOT"]).resolve()
        fetched = []
        page.on("request", lambda request: fetched.append(request.url))
        report_url = f"{login.url}/scoring-files/{Path(report_uri).resolve().relative_to(root)}"
        page.goto(report_url)
        page.get_by_role("heading", name=f"Run report: {JOB}").wait_for()
        assert page.get_by_text("No candidate this run").count() >= 1  # retrain=never
        assert page.locator("svg#score-histogram").count() == 1
        assert fetched == [report_url], fetched  # nothing else: no script, CSS or font
        shoot(page, shots, "05-run-report")
        page.goto(f"{login.url}/scoring-files/")  # "Scoring files" in the UI's navigation
        page.get_by_role("link", name=JOB, exact=True).click()  # the job's index of runs
        page.get_by_role("heading", name=f"Runs of {JOB}").wait_for()
        assert page.get_by_role("link", name=run_id).count() == 1
        shoot(page, shots, "06-job-index")
    except Exception:
        shoot(page, shots, "failure")
        raise
    finally:
        if console:
            print(f"browser console errors ({len(console)}): {console[:5]}")

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
    print(f"run {run_id}: as_of {as_of}, {rows} rows scored; screenshots: {shots}")
