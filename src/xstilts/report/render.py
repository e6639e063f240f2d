"""Figures of a document: registered while the page is assembled, drawn together at the end.

Drawing is most of a report's time (each figure ~0.1–0.3 s of matplotlib), and figures are
independent, so :func:`render_pending` draws them in forked worker processes when there are
several and the machine has the cores: the workers inherit the imported modules and the
pending figures' data (module global set before the fork), so only an index goes in and the
PNG/SVG bytes come back. Elsewhere (one core, no ``fork``: macOS, Windows) or when a pool
cannot start, they are drawn here one after another. Exceptions inside a figure function
surface as they would serially. ``XSTILTS_REPORT_WORKERS`` caps the processes (1: serial).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from xstilts.report.document import Document, Figure

WORKERS_ENV = "XSTILTS_REPORT_WORKERS"
MAX_WORKERS = 8
MIN_PARALLEL = 4  # fewer figures than this are drawn here: forking costs more than it saves


@dataclass
class Pending:
    figure: Figure  # in the document already, png empty until drawn
    kind: str  # function name in xstilts.report.figures
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Plot:
    """A figure a section returns among its blocks, registered where it stands by the page
    builder (:func:`add_figure`): file name, caption, the ``report.figures`` function and its
    positional arguments."""

    file: str
    caption: str
    kind: str
    args: tuple = ()


_PENDING: list[Pending] = []  # read by forked workers (inherited, never pickled)


def matplotlib_missing() -> str:
    """Why figures are left out ('' when matplotlib is installed)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        return f"figures left out: matplotlib is not installed ({e})"
    return ""


def add_figure(doc: Document, file: str, caption: str, kind: str, *args, **kwargs) -> None:
    """Register ``figures.<kind>(*args, **kwargs)`` as ``figures/<file>.png``/``.svg`` at this
    place of ``doc``; drawn by :func:`render_pending`, dropped when there is nothing to draw."""
    fig = Figure(file, b"", caption)
    doc.add(fig)
    doc.pending.append(Pending(fig, kind, args, kwargs))


def add_plot(doc: Document, file: str, caption: str, kind: str, *args, **kwargs) -> None:
    """:func:`add_figure`, or nothing when matplotlib is not installed (the report is still
    written, with a note instead of figures: ``build.build_document``)."""
    if not matplotlib_missing():
        add_figure(doc, file, caption, kind, *args, **kwargs)


def _draw(p: Pending):
    from xstilts.report import figures

    return getattr(figures, p.kind)(*p.args, **p.kwargs)


def _draw_index(i: int):
    return _draw(_PENDING[i])


def _workers(n_jobs: int) -> int:
    env = os.environ.get(WORKERS_ENV, "").strip()
    cap = int(env) if env.isdigit() and int(env) > 0 else MAX_WORKERS
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cap, cores or 1, n_jobs))


def _draw_all(pending: list[Pending]) -> list:
    n = _workers(len(pending))
    if (
        n < 2
        or len(pending) < MIN_PARALLEL
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        return [_draw(p) for p in pending]
    # imported here once, so that every worker inherits them instead of importing them again
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.backends.backend_svg  # noqa: F401
    import matplotlib.figure  # noqa: F401

    import xstilts.report.figures  # noqa: F401

    global _PENDING
    _PENDING = pending
    try:
        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_draw_index, range(len(pending))))
    except (BrokenProcessPool, OSError):  # a worker killed, no processes left: draw here
        return [_draw(p) for p in pending]
    finally:
        _PENDING = []


def render_pending(doc: Document) -> None:
    """Draw every registered figure of ``doc`` (in parallel where possible), fill in its PNG,
    SVG and size, and drop the figures that had nothing to draw."""
    pending, doc.pending = doc.pending, []
    if not pending:
        return
    from xstilts.report.figures import DPI

    drawn = _draw_all(pending)
    empty = set()
    for p, r in zip(pending, drawn):
        if r is None:
            empty.add(id(p.figure))
            continue
        p.figure.png, p.figure.svg, p.figure.width_px, p.figure.dpi = r.png, r.svg, r.width_px, DPI
    doc.blocks = [b for b in doc.blocks if id(b) not in empty]
