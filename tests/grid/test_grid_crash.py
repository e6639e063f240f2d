"""Crash safety with real worker processes: kill -9 at chosen and at random points (twenty
random kills with resumption, through a fork server; XSTILTS_CRASH_KILLS for more), re-run,
and get exactly the rows (values included), checkpoints and predictions of an uninterrupted
run; two workers on one grid build every stage exactly once."""

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors import safe_open

from xstilts.grid import build_graph, grid_rows, load_grid, run_grid
from xstilts.results.store import ROWS_FILE

TRAIN = {"epochs": 2, "batch_size": 16, "lr": 2e-3, "eval_every": 5, "eval_batch_size": 64}

# Runs ``xstilts grid run`` after patching one function so that the process SIGKILLs itself
# at a precise moment (argv: grid, output dir, kill point); "none" runs unpatched.
WORKER = r"""
import os, signal, sys
from pathlib import Path
grid, out, point = sys.argv[1:4]
calls = {"n": 0}

def die_on(n):
    calls["n"] += 1
    if calls["n"] == n:
        os.kill(os.getpid(), signal.SIGKILL)

if point == "checkpoint":  # mid-stage: after 'last/' is written, before 'best/'
    import xstilts.training.loop as loop
    real_save = loop.save_checkpoint
    def save(*a, **k):
        real_save(*a, **k)
        die_on(2)
    loop.save_checkpoint = save
elif point == "evaluation":  # mid-evaluation: two languages predicted, three to go
    import xstilts.pipeline.evaluate as run
    real_predict = run.predict
    def predict(*a, **k):
        die_on(3)
        return real_predict(*a, **k)
    run.predict = predict
elif point in ("rows", "publish"):  # mid-write of rows.jsonl / publishing a stage dir
    real_replace = os.replace
    def replace(src, dst, *a, **k):
        name = Path(dst).name
        if (point == "rows" and name == "rows.jsonl") or (
            point == "publish" and Path(src).name.startswith(".tmp-")
        ):
            die_on(2)
        return real_replace(src, dst, *a, **k)
    os.replace = replace
from xstilts.cli import main
sys.exit(main(["grid", "run", grid, "--output-dir", out, "--quiet-tables"]))
"""


# A fork server for many kills at little cost: imports xstilts (and torch) once, then for each
# "<from> <delay> <out>" line on stdin forks a child that runs ``xstilts grid run`` into
# ``out`` and SIGKILLs it
# (by its pid) ``delay`` seconds after its start (from = start) or after a new stage temporary
# directory appeared (from = stage: mid-stage), unless it ended first; prints the child's end
# ("killed" or its exit code). Forking skips the ~3-5 s interpreter start of every round, so twenty kills fit in
# the time of a few. The parent computes nothing (no torch thread pool exists before a fork).
FORKER = r"""
import os, signal, sys, time
from pathlib import Path
grid = sys.argv[1]
# imported (nothing computed) before the forks, so that the children start warm
import importlib
for m in ("torch", "transformers", "transformers.models.bert.modeling_bert",
          "transformers.models.bert.tokenization_bert", "safetensors.torch", "xstilts.cli",
          "xstilts.grid", "xstilts.grid.worker", "xstilts.pipeline.run",
          "xstilts.pipeline.stages", "xstilts.pipeline.evaluate", "xstilts.training.loop",
          "xstilts.modeling.model", "xstilts.evaluation.metrics"):
    importlib.import_module(m)
import xstilts.cli
for line in sys.stdin:
    start, delay, out = line.rstrip("\n").split(" ", 2)
    stages = Path(out) / "stages"
    before = set(stages.glob(".tmp-*"))  # a killed worker's, until a worker clears them
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        code = 99  # whatever happens, the child never returns into this loop
        try:
            code = xstilts.cli.main(["grid", "run", grid, "--output-dir", out, "--quiet-tables"])
        finally:
            os._exit(code)
    done, hung = 0, time.monotonic() + 120
    if start == "stage":  # wait for a stage this child builds (or the child's end)
        while not done and not set(stages.glob(".tmp-*")) - before:
            done, status = os.waitpid(pid, os.WNOHANG)
            time.sleep(0.01)
            if time.monotonic() > hung:  # neither builds nor ends: a hang, not a kill
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                print("hung", flush=True)
                break
        else:
            hung = None
        if hung is not None:
            continue
    end = time.monotonic() + float(delay)
    while not done and time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        time.sleep(0.01)
    if not done:
        os.kill(pid, signal.SIGKILL)
        done, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    print("killed" if code == -signal.SIGKILL else code, flush=True)
"""


def _grid(tmp_path: Path, model: Path, data: Path, seeds: list[int]) -> Path:
    raw = {
        "name": "crash",
        "models": [{"name": "tiny", "name_or_path": str(model), "max_length": 32}],
        "data_dir": str(data),
        "threads": 1,
        "intermediate": {"systems": [[], ["demo_inter"]], "training": TRAIN},
        "targets": [{"task": "demo_nli", "training": TRAIN, "evaluation": {"max_examples": 20}}],
        "seeds": seeds,
        "execution": {"heartbeat_s": 1, "stale_after_s": 30, "poll_s": 0.2},
    }
    path = tmp_path / f"grid-{len(seeds)}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}


def _worker(grid: Path, out: Path, point: str = "none") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(grid), str(out), point],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )


def _snapshot(grid: Path, out: Path) -> dict:
    """Everything a run leaves: rows (but when and from which checkout), and the hash of every
    checkpoint and prediction file, per stage."""
    graph = build_graph(load_grid(grid), out, echo=lambda s: None)
    rows = grid_rows(graph).drop(columns=["time", "git_sha"])  # when and from which commit
    rows["protocol"] = rows["protocol"].map(lambda p: json.dumps(p, sort_keys=True))
    rows = rows.sort_values(list(rows.columns)).reset_index(drop=True)
    files = {}
    for f in sorted((out / "stages").rglob("*")):
        if f.is_file() and f.suffix == ".safetensors":
            files[str(f.relative_to(out))] = _tensors_hash(f)
        elif f.is_file() and "predictions" in f.parts:
            files[str(f.relative_to(out))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return {"rows": rows, "files": files, "nodes": sorted(graph.nodes)}


def _tensors_hash(path: Path) -> str:
    """Hash of a checkpoint's tensors and metadata. (Not of its bytes: safetensors writes
    the metadata map in a per-process random order.)"""
    h = hashlib.sha256()
    with safe_open(str(path), "pt") as f:
        h.update(json.dumps(f.metadata(), sort_keys=True).encode())
        for k in sorted(f.keys()):
            h.update(k.encode())
            h.update(f.get_tensor(k).numpy().tobytes())
    return h.hexdigest()


def _check_no_torn_state(out: Path) -> None:
    stages = out / "stages"
    for d in stages.iterdir():
        if d.name.startswith("."):
            continue
        assert (d / "stage.json").is_file(), f"published stage without stage.json: {d}"
        for line in (d / ROWS_FILE).read_text().splitlines():
            json.loads(line)  # every published row is whole


@pytest.fixture(scope="module")
def reference(tiny_model, demo_data, tmp_path_factory):
    """An uninterrupted run, in this process, of the grid the workers run."""
    tmp = tmp_path_factory.mktemp("crash-ref")
    grid = _grid(tmp, tiny_model, demo_data, [1, 2])
    n = torch.get_num_threads()
    run_grid(load_grid(grid), tmp / "out", echo=lambda s: None)
    torch.set_num_threads(n)
    snap = _snapshot(grid, tmp / "out")
    # the model learns something, so equal values are a real check
    zs = snap["rows"][snap["rows"]["stage"] == "zero_shot"]
    assert zs["value"].nunique() > 1
    return snap


def test_kill_minus_nine_anywhere_then_rerun_gives_identical_results(
    tiny_model, demo_data, tmp_path, reference
):
    grid = _grid(tmp_path, tiny_model, demo_data, [1, 2])
    out = tmp_path / "out"
    # precise points: mid-training (between checkpoints), mid-evaluation, mid-write
    for point in ("checkpoint", "evaluation", "rows", "publish"):
        p = _worker(grid, out, point)
        log = p.communicate(timeout=300)[0]
        assert p.returncode == -signal.SIGKILL, f"{point}: {log[-2000:]}"
        _check_no_torn_state(out)
    # random points, from outside, while a stage is being built
    rng = random.Random(1234)
    for _ in range(2):
        p = _worker(grid, out)
        deadline = time.time() + 120
        while time.time() < deadline and p.poll() is None:
            if list((out / "stages").glob(".tmp-*")):
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        _check_no_torn_state(out)
    # a leftover temporary dir of a killed worker exists now; the re-run cleans it
    p = _worker(grid, out)
    log = p.communicate(timeout=600)[0]
    assert p.returncode == 0, log[-3000:]
    snap = _snapshot(grid, out)
    assert snap["nodes"] == reference["nodes"]
    pd.testing.assert_frame_equal(snap["rows"], reference["rows"])
    assert snap["files"] == reference["files"]
    stages = out / "stages"
    assert not list(stages.glob(".tmp-*")), "temporary dirs of dead workers left behind"
    assert not list((stages / ".claims").iterdir()), "claims left behind"
    assert not list((stages / ".failed").glob("*")) if (stages / ".failed").exists() else True


def test_two_workers_build_every_stage_once(tiny_model, demo_data, tmp_path, reference):
    grid = _grid(tmp_path, tiny_model, demo_data, [1, 2])
    out = tmp_path / "out"
    workers = [_worker(grid, out), _worker(grid, out)]
    logs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    built = Counter(k for log in logs for k in re.findall(r"^\[run \] .* \((\w{16})\)$", log, re.M))
    assert sorted(built) == sorted(n.split("-", 1)[1] for n in reference["nodes"])
    assert set(built.values()) == {1}, built  # never twice, so never at the same time
    snap = _snapshot(grid, out)
    pd.testing.assert_frame_equal(snap["rows"], reference["rows"])
    assert snap["files"] == reference["files"]


# Kills of the fork-server test; XSTILTS_CRASH_KILLS raises it (e.g. 100) for a longer hunt.
RANDOM_KILLS = int(os.environ.get("XSTILTS_CRASH_KILLS", "20"))


def test_many_random_kills_with_resumption_give_identical_results(
    tiny_model, demo_data, tmp_path, reference
):
    """``RANDOM_KILLS`` rounds: a worker resumes what the last one left and is SIGKILLed after a
    random delay (0 to 4.5 s from its start: reading data, building the graph, anywhere; or,
    mostly, 0 to 1 s from the moment a new stage is being built: mid-training, mid-evaluation,
    mid-write); after each the published state is whole; a last run finishes the grid, and its
    rows, checkpoints and predictions equal the uninterrupted run's."""
    grid = _grid(tmp_path, tiny_model, demo_data, [1, 2])
    out = tmp_path / "out-0"
    finished = 0  # outputs built to the end through kills
    seed = int(os.environ.get("XSTILTS_CRASH_SEED", "20261207"))
    rng = random.Random(seed)
    server = subprocess.Popen(
        [sys.executable, "-c", FORKER, str(grid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    ends = []
    try:
        for _ in range(RANDOM_KILLS):
            # a whole run takes ~4 s after the fork here, a stage ~0.5 s
            if rng.random() < 0.3:
                server.stdin.write(f"start {rng.uniform(0.0, 4.5):.3f} {out}\n")
            else:
                server.stdin.write(f"stage {rng.uniform(0.0, 1.0):.3f} {out}\n")
            server.stdin.flush()
            ends.append(server.stdout.readline().strip())
            assert ends[-1] in ("killed", "0"), f"seed {seed}: a worker failed: {ends}"
            if (out / "stages").is_dir():
                _check_no_torn_state(out)
            if ends[-1] == "0":  # this output finished despite its kills: check it, start anew
                _same_as_reference(grid, out, reference, seed)
                finished += 1
                out = tmp_path / f"out-{finished}"
    finally:
        server.stdin.close()
        server.wait(timeout=60)
    assert "killed" in ends, ends  # (how many land mid-stage depends on the machine's speed)
    p = _worker(grid, out)
    log = p.communicate(timeout=600)[0]
    assert p.returncode == 0, log[-3000:]
    _same_as_reference(grid, out, reference, seed)


def _same_as_reference(grid: Path, out: Path, reference: dict, seed: int) -> None:
    snap = _snapshot(grid, out)
    assert snap["nodes"] == reference["nodes"], f"seed {seed}"
    pd.testing.assert_frame_equal(snap["rows"], reference["rows"])
    assert snap["files"] == reference["files"], f"seed {seed}"
    assert not list((out / "stages").glob(".tmp-*")), "temporary dirs of dead workers left behind"
