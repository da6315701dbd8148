"""A job's index of runs (`runs/<job>/index.html`): every run, newest first, each linked to
its report; rewritten after every run's report."""

import posixpath
from datetime import UTC, datetime

from pipeline.datafiles.layout import index_path, report_path
from pipeline.datafiles.root import DataRoot
from pipeline.reports.html import badge, esc, fmt_int, fmt_time, page, table
from pipeline.spec import JobSpec
from pipeline.warehouse.runs import RunRow, recent_runs

INDEX_RUNS = 1000


def write_job_index(url: str, spec: JobSpec, root: DataRoot | None = None) -> str:
    """(Re)write `runs/<job>/index.html`: the job's runs, newest first; returns its uri."""
    root = root or DataRoot()
    runs = recent_runs(url, spec.name, INDEX_RUNS + 1)
    reported = root.existing([report_of(root, run) for run in runs[:INDEX_RUNS]])
    path = index_path(root, spec.name)
    root.write_bytes(path, render_index(spec, runs, reported, root).encode())
    return root.uri(path)


def report_of(root: DataRoot, run: RunRow) -> str:
    """Where the run's report is: as recorded on the run (runs of older versions kept it in
    another folder), else where this version writes it."""
    return (
        root.path_of(run.report_uri) if run.report_uri else report_path(root, run.job, run.run_id)
    )


def render_index(spec: JobSpec, runs: list[RunRow], reported: set[str], root: DataRoot) -> str:
    rows = []
    folder = index_path(root, spec.name).rsplit("/", 1)[0]
    for run in runs[:INDEX_RUNS]:
        path = report_of(root, run)
        link = posixpath.relpath(path, folder)
        run_cell = (
            f'<a href="{esc(link)}">{esc(run.run_id)}</a>'
            if path in reported
            else f"{esc(run.run_id)} <span class=note>(no report)</span>"
        )
        rows.append(
            [
                run_cell,
                esc(fmt_time(run.as_of)),
                badge(run.status),
                fmt_int(run.rows_scored),
                esc(f"v{run.model_version}" if run.model_version else "—"),
                esc(fmt_time(run.started_at)),
            ]
        )
    more = (
        f'<p class="note">Only the newest {INDEX_RUNS} runs are listed.</p>'
        if len(runs) > INDEX_RUNS
        else ""
    )
    body = (
        f"<header><h1>Runs of {esc(spec.name)}</h1>"
        + (f'<p class="subtitle">{esc(spec.description)}</p>' if spec.description else "")
        + "</header><main>"
        + table(
            ["run", "as of", "status", "rows scored", "model", "started"],
            rows,
            numeric=(3,),
            caption="Newest first; each run links to its report.",
        )
        + more
        + f"</main><footer>Written {esc(fmt_time(datetime.now(UTC)))} by"
        " pipeline.reports.job_index.</footer>"
    )
    return page(f"{spec.name}: runs", body)
