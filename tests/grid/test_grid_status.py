"""``xstilts grid status``: running stages with heartbeat age, failures, an ETA from measured
stage times, ``--watch`` refreshes, the self-contained ``--html`` page (screenshotted with
headless Chromium when installed), and tracking settings in grid files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

# the grid builders and the torch-threads guard of the grid tests (one definition)
from _configs import grid_raw as _raw
from _configs import quiet as _quiet

from xstilts.cli import main
from xstilts.config import TrackingBackend
from xstilts.errors import ConfigError
from xstilts.grid import build_graph, dump_grid, run_grid
from xstilts.grid.spec import parse_grid
from xstilts.grid.status import snapshot, status_html, status_text, watch
from xstilts.grid.worker import record_failure
from xstilts.pipeline.stages import HOST, try_claim

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def half_done(tiny_model, demo_data, tmp_path_factory):
    """A grid whose seed 1 is built and whose seed 2 is not (5 of 10 stages left)."""
    out = tmp_path_factory.mktemp("status") / "out"
    run_grid(parse_grid(_raw(tiny_model, demo_data)), out, echo=_quiet)
    spec = parse_grid(_raw(tiny_model, demo_data, seeds=[1, 2]))
    return spec, out


def test_running_failed_and_eta_from_measured_stage_times(half_done):
    spec, out = half_done
    graph = build_graph(spec, out, echo=_quiet)
    todo = graph.todo()
    assert len(todo) == 5  # seed 2: intermediate, 2 targets, 2 evaluations
    inter = next(n for n in todo if n.startswith("intermediate-"))
    base_target = next(
        n for n in todo if n.startswith("target-") and not graph.nodes[n].deps
    )  # the baseline's target (reads no intermediate)
    claim = try_claim(graph.nodes[inter].stage, spec.execution.claims)
    record_failure(out, graph.nodes[base_target], RuntimeError("disk full"))
    try:
        snap = snapshot(graph)
        text = status_text(snap)
    finally:
        claim.release()
        (out / "stages" / ".failed" / f"{base_target}.json").unlink()
    st = snap.states
    assert st[inter].state == "running" and st[inter].owner.startswith(f"{HOST}:")
    assert 0 <= st[inter].beat_age_s < 60 and not st[inter].late
    assert st[base_target].state == "failed" and st[base_target].error == "RuntimeError: disk full"
    assert f"running: intermediate demo_inter seed=2 ({inter}) ({HOST}:" in text
    assert (
        f"failed:  target demo_nli after none seed=2 [target=demo_nli source=en] ({base_target}):"
        " RuntimeError: disk full"
    ) in text
    assert "done: 5" in text and "running: 1" in text and "failed: 1" in text

    # ETA: per kind, the mean measured wall seconds of finished stages times the stages left
    # (the failed stage and the evaluation reading it are not counted), over 1 running stage
    def mean(kind: str) -> float:
        walls = [
            json.loads((graph.nodes[n].stage.dir / "stage.json").read_text())["wall_s"]
            for n in graph.nodes
            if n not in todo and graph.nodes[n].kind == kind
        ]
        return sum(walls) / len(walls)

    # left: the running intermediate, its target and evaluation
    want = mean("intermediate") + mean("target") + mean("zero_shot")
    assert snap.eta_s == pytest.approx(want)
    assert "1 intermediate x" in snap.eta_note and "1 zero-shot x" in snap.eta_note
    # the baseline cell scored seed 1 only so far: its score is that stage's mean
    none_row = next(g for g in snap.groups if g["intermediate"] == "none")
    assert none_row["done"]["target"] == (1, 2) and none_row["score"] is not None


def test_eta_unknown_before_a_stage_of_each_kind_finished(tiny_model, demo_data, tmp_path):
    spec = parse_grid(_raw(tiny_model, demo_data))
    snap = snapshot(build_graph(spec, tmp_path / "empty", echo=_quiet))
    assert snap.eta_s is None and "unknown until a intermediate, target, zero-shot" in snap.eta_note
    assert set(s.state for s in snap.states.values()) == {"ready", "waiting"}


def test_watch_refreshes_and_writes_the_page_atomically(half_done, tmp_path):
    spec, out = half_done
    graph = build_graph(spec, out, echo=_quiet)
    printed, slept = [], []
    page = tmp_path / "status.html"
    watch(graph, 5.0, html_path=page, echo=printed.append, sleep=slept.append, rounds=3)
    assert len(printed) == 3 and slept == [5.0, 5.0]
    assert all("stages: done: 5" in p for p in printed)
    text = page.read_text()
    assert '<meta http-equiv="refresh" content="5">' in text
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left beside it
    # one pass without --watch; a finished grid stops the watch by itself
    done_graph = build_graph(parse_grid(_raw(spec_model(spec), Path(spec.data_dir))), out, echo=_quiet)  # fmt: skip
    printed.clear()
    snap = watch(done_graph, 5.0, echo=printed.append, sleep=slept.append)
    assert len(printed) == 1 and snap.eta_s == 0 and "ETA: done" in printed[0]


def spec_model(spec) -> Path:
    return Path(spec.models[0].config.name_or_path)


def test_html_page_is_self_contained_and_renders(half_done, tmp_path):
    spec, out = half_done
    graph = build_graph(spec, out, echo=_quiet)
    html = status_html(snapshot(graph))
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "grid g" in html and "5/10 stages done" in html
    assert "Zero-shot scores so far" in html and ">avg<" in html and "demo_inter" in html
    page = tmp_path / "status.html"
    page.write_text(html)
    if not CHROMIUM.is_file():
        pytest.skip("no /usr/bin/chromium: the page was checked as text only")
    png = tmp_path / "status.png"
    proc = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
         "--window-size=1100,900", page.as_uri()],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert png.is_file(), proc.stderr.decode(errors="replace")[-2000:]
    from PIL import Image

    img = Image.open(png).convert("L")
    assert img.size == (1100, 900)
    # rendered content, not a blank page: many distinct grey levels and dark text pixels
    hist = img.histogram()
    assert sum(1 for h in hist if h) > 20 and sum(hist[:100]) > 500
    keep = os.environ.get("XSTILTS_KEEP_SCREENSHOT")
    if keep:  # for a look by hand
        shutil.copy(png, keep)


def test_cli_status_html_and_watch_argument(half_done, tmp_path, capsys):
    spec, out = half_done
    grid = tmp_path / "grid.yaml"
    grid.write_text(dump_grid(spec))
    page = tmp_path / "page.html"
    assert main(["grid", "status", str(grid), "--output-dir", str(out), "--html", str(page)]) == 0
    got = capsys.readouterr().out
    assert "ETA: ~" in got and f"status page: {page}" in got and page.is_file()
    with pytest.raises(SystemExit) as e:
        main(["grid", "status", str(grid), "--watch", "0"])
    assert e.value.code == 2


def test_grid_files_carry_tracking_and_it_enters_no_stage_key(tiny_model, demo_data, tmp_path):
    plain = parse_grid(_raw(tiny_model, demo_data))
    tracked = parse_grid(
        _raw(tiny_model, demo_data, tracking=["mlflow", "wandb"], tracking_uri="http://x:5000")
    )
    assert tracked.tracking == (TrackingBackend.MLFLOW, TrackingBackend.WANDB)
    # every cell's run config carries it, and the resolved grid file reads back the same
    assert parse_grid(__import__("yaml").safe_load(dump_grid(tracked))) == tracked
    g1 = build_graph(plain, tmp_path / "o", echo=_quiet)
    g2 = build_graph(tracked, tmp_path / "o", echo=_quiet)
    assert list(g1.nodes) == list(g2.nodes)
    node = next(iter(g2.nodes.values()))
    assert node.job.stage.key == next(iter(g1.nodes.values())).job.stage.key
    with pytest.raises(ConfigError, match=r"'tracking\[0\]': 'tensorbored' is not one of"):
        parse_grid(_raw(tiny_model, demo_data, tracking=["tensorbored"]))
