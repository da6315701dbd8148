"""An Airflow plugin that serves the runs' pages (reports, GX Data Docs, results, model cards) in
the UI.

Mounted by the api-server at `/scoring-files/`, behind Airflow's own login (the UI's session
cookie or a bearer token): every route depends on `get_user`, and the app has no OpenAPI,
Swagger or ReDoc pages. Its "Scoring files" entry in the UI's navigation is an external view
with a `url_route`, so the UI opens the pages in its own frame (at `/plugin/scoring-files`).

The index lists each job's newest runs, from the warehouse (`scoring.scoring_runs` and the
validations and models it records), each with its report, Data Docs and model card side by
side. Files are served from the data root (`SCORING_DATA_ROOT`), a local folder or object
storage, through the storage layer: .html and .json as they are, MODEL_CARD.md rendered as
HTML; never a hidden file or anything outside the root, and from a folder never a symlink or a
hard-linked file; any bad path is a 404. Every response carries the pages'
Content-Security-Policy (no script, nothing loaded from anywhere; framed by the UI only) and
`X-Content-Type-Options: nosniff`.
"""

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pipeline.config import warehouse_url
from pipeline.reports.html import CSP, badge, esc, fmt_time, markdown_html, page, table
from pipeline.spec.names import JOB_NAME
from pipeline.warehouse.models import model_of_run
from pipeline.warehouse.runs import RunRow, recent_runs
from pipeline.warehouse.validations import validations_of_run

if TYPE_CHECKING:
    from pipeline.datafiles.root import DataRoot

log = logging.getLogger(__name__)

PREFIX = "/scoring-files"
ROUTE = "scoring-files"  # the UI's page for the view: /plugin/scoring-files
TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json", ".md": "text/markdown"}
CARD = "MODEL_CARD.md"
RUNS_LISTED = 10  # per job; the job's own index lists them all
HEADERS = {
    "Content-Security-Policy": f"{CSP}; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
}
NOFOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC

app = FastAPI(
    title="Scoring run files",
    dependencies=[Depends(get_user)],
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


@app.middleware("http")
async def security_headers(request: Request, call_next) -> Response:
    """The pages' policy on every response: the index, files, 401s and 404s alike."""
    response = await call_next(request)
    response.headers.update(HEADERS)
    return response


def parts_of(path: str) -> list[str] | None:
    """A request path as names to walk down from the root; None when any is not a plain name
    (empty, `.`, `..`, hidden, a NUL byte) or the file is not of a served type."""
    parts = path.split("/")
    if any(not p or p.startswith(".") or "\x00" in p for p in parts):
        return None
    return parts if PurePosixPath(parts[-1]).suffix in TYPES else None


def open_under(root: Path, parts: list[str]) -> int | None:
    """A read descriptor of the regular file `root/parts...`, walked one name at a time without
    following a symlink anywhere, and only if no other name links to it (st_nlink 1): a link
    could make a file from outside the root look like one of its pages. None otherwise."""
    try:
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            inner = os.open(part, NOFOLLOW | os.O_DIRECTORY, dir_fd=folder)
            os.close(folder)
            folder = inner
        fd = os.open(parts[-1], NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)  # a FIFO never blocks
    except (OSError, ValueError):
        return None
    finally:
        os.close(folder)
    info = os.fstat(fd)
    if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
        return fd
    os.close(fd)
    return None


def read_under(root: Path, parts: list[str]) -> bytes | None:
    fd = open_under(root, parts)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as file:
        return file.read()


class Pages:
    """The data root as the plugin reads it: a local folder walked name by name without
    following a link (`open_under`), or object storage, which has no links, through the
    storage layer. Either way only names `parts_of` lets through are read."""

    def __init__(self, data: "DataRoot"):
        self.data = data
        self.folder = None if data.remote else Path(data.base)

    def read(self, parts: list[str]) -> bytes | None:
        """The file's bytes; None when it is not there or may not be served."""
        if self.folder is not None:
            return read_under(self.folder, parts)
        try:
            return self.data.read_bytes(self.data.path(*parts))
        except OSError:  # not there, or a prefix rather than an object
            return None

    def has(self, parts: list[str]) -> bool:
        if self.folder is None:
            return bool(self.data.existing([self.data.path(*parts)]))
        fd = open_under(self.folder, parts)
        if fd is not None:
            os.close(fd)
        return fd is not None

    def jobs(self) -> list[str]:
        """The jobs that have written run files (`runs/<job>/`)."""
        return [job for job in self.data.folders(self.data.path("runs")) if JOB_NAME.match(job)]

    def link(self, uri: str) -> str | None:
        """A file's uri as a link from the index, if this plugin would serve it (a file recorded
        under another data root is not)."""
        relative = self.data.relative(uri)
        parts = parts_of(relative) if relative else None
        return quote(relative) if relative and parts and self.has(parts) else None


def pages() -> Pages:
    """The data root's pages; imported here: every Airflow process loads plugins, and the
    storage layer imports pyarrow."""
    from pipeline.datafiles.root import DataRoot

    return Pages(DataRoot())


@dataclass(frozen=True)
class RunPages:
    """One run's row of the index: its pages as links (relative to the index)."""

    run: RunRow
    report: str | None
    docs: list[tuple[str, str, bool]]  # (suite, link, passed)
    cards: list[tuple[str, str]]  # (label, link)


def run_pages(url: str, files: Pages, run: RunRow) -> RunPages:
    """What the index shows of one run, from what the warehouse recorded of it."""
    from pipeline.datafiles.layout import model_dir, report_path  # pyarrow: not at plugin load

    data, job = files.data, run.job
    report = run.report_uri or data.uri(report_path(data, job, run.run_id))
    docs = [
        (check.suite.removeprefix(f"{job}."), link, check.success)
        for check in validations_of_run(url, job, run.run_id)
        if check.docs_uri and (link := files.link(check.docs_uri))
    ]
    versions = [("", run.model_version, "")] if run.model_version else []
    candidate = model_of_run(url, job, run.run_id)
    if candidate and candidate.version != run.model_version:
        versions.append(("candidate ", candidate.version, f" ({candidate.status})"))
    cards = [
        (f"{label}v{version}{status}", link)
        for label, version, status in versions
        if (link := files.link(data.uri(f"{model_dir(data, job, version)}/{CARD}")))
    ]
    return RunPages(run, files.link(report), docs, cards)


def run_row(pages: RunPages) -> list[str]:
    def links(items) -> str:
        return " · ".join(items) or '<span class="note">—</span>'

    run = pages.run
    report = f'<a href="{esc(pages.report)}">report</a>' if pages.report else ""
    docs = [
        f'<a href="{esc(link)}">{esc(suite)}</a>' + ("" if passed else " " + badge("failed"))
        for suite, link, passed in pages.docs
    ]
    cards = [f'<a href="{esc(link)}">{esc(label)}</a>' for label, link in pages.cards]
    return [
        f'<code class="run">{esc(run.run_id)}</code>',
        esc(fmt_time(run.as_of)),
        badge(run.status),
        links([report] if report else []),
        links(docs),
        links(cards),
    ]


def job_section(url: str | None, files: Pages, job: str) -> str:
    """A job's newest runs, newest first, each with its pages; from the warehouse when this
    process reaches it, else a link to the job's index page alone."""
    from pipeline.datafiles.layout import index_path

    index = files.link(files.data.uri(index_path(files.data, job)))
    every = f'<a href="{esc(index)}">all runs of {esc(job)}</a>' if index else ""
    rows, note = [], ""
    try:
        if url is None:
            raise LookupError("no warehouse configured for the api-server")
        runs = recent_runs(url, job, RUNS_LISTED + 1)
        rows = [run_row(run_pages(url, files, run)) for run in runs[:RUNS_LISTED]]
        shown = f"the newest {RUNS_LISTED}" if len(runs) > RUNS_LISTED else "every run"
        note = f"Newest first: {shown}. " if runs else "No run recorded yet. "
    except Exception as exc:  # the warehouse down or out of reach: the index pages still help
        log.warning("Scoring files: the runs of %s are not listed: %s", job, exc)
        note = "The warehouse did not answer: the job's index lists its runs. "
    body = (
        table(["run", "as of", "status", "report", "Data Docs", "model card"], rows) if rows else ""
    )
    return (
        f'<section id="job-{esc(job)}"><h2>{esc(job)}</h2>'
        f'<p class="note">{esc(note)}{every}</p>{body}</section>'
    )


def index_page(files: Pages) -> str:
    header = (
        "<header><h1>Scoring files</h1><p class=subtitle>Each job's runs, newest first: the "
        "run's report, its Data Docs (the Great Expectations validation of each snapshot) "
        "and the card of the model that scored it (and of a candidate it fitted).</p></header>"
    )
    jobs = files.jobs()
    try:
        url: str | None = warehouse_url()
    except Exception:
        url = None
    toc = " ".join(f'<a href="#job-{esc(job)}">{esc(job)}</a>' for job in jobs)
    sections = "".join(job_section(url, files, job) for job in jobs)
    main = (
        f'<nav class="toc">{toc}</nav>{sections}'
        if jobs
        else "<p>No run has written files yet.</p>"
    )
    footer = (
        "<footer>Served by the Airflow plugin pipeline.orchestration.plugin, behind Airflow's "
        "login.</footer>"
    )
    return page("Scoring files", f"{header}<main>{main}</main>{footer}")


def card_page(parts: list[str], text: str) -> str:
    """A model card (Markdown) as a page, with where it is and a way back to the index."""
    up = "../" * (len(parts) - 1) or "./"
    title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.strip()), CARD)
    back = (
        f'<nav class="toc"><a href="{esc(up)}">Scoring files</a>'
        f" · <code>{esc('/'.join(parts))}</code></nav>"
    )
    return page(title, f'{back}<main class="card">{markdown_html(text)}</main>')


@app.get("/", response_class=HTMLResponse, response_model=None)
def index(request: Request) -> HTMLResponse | RedirectResponse:
    """Each job's newest runs with their pages (the UI's "Scoring files"), at `/scoring-files/`:
    its links are relative, for any prefix the UI is served under."""
    if not request.url.path.endswith("/"):
        return RedirectResponse(f"{request.url.path}/")
    return HTMLResponse(index_page(pages()))


@app.get("/{path:path}")
def run_file(path: str) -> Response:
    """One page or result under the data root; a model card as HTML."""
    parts = parts_of(path)
    content = pages().read(parts) if parts else None
    if content is None or parts is None:
        raise HTTPException(status_code=404, detail="no such page under the data root")
    if parts[-1].endswith(".md"):
        return HTMLResponse(card_page(parts, content.decode("utf-8", errors="replace")))
    return Response(content, media_type=TYPES[PurePosixPath(parts[-1]).suffix])


class ScoringFilesPlugin(AirflowPlugin):
    name = "scoring_files"
    fastapi_apps = [{"app": app, "url_prefix": PREFIX, "name": "Scoring files"}]
    # with a url_route the UI shows the view in its own frame; without one, its nav entry is
    # a button that opens nothing
    external_views = [
        {"name": "Scoring files", "href": f"{PREFIX}/", "destination": "nav", "url_route": ROUTE}
    ]
