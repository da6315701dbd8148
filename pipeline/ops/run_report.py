"""A run's report: one self-contained HTML page beside the run, and the job's index of runs.

`write_run_report(url, spec, run_id)` writes `runs/<job>/<run folder>/report.html` under the
data root and rewrites `runs/<job>/index.html`. The page has its CSS inline, its charts as
inline SVG, no script and no external asset: it opens offline, from a file, a bucket or the
Airflow UI's "Scoring files" (which serves .html only). It shows the run's header, validation,
the gate decision, the score histogram, drift (PSI per feature, and training against scoring
distributions of the most drifted features), realised performance, row counts and timings.

Every value read from data goes through `esc` (html.escape): category values are user data.
Every number a chart shows is also text: an SVG <title> per mark, labels, or a table beside it.

The charts and the page's security policy are in `offline_html`; GX's Data Docs pages are
made self-contained the same way by `data_docs.offline_data_docs`.
"""

import logging
import posixpath
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.ops.offline_html import (
    CSP_META,
    bar_chart_svg,
    esc,
    finite,
    fmt_metric,
    grouped_bar_svg,
    histogram_svg,
    line_chart_svg,
    short_number,
)
from pipeline.spec import JobSpec
from pipeline.store import db
from pipeline.store.storage import DataRoot, run_folder

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
REPORT = "report.html"
INDEX = "index.html"
SCORE_BINS = 20
TOP_DRIFTED = 3
MAX_CATEGORIES = 12  # bars per categorical feature; the rest are summed as "other"
PERFORMANCE_POINTS = 60  # the latest values per metric shown
INDEX_RUNS = 1000
SCORE_FEATURE = "(score)"  # drift_reports' name for the drift of the score itself


# ---------------------------------------------------------------------------------------------
# entry points


def report_path(root: DataRoot, job: str, run_id: str) -> str:
    return root.path("runs", job, run_folder(run_id), REPORT)


def index_path(root: DataRoot, job: str) -> str:
    return root.path("runs", job, INDEX)


def write_run_report(url: str, spec: JobSpec, run_id: str) -> str:
    """Write the run's report and the job's index; returns the report's uri."""
    root = DataRoot()
    facts = gather(url, spec, run_id, root)
    path = report_path(root, spec.name, run_id)
    root.write_bytes(path, render_report(spec, facts).encode())
    write_job_index(url, spec, root)
    uri = root.uri(path)
    log.info("run report: %s", uri)
    return uri


def report_run(url: str, job: str, run_id: str, spec: JobSpec | None = None) -> str | None:
    """Write the run's report and record its uri on the run; returns the uri. A report that
    cannot be written is a warning, never the run's failure. Without `spec`, the spec the run
    froze is used."""
    from pipeline.spec import spec_from_record

    try:
        if spec is None:
            row = db.fetch_one(
                url,
                "SELECT spec FROM scoring.scoring_runs WHERE job = %s AND run_id = %s",
                (job, run_id),
            )
            if not row or not row["spec"]:
                return None
            spec = spec_from_record(row["spec"])
        uri = write_run_report(url, spec, run_id)
        with db.transaction(url) as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE scoring.scoring_runs SET report_uri = %s WHERE job = %s AND run_id = %s",
                (uri, job, run_id),
            )
        return uri
    except Exception:
        log.warning("run %s of %s: its report could not be written", run_id, job, exc_info=True)
        return None


def write_job_index(url: str, spec: JobSpec, root: DataRoot | None = None) -> str:
    """(Re)write `runs/<job>/index.html`: the job's runs, newest first; returns its uri."""
    root = root or DataRoot()
    runs = db.fetch_all(
        url,
        "SELECT run_id, as_of, status, rows_scored, model_version, started_at"
        " FROM scoring.scoring_runs WHERE job = %s ORDER BY started_at DESC, run_id LIMIT %s",
        (spec.name, INDEX_RUNS + 1),
    )
    paths = [report_path(root, spec.name, r["run_id"]) for r in runs[:INDEX_RUNS]]
    infos = root.fs.get_file_info(paths) if paths else []
    reported = {p for p, info in zip(paths, infos, strict=True) if info.type == pafs.FileType.File}
    path = index_path(root, spec.name)
    root.write_bytes(path, render_index(spec, runs, reported, root).encode())
    return root.uri(path)


# ---------------------------------------------------------------------------------------------
# what the report reads


def gather(url: str, spec: JobSpec, run_id: str, root: DataRoot) -> dict:
    """Everything the report shows, read from the warehouse and the data root."""
    from pipeline.errors import PipelineError
    from pipeline.ops.report import snapshot_rows

    job = spec.name
    run = db.fetch_one(
        url, "SELECT * FROM scoring.scoring_runs WHERE job = %s AND run_id = %s", (job, run_id)
    )
    if run is None:
        raise PipelineError(f"job {job}: no run {run_id!r} in scoring.scoring_runs")
    facts: dict = {"run": run, "root": root, "generated_at": datetime.now(UTC)}
    facts["validations"] = db.fetch_all(
        url,
        "SELECT suite, success, critical_failed, warnings_failed, statistics, failures, docs_uri"
        " FROM scoring.validation_results WHERE job = %s AND run_id = %s ORDER BY suite",
        (job, run_id),
    )
    facts["candidate"] = db.fetch_one(
        url,
        "SELECT version, status, primary_metric, metrics, champion_version, champion_metrics,"
        " decision_reason, forced FROM scoring.model_versions WHERE job = %s AND run_id = %s",
        (job, run_id),
    )
    facts["serving"] = serving_model(url, job, run)
    facts["drift"] = db.fetch_all(
        url,
        "SELECT * FROM scoring.drift_reports WHERE job = %s AND run_id = %s"
        " ORDER BY feature, statistic",
        (job, run_id),
    )
    facts["snapshots"] = snapshot_rows(url, job, run)
    facts["performance"] = performance_rows(url, job)
    facts["scores"], facts["scores_note"] = read_scores(root, job, run)
    facts["distributions"], facts["distributions_note"] = drifted_distributions(url, spec, facts)
    return facts


def serving_model(url: str, job: str, run: dict) -> dict | None:
    """The model that scored the run: its recorded version; while the run is still running
    (it is recorded when published), the job's champion, which is what `register` serves."""
    from pipeline.model import registry

    if run["model_version"] is not None:
        return registry.fetch_version(url, job, version=run["model_version"])
    return registry.champion(url, job) if run["status"] == "running" else None


def performance_rows(url: str, job: str) -> list[dict] | None:
    """The job's realised performance, oldest first; None when the table does not exist."""
    with db.transaction(url) as conn:
        exists = db.relation_exists(conn, "scoring.model_performance")
    if not exists:
        return None
    return db.fetch_all(
        url,
        "SELECT * FROM scoring.model_performance WHERE job = %s ORDER BY computed_at, run_id",
        (job,),
    )


def prediction_files(root: DataRoot, job: str, run_id: str) -> list[str]:
    """The run's prediction parts, `runs/<job>/<run folder>/predictions/part-*.parquet`."""
    folder = root.path("runs", job, run_folder(run_id), "predictions")
    selector = pafs.FileSelector(folder, allow_not_found=True)
    return sorted(
        info.path
        for info in root.fs.get_file_info(selector)
        if info.type == pafs.FileType.File
        and info.base_name.startswith("part-")
        and info.base_name.endswith(".parquet")
    )


def read_scores(root: DataRoot, job: str, run: dict) -> tuple[np.ndarray | None, str]:
    """This run's scores from its prediction files, or None and why there are none."""
    files = prediction_files(root, job, run["run_id"])
    if not files:
        folder = root.uri(root.path("runs", job, run_folder(run["run_id"]), "predictions"))
        if run["status"] in ("failed", "abandoned"):
            stopped = (run["error"] or "").split("\n", 1)[0]
            return None, (
                f"No predictions: the run {run['status']} before scoring"
                + (f" ({stopped})" if stopped else "")
                + "."
            )
        return None, f"No prediction files at {folder}."
    columns = []
    for path in files:
        with root.open_input(path) as source:
            columns.append(pq.read_table(source, columns=["score"]).column(0).to_numpy())
    return np.concatenate(columns).astype("float64"), ""


def psi_rows(drift: list[dict]) -> list[dict]:
    return [r for r in drift if r.get("statistic", "psi") == "psi"]


def drifted_distributions(url: str, spec: JobSpec, facts: dict) -> tuple[list[dict], str]:
    """Training against scoring histograms of the `TOP_DRIFTED` features with the highest PSI:
    the serving model's training snapshot against this run's scoring snapshot, binned by
    `pipeline.stages.monitor`'s own histogram functions."""
    from pipeline.contracts import SnapshotRef
    from pipeline.errors import PipelineError
    from pipeline.stages.monitor import categorical_histograms, numeric_histograms, read_column
    from pipeline.stages.snapshot import open_snapshot

    ranked = sorted(
        (
            r
            for r in psi_rows(facts["drift"])
            if r["feature"] in spec.features.all and finite(r["value"])
        ),
        key=lambda r: -r["value"],
    )[:TOP_DRIFTED]
    if not ranked:
        return [], "No drift was measured for this run."
    training = training_snapshot(url, spec.name, facts["serving"])
    scoring = next((s for s in facts["snapshots"] if s["kind"] == "scoring"), None)
    if training is None or scoring is None:
        which = "training snapshot of the serving model" if training is None else "scoring snapshot"
        return [], f"The {which} is no longer recorded: distributions cannot be drawn."
    columns = {}
    try:
        trained = SnapshotRef(uri=training["uri"], sha256=training["sha256"])
        scored = SnapshotRef(uri=scoring["uri"], sha256=scoring["sha256"])
        with open_snapshot(trained) as trained_on, open_snapshot(scored) as scored_on:
            for row in ranked:
                column = row["feature"]
                columns[column] = read_column(trained_on, column), read_column(scored_on, column)
    except (OSError, PipelineError) as exc:  # a file gone to retention, or not as recorded
        return [], f"The snapshots could not be read ({exc}): distributions not drawn."
    out = []
    for row in ranked:
        column = row["feature"]
        train, score = columns[column]
        numeric = column in spec.features.numeric
        if numeric:
            counts = numeric_histograms(train, score)
            labels = numeric_bin_labels(train)
        else:
            counts = categorical_histograms(train, score)
            labels = categorical_bin_labels(train, score)
        labels, counts = top_categories(labels, *counts)
        out.append(
            {"feature": column, "row": row, "labels": labels, "counts": counts, "numeric": numeric}
        )
    return out, ""


def training_snapshot(url: str, job: str, serving: dict | None) -> dict | None:
    """The serving model's training snapshot, looked up as monitor does."""
    from pipeline.stages.snapshot import recorded_snapshot

    if serving is None:
        return None
    return recorded_snapshot(
        url,
        job,
        serving.get("training_snapshot_id"),
        serving["training_snapshot_sha256"],
        "training",
        f"model v{serving['version']} of {job}",
        model_version=serving["version"],
    )


def numeric_bin_labels(train) -> list[str]:
    """Labels of `monitor.numeric_histograms`' bins: its training deciles, then missing."""
    from pipeline.stages.monitor import decile_edges

    edges = decile_edges(train)
    if len(edges) == 0:
        inner = ["(no values)"]
    elif len(edges) == 1:
        inner = [f"= {short_number(edges[0])}"]
    elif len(edges) == 2:
        inner = [f"{short_number(edges[0])} – {short_number(edges[1])}"]
    else:
        cuts = [short_number(e) for e in edges[1:-1]]
        inner = [f"≤ {cuts[0]}"]
        inner += [f"{lo} – {hi}" for lo, hi in zip(cuts, cuts[1:], strict=False)]
        inner.append(f"> {cuts[-1]}")
    return [*inner, "missing"]


def categorical_bin_labels(train, scored) -> list[str]:
    """Labels of `monitor.categorical_histograms`' bins: every value seen, sorted as text."""
    return sorted({str(v) for v in train} | {str(v) for v in scored})


def top_categories(labels: list[str], train, scored) -> tuple[list[str], tuple]:
    """At most `MAX_CATEGORIES` bars: the values with the largest share on either side, in
    their order, and the rest summed as one "other" bar."""
    train, scored = np.asarray(train), np.asarray(scored)
    if len(labels) != len(train):
        raise ValueError(f"{len(labels)} labels for {len(train)} bins")
    if len(labels) <= MAX_CATEGORIES:
        return labels, (train, scored)
    share = np.maximum(train / max(train.sum(), 1), scored / max(scored.sum(), 1))
    keep = sorted(np.argsort(-share, kind="stable")[: MAX_CATEGORIES - 1])
    rest = np.setdiff1d(np.arange(len(labels)), keep)
    return (
        [labels[i] for i in keep] + [f"other ({len(rest)} values)"],
        (
            np.append(train[keep], train[rest].sum()),
            np.append(scored[keep], scored[rest].sum()),
        ),
    )


# ---------------------------------------------------------------------------------------------
# number formats


def fmt_int(value) -> str:
    return "—" if value is None else f"{int(value):,}"


def fmt_psi(value) -> str:
    if not finite(value):
        return "—"
    return "< 0.001" if 0 < value < 0.001 else f"{value:.3f}"


def fmt_seconds(value) -> str:
    return "—" if not finite(value) else f"{value:.1f} s"


def fmt_time(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def figure(svg: str, caption: str, note: str = "") -> str:
    extra = f'<p class="note">{esc(note)}</p>' if note else ""
    return f"<figure><figcaption>{esc(caption)}</figcaption>{svg}{extra}</figure>"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: Sequence[int] = (),
    caption: str = "",
    row_classes: Sequence[str] | None = None,
) -> str:
    """An HTML table; cells are HTML already (escape data before), `numeric` column indexes
    are right-aligned."""
    cap = f'<caption class="note">{esc(caption)}</caption>' if caption else ""
    head = "".join(
        f'<th scope="col"{" class=num" if i in numeric else ""}>{esc(h)}</th>'
        for i, h in enumerate(headers)
    )
    body = "".join(
        (f'<tr class="{esc(row_classes[r])}">' if row_classes else "<tr>")
        + "".join(
            f"<td{' class=num' if i in numeric else ''}>{cell}</td>" for i, cell in enumerate(row)
        )
        + "</tr>"
        for r, row in enumerate(rows)
    )
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def badge(text: str, kind: str | None = None) -> str:
    return f'<span class="badge {esc(kind or text)}">{esc(text)}</span>'


# ---------------------------------------------------------------------------------------------
# the report


def render_report(spec: JobSpec, facts: dict) -> str:
    run = facts["run"]
    title = f"{spec.name} · run {run['run_id']} · {run['status']}"
    sections = [
        ("glance", "At a glance", glance_section(spec, facts)),
        ("validation", "Validation", validation_section(facts)),
        ("model", "Model and gate decision", gate_section(spec, facts)),
        ("scores", "Scores", scores_section(spec, facts)),
        ("drift", "Drift", drift_section(spec, facts)),
        ("performance", "Realised performance", performance_section(facts["performance"])),
        ("volumes", "Rows and timings", volumes_section(facts)),
    ]
    toc = " ".join(f'<a href="#{key}">{esc(name)}</a>' for key, name, _ in sections)
    body = "".join(
        f'<section id="{key}" aria-labelledby="{key}-h"><h2 id="{key}-h">{esc(name)}</h2>'
        f"{content}</section>"
        for key, name, content in sections
    )
    return page(
        title,
        f"{header_section(spec, facts)}"
        f'<nav class="toc" aria-label="Sections">{toc}'
        f' · <a href="../{INDEX}">all runs of {esc(spec.name)}</a></nav>'
        f"<main>{body}</main>"
        f"<footer>Written {esc(fmt_time(facts['generated_at']))} by pipeline.ops.run_report;"
        " self-contained: no script, no external file.</footer>",
    )


def page(title: str, body: str) -> str:
    css = (STATIC / "run_report.css").read_text()
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{CSP_META}'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{css}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def header_section(spec: JobSpec, facts: dict) -> str:
    run = facts["run"]
    rows = [
        ("Job", esc(spec.name)),
        ("Run id", f"<span class=mono>{esc(run['run_id'])}</span>"),
        ("Status", badge(run["status"])),
        ("As of", esc(fmt_time(run["as_of"]))),
        ("Model version", esc(model_version(facts))),
        ("Code version", f"<span class=mono>{esc(run['code_version'] or '—')}</span>"),
        ("Started", esc(fmt_time(run["started_at"]))),
        ("Published", esc(fmt_time(run.get("published_at")))),
    ]
    items = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    description = f'<p class="subtitle">{esc(spec.description)}</p>' if spec.description else ""
    error = (
        f'<h3>Why it stopped</h3><pre class="error">{esc(run["error"])}</pre>'
        if run.get("error")
        else ""
    )
    return (
        f"<header><h1>Run report: {esc(spec.name)}</h1>{description}"
        f'<dl class="header">{items}</dl>{error}</header>'
    )


def model_version(facts: dict) -> str:
    run, serving = facts["run"], facts["serving"]
    if run["model_version"] is not None:
        return f"v{run['model_version']}"
    return f"v{serving['version']} (the champion; recorded when published)" if serving else "—"


def rows_scored(facts: dict) -> int | None:
    run = facts["run"]
    if run["rows_scored"] is not None:
        return run["rows_scored"]
    return None if facts["scores"] is None else len(facts["scores"])


def glance_section(spec: JobSpec, facts: dict) -> str:
    run, serving, candidate = facts["run"], facts["serving"], facts["candidate"]
    facts_html = [("Status", badge(run["status"])), ("Rows scored", fmt_int(rows_scored(facts)))]
    if serving:
        metric = serving["primary_metric"]
        facts_html.append(
            (
                f"Model v{serving['version']} holdout {esc(metric)}",
                fmt_metric(serving["metrics"].get(metric)),
            )
        )
    if candidate:
        facts_html.append(("Gate", esc(gate_verdict(candidate))))
    elif run.get("retrain") and not run["retrain"].get("due"):
        facts_html.append(("Gate", "no candidate this run"))
    checks = facts["validations"]
    if checks:
        failed = sum(not c["success"] for c in checks)
        warnings = sum(c["warnings_failed"] for c in checks)
        facts_html.append(
            (
                "Validation",
                f"{len(checks) - failed} of {len(checks)} suites passed"
                + (f", {warnings} warning(s)" if warnings else ""),
            )
        )
    levels = drift_levels(facts["drift"])
    if facts["drift"]:
        facts_html.append(
            (
                "Drift",
                f"{len(levels['alert'])} alert(s), {len(levels['watch'])} watch",
            )
        )
    cards = "".join(
        f'<div class="fact"><span class="label">{name}</span>'
        f'<span class="value">{value}</span></div>'
        for name, value in facts_html
    )
    return f'<div class="facts">{cards}</div>'


def drift_levels(drift: list[dict]) -> dict[str, set]:
    out: dict[str, set] = {"alert": set(), "watch": set()}
    for row in drift:
        level = row.get("level") or ("alert" if row.get("alert") else "ok")
        if level in out:
            out[level].add(row["feature"])
    out["watch"] -= out["alert"]
    return out


def validation_section(facts: dict) -> str:
    checks = facts["validations"]
    if not checks:
        return '<p class="note">No validation was recorded for this run.</p>'
    root, report_dir = facts["root"], report_folder(facts)
    out = []
    rows = []
    for check in checks:
        stats = check["statistics"] or {}
        docs = relative_link(root, report_dir, check["docs_uri"])
        rows.append(
            [
                esc(check["suite"]),
                badge("passed") if check["success"] else badge("failed"),
                fmt_int(stats.get("evaluated_expectations")),
                str(check["critical_failed"]),
                str(check["warnings_failed"]),
                f'<a href="{esc(docs)}">Data Docs</a>' if docs else "—",
            ]
        )
    out.append(
        table(
            ["suite", "verdict", "expectations", "critical failed", "warnings failed", "details"],
            rows,
            numeric=(2, 3, 4),
        )
    )
    for check in checks:
        failures = check["failures"] or []
        if not failures:
            continue
        items = "".join(
            f"<li>{badge(f['severity'], f['severity'])} {esc(f['message'])}</li>" for f in failures
        )
        out.append(f"<h3>{esc(check['suite'])}: failures</h3><ul class=failures>{items}</ul>")
    out.append(
        '<p class="note">Each suite\'s Data Docs page (Great Expectations) has every expectation;'
        " it is self-contained too.</p>"
    )
    return "".join(out)


def report_folder(facts: dict) -> str:
    root, run = facts["root"], facts["run"]
    return root.path("runs", run["job"], run_folder(run["run_id"]))


def relative_link(root: DataRoot, folder: str, uri: str | None) -> str | None:
    """A link from `folder` (under the data root) to `uri`: relative when it is under the same
    root, so it works from a file, a bucket or the Airflow UI alike."""
    if not uri:
        return None
    path = root.path_of(uri)
    base = root.base.rstrip("/") + "/"
    if path.startswith(base):
        return posixpath.relpath(path, folder)
    return uri


def gate_verdict(candidate: dict) -> str:
    promoted = candidate["status"] == "champion" or candidate["forced"]
    if candidate["champion_version"] is None:
        return f"v{candidate['version']} first model, champion"
    if promoted:
        return f"promoted v{candidate['version']}" + (" (forced)" if candidate["forced"] else "")
    return f"kept v{candidate['champion_version']}, candidate v{candidate['version']} rejected"


def gate_section(spec: JobSpec, facts: dict) -> str:
    from pipeline.ops.report import decision_line

    run, candidate, serving = facts["run"], facts["candidate"], facts["serving"]
    out = []
    if candidate:
        metric = candidate["primary_metric"]
        champion = candidate["champion_metrics"] or {}
        names = list(dict.fromkeys([*candidate["metrics"], *champion]))
        names.sort(key=lambda name: name != metric)
        has_champion = candidate["champion_version"] is not None
        headers = ["metric", f"candidate v{candidate['version']}"]
        if has_champion:
            headers.append(f"champion v{candidate['champion_version']} (same holdout)")
        rows = []
        for name in names:
            row = [
                esc(name) + (" (primary: the gate compares it)" if name == metric else ""),
                fmt_metric(candidate["metrics"].get(name)),
            ]
            if has_champion:
                row.append(fmt_metric(champion.get(name)))
            rows.append(row)
        out.append(
            f"<p><strong>{esc(decision_line(candidate))}</strong></p>"
            f"<p>{badge(gate_verdict(candidate), candidate['status'])}"
            f" {esc(candidate['decision_reason'])}</p>"
        )
        primary = ["primary" if name == metric else "" for name in names]
        out.append(table(headers, rows, numeric=(1, 2), row_classes=primary))
        bars = [(f"candidate v{candidate['version']}", candidate["metrics"].get(metric))]
        if has_champion and finite(champion.get(metric)):
            bars.insert(0, (f"champion v{candidate['champion_version']}", champion[metric]))
        bars = [(label, value) for label, value in bars if finite(value)]
        if bars:
            out.append(
                figure(
                    bar_chart_svg(
                        bars,
                        title=f"Holdout {metric}: champion and candidate",
                        value_format=lambda v: f"{v:.4f}",
                        svg_id="gate-chart",
                    ),
                    f"Holdout {metric}, both models on this run's holdout",
                )
            )
    else:
        retrain = run.get("retrain")
        if retrain and not retrain.get("due"):
            why = retrain.get("reason") or "no reason recorded"
            out.append(f"<p><strong>No candidate this run</strong>: {esc(why)}.</p>")
        elif retrain:
            out.append(
                "<p><strong>No candidate was registered</strong>: retraining was due"
                f" ({esc(retrain.get('reason'))}) but the run stopped before a model was"
                " registered.</p>"
            )
        else:
            out.append(
                "<p><strong>No candidate this run</strong>: the run stopped before its retrain"
                " decision.</p>"
            )
    if serving:
        metric = serving["primary_metric"]
        out.append(
            f"<p>Scored with model <strong>v{serving['version']}</strong>"
            f" ({esc(serving.get('estimator', ''))}; holdout {esc(metric)}"
            f" {fmt_metric(serving['metrics'].get(metric))}; trained by run"
            f" <span class=mono>{esc(serving['run_id'])}</span>).</p>"
        )
    elif run["model_version"] is None:
        out.append('<p class="note">No model scored this run.</p>')
    return "".join(out)


def scores_section(spec: JobSpec, facts: dict) -> str:
    scores = facts["scores"]
    if scores is None:
        return f"<p><strong>{esc(facts['scores_note'])}</strong></p>"
    if not len(scores):
        return "<p><strong>The prediction files hold no rows.</strong></p>"
    present = scores[np.isfinite(scores)]
    if spec.task == "classification" and present.size and 0 <= present.min() <= present.max() <= 1:
        lo, hi = 0.0, 1.0
        meaning = "the predicted probability" + (
            f" of class {spec.positive_class}" if spec.positive_class else ""
        )
    else:
        lo, hi = (float(present.min()), float(present.max())) if present.size else (0.0, 1.0)
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        meaning = f"the predicted {spec.target}"
    counts, edges = np.histogram(present, bins=SCORE_BINS, range=(lo, hi))
    stats = [
        ("rows", fmt_int(len(scores))),
        ("mean", short_number(float(present.mean())) if present.size else "—"),
    ]
    for name, q in (("min", 0), ("p10", 0.1), ("median", 0.5), ("p90", 0.9), ("max", 1)):
        stats.append((name, short_number(float(np.quantile(present, q))) if present.size else "—"))
    if len(present) < len(scores):
        stats.append(("not a number", fmt_int(len(scores) - len(present))))
    summary = ", ".join(f"{name} {value}" for name, value in stats)
    return figure(
        histogram_svg(
            counts.tolist(),
            edges.tolist(),
            title=f"Histogram of this run's {len(scores):,} scores",
            x_label=f"score ({meaning})",
            svg_id="score-histogram",
        ),
        f"This run's scores in {SCORE_BINS} equal bins",
        note=f"Scores: {summary}.",
    )


def drift_section(spec: JobSpec, facts: dict) -> str:
    psi = psi_rows(facts["drift"])
    if not psi:
        if facts["run"]["status"] in ("failed", "abandoned"):
            return "<p><strong>No drift was measured: the run stopped before monitoring.</strong>"
        return '<p class="note">No drift was recorded for this run.</p>'
    ordered = sorted(psi, key=lambda r: -(r["value"] if finite(r["value"]) else -1))
    threshold = next((r["threshold"] for r in ordered if r.get("threshold") is not None), None)
    watch = next((r.get("watch") for r in ordered if r.get("watch") is not None), None)
    levels = [r.get("level") or ("alert" if r.get("alert") else "ok") for r in ordered]
    out = [
        figure(
            bar_chart_svg(
                [(r["feature"], r["value"]) for r in ordered],
                title="Population stability index (PSI) per feature",
                value_format=fmt_psi,
                classes=levels,
                threshold=threshold,
                threshold_label="alert above",
                watch=watch,
                watch_label="watch from",
                svg_id="psi-chart",
            ),
            "PSI per feature, serving model's training data against this run's data",
            note=f"{SCORE_FEATURE} is the score's own drift against the serving model's scores"
            " on its holdout."
            if any(r["feature"] == SCORE_FEATURE for r in ordered)
            else "",
        )
    ]
    out.append(drift_table(facts["drift"], ordered))
    out.append(f"<h3>The {TOP_DRIFTED} most drifted features</h3>")
    if facts["distributions_note"]:
        out.append(f'<p class="note">{esc(facts["distributions_note"])}</p>')
    for i, dist in enumerate(facts["distributions"]):
        out.append(distribution_figure(i, dist))
    return "".join(out)


def drift_table(drift: list[dict], ordered: list[dict]) -> str:
    """Every drift statistic per feature, features in PSI order."""
    statistics = list(dict.fromkeys(r.get("statistic", "psi") for r in drift))
    by_feature: dict[str, dict] = {}
    for row in drift:
        by_feature.setdefault(row["feature"], {})[row.get("statistic", "psi")] = row
    rows = []
    first = [r["feature"] for r in ordered]
    for feature in first + sorted(set(by_feature) - set(first)):
        stats = by_feature[feature]
        worst = "ok"
        cells = [esc(feature)]
        for statistic in statistics:
            row = stats.get(statistic)
            cells.append("" if row is None else fmt_psi(row["value"]))
            level = (row or {}).get("level") or ("alert" if (row or {}).get("alert") else "ok")
            if level == "alert" or (level == "watch" and worst == "ok"):
                worst = level
        cells.append(badge(worst))
        rows.append(cells)
    headers = ["feature", *statistics, "level"]
    return table(headers, rows, numeric=tuple(range(1, len(statistics) + 1)))


def distribution_figure(i: int, dist: dict) -> str:
    feature, row = dist["feature"], dist["row"]
    train, scored = dist["counts"]
    kind = "training deciles, then missing" if dist["numeric"] else "one bar per value"
    svg = grouped_bar_svg(
        dist["labels"],
        [("training", train.tolist()), ("scoring", scored.tolist())],
        title=f"{feature}: training against scoring distribution (PSI {fmt_psi(row['value'])})",
        x_label=f"{feature} ({kind})",
        svg_id=f"distribution-{i}",
    )
    t_total, s_total = max(int(train.sum()), 1), max(int(scored.sum()), 1)
    rows = [
        [
            esc(label),
            f"{int(a):,}",
            f"{a / t_total:.1%}",
            f"{int(b):,}",
            f"{b / s_total:.1%}",
        ]
        for label, a, b in zip(dist["labels"], train, scored, strict=True)
    ]
    data = table(
        ["bin", "training rows", "training share", "scoring rows", "scoring share"],
        rows,
        numeric=(1, 2, 3, 4),
    )
    return (
        f"<figure><figcaption>{esc(feature)}: PSI {fmt_psi(row['value'])}"
        f" ({esc(row.get('level') or ('alert' if row.get('alert') else 'ok'))})</figcaption>"
        f"{svg}{data}</figure>"
    )


def performance_section(rows: list[dict] | None) -> str:
    if rows is None:
        return (
            "<p><strong>No realised performance yet</strong>: scoring.model_performance does"
            " not exist in this warehouse.</p>"
        )
    if not rows:
        return (
            "<p><strong>No realised performance yet</strong>: no labels have arrived for this"
            " job's predictions.</p>"
        )
    out = []
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    for i, metric in enumerate(metrics):
        series = [r for r in rows if r["metric"] == metric][-PERFORMANCE_POINTS:]
        points = [(f"{r['run_id']} (v{r['model_version']})", r["value"]) for r in series]
        holdouts = [r.get("holdout") for r in series if finite(r.get("holdout"))]
        out.append(
            figure(
                line_chart_svg(
                    points,
                    title=f"Realised {metric} per run, oldest first",
                    y_label=metric,
                    reference=holdouts[-1] if holdouts else None,
                    reference_label="latest holdout",
                    svg_id=f"performance-{i}",
                ),
                f"Realised {metric} once labels arrived",
            )
        )
    table_rows = [
        [
            f"<span class=mono>{esc(r['run_id'])}</span>",
            esc(f"v{r['model_version']}"),
            esc(r["metric"]),
            fmt_metric(r["value"]),
            fmt_int(r.get("labelled")),
            esc(fmt_time(r.get("computed_at"))),
        ]
        for r in rows[-PERFORMANCE_POINTS:]
    ]
    out.append(
        table(
            ["run", "model", "metric", "value", "labelled rows", "computed"],
            table_rows,
            numeric=(3, 4),
        )
    )
    return "".join(out)


def stage_order(name: str) -> int:
    """Where a timing's stage runs in `pipeline.flow.STAGES` (`validate` sums both suites)."""
    from pipeline.flow import STAGES

    names = [stage.name for stage in STAGES]
    return next((i for i, stage in enumerate(names) if stage.startswith(name)), len(names))


def volumes_section(facts: dict) -> str:
    run = facts["run"]
    rows = [
        [
            esc(f"{s['kind']} snapshot"),
            fmt_int(s["row_count"]),
            f"<span class=mono>{esc(s['sha256'][:16])}</span>",
        ]
        for s in facts["snapshots"]
    ]
    scored = rows_scored(facts)
    source = "" if run["rows_scored"] is not None or scored is None else "prediction files"
    rows.append(["rows scored", fmt_int(scored), esc(source)])
    out = [table(["what", "rows", "sha256 / from"], rows, numeric=(1,))]
    timings = run.get("timings") or {}
    items = [(stage, float(seconds)) for stage, seconds in timings.items() if finite(seconds)]
    items.sort(key=lambda item: stage_order(item[0]))
    if items:
        total = sum(v for _, v in items)
        out.append(
            figure(
                bar_chart_svg(
                    items, title="Seconds per stage", value_format=fmt_seconds, svg_id="timings"
                ),
                f"Seconds per stage ({total:.1f} s in all)",
            )
        )
    else:
        out.append('<p class="note">Stage timings are recorded when a run is published.</p>')
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# the job's index


def render_index(spec: JobSpec, runs: list[dict], reported: set[str], root: DataRoot) -> str:
    rows = []
    for run in runs[:INDEX_RUNS]:
        path = report_path(root, spec.name, run["run_id"])
        link = f"{run_folder(run['run_id'])}/{REPORT}"
        run_cell = (
            f'<a href="{esc(link)}">{esc(run["run_id"])}</a>'
            if path in reported
            else f"{esc(run['run_id'])} <span class=note>(no report)</span>"
        )
        rows.append(
            [
                run_cell,
                esc(fmt_time(run["as_of"])),
                badge(run["status"]),
                fmt_int(run["rows_scored"]),
                esc(f"v{run['model_version']}" if run["model_version"] else "—"),
                esc(fmt_time(run["started_at"])),
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
        " pipeline.ops.run_report.</footer>"
    )
    return page(f"{spec.name}: runs", body)
