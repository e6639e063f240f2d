"""The ``xstilts report`` output: Markdown, self-contained HTML, PNG figures and CSV tables
built from an :class:`xstilts.analysis.Analysis`, with a Findings section written by rules."""

from xstilts.report.build import build_document, write_report

__all__ = ["build_document", "write_report"]
