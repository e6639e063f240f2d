"""One exception type for every bad input, so the CLI can print one line and exit non-zero."""

from __future__ import annotations

from pathlib import Path

# What ``str.splitlines`` (and a terminal) breaks a line at
_LINE_BREAKS = {c: repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}
_ESCAPE = str.maketrans(_LINE_BREAKS)


def one_line(text: str) -> str:
    """``text`` with its line breaks escaped (``\\n``): an error message is one line."""
    return text.translate(_ESCAPE)


class XStiltsError(Exception):
    """Base class: the message is shown to the user as a single line.

    A line break inside it (a config key or a value quoted from the input, e.g. ``"a\\nb": 1``)
    is shown escaped, so that the error stays one line whatever the input held."""

    def __str__(self) -> str:
        return one_line(super().__str__())


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
