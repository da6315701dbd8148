"""Great Expectations Data Docs pages: rendered from a validation result, and made
self-contained so they render styled offline; they say which job, suite, run and cut-off they
are about, and link the run's report."""

import copy
import html
import posixpath
import re

import numpy as np
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResultSchema,
)
from great_expectations.render.renderer import ValidationResultsPageRenderer
from great_expectations.render.view import DefaultJinjaPageView

from pipeline.contracts import Manifest
from pipeline.datafiles.layout import report_path, validation_path
from pipeline.datafiles.root import DataRoot
from pipeline.reports.html import CSP_META, STATIC

# ---------------------------------------------------------------------------------------------
# Great Expectations Data Docs, offline

BOOTSTRAP_CSS = "bootstrap-4.3.1.min.css"  # the version GX 1.x's page.j2 links, from npm
_EXTERNAL_LINK = re.compile(r"<link\b[^>]*\bhref=\"https?://[^\"]*\"[^>]*>", re.IGNORECASE)
_FAVICON = re.compile(r"<link\b[^>]*\brel=\"shortcut icon\"[^>]*>", re.IGNORECASE)
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.IGNORECASE | re.DOTALL)
_EXTERNAL_IMG = re.compile(r"<img\b[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>", re.IGNORECASE)
_CSS_URL = re.compile(r"url\(\s*['\"]?https?://[^)]*\)", re.IGNORECASE)
_ONCLICK = re.compile(r"\sonclick=\"[^\"]*\"", re.IGNORECASE)
# links into a GX site tree (index, suite pages) that a page rendered alone does not have
_SITE_LINK = re.compile(r"\shref=\"(?:\.\./)+[^\"]*\"", re.IGNORECASE)
# the breadcrumb's "Home" (GX's site index), once offline_data_docs took its link away
_HOME = re.compile(r'<li class="ge-breadcrumbs-item breadcrumb-item"><a>Home</a></li>')


class RunValidationPage(ValidationResultsPageRenderer):
    """GX's validation results page, told what it is about. A result validated outside a GX
    checkpoint has no data asset nor run: GX would write "Data asset: None", "Run Name
    __none__" and "Run Time __none__". This page names the snapshot as the data asset, puts the
    run id and the cut-off (as_of) in the title, and the job, suite, run id and as_of in the
    Info table."""

    def __init__(self, about: dict[str, str], asset: str):
        super().__init__()
        self.about = about  # Info table rows: label -> value
        self.asset = asset

    # GX declares these classmethods; here they read what the page is about, so are methods
    def _render_validation_header(self, validation_results):  # type: ignore[override]
        header = super()._render_validation_header(validation_results)
        header.subheader.string_template["params"]["data_asset_name"] = self.asset  # GX escapes
        return header

    def _render_validation_info(self, validation_results):  # type: ignore[override]
        info = super()._render_validation_info(validation_results=validation_results)
        version = [row for row in info.table if row[0] == "Great Expectations Version"]
        info.table = [[label, html.escape(value)] for label, value in self.about.items()] + version
        return info

    def _determine_page_title(self, run_name, run_time, data_asset_name, expectation_suite_name):
        parts = ["Validations", self.about.get("Suite", expectation_suite_name)]
        parts += [self.about["Run id"]] if "Run id" in self.about else []
        parts += [f"as of {self.about['As of']}"] if "As of" in self.about else []
        return html.escape(" / ".join(parts))  # GX puts the title in the page unescaped


def page_facts(result, manifest: Manifest | None, run_id: str | None) -> tuple[dict, str]:
    """(the Info table's rows, the data asset's name) for a result of `manifest`'s snapshot."""
    about = {"Job": manifest.job} if manifest else {}
    about["Suite"] = result.suite_name
    if run_id:
        about["Run id"] = run_id
    if manifest:
        about["As of"] = manifest.as_of
        return about, f"{manifest.job} {manifest.kind} snapshot, sha256 {manifest.sha256[:16]}"
    return about, result.suite_name


def report_link(root: DataRoot, manifest: Manifest, run_id: str) -> str:
    """The run's report, relative to the folder of the snapshot's Data Docs for the run."""
    docs = validation_path(root, manifest.uri, run_id, manifest.kind).rsplit("/", 1)[0]
    return posixpath.relpath(report_path(root, manifest.job, run_id), docs)


def run_breadcrumb(page: str, report: str | None) -> str:
    """The breadcrumb's dead "Home" (a GX site this page is not in) as a link to the run's
    report, or left out when there is none to link."""
    home = (
        f'<li class="ge-breadcrumbs-item breadcrumb-item">'
        f'<a href="{html.escape(report)}">Run report</a></li>'
        if report
        else ""
    )
    return _HOME.sub(lambda _: home, page, count=1)


def offline_data_docs(page: str) -> str:
    """A Data Docs page made self-contained: the CDN stylesheets and scripts GX links, its logo
    and favicon, script handlers and links into a GX site it is not part of are removed; the
    Bootstrap 4.3.1 CSS it links is inlined (vendored in `static/`, MIT), with a small sheet for
    what Font Awesome and Bootstrap's JS did (icons as Unicode, collapsed blocks open), and
    the same Content-Security-Policy as the report's (no script, no load from anywhere)."""
    bootstrap = (STATIC / BOOTSTRAP_CSS).read_text()
    bootstrap = re.sub(r"/\*# sourceMappingURL=[^*]*\*/", "", bootstrap)
    offline = (STATIC / "data_docs_offline.css").read_text()
    page = _EXTERNAL_LINK.sub("", page)
    page = _FAVICON.sub("", page)
    page = _SCRIPT.sub("", page)
    page = _EXTERNAL_IMG.sub('<span class="ge-brand">Great Expectations</span>', page)
    page = _CSS_URL.sub("none", page)
    page = _ONCLICK.sub("", page)
    page = _SITE_LINK.sub("", page)
    page = page.replace("<head>", f"<head>\n{CSP_META}\n<style>{bootstrap}</style>", 1)
    return page.replace("</head>", f"<style>{offline}</style>\n</head>", 1)


def render_data_docs(
    result,
    manifest: Manifest | None = None,
    run_id: str | None = None,
    root: DataRoot | None = None,
) -> str:
    """GX's own Data Docs page (HTML) for one validation result: of `manifest`'s snapshot, in
    run `run_id`. With both, the page names the job, suite, run id and as_of, and its
    breadcrumb links the run's report (`root`, default the data root, says where it is).

    GX formats an observed value through its repr, and NumPy 2 writes a float64 as
    `np.float64(0.2)`, which GX cannot parse: that cell would be left out and an ERROR logged
    (e.g. expect_column_mean_to_be_between on a boolean column). NumPy's 1.25 reprs are plain.

    GX's page loads Bootstrap, Font Awesome, jQuery and Vega from CDNs, so offline it would
    show as bare HTML: `offline_data_docs` inlines the Bootstrap CSS it links and drops every
    external reference and script (the "how to" walkthrough is not rendered), so the page
    opens from a file, a bucket or the UI's "Scoring files" with no network.

    GX writes the unexpected values it samples into its tables as raw HTML (only template
    parameters are escaped): a text value `<b>x</b>` would be markup. They are escaped here, on
    a copy of the result; the page's Content-Security-Policy forbids scripts and loads anyway.
    """

    def escaped(value):
        return html.escape(value, quote=False) if isinstance(value, str) else value

    result = copy.deepcopy(result)
    for each in result.results:
        details = each.result or {}
        for key in ("partial_unexpected_list", "unexpected_list"):
            if details.get(key):
                details[key] = [escaped(v) for v in details[key]]
        for count in details.get("partial_unexpected_counts") or []:
            count["value"] = escaped(count.get("value"))
    about, asset = page_facts(result, manifest, run_id)
    report = report_link(root or DataRoot(), manifest, run_id) if manifest and run_id else None
    with np.printoptions(legacy="1.25"):
        document = RunValidationPage(about, asset).render(result)
        page = DefaultJinjaPageView().render(document, show_how_to_buttons=False)
    return run_breadcrumb(offline_data_docs(page), report)


def render_data_docs_json(
    result: dict, manifest: Manifest, run_id: str, root: DataRoot | None = None
) -> str:
    """`render_data_docs` of a result as stored (its JSON), e.g. after a redaction."""
    loaded = ExpectationSuiteValidationResultSchema().load(result)  # the result object
    return render_data_docs(loaded, manifest, run_id, root)
