"""Running grids on a tiny model: stage reuse, seeds, source languages, disk hygiene, executors."""

import dataclasses
import json
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from _configs import TRAIN
from _configs import grid_raw as _raw
from _configs import quiet as _quiet

from xstilts.cli import main
from xstilts.grid import build_graph, grid_rows, run_grid
from xstilts.grid.report import plan_text
from xstilts.grid.spec import parse_grid, with_execution
from xstilts.grid.status import status_table
from xstilts.pipeline import run as run_mod
from xstilts.pipeline.stages import checkpoint_dirs, checkpoints_deleted
from xstilts.tasks import base as task_base
from xstilts.tasks.demo import _read_target


def _key(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows comparable across runs (``time`` is the wall clock of the write)."""
    cols = ["stage", "stage_key", "task", "language", "split", "metric", "step", "value", "seed"]
    return rows[cols].sort_values(cols[:7]).reset_index(drop=True)


def test_intermediate_trained_once_per_seed_and_rerun_trains_nothing(
    tiny_model, demo_data, tmp_path, monkeypatch, capsys
):
    targets = [
        {"name": f"nli-{i}", "task": "demo_nli", "training": {**TRAIN, "lr": lr},
         "evaluation": {"max_examples": 10}}
        for i, lr in enumerate((1e-3, 5e-4, 2e-4))
    ]  # fmt: skip
    spec = parse_grid(_raw(tiny_model, demo_data, targets=targets, seeds=[1, 2]))
    out = tmp_path / "out"
    graph = build_graph(spec, out, echo=_quiet)
    c = graph.counts()
    assert c["intermediate"] == {"unique": 2, "done": 0, "to_run": 2, "per_cell": 6}
    assert c["target"]["unique"] == 12 and c["zero_shot"]["unique"] == 12
    text = plan_text(graph)
    assert "intermediate demo_inter seed=1" in text and "x3 cells" in text

    _, stats = run_grid(spec, out, echo=_quiet)
    assert len(stats.built) == 26 and not stats.failed
    assert len(list((out / "stages").glob("intermediate-*"))) == 2
    rows = grid_rows(build_graph(spec, out, echo=_quiet))
    zs = rows[rows["stage"] == "zero_shot"]
    assert len(zs) == 12 * 5  # 12 cells x 5 languages
    assert set(zs["grid_target"]) == {"nli-0", "nli-1", "nli-2"}
    assert set(zs["intermediate"]) == {"none", "demo_inter"}

    # the same stages are what `xstilts run` computes for one target: nothing new to train
    def boom(*a, **k):
        raise AssertionError("training ran on a finished grid")

    monkeypatch.setattr("xstilts.pipeline.phases.train", boom)  # the training stages
    t = time.perf_counter()
    rc = main(["grid", "run", str(_dump(tmp_path, spec)), "--output-dir", str(out)])
    assert rc == 0 and time.perf_counter() - t < 30
    assert "built 0 stage(s)" in capsys.readouterr().out
    cfg = run_mod.RunConfig(
        name="g",
        model=spec.models[0].config,
        target=spec.targets[0].config,
        intermediate=spec.intermediate,
        seeds=(1,),
        data_dir=str(demo_data),
    )
    again = run_mod.run(cfg, data_dir=demo_data, out_dir=out, echo=_quiet)
    assert len(again) == 2 * 5
    status = status_table(build_graph(spec, out, echo=_quiet))
    assert "demo_inter" in status and "2/2" in status and "done: 26" in status


def _dump(tmp_path: Path, spec) -> Path:
    from xstilts.grid import dump_grid

    path = tmp_path / "grid.yaml"
    path.write_text(dump_grid(spec))
    return path


def test_fixed_intermediate_seed(tiny_model, demo_data, tmp_path):
    inter = {"systems": [["demo_inter"]], "training": TRAIN, "seed": 0}
    spec = parse_grid(_raw(tiny_model, demo_data, intermediate=inter, seeds=[1, 2]))
    out = tmp_path / "out"
    graph, _ = run_grid(spec, out, echo=_quiet)
    assert graph.counts()["intermediate"]["unique"] == 1
    rows = grid_rows(graph)
    assert set(rows.loc[rows["stage"] == "intermediate", "seed"]) == {0}
    zs = rows[rows["stage"] == "zero_shot"]
    assert set(zs["seed"]) == {1, 2} and set(zs["intermediate_seed"]) == {0}
    # target seeds differ, so the two target stages differ
    assert len(set(rows.loc[rows["stage"] == "target", "stage_key"])) == 2


def test_source_language_axis(tiny_model, demo_data, tmp_path, monkeypatch):
    """A target whose training split exists in two languages: one cell per source language,
    the training file recorded in every row."""
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    # a German "training set" for the test (the demo has English training data only)
    shutil.copy(data / "demo-nli" / "test-de.tsv", data / "demo-nli" / "train-de.tsv")
    spec = dataclasses.replace(
        task_base.get_task("demo_nli"),
        name="grid_src_nli",
        splits={"train": ("en", "de"), "dev": ("en",), "test": ("en", "de", "ru")},
        local=(task_base.LocalFormat("tsv", ("demo-nli/{split}-{lang}.tsv",), _read_target),),
    )
    monkeypatch.setitem(task_base._REGISTRY, "grid_src_nli", spec)
    targets = [{"task": "grid_src_nli", "training": TRAIN, "evaluation": {"max_examples": 10}}]
    raw = _raw(
        tiny_model,
        data,
        targets=targets,
        source_languages=["en", "de"],
        intermediate={"systems": [[]], "training": TRAIN},
    )
    graph, _ = run_grid(parse_grid(raw), tmp_path / "out", echo=_quiet)
    zs = grid_rows(graph, kinds=("zero_shot",))
    assert set(zs["source_language"]) == {"en", "de"}
    sources = zs.groupby("source_language")["protocol"].first().map(lambda p: p["train_source"])
    assert sources.to_dict() == {"de": "grid_src_nli/train/de", "en": "grid_src_nli/train/en"}
    with pytest.raises(Exception, match="no 'fr' data"):
        parse_grid({**raw, "source_languages": ["fr"]})


def test_delete_checkpoints_then_rebuild_when_needed_again(tiny_model, demo_data, tmp_path):
    out = tmp_path / "out"
    raw = _raw(tiny_model, demo_data, execution={"delete_checkpoints": True})
    graph, stats = run_grid(parse_grid(raw), out, echo=_quiet)
    assert stats.freed_bytes > 0
    inter = next(n for n in graph.nodes.values() if n.kind == "intermediate")
    targets = [n for n in graph.nodes.values() if n.kind == "target"]
    for node in [inter, *targets]:
        assert checkpoints_deleted(node.stage) and not checkpoint_dirs(node.stage)
        assert (node.stage.dir / "rows.jsonl").is_file() and node.stage.done
    zs = next(n for n in graph.nodes.values() if n.kind == "zero_shot")
    assert list((zs.stage.dir / "predictions").glob("*.jsonl"))
    before = _key(grid_rows(graph, kinds=("intermediate",)))

    # a new target reads the intermediate checkpoint again: it is rebuilt, identically
    raw["targets"] = [*raw["targets"], {"name": "lr2", "task": "demo_nli",
                                        "training": {**TRAIN, "lr": 2e-3}}]  # fmt: skip
    raw["execution"] = {"delete_checkpoints": False}
    spec = parse_grid(raw)
    graph2 = build_graph(spec, out, echo=_quiet)
    assert inter.id in graph2.todo()
    assert "[rebuild]" in plan_text(graph2)
    _, stats2 = run_grid(spec, out, echo=_quiet, graph=graph2)
    assert inter.id in stats2.built and not checkpoints_deleted(inter.stage)
    assert checkpoint_dirs(inter.stage)
    pd.testing.assert_frame_equal(_key(grid_rows(graph2, kinds=("intermediate",))), before)


def test_failed_stage_is_recorded_and_blocks_only_its_dependents(
    tiny_model, demo_data, tmp_path, monkeypatch
):
    real = run_mod.intermediate_job

    def broken(*args, **kwargs):
        job = real(*args, **kwargs)

        def work(tmp):
            raise RuntimeError("out of memory")

        return dataclasses.replace(job, work=work)

    monkeypatch.setattr("xstilts.grid.graph.intermediate_job", broken)
    spec = with_execution(parse_grid(_raw(tiny_model, demo_data)), executor="local")
    out = tmp_path / "out"
    from xstilts.grid.worker import prepare, work_loop

    graph = build_graph(spec, out, echo=_quiet)
    prepare(graph)
    stats = work_loop(graph, echo=_quiet, stop_on_error=False)
    failed = next(n for n in graph.nodes.values() if n.kind == "intermediate")
    assert list(stats.failed) == [failed.id] and "out of memory" in stats.failed[failed.id]
    record = json.loads((out / "stages" / ".failed" / f"{failed.id}.json").read_text())
    assert "RuntimeError" in "".join(record["traceback"])
    # the baseline cell finished; the cell after the failed intermediate did not start
    (tgt,) = failed.dependents
    assert len(stats.built) == 2  # the baseline's target and zero-shot stages
    assert set(graph.todo()) == {failed.id, tgt, *graph.nodes[tgt].dependents}
    assert not list((out / "stages").glob(".tmp-*"))


@pytest.fixture(scope="module")
def small_reference(tiny_model, demo_data, tmp_path_factory):
    """One uninterrupted local run of the small grid, to compare other executors with."""
    n = torch.get_num_threads()
    out = tmp_path_factory.mktemp("grid-ref")
    graph, _ = run_grid(parse_grid(_raw(tiny_model, demo_data)), out, echo=_quiet)
    torch.set_num_threads(n)
    return _key(grid_rows(graph))


def test_processes_executor(tiny_model, demo_data, tmp_path, small_reference):
    raw = _raw(tiny_model, demo_data, seeds=[1], execution={"executor": "processes", "workers": 2})
    spec = parse_grid(raw)
    graph, stats = run_grid(spec, tmp_path / "out", echo=_quiet)
    assert sorted(stats.built) == sorted(graph.nodes) and not stats.failed  # each once
    pd.testing.assert_frame_equal(_key(grid_rows(graph)), small_reference)


def test_processes_executor_recycles_workers_above_their_memory_limit(
    tiny_model, demo_data, tmp_path, small_reference, capfd
):
    # a limit every process is above: each worker leaves after one stage and a fresh one
    # takes its slot; every stage is still built exactly once, with the same results
    execution = {"executor": "processes", "workers": 2, "worker_max_rss_gb": 0.001}
    spec = parse_grid(_raw(tiny_model, demo_data, seeds=[1], execution=execution))
    graph, stats = run_grid(spec, tmp_path / "out", echo=_quiet)
    assert sorted(stats.built) == sorted(graph.nodes) and not stats.failed
    assert not stats.recycle
    pd.testing.assert_frame_equal(_key(grid_rows(graph)), small_reference)
    out = capfd.readouterr().out
    assert out.count("leaving to be replaced by a fresh worker") == len(graph.nodes)
    assert re.search(r"\[mem \] resident \d+\.\d\d GiB after .*\(peak so far \d+\.\d\d GiB\)", out)


# Loaded by every Python process started with its folder on PYTHONPATH (the spawned workers):
# the first stage any worker begins kills that worker outright, as the OOM killer would.
_KILL_FIRST_STAGE = """
import os, signal
import xstilts.grid.worker as worker

_build = worker.build_node

def build_node(*args, **kwargs):
    try:  # O_EXCL: exactly one worker of the run wins the marker and dies
        os.close(os.open(os.environ["XSTILTS_TEST_KILL_MARKER"], os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return _build(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

worker.build_node = build_node
"""


def test_processes_executor_replaces_a_killed_worker(
    tiny_model, demo_data, tmp_path, small_reference, capfd, monkeypatch
):
    # a worker killed while it holds a claim: a fresh process takes its slot, the stale claim
    # is taken over, and every stage is still built once with the reference results
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_KILL_FIRST_STAGE)
    monkeypatch.setenv("PYTHONPATH", str(hook))
    monkeypatch.setenv("XSTILTS_TEST_KILL_MARKER", str(tmp_path / "killed"))
    # stale after 5 s: long enough that a live worker starved of CPU on a loaded machine (its
    # heartbeat thread not scheduled for a second or two) is not taken for dead, short enough
    # that the killed worker's claim is taken over quickly
    execution = {"executor": "processes", "workers": 2, "heartbeat_s": 0.2, "stale_after_s": 5}
    spec = parse_grid(_raw(tiny_model, demo_data, seeds=[1], execution=execution))
    graph, stats = run_grid(spec, tmp_path / "out", echo=print)
    assert (tmp_path / "killed").exists()  # the hook did kill a worker
    assert sorted(stats.built) == sorted(graph.nodes) and not stats.failed
    pd.testing.assert_frame_equal(_key(grid_rows(graph)), small_reference)
    out = capfd.readouterr().out
    assert re.search(r"worker w[01] exited with code -9: starting a fresh one", out)


def test_worker_memory_helpers():
    from xstilts.grid.worker import release_memory, rss_bytes

    before = rss_bytes()
    assert before is None or before > 0
    blob = bytearray(64 * 2**20)  # touched pages count as resident
    blob[::4096] = b"x" * len(blob[::4096])
    del blob
    after = release_memory()
    assert after is None or 0 < after < before + 32 * 2**20


def test_slurm_executor_through_submitit_local(tiny_model, demo_data, tmp_path, small_reference):
    pytest.importorskip("submitit")
    slurm = {"cluster": "local", "max_jobs": 2, "cpus_per_task": 1, "timeout_min": 10,
             "partition": "does-not-matter-locally"}  # fmt: skip
    raw = _raw(
        tiny_model,
        demo_data,
        execution={"executor": "slurm", "poll_s": 0.2, "slurm": slurm},
    )
    graph, stats = run_grid(parse_grid(raw), tmp_path / "out", echo=_quiet)
    assert not stats.failed and sorted(stats.built) == sorted(graph.nodes)
    logs = list((tmp_path / "out" / "grid-logs" / "g").rglob("*_log.out"))
    assert len(logs) == len(graph.nodes)  # one job per stage
    pd.testing.assert_frame_equal(_key(grid_rows(graph)), small_reference)


def test_ray_executor(tiny_model, demo_data, tmp_path, small_reference):
    pytest.importorskip("ray", reason="ray is an optional extra (pip install 'xstilts[ray]')")
    ray = {"init_num_cpus": 2, "num_cpus": 1, "max_tasks": 2}
    raw = _raw(tiny_model, demo_data, execution={"executor": "ray", "poll_s": 0.2, "ray": ray})
    graph, stats = run_grid(parse_grid(raw), tmp_path / "out", echo=_quiet)
    assert not stats.failed and sorted(stats.built) == sorted(graph.nodes)
    pd.testing.assert_frame_equal(_key(grid_rows(graph)), small_reference)


@pytest.mark.parametrize("mlm", [False, True])
def test_grid_stages_are_the_stages_of_xstilts_run(tiny_model, demo_data, tmp_path, mlm):
    """The grid composes each cell's jobs itself (shared intermediate plan, own seeds); with
    the cell's seed for the intermediate phase it must give ``cell_jobs``' stages exactly,
    shared heads and a masked-LM phase included."""
    inter = {
        "systems": [[], ["demo_inter"], ["demo_inter", "demo_nli"]],
        "training": TRAIN,
        "shared_heads": {"pairs": ["demo_inter"]},
    }
    if mlm:
        corpus = tmp_path / "corpus.txt"
        corpus.write_text("Anna bought 3 red bags in Berlin.\nTom sold 2 cups.\n" * 20)
        inter["mlm"] = {"corpus": str(corpus), "training": {"max_steps": 2, "selection": "last"}}
    raw = _raw(tiny_model, demo_data, intermediate=inter, seeds=[1, 2])
    spec = parse_grid(raw)
    out = tmp_path / "out"
    graph = build_graph(spec, out, echo=_quiet)
    cfg = run_mod.RunConfig(
        name="g",
        model=spec.models[0].config,
        target=spec.targets[0].config,
        intermediate=spec.intermediate,
        seeds=spec.seeds,
        data_dir=str(demo_data),
    )
    plan = run_mod.plan_run(cfg, data_dir=demo_data, out_dir=out)
    expected = {
        job.stage.name
        for seed in cfg.seeds
        for system in cfg.intermediate.systems
        for job in run_mod.cell_jobs(plan, system, seed, _quiet)
    }
    assert set(graph.nodes) == expected
    assert graph.counts()["mlm"]["unique"] == (2 if mlm else 0)


def test_plan_and_status_show_running_and_failed_stages(tiny_model, demo_data, tmp_path):
    from xstilts.grid.worker import record_failure
    from xstilts.pipeline.stages import HOST, try_claim

    spec = parse_grid(_raw(tiny_model, demo_data))
    out = tmp_path / "out"
    graph = build_graph(spec, out, echo=_quiet)
    first, inter = (
        graph.nodes[graph.todo()[0]],
        next(n for n in graph.nodes.values() if n.kind == "intermediate"),
    )
    claim = try_claim(first.stage, spec.execution.claims)
    record_failure(out, inter, RuntimeError("disk full"))
    try:
        text = plan_text(graph)
        assert f"[running ({HOST}:" in text and "[failed] intermediate demo_inter" in text
        status = status_table(graph)
        assert "running (" in status and "failed" in status
    finally:
        claim.release()
    assert "[ready]" in plan_text(graph)


def test_grid_scores_also_evaluate_tasks_with_the_target_model(tiny_model, demo_data, tmp_path):
    """A grid target's ``also_evaluate`` (MLQA scored by the XQuAD model, here XNLI files by the
    demo NLI model) becomes one more zero-shot stage per cell, reading the same target stage."""
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    (data / "xtreme-xnli").mkdir()
    for lang in ("en", "de"):
        shutil.copy(data / "demo-nli" / f"test-{lang}.tsv", data / f"xtreme-xnli/test-{lang}.tsv")
    target = {
        "task": "demo_nli",
        "training": TRAIN,
        "evaluation": {"max_examples": 10, "languages": ["en", "ru"]},
        "also_evaluate": {"xnli": {"split": "test", "languages": ["en", "de"], "max_examples": 10}},
    }
    spec = parse_grid(_raw(tiny_model, data, targets=[target]))
    out = tmp_path / "out"
    graph = build_graph(spec, out, echo=_quiet)
    kinds = [graph.nodes[n].kind for n in graph.nodes]
    assert kinds.count("zero_shot") == 4 and kinds.count("target") == 2  # 2 systems x 2 tasks
    assert sorted(graph.n_languages.values()) == [2, 2, 2, 2]
    graph, _ = run_grid(spec, out, graph=graph, echo=_quiet)
    rows = grid_rows(graph, kinds=("zero_shot",))
    assert set(zip(rows["task"], rows["language"])) == {
        ("demo_nli", "en"),
        ("demo_nli", "ru"),
        ("xnli", "en"),
        ("xnli", "de"),
    }
    # the demo English test file is the XNLI one: both tasks score the same model the same
    en = rows[rows["language"] == "en"].groupby(["intermediate", "task"])["value"].first()
    for system in ("none", "demo_inter"):
        assert en[(system, "xnli")] == pytest.approx(en[(system, "demo_nli")])
