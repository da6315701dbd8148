"""Great Expectations Data Docs pages: rendered from a validation result, and made
self-contained so they render styled offline."""

import copy
import html
import re

import numpy as np
from great_expectations.render.renderer import ValidationResultsPageRenderer
from great_expectations.render.view import DefaultJinjaPageView

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


def render_data_docs(result) -> str:
    """GX's own Data Docs page (HTML) for one validation result.

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
    with np.printoptions(legacy="1.25"):
        document = ValidationResultsPageRenderer().render(result)
        return offline_data_docs(DefaultJinjaPageView().render(document, show_how_to_buttons=False))
