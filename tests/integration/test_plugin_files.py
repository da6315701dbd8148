"""The UI plugin's surface (`pipeline.orchestration.plugin`), through its FastAPI app: pages
only behind Airflow's login, no OpenAPI/Swagger/ReDoc, the pages' policy on every response, a
404 (never a 500) for any bad path, no symlink, hard link or special file served; and its
index, from real runs: each job's runs newest first, each run's report, Data Docs and model
card, every link one it serves."""

import os
import re
from datetime import timedelta

import pytest

from helpers import Links, run_stages
from helpers import plugin_client as client
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.orchestration import plugin
from pipeline.reports.html import CSP
from pipeline.spec import load_spec

pytestmark = pytest.mark.integration

ROWS = 2_000
POLICY = f"{CSP}; frame-ancestors 'self'"


@pytest.fixture
def ui(monkeypatch, tmp_path):
    monkeypatch.setenv("SCORING_DATA_ROOT", str(tmp_path / "data"))
    yield client(logged_in=True)
    plugin.app.dependency_overrides.clear()


def assert_policy(response) -> None:
    assert response.headers["content-security-policy"] == POLICY, response.headers
    assert response.headers["x-content-type-options"] == "nosniff"


def test_every_page_needs_the_login_and_no_api_docs_are_served(monkeypatch, tmp_path):
    monkeypatch.setenv("SCORING_DATA_ROOT", str(tmp_path))
    (tmp_path / "page.html").write_text("<p>hi</p>")
    anonymous = client(logged_in=False)
    for path in ("/", "/page.html", "/docs", "/redoc", "/openapi.json", "/nothing.html"):
        response = anonymous.get(path)
        assert response.status_code == 401, (path, response.status_code)
        assert_policy(response)
    signed_in = client(logged_in=True)
    try:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
            response = signed_in.get(path)
            assert response.status_code == 404, (path, response.status_code, response.text)
            assert_policy(response)
    finally:
        plugin.app.dependency_overrides.clear()


def test_bad_paths_and_linked_files_are_404_never_500(ui, tmp_path):
    root = tmp_path / "data"
    (root / "runs" / "job").mkdir(parents=True)
    good = root / "runs" / "job" / "page.html"
    good.write_text("<p>the page</p>")
    (root / "runs" / "job" / ".incoming-x-page.html").write_text("half written")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.html").write_text("<p>secret</p>")
    os.symlink(outside / "secret.html", root / "runs" / "job" / "symlink.html")
    os.symlink(outside, root / "runs" / "linked")
    os.link(outside / "secret.html", root / "runs" / "job" / "hardlink.html")
    os.link(good, tmp_path / "second-name.html")  # the page itself, now with two names
    os.mkfifo(root / "runs" / "job" / "fifo.html")
    (root / "runs" / "job" / "data.parquet").write_bytes(b"PAR1")

    bad = [
        "/runs/job/page.html%00.html",
        "/%00",
        "/runs/job/x%00",
        "/runs/%2e%2e/%2e%2e/outside/secret.html",
        "/..%2f..%2foutside%2fsecret.html",
        "/%2Fetc/passwd.html",
        "/runs//job/page.html",
        "/runs/job/",
        "/runs/job",
        "/runs/job/.incoming-x-page.html",
        "/runs/job/symlink.html",
        "/runs/linked/secret.html",
        "/runs/job/hardlink.html",
        "/runs/job/page.html",  # hard-linked from outside the root now
        "/runs/job/fifo.html",
        "/runs/job/data.parquet",
        "/runs/job/missing.html",
        "/runs/job/page.html/more.html",
        "/%ff%fe.html",
    ]
    for path in bad:
        response = ui.get(path)
        assert response.status_code == 404, (path, response.status_code, response.text[:200])
        assert_policy(response)
        assert "secret" not in response.text

    (tmp_path / "second-name.html").unlink()  # one name again: served
    response = ui.get("/runs/job/page.html")
    assert response.status_code == 200 and response.text == "<p>the page</p>"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert_policy(response)


def test_a_model_card_is_shown_as_html_with_everything_escaped(ui, tmp_path):
    folder = tmp_path / "data" / "models" / "job" / "v0001"
    folder.mkdir(parents=True)
    (folder / "MODEL_CARD.md").write_text(
        "# Model card: job\n\nFor the <script>alert(1)</script> team&#x27;s list.\n\n"
        "## Data\n- Source `demo.t<b>`, rows before\n  the cut-off.\n- Holdout: 20%\n\n"
        "## Holdout metrics\n| metric | value |\n| --- | --- |\n| roc_auc | 0.77 |\n\n"
        "```\nSELECT <1>\n```\n"
    )
    response = ui.get("/models/job/v0001/MODEL_CARD.md")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert_policy(response)
    page = response.text
    assert "<h1>Model card: job</h1>" in page and "<h2>Holdout metrics</h2>" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "team&#x27;s list" in page  # the card's escaped quote shown as a quote, not &#x27;
    assert "<li>Source <code>demo.t&lt;b&gt;</code>, rows before the cut-off.</li>" in page
    assert re.search(r"<td>roc_auc</td><td class=num>0.77</td>", page)
    assert "<pre><code>SELECT &lt;1&gt;</code></pre>" in page
    assert 'href="../../../"' in page  # back to the index, whatever prefix the UI has


def test_the_index_lists_each_jobs_runs_with_their_pages(warehouse, jobs, tmp_path):
    seed_table(warehouse, "demo.customers", ROWS)
    spec = load_spec(jobs / "customer_churn.yaml")
    as_of = demo_as_of()
    run_stages(warehouse, spec, as_of - timedelta(minutes=1), "run-1")  # first model
    run_stages(warehouse, spec, as_of, "run-2")  # a candidate gated against v1
    ui = client(logged_in=True)
    try:
        assert ui.get("").headers["location"].endswith(f"{plugin.PREFIX}/")  # links are relative
        response = ui.get("/")
        assert response.status_code == 200
        assert_policy(response)
        page = response.text
        assert str(tmp_path) not in page  # no path of the data root shown
        assert page.index("run-2") < page.index("run-1")  # newest first
        rows = dict(re.findall(r'<code class="run">(run-\d)</code>(.*?)</tr>', page))
        for run_id in ("run-1", "run-2"):
            assert '">report</a>' in rows[run_id]
            assert '">scoring</a>' in rows[run_id] and '">training</a>' in rows[run_id]
        assert '">v1</a>' in rows["run-1"] and "candidate" not in rows["run-1"]
        assert re.search(r'">v1</a>.*">candidate v2 \((rejected|champion)\)</a>', rows["run-2"])
        links = Links()
        links.feed(page)
        assert len(links.hrefs) == 1 + 5 + 4, links.hrefs  # the index; run-2, run-1 pages
        for href in links.hrefs:
            served = ui.get(f"/{href}")
            assert served.status_code == 200, (href, served.status_code)
            assert_policy(served)
    finally:
        plugin.app.dependency_overrides.clear()
