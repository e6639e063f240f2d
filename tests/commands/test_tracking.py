"""Experiment tracking on a tiny run: what each backend receives, that a failing backend never
fails a stage, that tracking changes no stage key or result, the progress lines written when no
terminal shows a bar, and row labels and messages that say what was selected."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from xstilts.config import ModelSelection, RunConfig, TrackingBackend, from_dict
from xstilts.errors import ConfigError
from xstilts.pipeline import run as run_mod
from xstilts.pipeline.evaluate import PRETRAINED_NO_SELECTION
from xstilts.pipeline.stages import make_stage
from xstilts.results.store import load_rows

TRAIN = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_batch_size": 64, "eval_every": 4}


def _cfg(model: Path, data: Path, **over) -> RunConfig:
    raw = {
        "name": "tiny-track",
        "model": {"name_or_path": str(model), "max_length": 32},
        "data_dir": str(data),
        "threads": 1,
        "intermediate": {"systems": [[]], "training": TRAIN},
        "target": {
            "task": "demo_nli",
            "training": TRAIN,
            "evaluation": {"languages": ["en", "de", "ru"], "max_examples": 20},
        },
        "seeds": [2],
    }
    raw.update(over)
    return from_dict(RunConfig, raw)


def _needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install 'xstilts[tracking]')")


def _run(model, data, out: Path, echo=lambda s: None, **over):
    return run_mod.run(_cfg(model, data, **over), data_dir=data, out_dir=out, echo=echo)


def _stages(out: Path) -> dict[str, Path]:
    return {p.name.split("-")[0]: p for p in (out / "stages").iterdir() if p.name[0] != "."}


def test_tracking_is_a_config_enum_and_unknown_backends_are_errors(tiny_model, demo_data):
    cfg = _cfg(tiny_model, demo_data, tracking=["mlflow", "tensorboard"])
    assert cfg.tracking == (TrackingBackend.MLFLOW, TrackingBackend.TENSORBOARD)
    assert _cfg(tiny_model, demo_data).tracking == ()  # none by default
    with pytest.raises(ConfigError, match=r"'tracking\[0\]': 'neptune' is not one of"):
        _cfg(tiny_model, demo_data, tracking=["neptune"])


def test_tensorboard_events_and_same_stages_and_rows_without_tracking(
    tiny_model, demo_data, tmp_path
):
    _needs("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    plain = _run(tiny_model, demo_data, tmp_path / "plain")
    tracked = _run(tiny_model, demo_data, tmp_path / "tb", tracking=["tensorboard"])
    # tracking enters no stage key and changes no result
    assert set(_stages(tmp_path / "plain")) == set(_stages(tmp_path / "tb"))
    names = sorted(p.name for p in (tmp_path / "tb" / "stages").iterdir() if p.name[0] != ".")
    assert names == sorted(p.name for p in (tmp_path / "plain" / "stages").iterdir() if p.name[0] != ".")  # fmt: skip
    cols = ["stage_key", "language", "metric", "value"]
    assert plain[cols].sort_values(cols).values.tolist() == tracked[cols].sort_values(cols).values.tolist()  # fmt: skip

    stages = _stages(tmp_path / "tb")
    logdir = tmp_path / "tb" / "tensorboard" / "tiny-track"
    target = EventAccumulator(str(logdir / stages["target"].name))
    target.Reload()
    tags = set(target.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/grad_norm", "train/examples_per_s"} <= tags
    assert "dev/en/demo_nli/accuracy" in tags
    steps = [e.step for e in target.Scalars("train/loss")]
    assert steps == sorted(steps) and len(steps) >= 5  # 10 steps, every step logged
    dev = target.Scalars("dev/en/demo_nli/accuracy")
    hist = load_rows(stages["target"])
    assert [e.step for e in dev] == sorted(set(hist["step"]))
    assert dev[-1].value == pytest.approx(hist[hist["step"] == hist["step"].max()]["value"].iloc[0])
    lrs = [e.value for e in target.Scalars("train/lr")]
    assert max(lrs) == pytest.approx(1e-3) and lrs[-1] < max(lrs)  # warm-up, then decay
    zs = EventAccumulator(str(logdir / stages["zero_shot"].name))
    zs.Reload()
    by_lang = tracked.set_index("language")
    for lang in ("en", "de", "ru"):
        (ev,) = zs.Scalars(f"zero_shot/demo_nli/{lang}/accuracy")
        assert ev.value == pytest.approx(by_lang.loc[lang, "value"])
    assert "zero_shot/demo_nli/mean/accuracy" in zs.Tags()["scalars"]


def test_mlflow_sqlite_store_runs_params_metrics_artifacts(tiny_model, demo_data, tmp_path):
    _needs("mlflow")
    _needs("sqlalchemy")
    from mlflow.tracking import MlflowClient

    out = tmp_path / "ml"
    rows = _run(tiny_model, demo_data, out, tracking=["mlflow"])
    assert (out / "mlflow.db").is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tiny-track")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    stages = _stages(out)
    assert set(runs) == {stages["target"].name, stages["zero_shot"].name}
    tgt, zs = runs[stages["target"].name], runs[stages["zero_shot"].name]
    assert tgt.info.status == "FINISHED" and zs.info.status == "FINISHED"
    assert tgt.data.tags["xstilts.stage_key"] == stages["target"].name.split("-")[1]
    assert zs.data.tags["xstilts.parents"] == stages["target"].name  # what it reads
    assert tgt.data.tags["xstilts.kind"] == "target"
    # the resolved config as parameters (tracking settings left out)
    assert tgt.data.params["target.task"] == "demo_nli"
    assert tgt.data.params["target.training.lr"] == "0.001"
    assert "tracking" not in tgt.data.params
    loss = client.get_metric_history(tgt.info.run_id, "train/loss")
    assert len(loss) >= 5 and all(m.value > 0 for m in loss)
    for key in ("train/lr", "train/grad_norm", "train/examples_per_s", "dev/en/demo_nli/accuracy"):
        assert client.get_metric_history(tgt.info.run_id, key), key
    for lang in ("en", "de", "ru"):
        want = rows[rows["language"] == lang]["value"].iloc[0]
        assert zs.data.metrics[f"zero_shot/demo_nli/{lang}/accuracy"] == pytest.approx(want)
    assert [a.path for a in client.list_artifacts(zs.info.run_id)] == ["rows.jsonl"]
    logged = Path(client.download_artifacts(zs.info.run_id, "rows.jsonl", str(tmp_path)))
    assert logged.read_text() == (stages["zero_shot"] / "rows.jsonl").read_text()
    # artifacts stay inside the output directory, not in the working directory
    assert list((out / "mlruns").rglob("rows.jsonl"))


def test_wandb_offline_run_files_hold_the_logged_keys(tiny_model, demo_data, tmp_path, monkeypatch):
    _needs("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline unless the user says otherwise
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    out = tmp_path / "wb"
    _run(tiny_model, demo_data, out, tracking=["wandb"])
    files = sorted((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2  # one offline run per stage
    blob = b"".join(f.read_bytes() for f in files)
    stages = _stages(out)
    # the records are protobuf: logged names and values appear as plain UTF-8 strings
    for key in (
        b"train/loss",
        b"train/grad_norm",
        b"dev/en/demo_nli/accuracy",
        b"zero_shot/demo_nli/ru/accuracy",
        b"tiny-track",  # the group
        stages["target"].name.encode(),
        stages["zero_shot"].name.encode(),
    ):
        assert key in blob, key


class _Boom:
    """A backend that starts, then raises at every call."""

    def __init__(self, run, uri):
        pass

    def log_metrics(self, metrics, step):
        raise RuntimeError("tracking server went away")

    log_summary = log_metrics

    def log_artifact(self, path):
        raise RuntimeError("disk full")

    def finish(self, failed=False):
        raise RuntimeError("still gone")


def test_failing_trackers_never_fail_a_stage(tiny_model, demo_data, tmp_path, monkeypatch, capsys):
    from xstilts import tracking

    monkeypatch.setitem(tracking._BACKENDS, TrackingBackend.TENSORBOARD, _Boom)
    (tmp_path / "a-file").write_text("not a directory")  # an unwritable database location
    bad_uri = f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}"
    rows = _run(
        tiny_model, demo_data, tmp_path / "out",
        tracking=["tensorboard", "mlflow"], tracking_uri=bad_uri,
    )  # fmt: skip
    assert len(rows) == 3 and set(_stages(tmp_path / "out")) == {"target", "zero_shot"}
    err = [line for line in capsys.readouterr().err.splitlines() if "xstilts: warning" in line]
    # per stage: one line for the raising backend (dropped after its first failure), and,
    # where mlflow is installed, one for the store it cannot open
    boom = [line for line in err if "tracking with tensorboard failed" in line]
    assert len(boom) == 2 and "tracking server went away" in boom[0]
    if importlib.util.find_spec("mlflow") is not None:
        assert len([line for line in err if "tracking with mlflow failed (start" in line]) == 2


def test_progress_lines_and_selection_messages_without_a_terminal(
    tiny_model, demo_data, tmp_path, capsys
):
    target = {
        "task": "demo_nli",
        "training": {**TRAIN, "selection": "last"},
        "evaluation": {"languages": ["en", "de", "ru"], "max_examples": 20},
    }
    _run(tiny_model, demo_data, tmp_path / "p", echo=print, target=target)
    out = capsys.readouterr().out  # captured: stderr is no terminal, so tqdm stays silent
    steps = [line for line in out.splitlines() if line.startswith("[step] target demo_nli")]
    assert steps[0].startswith("[step] target demo_nli: 1/10 (10%) loss ")
    assert steps[-1].startswith("[step] target demo_nli: 10/10 (100%)")
    assert all(" ex/s " in s and " ETA " in s for s in steps)
    evals = [line for line in out.splitlines() if line.startswith("[eval] target demo_nli")]
    assert len(evals) == 3 and "English dev demo_nli accuracy " in evals[0]  # steps 4, 8, 10
    assert "[1/3] en: accuracy " in out and "[3/3] ru: accuracy " in out
    # the message names the configured selection, not the English-dev best
    assert "selected: last checkpoint (step 10, English dev " in out
    assert "best English dev" not in out


def test_selection_report_names_the_rule():
    info = {"steps": 10, "best_step": 4, "best_score": 61.0, "last_score": 58.5}
    report = run_mod.selection_report
    assert report(ModelSelection.BEST_EN_DEV, info) == "selected: best English dev 61.00 at step 4"
    assert report(ModelSelection.LAST, info) == "selected: last checkpoint (step 10, English dev 58.50)"  # fmt: skip
    assert "averaged" in report(ModelSelection.AVERAGE, info)
    assert "dev_a" in report(ModelSelection.ORACLE_TARGET_DEV, info)
    assert "no English dev set" in report(ModelSelection.LAST, {"steps": 3})


def test_pretrained_tatoeba_rows_say_no_selection_and_the_key_is_unchanged(
    tiny_model, demo_data, tmp_path
):
    import shutil
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from _retrieval_fixtures import write_tatoeba

    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    write_tatoeba(demo_data, data)
    target = {"task": "tatoeba", "evaluation": {"languages": ["de", "es"]}}
    rows = _run(tiny_model, data, tmp_path / "t", target=target)
    assert set(rows["protocol"].map(lambda p: p["encoder_selection"])) == {PRETRAINED_NO_SELECTION}
    assert set(rows["protocol"].map(lambda p: p["model_selection"])) == {PRETRAINED_NO_SELECTION}
    # The label lives only in the rows. The stage key is the hash of the stage's inputs,
    # which keep the configured rule (pipeline/evaluate.py zero_shot_job): recomputing the key
    # from the inputs recorded in stage.json gives the published directory's key, and those
    # inputs hold no row label.
    (zs,) = _stages(tmp_path / "t").values()
    info = json.loads((zs / "stage.json").read_text())
    assert info["inputs"]["selection"] == "best_en_dev"
    assert make_stage("zero_shot", info["inputs"], tmp_path).key == info["key"] == zs.name.split("-")[1]  # fmt: skip
    assert PRETRAINED_NO_SELECTION not in json.dumps(info["inputs"])


_TRACK_ONE_STAGE = """
import sys
from pathlib import Path
from xstilts.config import TrackingBackend
from xstilts.tracking import StageRun, open_tracker
i, out = sys.argv[1], Path(sys.argv[2])
run = StageRun("race", f"target-{i}", "target", i, "a stage", out_dir=out)
with open_tracker([TrackingBackend.MLFLOW], None, run) as tracker:
    tracker.log_metrics({"train/loss": 1.0}, 1)
"""


def test_workers_starting_on_a_fresh_sqlite_store_all_track(tmp_path):
    """Grid workers that start at once all create the store's tables on first use: without
    the lock around it, all but one failed ("duplicate column name") and went untracked."""
    _needs("mlflow")
    _needs("sqlalchemy")
    import os
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _TRACK_ONE_STAGE, str(i), str(tmp_path)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(3)
    ]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    assert not any("xstilts: warning" in e for e in errs), errs
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("race")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["target-0", "target-1", "target-2"]


def test_only_the_main_process_tracks_and_names_are_sanitised(monkeypatch, tmp_path):
    from xstilts import tracking

    calls = []

    class Record:
        def __init__(self, run, uri):
            calls.append(("start", run.stage))

        def log_metrics(self, metrics, step):
            calls.append(("metrics", dict(metrics), step))

        def log_summary(self, metrics):
            calls.append(("summary", dict(metrics)))

        def log_artifact(self, path):
            calls.append(("artifact", path.name))

        def finish(self, failed=False):
            calls.append(("finish", failed))

    monkeypatch.setitem(tracking._BACKENDS, TrackingBackend.TENSORBOARD, Record)
    run = tracking.StageRun("g", "target-k", "target", "k", "label", out_dir=tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert not tracking.open_tracker([TrackingBackend.TENSORBOARD], None, run)
    assert calls == []  # a non-main process of a launch starts no backend at all
    monkeypatch.setenv("RANK", "0")
    (tmp_path / "rows.jsonl").write_text("{}\n")
    with pytest.raises(KeyError):
        with tracking.open_tracker([TrackingBackend.TENSORBOARD], None, run) as t:
            t.log_metrics({"zero_shot/tatoeba/de/accuracy@layer3": 1.5, "nan": float("nan")}, 7)
            t.log_artifact(tmp_path / "rows.jsonl")
            t.log_artifact(tmp_path / "missing.jsonl")  # nothing to log: skipped
            raise KeyError("the stage failed")
    assert calls == [
        ("start", "target-k"),
        ("metrics", {"zero_shot/tatoeba/de/accuracy_layer3": 1.5}, 7),
        ("artifact", "rows.jsonl"),
        ("finish", True),  # the stage's exception marks the tracked run failed
    ]
