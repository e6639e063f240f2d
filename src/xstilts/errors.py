"""One exception type for every bad input, so the CLI can print one line and exit non-zero."""

from __future__ import annotations

from pathlib import Path


class XStiltsError(Exception):
    """Base class: the message is shown to the user as a single line."""


class ConfigError(XStiltsError):
    """A config file or override is wrong (unknown key, bad type, unknown task or language)."""


class DataError(XStiltsError):
    """A data file is missing or malformed.

    The message always names the file and, where known, the 1-based line and the field,
    e.g. ``data/dev-en.tsv:17: field 'label': 'maybe' is not in the label set [...]``.
    """

    def __init__(
        self,
        path: str | Path | None,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        where = self.path or "<data>"
        if line is not None:
            where += f":{line}"
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{message}")


class MissingDataError(DataError):
    """No file (and no reachable hub dataset) for a task split in a language."""


class TrainingError(XStiltsError):
    """Training cannot go on (a non-finite loss or gradient, a phase that yields no batch);
    the stage being built is not published."""
