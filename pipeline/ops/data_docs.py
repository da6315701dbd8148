"""Great Expectations Data Docs pages made self-contained, so they render styled offline."""

import re
from pathlib import Path

from pipeline.ops.offline_html import CSP_META

STATIC = Path(__file__).resolve().parent / "static"
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
