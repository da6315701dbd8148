"""Building blocks of the product's pages (run reports, job indexes): escaping, number
formats, tables, badges, figures, and the page shell with its content security policy. Pages
have their CSS inline and no script, so they open offline, from a file or a bucket."""

import html
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeGuard

STATIC = Path(__file__).resolve().parent / "static"

# No script, nothing loaded from anywhere: inline styles and data: images only. A page that a
# value from data managed to put markup into still cannot run or fetch anything.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'


def finite(value) -> TypeGuard[float]:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def fmt_metric(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return esc(value) if value is not None else "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4f}" if math.isfinite(value) else str(value)


def esc(value) -> str:
    """Any value as HTML text (also safe inside an attribute)."""
    return html.escape("" if value is None else str(value), quote=True)


def short_number(value: float) -> str:
    """A bin edge or axis tick: few digits, thousands separated."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


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


def page(title: str, body: str) -> str:
    css = (STATIC / "run_report.css").read_text()
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{CSP_META}'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{css}</style></head>"
        f"<body>{body}</body></html>\n"
    )
