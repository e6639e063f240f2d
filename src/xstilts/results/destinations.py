"""Where commands may write: checked before any work, so nothing the user owns is overwritten.

Each command that writes a directory or a file accepts a destination that is new, empty, or
recognisably its own earlier output, and refuses anything else with one line (exit 2) before
reading or computing anything:

* ``run`` / ``grid run`` / ``demo --output-dir``: a new or empty directory, or a run directory
  (``stages/``, ``config.yaml``, ``runs.json`` or ``grids/`` in it): writing into one resumes it.
  Nothing is ever deleted there (finished stages are kept).
* ``report --output-dir``: a new or empty directory, or one holding an earlier xstilts report
  (its ``report.html`` carries the generator mark). Report files are overwritten, nothing else
  is touched.
* ``score --output``: a new file, or an existing JSON object (an earlier score file); never a
  directory, a symbolic link or another file.
* ``export --output``: see ``results.xtreme_layout.check_export_destination``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from xstilts.errors import ConfigError

RUN_DIR_MARKS = ("stages", "config.yaml", "runs.json", "grids")
REPORT_MARK = '<meta name="generator" content="xstilts report">'  # in report.html's head
REPORT_FILES = ("report.md", "report.html", "figures", "tables")  # before the mark existed


def _entries(path: Path) -> list[str]:
    return [n for n in os.listdir(path) if not n.startswith(".")]


def _not_a_dir(path: Path, option: str) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path}: exists and is not a directory")


def check_run_dir(path: str | Path, option: str = "--output-dir") -> None:
    """A run or grid output directory: new, empty, or an xstilts run directory (resumed)."""
    path = Path(path)
    _not_a_dir(path, option)
    if not path.is_dir():
        return
    entries = _entries(path)
    if entries and not any((path / m).exists() for m in RUN_DIR_MARKS):
        raise ConfigError(
            f"{option} {path}: not empty and not an xstilts run directory (no stages/ or "
            "config.yaml); give a new or empty directory, or an earlier run's to resume it"
        )


def check_report_dir(path: str | Path, option: str = "--output-dir") -> None:
    """A report directory: new, empty, or an earlier xstilts report (its files overwritten)."""
    path = Path(path)
    _not_a_dir(path, option)
    if not path.is_dir() or not _entries(path):
        return
    html = path / "report.html"
    try:
        ours = html.is_file() and REPORT_MARK in html.read_text(encoding="utf-8")[:4096]
    except (OSError, UnicodeDecodeError):
        ours = False
    ours = ours or all((path / f).exists() for f in REPORT_FILES)
    if not ours:
        raise ConfigError(
            f"{option} {path}: not empty and not an earlier xstilts report (no report.html "
            "written by xstilts); give a new or empty directory"
        )


def check_output_file(path: str | Path, option: str = "--output") -> None:
    """A JSON output file: new, or an earlier JSON object (a score file) to overwrite."""
    path = Path(path)
    if path.is_symlink():
        raise ConfigError(f"{option} {path}: a symbolic link; give the file itself")
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a directory; give a file name")
    if not path.exists():
        if path.parent.exists() and not path.parent.is_dir():
            raise ConfigError(f"{option} {path}: {path.parent} is not a directory")
        return
    try:
        ours = isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise ConfigError(
            f"{option} {path}: exists and is not an earlier score file (a JSON object); "
            "give a new file name"
        )
