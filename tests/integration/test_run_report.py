"""A run's HTML report, the job's index and GX's Data Docs pages, rendered offline in headless
Chromium: every request the page makes is recorded, http(s) is aborted, and the only request
allowed is the file itself. Real runs on a real Postgres make what the pages show.

The browser is Debian's (`apt-get install chromium`); no browser is ever downloaded, and a
missing one fails the test. Screenshots are kept under the test's tmp path, which it prints.
"""

import re
from pathlib import Path

import pytest

from helpers import query, run_stages, trigger_for
from pipeline import flow
from pipeline.datafiles.layout import run_folder
from pipeline.datafiles.root import DataRoot
from pipeline.errors import DataValidationError
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.reports import charts, run_page
from pipeline.reports.facts import TOP_DRIFTED
from pipeline.reports.summary import page_link, run_summary
from pipeline.spec import load_spec
from pipeline.warehouse.monitoring import PerformanceRow
from pipeline.warehouse.runs import fetch_run_at

pytestmark = pytest.mark.integration

ROWS = 3_000
# a category value that is markup, fetching and scripting: it must show as text, inertly
ODD = '<img src=https://x.invalid/i onerror="document.title=1">&"b"'


class Offline:
    """A page opened from a file with the network cut: every request and every http(s)
    attempt (aborted) recorded."""

    def __init__(self, browser, path: Path):
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.requests: list[str] = []
        self.external: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.context.route(re.compile(r"^https?://"), self.abort)
        self.page = self.context.new_page()
        self.url = path.resolve().as_uri()
        self.page.goto(self.url, wait_until="load")
        self.page.wait_for_load_state("networkidle")

    def abort(self, route) -> None:
        self.external.append(route.request.url)
        route.abort()

    def assert_self_contained(self) -> None:
        assert self.external == [], f"the page tried the network: {self.external}"
        assert self.requests == [self.url], f"requests besides the file: {self.requests}"

    def text(self) -> str:
        return self.page.inner_text("body")

    def close(self) -> None:
        self.context.close()


def report_file(root: Path, job: str, run_id: str) -> Path:
    return root / "runs" / job / run_folder(run_id) / "report.html"


def test_run_reports_and_index_render_offline(warehouse, jobs, browser, tmp_path):
    seed_table(warehouse, "demo.customers", ROWS)
    spec = load_spec(jobs / "customer_churn.yaml")
    as_of = demo_as_of()
    run_stages(warehouse, spec, as_of, "run-1")  # first model: champion
    run_stages(warehouse, spec, as_of, "run-2")  # same data: gated against v1
    query(warehouse, "UPDATE demo.customers SET plan = %s WHERE customer_id %% 3 = 0", (ODD,))
    query(warehouse, "UPDATE demo.customers SET monthly_charges = monthly_charges * 3 + 10")
    third = trigger_for(spec, as_of, "run-3", retrain=False)  # drifted, champion kept
    scored = flow.run_stages(warehouse, third, until="monitor")  # written before the run ends
    early = Path(run_page.write_run_report(warehouse, spec, "run-3")).read_text()
    status = query(warehouse, "SELECT status FROM scoring.scoring_runs WHERE run_id = 'run-3'")
    assert f'<span class="badge {status[0][0]}">' in early and "3,000" in early  # as monitored
    assert 'id="distribution-0"' in early and 'id="score-histogram"' in early
    flow.run_stages(warehouse, third, given=scored)
    query(warehouse, "DELETE FROM demo.customers")
    with pytest.raises(DataValidationError):
        run_stages(warehouse, spec, as_of, "run-4")  # stops at validation

    # every run, published or failed, wrote its report and recorded where it is
    uris = dict(query(warehouse, "SELECT run_id, report_uri FROM scoring.scoring_runs"))
    assert sorted(uris) == ["run-1", "run-2", "run-3", "run-4"] and all(uris.values())
    summary = run_summary(warehouse, spec, fetch_run_at(warehouse, spec.name, as_of), 1.0)
    # the newest run at that logical date; a UI address when Airflow's base_url is set
    assert f"report: {page_link(uris['run-4'])}" in summary
    root = Path(DataRoot().base)
    for run_id, uri in uris.items():
        assert Path(uri) == report_file(root, spec.name, run_id)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")

    # run-2: the gate with both metrics, the score histogram, PSI, timings
    metric, candidate, champion = query(
        warehouse,
        "SELECT primary_metric, (metrics->>primary_metric)::float,"
        " (champion_metrics->>primary_metric)::float"
        " FROM scoring.model_versions WHERE run_id = 'run-2'",
    )[0]
    rows_scored = query(
        warehouse, "SELECT rows_scored FROM scoring.scoring_runs WHERE run_id = 'run-2'"
    )[0][0]
    view = Offline(browser, Path(uris["run-2"]))
    try:
        view.assert_self_contained()
        page, text = view.page, view.text()
        assert page.locator("script").count() == 0
        charts = ["gate-chart", "score-histogram", "psi-chart", "timings"]
        charts += [f"distribution-{i}" for i in range(TOP_DRIFTED)]
        performance = performance_charts(warehouse)
        charts += [f"performance-{i}" for i in range(performance)]
        assert sorted(page.eval_on_selector_all("svg", "els => els.map(e => e.id)")) == sorted(
            charts
        )
        for svg in page.locator("svg").all():  # every chart has an accessible name
            assert svg.get_attribute("role") == "img"
            labelled = svg.get_attribute("aria-labelledby").split()
            assert page.locator(f"#{labelled[0]}").text_content().strip()
        assert page.get_by_role("img", name=f"Histogram of this run's {ROWS:,} scores").count() == 1
        assert page.locator("#score-histogram rect.bar").count() == run_page.SCORE_BINS
        counts = page.eval_on_selector_all(
            "#score-histogram text.count",
            "els => els.map(e => Number(e.textContent.replace(/,/g, '')))",
        )
        assert sum(counts) == ROWS
        assert page.locator("#psi-chart line.threshold").count() == 1
        assert "alert above 0.250" in page.locator("#psi-chart").text_content()
        assert page.locator("#psi-chart rect.bar").count() == len(spec.features.all) + 1  # +score
        assert rows_scored == ROWS and f"{ROWS:,}" in text
        assert f"{candidate:.4f}" in text and f"{champion:.4f}" in text
        assert f"{metric} (primary: the gate compares it)" in text
        assert "champion v1" in text and "candidate v2" in text
        assert "customer_churn.scoring" in text and "customer_churn.training" in text
        assert ("No realised performance yet" in text) == (performance == 0)
        page.screenshot(path=shots / "run-2-report.png", full_page=True)
        page.pdf(path=shots / "run-2-report.pdf")  # print media: it must lay out
        assert (shots / "run-2-report.pdf").stat().st_size > 10_000
    finally:
        view.close()

    # run-3: no candidate, drift on the changed features, user data shown as text
    view = Offline(browser, Path(uris["run-3"]))
    try:
        view.assert_self_contained()
        page, text = view.page, view.text()
        assert "No candidate this run: retrain=never set at trigger time." in text
        drifted = page.eval_on_selector_all(
            "figure:has(svg[id^=distribution-]) figcaption", "els => els.map(e => e.textContent)"
        )
        assert len(drifted) == TOP_DRIFTED
        assert drifted[0].startswith("plan") or drifted[0].startswith("monthly_charges")
        assert any(d.startswith("plan") for d in drifted) and "(alert)" in drifted[0]
        assert page.locator("img").count() == 0  # the value's markup stayed text
        assert page.title() == "customer_churn · run run-3 · published"
        assert page.get_by_text(ODD, exact=True).count() >= 1
        assert page.locator("#psi-chart rect.bar.alert").count() >= 2
        assert any(ODD in t for t in page.locator("svg[id^=distribution-]").all_text_contents())
        page.screenshot(path=shots / "run-3-report.png", full_page=True)
    finally:
        view.close()

    # run-4: stopped at validation, nothing scored
    view = Offline(browser, Path(uris["run-4"]))
    try:
        view.assert_self_contained()
        text = view.text()
        assert "No scores: the run failed before monitoring summarised them" in text
        assert "Why it stopped" in text and "expect_table_row_count_to_be_between" in text
        assert "the run stopped before its retrain decision" in text
        view.page.screenshot(path=shots / "run-4-report.png", full_page=True)
    finally:
        view.close()

    # the index: every run, newest first, linking the reports that exist
    index = root / "runs" / spec.name / "index.html"
    view = Offline(browser, index)
    try:
        view.assert_self_contained()
        page = view.page
        listed = page.eval_on_selector_all(
            "tbody tr td:first-child", "els => els.map(e => e.textContent.split(' ')[0])"
        )
        assert listed == ["run-4", "run-3", "run-2", "run-1"]
        links = page.eval_on_selector_all("tbody a", "els => els.map(e => e.getAttribute('href'))")
        assert links == [
            f"{run_folder(r)}/report.html" for r in ("run-4", "run-3", "run-2", "run-1")
        ]
        page.screenshot(path=shots / "index.png", full_page=True)
        page.click("text=run-3")
        page.wait_for_load_state("load")
        assert page.url == report_file(root, spec.name, "run-3").resolve().as_uri()
        assert "Run report: customer_churn" in page.inner_text("h1")
        assert view.external == []
    finally:
        view.close()


def performance_charts(url: str) -> int:
    """Realised performance charts the report draws for customer_churn: one per metric."""
    if not query(url, "SELECT to_regclass('scoring.model_performance') IS NOT NULL")[0][0]:
        return 0
    return query(
        url,
        "SELECT count(DISTINCT metric) FROM scoring.model_performance WHERE job = 'customer_churn'",
    )[0][0]


def test_data_docs_render_with_their_styles_offline(warehouse, jobs, browser, tmp_path):
    seed_table(warehouse, "demo.customers", ROWS)
    query(warehouse, "UPDATE demo.customers SET plan = %s WHERE customer_id <= 60", (ODD,))
    spec = load_spec(jobs / "customer_churn.yaml")
    results = flow.run_stages(
        warehouse, trigger_for(spec, demo_as_of(), "docs-run"), until="validate_scoring"
    )
    docs = Path(results["validate_scoring"]["docs_uri"])
    html = docs.read_text()
    assert not re.search(r"<(link|script|img)\b[^>]*\b(href|src)=[\"']?https?:", html)  # no CDN
    assert not re.search(r"url\(['\"]?https?:", html)
    view = Offline(browser, docs)
    try:
        view.assert_self_contained()
        page = view.page
        assert page.locator("script").count() == 0
        styled = page.evaluate(
            """() => {
                const badge = document.querySelector('.badge');
                const table = document.querySelector('table.table');
                const failed = document.querySelector('.fa-times');
                const passed = document.querySelector('.fa-check-circle');
                const s = getComputedStyle(badge);
                return {
                    badgeRadius: s.borderRadius, badgePadding: s.paddingLeft,
                    badgeFont: s.fontWeight,
                    row: getComputedStyle(document.querySelector('.row')).display,
                    tableBorder: getComputedStyle(table.querySelector('td')).borderTopWidth,
                    bodyFont: getComputedStyle(document.body).fontFamily,
                    failed: getComputedStyle(failed, '::before').content,
                    passed: getComputedStyle(passed, '::before').content,
                };
            }"""
        )
        # the same markup without any stylesheet: the browser's defaults
        view.page.set_content(
            '<span class="badge">x</span><table class="table"><tr><td>x</td></tr></table>'
        )
        bare = page.evaluate(
            """() => {
                const s = getComputedStyle(document.querySelector('.badge'));
                return {badgeRadius: s.borderRadius, badgePadding: s.paddingLeft,
                        badgeFont: s.fontWeight,
                        bodyFont: getComputedStyle(document.body).fontFamily};
            }"""
        )
        for key in ("badgeRadius", "badgePadding", "badgeFont", "bodyFont"):
            assert styled[key] != bare[key], (key, styled[key], bare[key])
        assert "-apple-system" in styled["bodyFont"]  # Bootstrap 4's font stack
        assert styled["failed"] == '"✘"' and styled["passed"] == '"✔"'
        assert styled["row"] == "flex" and styled["tableBorder"] == "1px"  # grid, tables
        assert view.external == []
    finally:
        view.close()
    view = Offline(browser, docs)
    try:
        text = view.text()
        assert "Expectation Validation Result" in text
        assert ODD in text  # the unexpected values GX lists, escaped by render_data_docs
        assert view.page.locator("img").count() == 0
        assert view.page.title() != "1"
        shot = tmp_path / "data-docs.png"
        view.page.screenshot(path=shot, full_page=True)
        print(f"\nData Docs screenshot: {shot}")
    finally:
        view.close()


def test_svg_helpers_escape_and_label_every_number():
    svg = charts.bar_chart_svg(
        [("<script>alert(1)</script>", 0.5), ("a & b", 0.1)],
        title='PSI "per" <feature>',
        threshold=0.25,
        svg_id="t",
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a &amp; b" in svg
    assert "threshold 0.25" in svg and ">0.5<" in svg and ">0.1<" in svg
    histogram = charts.histogram_svg([1, 0, 2], [0, 1, 2, 3], title="h", x_label="x")
    assert histogram.count('<rect class="bar"') == 3 and "2 – 3: 2 rows (66.7%)" in histogram
    with pytest.raises(ValueError):
        charts.histogram_svg([1, 2], [0, 1], title="h", x_label="x")


def test_realised_performance_is_drawn_per_metric():
    from datetime import UTC, datetime

    rows = [
        PerformanceRow(run_id=f"run-{i}", model_version=1, metric=metric, value=value,
         labelled=100 * i, scored=1000, trusted=True, alert=False,
         computed_at=datetime(2026, 1, i, tzinfo=UTC), holdout=0.8)
        for i, (metric, value) in enumerate(
            [("roc_auc", 0.71), ("accuracy", 0.9), ("roc_auc", 0.69), ("accuracy", 0.88)], 1
        )
    ]  # fmt: skip
    html = run_page.performance_section(rows)
    assert html.count("<svg") == 2 and html.count("<circle") == 4
    assert "0.690" in html and "0.7100" in html and "latest holdout 0.8000" in html
    assert "No realised performance yet" in run_page.performance_section(None)
    assert "No realised performance yet" in run_page.performance_section([])
