"""Building blocks of the product's pages (run reports, job indexes, the UI's Scoring files):
escaping, number formats, tables, badges, figures, a small Markdown, and the page shell with
its content security policy. Pages have their CSS inline and no script, so they open offline,
from a file or a bucket."""

import html
import math
import re
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
    are right-aligned; no header row when every header is empty."""
    cap = f'<caption class="note">{esc(caption)}</caption>' if caption else ""
    head = "".join(
        f'<th scope="col"{" class=num" if i in numeric else ""}>{esc(h)}</th>'
        for i, h in enumerate(headers)
    )
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    body = "".join(
        (f'<tr class="{esc(row_classes[r])}">' if row_classes else "<tr>")
        + "".join(
            f"<td{' class=num' if i in numeric else ''}>{cell}</td>" for i, cell in enumerate(row)
        )
        + "</tr>"
        for r, row in enumerate(rows)
    )
    return f"<table>{cap}{thead}<tbody>{body}</tbody></table>"


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


# ---------------------------------------------------------------------------------------------
# Markdown (model cards), a small subset

_FENCE = "```"
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ITEM = re.compile(r"^\s{0,3}([-*+]|\d{1,9}[.)])\s+(.*)$")
_RULE_CELL = re.compile(r"^:?-+:?$")


def md_inline(text: str) -> str:
    """One line of Markdown as HTML: escaped, `code` spans as <code>. Character references
    (`&#x27;`) mean their character, as in CommonMark, and are escaped again."""
    parts = re.split(r"(`[^`]+`)", text)
    return "".join(
        f"<code>{esc(part[1:-1])}</code>"
        if len(part) > 2 and part[0] == part[-1] == "`"
        else esc(html.unescape(part))
        for part in parts
    )


def md_block_start(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped.startswith((_FENCE, "|")) or _HEADING.match(stripped) or _ITEM.match(line))


def md_table(rows: list[list[str]]) -> str:
    """A pipe table: its first row the header; a column of numbers is right-aligned."""
    head, body = rows[0], [r for r in rows[1:] if not all(_RULE_CELL.match(c) for c in r)]

    def number(cell: str) -> bool:
        try:
            float(cell.replace(",", ""))
        except ValueError:
            return False
        return True

    numeric = [
        i for i in range(len(head)) if body and all(number(r[i]) for r in body if i < len(r))
    ]
    cells = [[md_inline(c) for c in r] for r in body]
    return table([html.unescape(h) for h in head], cells, numeric=numeric)


def markdown_html(text: str) -> str:
    """Markdown as HTML, everything escaped, in the subset the model card uses: ATX headings,
    `-` and `1.` lists (an indented line continues an item), pipe tables, fenced code blocks,
    paragraphs and `code` spans. Anything else shows as its text."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        line, stripped = lines[i], lines[i].strip()
        heading, item = _HEADING.match(stripped), _ITEM.match(line)
        if not stripped:
            i += 1
        elif stripped.startswith(_FENCE):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == _FENCE), None)
            end = len(lines) if end is None else end
            out.append(f"<pre><code>{esc(chr(10).join(lines[i + 1 : end]))}</code></pre>")
            i = end + 1
        elif heading:
            level = len(heading[1])
            out.append(f"<h{level}>{md_inline(heading[2])}</h{level}>")
            i += 1
        elif stripped.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            out.append(md_table(rows))
        elif item:
            ordered, items = item[1][0].isdigit(), []
            while i < len(lines):
                found = _ITEM.match(lines[i])
                if found and found[1][0].isdigit() == ordered:
                    items.append(found[2])
                elif items and lines[i][:1] in (" ", "\t") and lines[i].strip():
                    items[-1] += " " + lines[i].strip()
                else:
                    break
                i += 1
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>{''.join(f'<li>{md_inline(t)}</li>' for t in items)}</{tag}>")
        else:
            paragraph = [stripped]
            i += 1
            while i < len(lines) and lines[i].strip() and not md_block_start(lines[i]):
                paragraph.append(lines[i].strip())
                i += 1
            out.append(f"<p>{md_inline(' '.join(paragraph))}</p>")
    return "\n".join(out)
