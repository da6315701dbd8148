"""A job's index of runs (`runs/<job>/index.html`): every run, newest first, each linked to
its report; rewritten after every run's report."""

from datetime import UTC, datetime

from pipeline.datafiles.layout import REPORT, index_path, report_path, run_folder
from pipeline.datafiles.root import DataRoot
from pipeline.reports.html import badge, esc, fmt_int, fmt_time, page, table
from pipeline.spec import JobSpec
from pipeline.warehouse.runs import RunRow, recent_runs

INDEX_RUNS = 1000


def write_job_index(url: str, spec: JobSpec, root: DataRoot | None = None) -> str:
    """(Re)write `runs/<job>/index.html`: the job's runs, newest first; returns its uri."""
    root = root or DataRoot()
    runs = recent_runs(url, spec.name, INDEX_RUNS + 1)
    reported = root.existing([report_path(root, spec.name, r.run_id) for r in runs[:INDEX_RUNS]])
    path = index_path(root, spec.name)
    root.write_bytes(path, render_index(spec, runs, reported, root).encode())
    return root.uri(path)


def render_index(spec: JobSpec, runs: list[RunRow], reported: set[str], root: DataRoot) -> str:
    rows = []
    for run in runs[:INDEX_RUNS]:
        path = report_path(root, spec.name, run.run_id)
        link = f"{run_folder(run.run_id)}/{REPORT}"
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
