"""A tiny document model rendered twice: Markdown (figures as files) and self-contained HTML
(figures embedded as base64 PNG data URIs, so the one file can be mailed or printed).

The HTML embeds the PNG rather than the SVG: the PNG is exactly what was drawn (and what the
screenshot check looks at), whatever fonts the reader's browser has — the SVG keeps its text
as text, so a browser without the figure's font would re-flow the labels. The SVG files sit
beside the PNGs under ``figures/`` for print and editing."""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Code:
    text: str  # preformatted (e.g. a progress table), shown verbatim


@dataclass
class Table:
    frame: pd.DataFrame  # already formatted for display (strings or numbers)
    csv_name: str | None = None  # file under tables/ that holds the full numeric table
    caption: str = ""


@dataclass
class Figure:
    name: str  # file name under figures/, without extension
    png: bytes
    caption: str
    svg: bytes | None = None  # written as figures/<name>.svg when given
    width_px: int | None = None  # of the PNG, for its display width in the HTML
    dpi: int = 144  # of the PNG: shown at dpi/96 PNG pixels per CSS pixel


@dataclass
class Verdict:
    sentences: list[str]  # the analysis' answer, shown first and set apart


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)
    pending: list = field(default_factory=list)  # figures not drawn yet (report/render.py)

    def add(self, block) -> None:
        self.blocks.append(block)

    @property
    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]


def no_negative_zero(v: float, digits: int) -> float:
    """``v``, or 0.0 where it rounds to zero at ``digits`` decimals (no "-0.00" cells)."""
    return 0.0 if round(v, digits) == 0 else v


def fmt(v, digits: int = 2) -> str:
    """Display a cell: numbers with ``digits`` decimals, NaN as an en dash."""
    if v is None:
        return "–"
    if isinstance(v, float | int) and not isinstance(v, bool):
        if isinstance(v, float) and not math.isfinite(v):
            return "–" if math.isnan(v) else ("∞" if v > 0 else "-∞")
        return f"{no_negative_zero(v, digits):.{digits}f}" if isinstance(v, float) else str(v)
    return str(v)


def fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_ci(v: float, lo: float, hi: float, digits: int = 2) -> str:
    """``+1.23 [+0.45, +2.01]`` (the bracket only when there is an interval); ``–`` for NaN."""
    if not math.isfinite(v):
        return "–"
    v, lo, hi = (no_negative_zero(x, digits) for x in (v, lo, hi))
    s = f"{v:+.{digits}f}"
    return f"{s} [{lo:+.{digits}f}, {hi:+.{digits}f}]" if math.isfinite(lo) else s


def fmt_mean_sd(m: float, sd: float) -> str:
    if not math.isfinite(m):
        return "–"
    return f"{m:.2f} ± {sd:.2f}" if math.isfinite(sd) else f"{m:.2f}"


def safe_name(name: str) -> str:
    """``name`` usable in a file name (tables/, figures/)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


# --------------------------------------------------------------------------- Markdown


def _md_cell(v) -> str:
    return fmt(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document) -> str:
    out = [f"# {doc.title}", ""]
    for b in doc.blocks:
        if isinstance(b, Heading):
            out += [f"{'#' * (b.level + 1)} {b.text}", ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Verdict):
            out += ["> **Verdict.** " + " ".join(b.sentences), ""]
        elif isinstance(b, Bullets):
            out += [f"- {item}" for item in b.items] + [""]
        elif isinstance(b, Code):
            out += ["```", b.text.rstrip("\n"), "```", ""]
        elif isinstance(b, Table):
            if b.caption:
                out += [_italic(b.caption), ""]
            f = b.frame.reset_index() if _named_index(b.frame) else b.frame
            out.append("| " + " | ".join(str(c) for c in f.columns) + " |")
            out.append("|" + "|".join("---" for _ in f.columns) + "|")
            for row in f.itertuples(index=False):
                out.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
            if b.csv_name:
                out.append(f"\n(full table: `tables/{b.csv_name}`)")
            out.append("")
        elif isinstance(b, Figure):
            alt = b.caption.replace("*", "").replace("[", "(").replace("]", ")")
            out += [f"![{alt}](figures/{b.name}.png)", "", _italic(b.caption), ""]
    return "\n".join(out)


def _italic(text: str) -> str:
    """``*text*``, unless the text has asterisks of its own (a '*' mark, an *emphasis*): then
    wrapping it would pair the wrong asterisks, so it stays upright."""
    return text if "*" in text else f"*{text}*"


def _named_index(frame: pd.DataFrame) -> bool:
    return any(n is not None for n in frame.index.names)


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:64rem;margin:2rem auto;
padding:0 1rem;color:#222;line-height:1.45}
.table-wrap{overflow-x:auto;max-width:100%;margin:.5rem 0 1rem}
table{border-collapse:collapse;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.2rem .45rem;text-align:right;vertical-align:top}
td{white-space:nowrap} td.text{white-space:normal;min-width:12rem;text-align:left}
th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left;white-space:nowrap}
img{max-width:100%;height:auto} figure{margin:1rem 0;overflow-x:auto}
figcaption{font-size:.85rem;color:#555}
.caption{font-style:italic;color:#444;margin-bottom:.2rem} h1,h2,h3{page-break-after:avoid}
.verdict{border-left:4px solid #b2182b;background:#fbf4f4;padding:.6rem 1rem;margin:1rem 0}
.verdict p{margin:.3rem 0} code{font-size:.9em;overflow-wrap:anywhere} pre{overflow-x:auto}
@media print{body{max-width:none} figure,table{page-break-inside:avoid}
.table-wrap{overflow:visible}}
"""


def to_html(doc: Document) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # lets `xstilts report` recognise its own earlier output (results/destinations.py)
        '<meta name="generator" content="xstilts report">',
        f"<title>{e(doc.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(doc.title)}</h1>",
    ]
    for b in doc.blocks:
        if isinstance(b, Heading):
            lvl = min(b.level + 1, 6)
            out.append(f"<h{lvl}>{e(b.text)}</h{lvl}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Verdict):
            body = " ".join(_inline(x) for x in b.sentences)
            out.append(f'<div class="verdict"><p><strong>Verdict.</strong> {body}</p></div>')
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Code):
            out.append(f"<pre>{e(b.text)}</pre>")
        elif isinstance(b, Table):
            if b.caption:
                out.append(f'<p class="caption">{_inline(b.caption)}</p>')
            f = b.frame.reset_index() if _named_index(b.frame) else b.frame
            head = "".join(f"<th>{_inline(str(c))}</th>" for c in f.columns)
            body = "".join(
                "<tr>" + "".join(_td(fmt(v)) for v in row) + "</tr>"
                for row in f.itertuples(index=False)
            )
            out.append(
                f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table></div>"
            )
        elif isinstance(b, Figure):
            data = base64.b64encode(b.png).decode("ascii")
            size = f' width="{round(b.width_px * 96 / b.dpi)}"' if b.width_px else ""
            out.append(
                f'<figure><img alt="{e(b.caption)}"{size} src="data:image/png;base64,{data}">'
                f"<figcaption>{_inline(b.caption)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out)


def _td(text: str) -> str:
    """A table cell: numbers stay on one line (a wide table scrolls in its wrapper instead of
    breaking "+0.41 [+0.08, +0.73]" over three lines); prose cells (notes) wrap."""
    cls = ' class="text"' if len(text) > 40 and " " in text else ""
    return f"<td{cls}>{_inline(text)}</td>"


# *italic*: an asterisk that opens (not before a space) and one that closes (not after one);
# a lone "*" (the significance mark, "* = significant") is left as it is
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*]*?[^\s*])\*(?![\w*])")


def _inline(text: str) -> str:
    """Escape, then render the Markdown spans the report uses: **bold**, *italic* and `code`."""
    out = []
    for i, chunk in enumerate(text.split("`")):
        if i % 2:  # inside backticks: verbatim
            out.append(f"<code>{html.escape(chunk)}</code>")
            continue
        parts = [_ITALIC.sub(r"<em>\1</em>", p) for p in html.escape(chunk).split("**")]
        out.append("".join(f"<strong>{p}</strong>" if j % 2 else p for j, p in enumerate(parts)))
    return "".join(out)


# --------------------------------------------------------------------------- preamble


def parse_markdown(text: str) -> tuple[str | None, list]:
    """A study's own Markdown (``xstilts report --preamble``) as document blocks, so it renders
    in both outputs: ``# title`` (returned), ``##`` headings, paragraphs, ``-`` bullets (with
    indented continuation lines), pipe tables and fenced code. Other Markdown passes through as
    paragraph text."""
    title, blocks = None, []
    lines = text.replace("\r\n", "\n").split("\n")
    i, para = 0, []

    def flush() -> None:
        if para:
            blocks.append(Para(" ".join(x.strip() for x in para)))
            para.clear()

    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            flush()
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            blocks.append(Code("\n".join(lines[i + 1 : j])))
            i = j + 1
            continue
        if line.startswith("#"):
            flush()
            level = len(line) - len(line.lstrip("#"))
            if level == 1 and title is None and not blocks:
                title = line[1:].strip()
            else:
                blocks.append(Heading(max(1, level - 1), line[level:].strip()))
        elif line.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):  # skip the |---| rule
                    rows.append(cells)
                i += 1
            width = len(rows[0])
            body = [(r + [""] * width)[:width] for r in rows[1:]]
            blocks.append(Table(pd.DataFrame(body, columns=rows[0])))
            continue
        elif line.startswith("- "):
            flush()
            items = []
            while i < len(lines) and (
                lines[i].startswith("- ") or (items and lines[i].startswith("  "))
            ):
                if lines[i].startswith("- "):
                    items.append(lines[i][2:].strip())
                else:
                    items[-1] += " " + lines[i].strip()
                i += 1
            blocks.append(Bullets(items))
            continue
        elif not line.strip():
            flush()
        else:
            para.append(line)
        i += 1
    flush()
    return title, blocks
