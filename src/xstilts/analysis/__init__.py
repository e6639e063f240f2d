"""Variance analysis of zero-shot results: deltas with hierarchical paired bootstrap CIs, spread
across languages and seeds, paired variance tests, who-gains correlations and the
model-selection diagnostic. Reads result rows and per-example predictions; never runs a model.

Entry points: ``load_results(path)`` (a results directory or a long CSV) and
``analyze(results, Options(...)) -> Analysis``; ``xstilts.report`` renders an ``Analysis``.
"""

from xstilts.analysis.analyze import Analysis, Options, analyze
from xstilts.analysis.inputs import Results, load_results

__all__ = ["Analysis", "Options", "Results", "analyze", "load_results"]
