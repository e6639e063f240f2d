"""What a user sees of a training phase wherever the output goes, and what trackers receive.

On a terminal the loop's tqdm bar shows progress. When stderr is not a terminal (a log file, a
Slurm job, a pipe) tqdm is silent, so :class:`TrainMonitor` prints one line at the first step,
then every ``XSTILTS_PROGRESS_S`` seconds (default 30), and at the last step: step/total, loss,
learning rate, examples/s and the ETA; and one line per evaluation step with the English dev
scores. Independently, every ``log_every`` optimizer steps (about 100 points per phase) it
sends loss, learning rate, gradient norm and throughput to the stage's tracker.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from xstilts.tracking import NULL, Tracker, dev_metrics

PROGRESS_ENV = "XSTILTS_PROGRESS_S"
DEFAULT_PROGRESS_S = 30.0
TRACKING_POINTS = 100  # training-curve points per phase sent to a tracker

# per process: what a grid worker puts before its lines, and whether it prints them at all
_LINES = {"prefix": "", "quiet": False}


def configure_lines(*, prefix: str = "", quiet: bool = False) -> None:
    """This process's progress lines: ``prefix`` (a worker's ``[w0] ``), or none (``quiet``)."""
    _LINES.update(prefix=prefix, quiet=quiet)


def bar_hidden() -> bool:
    """Whether tqdm's bars are silent here (stderr is not a terminal): print lines instead."""
    return not sys.stderr.isatty()


def progress_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(PROGRESS_ENV, DEFAULT_PROGRESS_S)))
    except ValueError:
        return DEFAULT_PROGRESS_S


def duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``12s``."""
    s = int(round(max(0.0, seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class TrainMonitor:
    """Progress lines (when no terminal shows a bar) and tracker logging of one training phase.

    ``lines``: None prints lines exactly when tqdm is silent (stderr not a terminal)."""

    def __init__(
        self,
        desc: str,
        total: int,
        *,
        tracker: Tracker = NULL,
        enabled: bool = True,
        lines: bool | None = None,
        every_s: float | None = None,
        out=None,
    ):
        self.desc, self.total, self.tracker = desc, max(1, total), tracker
        self.enabled = enabled
        self.lines = enabled and not _LINES["quiet"] and (bar_hidden() if lines is None else lines)
        self.every_s = progress_seconds() if every_s is None else every_s
        self.log_every = max(1, math.ceil(self.total / TRACKING_POINTS))
        self.out = out
        self.t0 = self.t_line = self.t_log = time.perf_counter()
        self.ex_log = 0
        self.losses: list[float] = []  # since the last tracker point

    def _print(self, msg: str) -> None:
        print(_LINES["prefix"] + msg, file=self.out or sys.stdout, flush=True)

    def step(self, step: int, loss: float, lr: float, grad_norm: Any, examples_seen: int) -> None:
        """After optimizer step ``step`` (1-based); ``grad_norm`` may be a tensor (read only
        at logging steps: reading it waits for the device)."""
        if not self.enabled:
            return
        self.losses.append(loss)
        now = time.perf_counter()
        last = step >= self.total
        if self.tracker and (step % self.log_every == 0 or last):
            dt = max(now - self.t_log, 1e-9)
            self.tracker.log_metrics(
                {
                    "train/loss": sum(self.losses) / len(self.losses),
                    "train/lr": lr,
                    "train/grad_norm": float(grad_norm),
                    "train/examples_per_s": (examples_seen - self.ex_log) / dt,
                },
                step,
            )
            self.losses, self.t_log, self.ex_log = [], now, examples_seen
        if self.lines and (step == 1 or last or now - self.t_line >= self.every_s):
            self.t_line = now
            elapsed = now - self.t0
            eta = elapsed / step * (self.total - step)
            self._print(
                f"[step] {self.desc}: {step}/{self.total} ({100 * step / self.total:.0f}%) "
                f"loss {loss:.4f} lr {lr:.2e} {examples_seen / max(elapsed, 1e-9):.1f} ex/s "
                f"elapsed {duration(elapsed)} ETA {duration(eta)}"
            )

    def evaluated(self, step: int, rows: Sequence[Mapping[str, Any]]) -> None:
        """After an evaluation step: its history rows (English dev, target-language dev)."""
        if not self.enabled or not rows:
            return
        if self.tracker:
            self.tracker.log_metrics(dev_metrics(rows), step)
        if self.lines:
            en = [r for r in rows if r["language"] == "en"]
            scores = ", ".join(f"{r['task']} {r['metric']} {r['value']:.2f}" for r in en)
            more = len(rows) - len(en)
            extra = f" (+{more} target-language dev scores)" if more else ""
            self._print(
                f"[eval] {self.desc}: step {step}/{self.total} English dev {scores or '-'}{extra}"
            )
