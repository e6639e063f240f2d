"""Experiment tracking: TensorBoard, MLflow and Weights & Biases (offline), per stage.

Every stage that a run or grid builds (masked-LM, intermediate, target, zero-shot) becomes one
tracked run of each backend named in the config's ``tracking`` list:

* parameters: the resolved run config, flattened to dotted keys;
* tags: the stage key, kind, label and the keys of the stages it reads (its parents);
* per logging step of training: loss, learning rate, gradient norm and examples/s;
  per evaluation step: the English dev scores (and target-language dev scores when logged);
* at the end of a zero-shot stage: the score of every language (and their mean);
* the stage's ``rows.jsonl`` as an artifact (MLflow, W&B).

Runs are grouped by the run config's ``name`` (a grid's name): the MLflow experiment, the
W&B group and the TensorBoard folder; the run name is the stage (``target-<key>``).

Only the main process of a data-parallel launch logs. The backends are imported only when
chosen. A backend that fails (not installed, an unreachable server, a locked database) prints
one warning line and is dropped for the rest of the stage: tracking never fails a stage.
Tracking settings never enter a stage key (``pipeline/plan.py`` hashes explicit inputs).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from xstilts.config import TrackingBackend, to_dict

# MLflow accepts metric/param names of word characters and ``/ . - :`` and spaces; W&B and
# TensorBoard accept those too, so one sanitised name is used everywhere.
_BAD_NAME = re.compile(r"[^\w/.\- :]")
_PARAM_VALUE_MAX = 6000  # MLflow's limit on a parameter value (characters)


def metric_name(*parts: object) -> str:
    """``a/b/c`` from the parts, with characters a backend refuses replaced by ``_``."""
    return _BAD_NAME.sub("_", "/".join(str(p) for p in parts if p not in (None, "")))


def flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    """A config (dataclass or mapping) as ``dotted.key -> str``; lists as JSON."""
    d = to_dict(obj)
    out: dict[str, str] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                out.update(flatten(v, key))
            else:
                out[_BAD_NAME.sub("_", key)] = (
                    v if isinstance(v, str) else json.dumps(v, default=str)
                )[:_PARAM_VALUE_MAX]
    return out


@dataclass(frozen=True)
class StageRun:
    """Who a tracked run is: one stage of one run or grid."""

    group: str  # run config name (a grid's name): MLflow experiment, W&B group, TB folder
    stage: str  # ``<kind>-<key>``: the run name
    kind: str  # mlm | intermediate | target | zero_shot
    key: str
    label: str  # the stage's human label, e.g. "target xnli after rte seed=0"
    parents: tuple[str, ...] = ()  # stage names it reads
    params: dict[str, str] = field(default_factory=dict)  # flattened resolved config
    out_dir: Path = Path(".")

    @property
    def tags(self) -> dict[str, str]:
        return {
            "xstilts.stage": self.stage,
            "xstilts.stage_key": self.key,
            "xstilts.kind": self.kind,
            "xstilts.label": self.label,
            "xstilts.parents": ",".join(self.parents),
        }


class Tracker(Protocol):
    """What the pipeline tells a tracker; every method may be a no-op."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def log_summary(self, metrics: Mapping[str, float]) -> None: ...

    def log_artifact(self, path: Path) -> None: ...

    def finish(self, failed: bool = False) -> None: ...


class NullTracker:
    """Tracks nothing (no backend chosen, or not the main process)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def log_summary(self, metrics: Mapping[str, float]) -> None:
        pass

    def log_artifact(self, path: Path) -> None:
        pass

    def finish(self, failed: bool = False) -> None:
        pass

    def __bool__(self) -> bool:
        return False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(failed=exc_type is not None)


NULL = NullTracker()


def _warn(backend: str, what: str, exc: BaseException) -> None:
    msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    print(
        f"xstilts: warning: tracking with {backend} failed ({what}: {msg}); "
        "the stage goes on without it",
        file=sys.stderr,
        flush=True,
    )


class FanOut:
    """Several backends as one tracker. A backend that raises is warned about once (one line)
    and dropped for the rest of the stage; nothing it raises reaches the stage."""

    def __init__(self, trackers: dict[str, Tracker]):
        self.trackers = dict(trackers)

    def _call(self, what: str, *args: Any) -> None:
        for name, t in list(self.trackers.items()):
            try:
                getattr(t, what)(*args)
            except Exception as e:  # tracking must never fail a stage
                _warn(name, what, e)
                del self.trackers[name]
                if what != "finish":
                    try:
                        t.finish(True)
                    except Exception:
                        pass  # already warned about this backend

    @staticmethod
    def _clean(metrics: Mapping[str, float]) -> dict[str, float]:
        out = {}
        for k, v in metrics.items():
            try:
                v = float(v)
            except (TypeError, ValueError):
                continue  # not a number: nothing to plot
            if math.isfinite(v):  # W&B and MLflow reject or mangle NaN/inf
                out[_BAD_NAME.sub("_", str(k))] = v
        return out

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        m = self._clean(metrics)
        if m:
            self._call("log_metrics", m, int(step))

    def log_summary(self, metrics: Mapping[str, float]) -> None:
        m = self._clean(metrics)
        if m:
            self._call("log_summary", m)

    def log_artifact(self, path: Path) -> None:
        if Path(path).is_file():
            self._call("log_artifact", Path(path))

    def finish(self, failed: bool = False) -> None:
        self._call("finish", failed)
        self.trackers.clear()

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(failed=exc_type is not None)


# --------------------------------------------------------------------------- backends


class TensorBoardTracker:
    """Event files under ``<output>/tensorboard/<group>/<stage>/`` (``tensorboard --logdir``)."""

    def __init__(self, run: StageRun):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch's writer needs the tensorboard package; tensorboardX works
            from tensorboardX import SummaryWriter
        self.dir = run.out_dir / "tensorboard" / _BAD_NAME.sub("_", run.group) / run.stage
        self.writer = SummaryWriter(log_dir=str(self.dir))
        tags = "\n".join(f"| {k} | {v} |" for k, v in run.tags.items())
        self.writer.add_text("stage", f"| tag | value |\n|---|---|\n{tags}", 0)
        params = "\n".join(f"| {k} | {v} |" for k, v in sorted(run.params.items()))
        self.writer.add_text("config", f"| key | value |\n|---|---|\n{params}", 0)
        self.last_step = 0

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.last_step = max(self.last_step, step)
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, global_step=step)

    def log_summary(self, metrics: Mapping[str, float]) -> None:
        for k, v in metrics.items():  # final values: at the stage's last step
            self.writer.add_scalar(k, v, global_step=self.last_step)

    def log_artifact(self, path: Path) -> None:
        pass  # TensorBoard has no artifact store: the rows stay in the stage directory

    def finish(self, failed: bool = False) -> None:
        self.writer.close()


def default_mlflow_uri(out_dir: Path) -> str:
    """A SQLite backend store in the output directory (``mlflow ui --backend-store-uri``)."""
    return "sqlite:///" + str((out_dir / "mlflow.db").resolve())


@contextmanager
def _file_lock(path: Path | None):
    """An exclusive ``flock`` on ``path`` (processes of one host; no-op where unavailable)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        fcntl = None
    if path is None or fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class MLflowTracker:
    """One MLflow run per stage in the experiment named after the run config (the grid).

    Without ``tracking_uri`` the store is ``sqlite:///<output>/mlflow.db``; artifacts of a
    local store go to ``<output>/mlruns/``; with a server, the server decides."""

    def __init__(self, run: StageRun, uri: str | None):
        from mlflow.entities import Param, RunTag
        from mlflow.tracking import MlflowClient

        if uri is None:
            run.out_dir.mkdir(parents=True, exist_ok=True)
        # A local store (ours, or a SQLite file / directory the user names) keeps a new
        # experiment's artifacts in the output directory; MLflow's default would be ./mlruns
        # in whatever directory the command runs from. A server decides for itself.
        local = uri is None or uri.split(":", 1)[0] in ("sqlite", "file") or "://" not in uri
        # The first use of a SQLite store creates its tables (Alembic migrations): two grid
        # workers doing so at once fail ("duplicate column name"), so local workers take
        # turns here. Later stages find the tables and pass the lock at once.
        with _file_lock(run.out_dir / ".mlflow.lock" if local else None):
            self.client = MlflowClient(tracking_uri=uri or default_mlflow_uri(run.out_dir))
            exp_id = self._experiment(
                run.group, (run.out_dir / "mlruns").resolve().as_uri() if local else None
            )
        created = self.client.create_run(
            exp_id,
            run_name=run.stage,
            tags={**run.tags, "mlflow.note.content": run.label},
        )
        self.run_id = created.info.run_id
        params = [Param(k, v) for k, v in sorted(run.params.items())]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])
        self._tag = RunTag
        self.last_step = 0

    def _experiment(self, name: str, artifact_location: str | None) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=artifact_location)
        except Exception:
            # another worker of the grid created it meanwhile
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def _log(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        batch = [Metric(k, v, ts, step) for k, v in metrics.items()]
        for i in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[i : i + 1000])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.last_step = max(self.last_step, step)
        self._log(metrics, step)

    def log_summary(self, metrics: Mapping[str, float]) -> None:
        self._log(metrics, self.last_step)

    def log_artifact(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def finish(self, failed: bool = False) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


class WandbTracker:
    """One W&B run per stage: group = the grid, job type = the stage kind. Offline (run files
    under ``<output>/wandb/``, ``wandb sync`` uploads them) unless ``WANDB_MODE`` is set."""

    def __init__(self, run: StageRun):
        import wandb

        self.wandb = wandb
        run.out_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or "xstilts",
            group=run.group,
            job_type=run.kind,
            name=run.stage,
            notes=run.label,
            tags=[run.kind],
            config={**run.params, **run.tags},
            dir=str(run.out_dir),
            mode=None if os.environ.get("WANDB_MODE") else "offline",
            reinit="create_new",  # one run per stage, several stages per process
            settings=wandb.Settings(silent=True, console="off"),
        )

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def log_summary(self, metrics: Mapping[str, float]) -> None:
        for k, v in metrics.items():
            self.run.summary[k] = v

    def log_artifact(self, path: Path) -> None:
        art = self.wandb.Artifact(f"rows-{self.run.name}", type="rows")
        art.add_file(str(path), name=path.name)  # copied now: the stage dir is renamed later
        self.run.log_artifact(art)

    def finish(self, failed: bool = False) -> None:
        self.run.finish(exit_code=1 if failed else 0)


_BACKENDS = {
    TrackingBackend.TENSORBOARD: lambda run, uri: TensorBoardTracker(run),
    TrackingBackend.MLFLOW: MLflowTracker,
    TrackingBackend.WANDB: lambda run, uri: WandbTracker(run),
}


def open_tracker(
    backends: Sequence[TrackingBackend], uri: str | None, run: StageRun
) -> FanOut | NullTracker:
    """The tracker of one stage: every chosen backend that starts (a backend that cannot start
    is warned about and left out). Only the main process of a launch tracks."""
    from xstilts import runtime

    if not backends or not runtime.is_main():
        return NULL
    trackers: dict[str, Tracker] = {}
    for b in dict.fromkeys(backends):
        try:
            trackers[b.value] = _BACKENDS[b](run, uri)
        except Exception as e:
            _warn(b.value, "start", e)
    return FanOut(trackers) if trackers else NULL


def dev_metrics(history: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Evaluation rows (``TrainResult.history`` entries) as ``<split>/<language>/<task>/<metric>``."""
    return {
        metric_name(h["split"], h["language"], h["task"], h["metric"]): h["value"]
        for h in history
        if h.get("value") is not None
    }


def stage_tracker(cfg: Any, out_dir: Path, stage: Any, label: str, parents: Sequence[Any] = ()):
    """The tracker of one pipeline stage of run config ``cfg`` (a ``RunConfig``; ``stage`` a
    ``pipeline.stages.Stage``, ``parents`` the stages it reads, None entries ignored).

    Use as a context manager: the run is finished as failed when the stage raises."""
    if not cfg.tracking:
        return NULL
    params = flatten(cfg)
    for k in ("tracking", "tracking_uri"):  # how it is logged is no parameter of the stage
        params.pop(k, None)
    run = StageRun(
        group=cfg.name,
        stage=stage.name,
        kind=stage.kind.value,
        key=stage.key,
        label=label,
        parents=tuple(p.name for p in parents if p is not None),
        params=params,
        out_dir=Path(out_dir),
    )
    return open_tracker(cfg.tracking, cfg.tracking_uri, run)


def score_metrics(rows: Sequence[Any]) -> dict[str, float]:
    """Zero-shot ``ResultRow``s as ``zero_shot/<task>/<language>/<metric>``, plus the mean
    over languages of each (task, metric) as ``zero_shot/<task>/mean/<metric>``."""
    out: dict[str, float] = {}
    by: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r.value is None:
            continue
        out[metric_name("zero_shot", r.task, r.language, r.metric)] = r.value
        by.setdefault((r.task, r.metric), []).append(r.value)
    for (task, metric), values in by.items():
        out[metric_name("zero_shot", task, "mean", metric)] = sum(values) / len(values)
    return out
