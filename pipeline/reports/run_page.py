"""A run's report: one self-contained HTML page beside the run (`runs/<job>/<run>/report.html`).

It shows the run's header, validation, the gate decision, the score histogram, drift (PSI per
feature, and training against scoring distributions of the most drifted features), realised
performance, row counts and timings, all from `ReportFacts` (`pipeline.reports.facts`). The
page has its CSS inline, its charts as inline SVG, no script and no external asset: it opens
offline, from a file, a bucket or the Airflow UI's "Scoring files".

Every value read from data goes through `esc` (html.escape): category values are user data.
Every number a chart shows is also text: an SVG <title> per mark, labels, or a table beside it.
"""

import logging
import posixpath

from pipeline.config import jobs_dir
from pipeline.datafiles.layout import INDEX, report_path, run_dir
from pipeline.datafiles.root import DataRoot
from pipeline.logic.drift import SCORE
from pipeline.reports.charts import (
    bar_chart_svg,
    grouped_bar_svg,
    histogram_svg,
    line_chart_svg,
)
from pipeline.reports.facts import Distribution, ReportFacts, gather, psi_rows
from pipeline.reports.html import (
    badge,
    esc,
    figure,
    finite,
    fmt_int,
    fmt_metric,
    fmt_psi,
    fmt_seconds,
    fmt_time,
    page,
    short_number,
    table,
)
from pipeline.reports.job_index import write_job_index
from pipeline.reports.summary import decision_line
from pipeline.spec import JobSpec, find_spec, spec_from_record
from pipeline.warehouse import runs
from pipeline.warehouse.models import ModelVersion
from pipeline.warehouse.monitoring import DriftRow, PerformanceRow

log = logging.getLogger(__name__)

SCORE_BINS = 20
ALERT_KINDS_SHOWN = ("drift", "performance", "validation_warning")
PERFORMANCE_POINTS = 60  # the latest values per metric shown


def write_run_report(url: str, spec: JobSpec, run_id: str) -> str:
    """Write the run's report and the job's index; returns the report's uri."""
    root = DataRoot()
    facts = gather(url, spec, run_id, root)
    path = report_path(root, spec.name, run_id)
    root.write_bytes(path, render_report(spec, facts).encode())
    write_job_index(url, spec, root)
    uri = root.uri(path)
    log.debug("run report: %s", uri)  # the summary links it
    return uri


def report_run(url: str, job: str, run_id: str, spec: JobSpec | None = None) -> str | None:
    """Write the run's report and record its uri on the run; returns the uri. A report that
    cannot be written is a warning, never the run's failure. Without `spec`, the spec the run
    froze is used, or for a run refused before it froze one, the job's spec file as it is."""
    try:
        if spec is None:
            run = runs.fetch_run(url, job, run_id)
            if run is None:
                return None
            spec = spec_from_record(run.spec) if run.spec else find_spec(job, jobs_dir())
        uri = write_run_report(url, spec, run_id)
        runs.set_field(url, job, run_id, "report_uri", uri)
        return uri
    except Exception:
        log.warning("run %s of %s: its report could not be written", run_id, job, exc_info=True)
        return None


def alert_banner(facts: ReportFacts) -> str:
    """Every alert of the run, red, above everything else: the same rows, in the same words,
    as the summary and the webhook."""
    if not facts.alerts:
        return ""
    items = "".join(f"<li>[{esc(a.kind)}] {esc(a.message)}</li>" for a in facts.alerts)
    return (
        f'<div class="banner alert" role="alert"><strong>{len(facts.alerts)} alert(s)'
        f"</strong><ul>{items}</ul></div>"
    )


def render_report(spec: JobSpec, facts: ReportFacts) -> str:
    run = facts.run
    title = f"{spec.name} · run {run.run_id} · {run.status}"
    sections = [
        ("glance", "At a glance", glance_section(spec, facts)),
        ("validation", "Validation", validation_section(facts)),
        ("model", "Model and gate decision", gate_section(spec, facts)),
        ("scores", "Scores", scores_section(spec, facts)),
        ("drift", "Drift", drift_section(spec, facts)),
        ("performance", "Realised performance", performance_section(facts.performance)),
        *(
            [("shadow", "Challenger in shadow", shadow_section(spec, facts.challenger, facts))]
            if facts.challenger
            else []
        ),
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
        f"{header_section(spec, facts)}{alert_banner(facts)}"
        f'<nav class="toc" aria-label="Sections">{toc}'
        f' · <a href="../{INDEX}">all runs of {esc(spec.name)}</a></nav>'
        f"<main>{body}</main>"
        f"<footer>Written {esc(fmt_time(facts.generated_at))} by pipeline.reports.run_page;"
        " self-contained: no script, no external file.</footer>",
    )


def header_section(spec: JobSpec, facts: ReportFacts) -> str:
    run = facts.run
    rows = [
        ("Job", esc(spec.name)),
        ("Run id", f"<span class=mono>{esc(run.run_id)}</span>"),
        ("Status", badge(run.status)),
        ("As of", esc(fmt_time(run.as_of))),
        ("Model version", esc(model_version(facts))),
        ("Code version", f"<span class=mono>{esc(run.code_version or '—')}</span>"),
        ("Started", esc(fmt_time(run.started_at))),
        ("Published", esc(fmt_time(run.published_at))),
    ]
    items = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    description = f'<p class="subtitle">{esc(spec.description)}</p>' if spec.description else ""
    error = f'<h3>Why it stopped</h3><pre class="error">{esc(run.error)}</pre>' if run.error else ""
    return (
        f"<header><h1>Run report: {esc(spec.name)}</h1>{description}"
        f'<dl class="header">{items}</dl>{error}</header>'
    )


def model_version(facts: ReportFacts) -> str:
    run, serving = facts.run, facts.serving
    if run.model_version is not None:
        return f"v{run.model_version}"
    return f"v{serving.version} (the champion; recorded when published)" if serving else "—"


def glance_section(spec: JobSpec, facts: ReportFacts) -> str:
    run, serving, candidate = facts.run, facts.serving, facts.candidate
    facts_html = [("Status", badge(run.status)), ("Rows scored", fmt_int(facts.rows_scored))]
    if serving:
        metric = serving.primary_metric
        facts_html.append(
            (
                f"Model v{serving.version} holdout {esc(metric)}",
                fmt_metric(serving.primary_value),
            )
        )
    if candidate:
        facts_html.append(("Gate", esc(gate_verdict(candidate))))
    elif run.retrain and not run.retrain.get("due"):
        facts_html.append(("Gate", "no candidate this run"))
    checks = facts.validations
    if checks:
        failed = sum(not c.success for c in checks)
        warnings = sum(c.warnings_failed for c in checks)
        facts_html.append(
            (
                "Validation",
                f"{len(checks) - failed} of {len(checks)} suites passed"
                + (f", {warnings} warning(s)" if warnings else ""),
            )
        )
    levels = drift_levels(facts.drift)
    if facts.drift:
        drifted = sorted({a.subject for a in facts.alerts if a.kind == "drift"})
        facts_html.append(
            ("Drift", f"{len(drifted)} alert(s), {len(levels['watch'] - set(drifted))} watch")
        )
    by_kind = {kind: sum(a.kind == kind for a in facts.alerts) for kind in ALERT_KINDS_SHOWN}
    facts_html.append(
        (
            "Alerts",
            f"{len(facts.alerts)}"
            + (
                " ("
                + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in by_kind.items() if n)
                + ")"
                if facts.alerts
                else ""
            ),
        )
    )
    cards = "".join(
        f'<div class="fact"><span class="label">{name}</span>'
        f'<span class="value">{value}</span></div>'
        for name, value in facts_html
    )
    return f'<div class="facts">{cards}</div>'


def drift_levels(drift: list[DriftRow]) -> dict[str, set]:
    out: dict[str, set] = {"alert": set(), "watch": set()}
    for row in drift:
        if row.grade in out:
            out[row.grade].add(row.feature)
    out["watch"] -= out["alert"]
    return out


def validation_section(facts: ReportFacts) -> str:
    checks = facts.validations
    if not checks:
        return '<p class="note">No validation was recorded for this run.</p>'
    root, report_dir = facts.root, report_folder(facts)
    out = []
    rows = []
    for check in checks:
        stats = check.statistics or {}
        docs = relative_link(root, report_dir, check.docs_uri)
        rows.append(
            [
                esc(check.suite),
                badge("passed") if check.success else badge("failed"),
                fmt_int(stats.get("evaluated_expectations")),
                str(check.critical_failed),
                str(check.warnings_failed),
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
        failures = check.failures or []
        if not failures:
            continue
        items = "".join(
            f"<li>{badge(f['severity'], f['severity'])} {esc(f['message'])}</li>" for f in failures
        )
        out.append(f"<h3>{esc(check.suite)}: failures</h3><ul class=failures>{items}</ul>")
    out.append(
        '<p class="note">Each suite\'s Data Docs page (Great Expectations) has every expectation;'
        " it is self-contained too.</p>"
    )
    return "".join(out)


def report_folder(facts: ReportFacts) -> str:
    return run_dir(facts.root, facts.run.job, facts.run.run_id)


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


def gate_verdict(candidate: ModelVersion) -> str:
    if candidate.status == "awaiting_approval":
        return f"v{candidate.version} awaits approval"
    promoted = candidate.status == "champion" or candidate.forced
    if candidate.champion_version is None:
        return f"v{candidate.version} first model, champion"
    if promoted:
        return f"promoted v{candidate.version}" + (" (forced)" if candidate.forced else "")
    return f"kept v{candidate.champion_version}, candidate v{candidate.version} rejected"


def gate_section(spec: JobSpec, facts: ReportFacts) -> str:
    run, candidate, serving = facts.run, facts.candidate, facts.serving
    out = []
    if candidate:
        metric = candidate.primary_metric
        champion = candidate.champion_metrics or {}
        names = list(dict.fromkeys([*candidate.metrics, *champion]))
        names.sort(key=lambda name: name != metric)
        has_champion = candidate.champion_version is not None
        headers = ["metric", f"candidate v{candidate.version}"]
        if has_champion:
            headers.append(f"champion v{candidate.champion_version} (same holdout)")
        rows = []
        for name in names:
            row = [
                esc(name) + (" (primary: the gate compares it)" if name == metric else ""),
                fmt_metric(candidate.metrics.get(name)),
            ]
            if has_champion:
                row.append(fmt_metric(champion.get(name)))
            rows.append(row)
        out.append(
            f"<p><strong>{esc(decision_line(candidate))}</strong></p>"
            f"<p>{badge(gate_verdict(candidate), candidate.status)}"
            f" {esc(candidate.decision_reason)}</p>"
        )
        primary = ["primary" if name == metric else "" for name in names]
        out.append(table(headers, rows, numeric=(1, 2), row_classes=primary))
        bars = [(f"candidate v{candidate.version}", candidate.metrics.get(metric))]
        if has_champion and finite(champion.get(metric)):
            bars.insert(0, (f"champion v{candidate.champion_version}", champion[metric]))
        drawn = [(label, value) for label, value in bars if finite(value)]
        if drawn:
            out.append(
                figure(
                    bar_chart_svg(
                        drawn,
                        title=f"Holdout {metric}: champion and candidate",
                        value_format=lambda v: f"{v:.4f}",
                        svg_id="gate-chart",
                    ),
                    f"Holdout {metric}, both models on this run's holdout",
                )
            )
    else:
        retrain = run.retrain
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
        metric = serving.primary_metric
        out.append(
            f"<p>Scored with model <strong>v{serving.version}</strong>"
            f" ({esc(serving.estimator or '')}; holdout {esc(metric)}"
            f" {fmt_metric(serving.primary_value)}; trained by run"
            f" <span class=mono>{esc(serving.run_id)}</span>).</p>"
        )
        approval = serving.approval or {}
        if approval.get("verdict") == "approved":
            by = approval.get("answered_by") or {}
            out.append(
                f"<p>v{serving.version} was approved by {esc(by.get('name') or by.get('id'))}"
                f" at {esc(str(approval.get('answered_at'))[:16])} UTC:"
                f" {esc(approval.get('reason'))}</p>"
            )
    elif run.model_version is None:
        out.append('<p class="note">No model scored this run.</p>')
    return "".join(out)


def scores_section(spec: JobSpec, facts: ReportFacts) -> str:
    summary = facts.scores
    if summary is None:
        return f"<p><strong>{esc(facts.scores_note)}</strong></p>"
    if not summary["rows"]:
        return "<p><strong>The prediction files hold no rows.</strong></p>"
    histogram = summary["histogram"]
    if (
        spec.task == "classification"
        and histogram["edges"][:1] == [0.0]
        and histogram["edges"][-1:] == [1.0]
    ):
        meaning = "the predicted probability" + (
            f" of class {spec.positive_class}" if spec.positive_class else ""
        )
    else:
        meaning = f"the predicted {spec.target}"
    stats = [("rows", fmt_int(summary["rows"]))]
    for name in ("mean", "min", "p10", "median", "p90", "max"):
        value = summary.get(name)
        stats.append((name, short_number(value) if value is not None else "—"))
    if summary["not_a_number"]:
        stats.append(("not a number", fmt_int(summary["not_a_number"])))
    text = ", ".join(f"{name} {value}" for name, value in stats)
    return figure(
        histogram_svg(
            histogram["counts"],
            histogram["edges"],
            title=f"Histogram of this run's {summary['rows']:,} scores",
            x_label=f"score ({meaning})",
            svg_id="score-histogram",
        ),
        f"This run's scores in {len(histogram['counts'])} equal bins",
        note=f"Scores: {text} (p10, median and p90 from a seeded sample of 100,000 scores).",
    )


def drift_section(spec: JobSpec, facts: ReportFacts) -> str:
    psi = psi_rows(facts.drift)
    if not psi:
        if facts.run.status in ("failed", "abandoned"):
            return "<p><strong>No drift was measured: the run stopped before monitoring.</strong>"
        return '<p class="note">No drift was recorded for this run.</p>'
    ordered = sorted(psi, key=lambda r: -(r.value if r.value is not None else -1.0))
    threshold = next((r.threshold for r in ordered), None)
    watch = next((r.watch for r in ordered if r.watch is not None), None)
    levels = [r.grade for r in ordered]
    out = [
        figure(
            bar_chart_svg(
                [(r.feature, r.value) for r in ordered if r.value is not None],
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
            note=f"{SCORE} is the score's own drift against the serving model's scores"
            " on its holdout."
            if any(r.feature == SCORE for r in ordered)
            else "",
        )
    ]
    population = ordered[0].population if ordered else "all"
    rows = ordered[0].rows if ordered else None
    which = (
        "the rows new or changed since the previous published run"
        if population == "new"
        else "the whole scored table"
    )
    out.append(f"<p>Alerts come from <strong>{esc(which)}</strong> ({fmt_int(rows)} rows).</p>")
    out.append(drift_table(facts.drift, ordered))
    if facts.drift_other:
        other = facts.drift_other[0]
        name = (
            "the rows new since the previous published run"
            if other.population == "new"
            else "the whole scored table"
        )
        out.append(f"<h3>The same statistics on {esc(name)} ({fmt_int(other.rows)} rows)</h3>")
        out.append(drift_table(facts.drift_other, psi_rows(facts.drift_other)))
    out.append("<h3>Distributions: the features that alerted, then the most drifted</h3>")
    if facts.distributions_note:
        out.append(f'<p class="note">{esc(facts.distributions_note)}</p>')
    for i, dist in enumerate(facts.distributions):
        out.append(distribution_figure(i, dist))
    return "".join(out)


def drift_table(drift: list[DriftRow], ordered: list[DriftRow]) -> str:
    """Every drift statistic per feature, features in PSI order."""
    statistics = list(dict.fromkeys(r.statistic for r in drift))
    by_feature: dict[str, dict[str, DriftRow]] = {}
    for row in drift:
        by_feature.setdefault(row.feature, {})[row.statistic] = row
    rows = []
    first = [r.feature for r in ordered]
    for feature in first + sorted(set(by_feature) - set(first)):
        stats = by_feature[feature]
        worst = "ok"
        cells = [esc(feature)]
        for statistic in statistics:
            found = stats.get(statistic)
            cells.append("" if found is None else fmt_psi(found.value))
            level = found.grade if found else "ok"
            if level == "alert" or (level == "watch" and worst == "ok"):
                worst = level
        cells.append(badge(worst))
        rows.append(cells)
    headers = ["feature", *statistics, "level"]
    return table(headers, rows, numeric=tuple(range(1, len(statistics) + 1)))


def distribution_figure(i: int, dist: Distribution) -> str:
    feature, row = dist.feature, dist.psi
    train, scored = dist.training, dist.scoring
    kind = "training deciles, then missing" if dist.numeric else "one bar per value"
    svg = grouped_bar_svg(
        dist.labels,
        [("training", train.tolist()), ("scoring", scored.tolist())],
        title=f"{feature}: training against scoring distribution (PSI {fmt_psi(row.value)})",
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
        for label, a, b in zip(dist.labels, train, scored, strict=True)
    ]
    data = table(
        ["bin", "training rows", "training share", "scoring rows", "scoring share"],
        rows,
        numeric=(1, 2, 3, 4),
    )
    return (
        f"<figure><figcaption>{esc(feature)}: PSI {fmt_psi(row.value)}"
        f" ({esc(row.grade)})</figcaption>"
        f"{svg}{data}</figure>"
    )


def performance_section(rows: list[PerformanceRow] | None) -> str:
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
    metrics = list(dict.fromkeys(r.metric for r in rows))
    for i, metric in enumerate(metrics):
        series = [r for r in rows if r.metric == metric][-PERFORMANCE_POINTS:]
        points = [(f"{r.run_id} (v{r.model_version})", r.value) for r in series]
        holdouts = [r.holdout for r in series if finite(r.holdout)]
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
            f"<span class=mono>{esc(r.run_id)}</span>",
            esc(f"v{r.model_version}"),
            esc(r.metric),
            fmt_metric(r.value),
            fmt_metric(r.holdout),
            fmt_metric(r.worse_by),
            fmt_metric(r.tolerance),
            f"{fmt_int(r.labelled)} of {fmt_int(r.eligible)}",
            "yes" if r.trusted else "no (too few labels)",
            badge("alert") if r.alert else "",
            esc(fmt_time(r.computed_at)),
        ]
        for r in rows[-PERFORMANCE_POINTS:]
    ]
    out.append(
        table(
            [
                "run",
                "model",
                "metric",
                "value",
                "holdout",
                "worse by",
                "tolerance",
                "labelled of eligible",
                "trusted",
                "alert",
                "computed",
            ],
            table_rows,
            numeric=(3, 4, 5, 6, 7),
            caption="Eligible: the keys a run scored that had no label at its as_of.",
        )
    )
    return "".join(out)


def shadow_section(spec: JobSpec, challenger: ModelVersion, facts: ReportFacts) -> str:
    """The challenger that scored beside the champion: how many runs so far, or how it was
    judged on the late labels of those runs, both curves over them."""
    wanted = spec.governance.shadow_runs
    judged = challenger.shadow or {}
    where = (
        f"Its scores are in <code>scoring.{esc(spec.shadow_table)}</code>, never in "
        f"<code>scoring.{esc(spec.latest_view)}</code>."
    )
    if not judged.get("runs"):
        return (
            f"<p><strong>Challenger v{challenger.version} scores beside the champion</strong>"
            f" ({facts.shadow_runs} of {wanted} shadow run(s) so far); then both are judged on "
            f"the labels that arrived for those runs. {where}</p>"
        )
    metric = judged["metric"]
    runs = judged["runs"]
    labels = [run["run_id"] for run in runs]
    champion = [(run.get("champion") or {}).get(metric) for run in runs]
    mine = [(run.get("challenger") or {}).get(metric) for run in runs]
    chart = line_chart_svg(
        list(zip(labels, mine, strict=True)),
        title=f"Realised {metric} per shadow run: challenger v{challenger.version} and champion",
        y_label=metric,
        svg_id="shadow-curves",
        versus=(f"challenger v{challenger.version}", "champion", champion),
    )
    rows = [
        [
            f"<span class=mono>{esc(run['run_id'])}</span>",
            fmt_int(run["labelled"]),
            fmt_metric(c),
            fmt_metric(m),
        ]
        for run, c, m in zip(runs, champion, mine, strict=True)
    ]
    return (
        f"<p>{badge(judged.get('verdict', ''), challenger.status)} challenger "
        f"v{challenger.version}: {esc(challenger.decision_reason)}</p><p>{where}</p>"
        + figure(chart, "Both models on the same late-labelled keys of each shadow run")
        + table(
            ["shadow run", "labelled", f"champion {metric}", f"challenger {metric}"],
            rows,
            numeric=(1, 2, 3),
        )
    )


def volumes_section(facts: ReportFacts) -> str:
    run = facts.run
    rows = [
        [
            esc(f"{s.kind} snapshot"),
            fmt_int(s.row_count),
            f"<span class=mono>{esc(s.sha256[:16])}</span>",
        ]
        for s in facts.snapshots
    ]
    scored = facts.rows_scored
    source = "" if run.rows_scored is not None or scored is None else "prediction files"
    rows.append(["rows scored", fmt_int(scored), esc(source)])
    out = [table(["what", "rows", "sha256 / from"], rows, numeric=(1,))]
    timings = run.timings or {}
    items = [(stage, float(seconds)) for stage, seconds in timings.items() if finite(seconds)]
    items.sort(key=lambda item: -item[1])  # where the time went, largest first
    if items:
        total = sum(v for _, v in items)
        out.append(
            figure(
                bar_chart_svg(
                    items, title="Seconds per stage", value_format=fmt_seconds, svg_id="timings"
                ),
                f"Seconds per stage, largest first ({total:.1f} s in all)",
            )
        )
    else:
        out.append('<p class="note">Stage timings are recorded when a run is published.</p>')
    return "".join(out)
