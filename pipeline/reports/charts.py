"""Charts as inline SVG for pages that open offline: pure string building, every text from
data escaped, every number a mark shows also in its <title> or a label."""

import hashlib
import math
from collections.abc import Callable, Sequence

from pipeline.reports.html import esc, finite, fmt_metric, short_number


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value`."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-12:
            return step * power
    return 10 * power


# ---------------------------------------------------------------------------------------------
# SVG helpers: pure string building; every text from data is escaped


def chart_id(title: str) -> str:
    return "chart-" + hashlib.sha1(title.encode()).hexdigest()[:10]


def svg_open(svg_id: str, width: int, height: int, title: str, desc: str) -> str:
    return (
        f'<svg id="{esc(svg_id)}" class="chart" role="img" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" aria-labelledby="{esc(svg_id)}-title'
        f' {esc(svg_id)}-desc"><title id="{esc(svg_id)}-title">{esc(title)}</title>'
        f'<desc id="{esc(svg_id)}-desc">{esc(desc)}</desc>'
    )


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def histogram_svg(
    counts: Sequence[int],
    edges: Sequence[float],
    *,
    title: str,
    x_label: str,
    y_label: str = "rows",
    svg_id: str | None = None,
    width: int = 900,
    height: int = 280,
) -> str:
    """Adjacent bars of `counts` over bins `edges[i]..edges[i+1]`, each labelled with its count
    and titled with its range, count and share."""
    if len(edges) != len(counts) + 1:
        raise ValueError(f"{len(counts)} bins need {len(counts) + 1} edges, got {len(edges)}")
    svg_id = svg_id or chart_id(title)
    left, right, top, bottom = 64, 16, 22, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    total = int(sum(counts))
    ymax = nice_ceiling(max(counts, default=0))
    desc = (
        f"{len(counts)} bins from {short_number(edges[0])} to {short_number(edges[-1])};"
        f" {total:,} {y_label} in all; the tallest bin has {int(max(counts, default=0)):,}."
    )
    out = [svg_open(svg_id, width, height, title, desc)]
    out += y_axis(ymax, left, top, plot_w, plot_h)
    bar_w = plot_w / max(len(counts), 1)
    for i, count in enumerate(counts):
        h = plot_h * count / ymax
        x, y = left + i * bar_w, top + plot_h - h
        label = f"{short_number(edges[i])} – {short_number(edges[i + 1])}"
        share = count / total if total else 0.0
        out.append(
            f'<rect class="bar" x="{x + 0.5:.1f}" y="{y:.1f}" width="{max(bar_w - 1, 1):.1f}"'
            f' height="{h:.1f}"><title>{esc(label)}: {int(count):,} {esc(y_label)}'
            f" ({share:.1%})</title></rect>"
        )
        out.append(
            f'<text class="small count" x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}"'
            f' text-anchor="middle">{int(count):,}</text>'
        )
    step = max(1, math.ceil(len(edges) / 11))
    for i in range(0, len(edges), step):
        x = left + i * bar_w
        out.append(
            f'<line class="axis" x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}"'
            f' y2="{top + plot_h + 4}"/><text x="{x:.1f}" y="{top + plot_h + 16}"'
            f' text-anchor="middle">{esc(short_number(edges[i]))}</text>'
        )
    out.append(
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}"'
        f' y2="{top + plot_h}"/>'
        f'<text class="muted" x="{left + plot_w / 2:.1f}" y="{height - 8}"'
        f' text-anchor="middle">{esc(x_label)}</text>'
        f'<text class="muted" x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle"'
        f' transform="rotate(-90 14 {top + plot_h / 2:.1f})">{esc(y_label)}</text>'
    )
    out.append("</svg>")
    return "".join(out)


def y_axis(ymax: float, left: int, top: int, plot_w: int, plot_h: int, fmt=short_number):
    out = []
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        y = top + plot_h - plot_h * fraction
        out.append(
            f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>'
            f'<text class="muted" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{esc(fmt(ymax * fraction))}</text>"
        )
    out.append(f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>')
    return out


def bar_chart_svg(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    value_format: Callable[[float], str] = short_number,
    classes: Sequence[str] | None = None,
    threshold: float | None = None,
    threshold_label: str = "threshold",
    watch: float | None = None,
    watch_label: str = "watch",
    svg_id: str | None = None,
    width: int = 900,
) -> str:
    """Horizontal bars, one per (label, value), each with its value written at its end; an
    optional threshold (and watch level) drawn as a dashed vertical line with its value."""
    svg_id = svg_id or chart_id(title)
    row_h, label_w, right = 22, 190, 70
    top = 24 if threshold is not None else 8
    bottom = top + row_h * len(items)
    height = bottom + (26 if watch is not None else 8)
    plot_w = width - label_w - right
    values = [v for _, v in items if finite(v)]
    scale_max = max([*values, threshold or 0, watch or 0, 0]) * 1.08 or 1.0
    desc = "; ".join(f"{label} {value_format(value)}" for label, value in items)
    for level, name in ((threshold, threshold_label), (watch, watch_label)):
        if level is not None:
            desc += f". {name} {value_format(level)}"
    out = [svg_open(svg_id, width, height, title, desc)]
    lines = [(watch, "watchline", watch_label, bottom + 16)]
    lines.append((threshold, "threshold", threshold_label, top - 10))
    for level, klass, name, text_y in lines:  # behind the bars and their values
        if level is None:
            continue
        x = label_w + plot_w * level / scale_max
        out.append(
            f'<line class="{klass}" x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{bottom + 4}">'
            f"<title>{esc(name)} {esc(value_format(level))}</title></line>"
            f'<text class="small {klass}-label" x="{x:.1f}" y="{text_y}"'
            f' text-anchor="middle">{esc(name)} {esc(value_format(level))}</text>'
        )
    for i, (label, value) in enumerate(items):
        y = top + i * row_h
        klass = classes[i] if classes else ""
        w = plot_w * value / scale_max if finite(value) and value > 0 else 0
        text = value_format(value)
        out.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{esc(clip(label, 28))}'
            f"<title>{esc(label)}</title></text>"
            f'<rect class="bar {esc(klass)}" x="{label_w}" y="{y + 3}" width="{w:.1f}"'
            f' height="{row_h - 6}"><title>{esc(label)}: {esc(text)}</title></rect>'
            f'<text class="value" x="{label_w + w + 5:.1f}" y="{y + 15}">{esc(text)}</text>'
        )
    out.append(f'<line class="axis" x1="{label_w}" y1="{top - 4}" x2="{label_w}" y2="{bottom}"/>')
    out.append("</svg>")
    return "".join(out)


def grouped_bar_svg(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    title: str,
    x_label: str = "",
    svg_id: str | None = None,
    width: int = 900,
    height: int = 300,
) -> str:
    """Side-by-side bars of each series' share of its rows per bin (so two samples of
    different sizes compare), with a legend; each bar titled with its count and share."""
    svg_id = svg_id or chart_id(title)
    left, right, top, bottom = 56, 16, 30, 78
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [max(int(sum(counts)), 1) for _, counts in series]
    shares = [[c / t for c in counts] for (_, counts), t in zip(series, totals, strict=True)]
    ymax = nice_ceiling(max((s for side in shares for s in side), default=0))
    desc = "; ".join(
        f"{label}: "
        + ", ".join(
            f"{name} {share[i]:.1%}" for (name, _), share in zip(series, shares, strict=True)
        )
        for i, label in enumerate(labels)
    )
    out = [svg_open(svg_id, width, height, title, desc)]
    out += y_axis(ymax, left, top, plot_w, plot_h, fmt=lambda v: short_number(v * 100) + "%")
    group_w = plot_w / max(len(labels), 1)
    bar_w = (group_w - 6) / max(len(series), 1)
    for i, label in enumerate(labels):
        x0 = left + i * group_w + 3
        for k, ((name, counts), share) in enumerate(zip(series, shares, strict=True)):
            h = plot_h * share[i] / ymax
            out.append(
                f'<rect class="bar series-{k}" x="{x0 + k * bar_w:.1f}"'
                f' y="{top + plot_h - h:.1f}" width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}">'
                f"<title>{esc(name)}, {esc(label)}: {int(counts[i]):,} rows"
                f" ({share[i]:.1%})</title></rect>"
            )
        cx, cy = left + (i + 0.5) * group_w, top + plot_h + 12
        out.append(
            f'<text x="{cx:.1f}" y="{cy}" text-anchor="end"'
            f' transform="rotate(-30 {cx:.1f} {cy})">{esc(clip(label, 22))}'
            f"<title>{esc(label)}</title></text>"
        )
    out.append(
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}"'
        f' y2="{top + plot_h}"/>'
    )
    for k, (name, _) in enumerate(series):
        x = left + 10 + k * 170
        out.append(
            f'<rect class="bar series-{k}" x="{x}" y="8" width="12" height="12"/>'
            f'<text x="{x + 17}" y="18">{esc(name)} ({totals[k]:,} rows)</text>'
        )
    if x_label:
        out.append(
            f'<text class="muted" x="{left + plot_w / 2:.1f}" y="{height - 6}"'
            f' text-anchor="middle">{esc(x_label)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def line_chart_svg(
    points: Sequence[tuple[str, float | None]],
    *,
    title: str,
    y_label: str = "",
    reference: float | None = None,
    reference_label: str = "",
    svg_id: str | None = None,
    width: int = 900,
    height: int = 240,
    versus: tuple[str, str, Sequence[float | None]] | None = None,
) -> str:
    """A line through (label, value) points in order, each point labelled with its value.
    `versus` (this line's name, the other's name, its values at the same labels) draws a
    second line beside it, in grey, with a legend."""
    svg_id = svg_id or chart_id(title)
    left, right, top, bottom = 64, 24, 36 if versus else 20, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    lines = [("", [v for _, v in points])] + ([("alt", list(versus[2]))] if versus else [])
    values = [v for _, vs in lines for v in vs if finite(v)]
    values += [reference] if finite(reference) else []
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (hi - lo) * 0.15 or abs(hi) * 0.1 or 0.1
    lo, hi = lo - pad, hi + pad
    desc = "; ".join(f"{label}: {fmt_metric(v)}" for label, v in points)
    if versus:
        desc += (
            f" ({versus[0]}); "
            + "; ".join(
                f"{label}: {fmt_metric(v)}" for (label, _), v in zip(points, versus[2], strict=True)
            )
            + f" ({versus[1]})"
        )
    out = [svg_open(svg_id, width, height, title, desc)]

    def y_of(v: float) -> float:
        return top + plot_h - plot_h * (v - lo) / (hi - lo)

    for fraction in (0, 0.5, 1):
        v = lo + (hi - lo) * fraction
        out.append(
            f'<line class="grid" x1="{left}" y1="{y_of(v):.1f}" x2="{left + plot_w}"'
            f' y2="{y_of(v):.1f}"/><text class="muted" x="{left - 6}" y="{y_of(v) + 4:.1f}"'
            f' text-anchor="end">{v:.3f}</text>'
        )
    if finite(reference):
        out.append(
            f'<line class="refline" x1="{left}" y1="{y_of(reference):.1f}" x2="{left + plot_w}"'
            f' y2="{y_of(reference):.1f}"><title>{esc(reference_label)}'
            f" {reference:.4f}</title></line>"
            f'<text class="small muted" x="{left + plot_w}" y="{y_of(reference) - 4:.1f}"'
            f' text-anchor="end">{esc(reference_label)} {reference:.4f}</text>'
        )
    step = plot_w / max(len(points) - 1, 1)

    def x_of(i: int) -> float:
        return left + (i * step if len(points) > 1 else plot_w / 2)

    for cls, line in lines:
        xy = [(x_of(i), y_of(v)) for i, v in enumerate(line) if finite(v)]
        if len(xy) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            out.append(f'<polyline class="line {cls}" points="{path}"/>')
        for i, value in enumerate(line):
            if finite(value):
                x, label = x_of(i), points[i][0]
                out.append(
                    f'<circle class="point {cls}" cx="{x:.1f}" cy="{y_of(value):.1f}" r="3.5">'
                    f"<title>{esc(label)}: {value:.4f}</title></circle>"
                    f'<text class="small" x="{x:.1f}" y="{y_of(value) - 7:.1f}"'
                    f' text-anchor="middle">{value:.3f}</text>'
                )
    if versus:
        out.append(
            f'<text class="small" x="{left + plot_w}" y="14" text-anchor="end">'
            f'<tspan class="legend">&#9679; {esc(versus[0])}</tspan>'
            f'<tspan class="legend alt" dx="12">&#9679; {esc(versus[1])}</tspan></text>'
        )
    label_every = max(1, math.ceil(len(points) / 12))
    for i, (label, _) in enumerate(points):
        if i % label_every == 0:
            x, cy = x_of(i), top + plot_h + 14
            out.append(
                f'<text class="small" x="{x:.1f}" y="{cy}" text-anchor="end"'
                f' transform="rotate(-30 {x:.1f} {cy})">{esc(clip(label, 24))}'
                f"<title>{esc(label)}</title></text>"
            )
    out.append(
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>'
        f'<text class="muted" x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle"'
        f' transform="rotate(-90 14 {top + plot_h / 2:.1f})">{esc(y_label)}</text>'
    )
    out.append("</svg>")
    return "".join(out)
