"""Look at the report page in a real browser: build a report from a fixture CSV, take headless
Chromium screenshots at 1000 and 1400 px width, and check the laid-out page for content that is
cut off at the right edge.

The fixture: XNLI (15 languages), PAN-X (every XTREME-R language: the widest per-language
figures and tables) and UD-POS (first 20 languages), 5 systems with long-ish names × 3 seeds,
plus a preamble with a wide table. The check loads a copy of ``report.html`` with a small script
appended (the report itself has none) and reads back, through ``--dump-dom``: every element
whose right edge lies beyond the viewport outside a table's scroll wrapper (``.table-wrap``) or
a figure, whether the page scrolls sideways, tables not inside a wrapper, and how many wrapped
tables scroll.

    PYTHONPATH=src .venv/bin/python benchmarks/report_screenshots.py --out /tmp/shots
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

WIDTHS = (1000, 1400)
HEIGHT = 3000  # px of the page in each screenshot (its top)
SYSTEMS = ("none", "mnli", "rte+sick", "siqa-3000", "tydiqa")
PREAMBLE = """# Screenshot fixture

**What this is.** Generated numbers, to look at the page's layout; see `report_screenshots.py`.

| target | English training | zero-shot evaluation | languages | note |
|---|---|---|---|---|
| XNLI | English XNLI dev (2,490 pairs; 290 held out for selection) | first 1,000 test pairs per language, labels from myXNLI | 15 | a long cell that makes the table wider than the page column so that it must scroll |
| PAN-X | first 3,000 sentences of `train-en.tsv` (500 held out) | first 300 **dev** sentences per language | 47 | *dev*, not test |
"""

# appended to a copy of the page: results go into an attribute that --dump-dom prints
CHECK_JS = """
<script>
window.addEventListener('load', function () {
  var vw = document.documentElement.clientWidth, bad = [];
  document.querySelectorAll('body *').forEach(function (el) {
    var inside = el.closest('.table-wrap, figure');
    if (inside && inside !== el) return;  // scrolls or scales inside its container
    var r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > vw + 1) bad.push(el.tagName + ':' + Math.round(r.right));
  });
  var wraps = Array.from(document.querySelectorAll('.table-wrap'));
  var tables = Array.from(document.querySelectorAll('table'));
  document.body.setAttribute('data-check', JSON.stringify({
    viewport: vw,
    cut: bad.slice(0, 20), n_cut: bad.length,
    page_scrolls_sideways: document.documentElement.scrollWidth > vw + 1,
    unwrapped_tables: tables.filter(function (t) {
      return !t.parentElement.classList.contains('table-wrap'); }).length,
    tables: tables.length,
    scrolling_tables: wraps.filter(function (w) { return w.scrollWidth > w.clientWidth + 1; }).length,
    images: document.images.length,
    images_wider_than_page: Array.from(document.images).filter(function (i) {
      return i.getBoundingClientRect().right > vw + 1; }).length
  }));
});
</script>
"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium(binary: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--disable-extensions", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def write_fixture_csv(path: Path, *, seeds=(0, 1, 2)) -> Path:
    from xstilts.tasks.languages import XTREME_R

    rng = np.random.default_rng(7)
    tasks = {
        "xnli": ("accuracy", list(XTREME_R["xnli"])),
        "panx": ("f1", list(XTREME_R["panx"])),
        "udpos": ("f1", list(XTREME_R["udpos"])[:20]),
    }
    lines = ["task,language,system,seed,metric,value"]
    for task, (metric, langs) in tasks.items():
        level = {lang: 30 + 50 * rng.random() for lang in langs}
        for k, system in enumerate(SYSTEMS):
            effect = {lang: 0.0 if k == 0 else rng.normal(0.6 * (k - 2), 1.0) for lang in langs}
            for seed in seeds:
                for lang in langs:
                    v = level[lang] + effect[lang] + rng.normal(0, 0.8)
                    lines.append(f"{task},{lang},{system},{seed},{metric},{v:.3f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_report(out: Path, *, n_boot: int = 300) -> Path:
    """The fixture's report under ``out``; returns report.html."""
    from xstilts.cli import main

    out.mkdir(parents=True, exist_ok=True)
    csv = write_fixture_csv(out / "fixture.csv")
    pre = out / "preamble.md"
    pre.write_text(PREAMBLE, encoding="utf-8")
    argv = ["report", str(csv), "--output-dir", str(out / "report"), "--bootstrap", str(n_boot)]
    if main([*argv, "--preamble", str(pre)]) != 0:
        raise RuntimeError("xstilts report failed on the screenshot fixture")
    return out / "report" / "report.html"


def screenshot(binary: str, html: Path, png: Path, width: int, height: int = HEIGHT) -> Path:
    r = _chromium(binary, f"--screenshot={png}", f"--window-size={width},{height}", html.as_uri())
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot: {r.stderr[-2000:]}")
    return png


def layout_check(binary: str, html: Path, width: int) -> dict:
    """What :data:`CHECK_JS` measured on ``html`` laid out ``width`` px wide."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(
            html.read_text(encoding="utf-8").replace("</body>", CHECK_JS + "</body>"),
            encoding="utf-8",
        )
        r = _chromium(
            binary, "--dump-dom", "--virtual-time-budget=10000",
            f"--window-size={width},{HEIGHT}", probe.as_uri(),
        )  # fmt: skip
    m = re.search(r'data-check="([^"]*)"', r.stdout)
    if not m:
        raise RuntimeError(f"no layout result in chromium's DOM dump: {r.stderr[-2000:]}")
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("reports/screenshots"))
    p.add_argument("--bootstrap", type=int, default=300)
    args = p.parse_args(argv)
    binary = find_chromium()
    if binary is None:
        print("chromium not found: install it (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    html = build_report(args.out, n_boot=args.bootstrap)
    failed = False
    for width in WIDTHS:
        png = screenshot(binary, html, args.out / f"report-{width}.png", width)
        check = layout_check(binary, html, width)
        ok = check["n_cut"] == 0 and not check["page_scrolls_sideways"]
        ok = ok and check["unwrapped_tables"] == 0
        failed |= not ok
        print(f"{width} px: {png}  {'ok' if ok else 'CUT'}  {json.dumps(check)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
