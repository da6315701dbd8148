"""An Airflow plugin that serves the runs' pages (reports, GX Data Docs, results, model cards) in
the UI.

Mounted by the api-server at `/scoring-files/`, behind Airflow's own login (the UI's session
cookie or a bearer token), with a "Scoring files" entry in the UI's navigation. It serves only
.html, .json and .md files under the local data root (`SCORING_DATA_ROOT`), never anything
outside it.
"""

import html
from pathlib import Path

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from pipeline.config import data_root

PREFIX = "/scoring-files"
SERVED = {".html", ".json", ".md"}
LISTED = 200

app = FastAPI(title="Scoring run files", dependencies=[Depends(get_user)])


def root() -> Path:
    return Path(data_root()).resolve()


@app.get("/", response_class=HTMLResponse)
def index() -> str:
    """Each job's index of run reports, then the newest pages, newest first."""
    jobs = sorted(root().glob("runs/*/index.html"))
    reports = "".join(
        f'<li><a href="{PREFIX}/{html.escape(str(p.relative_to(root())))}">'
        f"{html.escape(p.parent.name)}</a></li>"
        for p in jobs
    )
    pages = sorted(
        (p for p in root().rglob("*") if p.suffix in (".html", ".md") and p.is_file()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )[:LISTED]
    items = "".join(
        f'<li><a href="{PREFIX}/{html.escape(str(p.relative_to(root())))}">'
        f"{html.escape(str(p.relative_to(root())))}</a></li>"
        for p in pages
    )
    return (
        f"<h1>Scoring files</h1><p>Under {html.escape(str(root()))}</p>"
        f"<h2>Run reports by job</h2><ul>{reports}</ul><h2>Newest pages</h2><ul>{items}</ul>"
    )


@app.get("/{path:path}")
def run_file(path: str) -> FileResponse:
    """One page or result under the data root."""
    target = (root() / path).resolve()
    if not target.is_relative_to(root()) or target.suffix not in SERVED or not target.is_file():
        raise HTTPException(status_code=404, detail="no such page under the data root")
    return FileResponse(target)


class ScoringFilesPlugin(AirflowPlugin):
    name = "scoring_files"
    fastapi_apps = [{"app": app, "url_prefix": PREFIX, "name": "Scoring files"}]
    external_views = [
        {"name": "Scoring files", "href": f"{PREFIX}/", "destination": "nav", "url_route": None}
    ]
