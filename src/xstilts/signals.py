"""Signals: SIGTERM (``kill``, ``timeout``, a Slurm preemption) unwinds like Ctrl-C, so the
stage being built cleans up and a re-run resumes. Kept apart from ``runtime`` (which imports
torch) so that every command can install the handlers without paying for torch."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Terminated(BaseException):
    """SIGTERM arrived (``kill``, ``timeout``, a Slurm preemption or time limit). Raised in
    the main thread by :func:`signal_handlers`, it unwinds like ``KeyboardInterrupt``: every
    ``finally`` and ``except BaseException`` runs, so a stage being built removes its
    temporary directory (``pipeline.stages.build_stage``) and releases its claim, and a
    re-run resumes from the finished stages. Not an ``Exception``: no ``except Exception``
    (a grid worker recording a failed stage) mistakes it for a failure of the stage."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"terminated by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 143 for SIGTERM


def _raise_terminated(signum: int, frame: Any) -> None:
    # a second signal while unwinding is ignored, so that the clean-up itself finishes
    signal.signal(signum, signal.SIG_IGN)
    raise Terminated(signum)


@contextlib.contextmanager
def signal_handlers() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (SIGINT keeps raising
    ``KeyboardInterrupt``, which unwinds the same way); the previous handler is restored after.
    Only the main thread can set handlers: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
