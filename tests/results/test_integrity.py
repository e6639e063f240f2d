"""Damaged finished stages are caught, never silently reused; every failure is one line.

One tiny run (intermediate -> target -> zero-shot) is built once; each test damages a copy of
it the way disks and people do (bytes overwritten, a file truncated or deleted, stage.json
cut short) and checks what ``xstilts run``, ``xstilts run --verify`` and ``xstilts verify`` say.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
import shutil
from pathlib import Path

import pytest
from _configs import one_line, rerun, stage_dir, write_config

from xstilts.cli import main
from xstilts.pipeline.stages import Stage, build_stage
from xstilts.results import integrity
from xstilts.results.store import atomic_write_text


@pytest.fixture(scope="module")
def base(tiny_model, demo_data, tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("integrity-base")
    cfg = write_config(tmp / "cfg.yaml", tiny_model, demo_data)
    assert main(["run", str(cfg), "--output-dir", str(tmp / "run")]) == 0
    return cfg, tmp / "run"


@pytest.fixture()
def run_copy(base, tmp_path) -> tuple[Path, Path]:
    cfg, run = base
    shutil.copytree(run, tmp_path / "run")
    return cfg, tmp_path / "run"


def test_every_published_file_is_recorded_and_verify_is_clean(base, capsys):
    _, run = base
    for d in (run / "stages").iterdir():
        if d.name.startswith("."):
            continue
        files = json.loads((d / "stage.json").read_text())["integrity"]["files"]
        on_disk = {
            p.relative_to(d).as_posix()
            for p in d.rglob("*")
            if p.is_file() and p.name != "stage.json"
        }
        assert set(files) == on_disk
        for rel, meta in files.items():
            assert meta["size"] == (d / rel).stat().st_size
            assert meta["sha256"] == integrity.file_hash(d / rel)
    zs = json.loads((stage_dir(run, "zero_shot") / "stage.json").read_text())["integrity"]
    assert {"rows.jsonl", "predictions/demo_nli.test.de.jsonl"} <= set(zs["files"])
    assert main(["verify", str(run)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "3 stage(s) OK" in out[0]


def test_overwritten_bytes_in_a_parent_checkpoint(run_copy, capsys):
    cfg, run = run_copy
    inter = stage_dir(run, "intermediate")
    for f in inter.glob("*/model.safetensors"):  # 4 KB overwritten in place: same size
        with open(f, "r+b") as fh:
            fh.seek(f.stat().st_size // 2)
            fh.write(os.urandom(4096))
    # a plain re-run reuses every stage and loads no checkpoint: sizes are checked (and fine)
    assert rerun(cfg, run) == 0
    capsys.readouterr()
    # --verify hashes every reused file
    assert rerun(cfg, run, "--verify") == 2
    line = one_line(capsys.readouterr().err, str(inter), "model.safetensors", "sha256")
    assert f"remove {inter} (or move it aside) and run again: xstilts run" in line
    # a new target trains on the checkpoint: it is hashed before it is loaded
    n_targets = len(list((run / "stages").glob("target-*")))
    assert rerun(cfg, run, "target.training.lr=0.002") == 2
    one_line(capsys.readouterr().err, str(inter), "model.safetensors", "differs")
    assert len(list((run / "stages").glob("target-*"))) == n_targets
    assert not list((run / "stages").glob(".tmp-*"))
    assert not [p for p in (run / "stages" / ".claims").iterdir()]
    # xstilts verify: one line per problem, then the summary; exit 2
    assert main(["verify", str(run)]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert all("model.safetensors: content differs" in x for x in out[:-1]) and len(out) >= 2
    assert "problem(s) in 1 of 3 stage(s)" in out[-1]
    assert inter.is_dir()  # never deleted by us


def test_truncated_checkpoint_is_caught_on_reuse(run_copy, capsys):
    cfg, run = run_copy
    f = stage_dir(run, "target") / "last" / "model.safetensors"
    os.truncate(f, f.stat().st_size // 2)
    assert rerun(cfg, run) == 2
    one_line(capsys.readouterr().err, str(f), "bytes", "when published")


@pytest.mark.parametrize("text,why", [('{"kind": "targ', "not valid JSON"), ("{}", "no stage")])
def test_truncated_or_empty_stage_json(run_copy, capsys, text, why):
    cfg, run = run_copy
    (stage_dir(run, "target") / "stage.json").write_text(text)
    assert rerun(cfg, run) == 2
    one_line(capsys.readouterr().err, "stage.json", why)
    assert main(["verify", str(run)]) == 2
    assert why in capsys.readouterr().out


def test_missing_rows_are_an_error_not_a_missing_system(run_copy, capsys):
    cfg, run = run_copy
    rows = stage_dir(run, "zero_shot") / "rows.jsonl"
    rows.unlink()
    assert rerun(cfg, run) == 2
    one_line(capsys.readouterr().err, str(rows), "missing")


def test_stages_of_earlier_versions_are_reused_with_one_warning(run_copy, capsys, caplog):
    cfg, run = run_copy
    for f in (run / "stages").glob("*/stage.json"):
        record = json.loads(f.read_text())
        del record["integrity"]
        f.write_text(json.dumps(record))
    integrity._legacy_seen.clear()
    with caplog.at_level(logging.WARNING, logger="xstilts.results.integrity"):
        assert rerun(cfg, run) == 0
    warnings = [r for r in caplog.records if "reused unverified" in r.getMessage()]
    assert len(warnings) == 1  # once, not per stage or file
    capsys.readouterr()
    assert main(["verify", str(run)]) == 0
    assert "3 stage(s) from before integrity records" in capsys.readouterr().out
    # without a record, a corrupt checkpoint is still one line when loaded
    f = stage_dir(run, "intermediate") / "best" / "model.safetensors"
    f.write_bytes(b"\xff" * 64)
    assert rerun(cfg, run, "target.training.lr=0.002") == 2
    one_line(capsys.readouterr().err, "best/model.safetensors", "not a valid safetensors file")


def test_missing_model_path_leaves_nothing_behind(demo_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "cfg.yaml", tmp_path / "no-such-model", demo_data)
    assert rerun(cfg, tmp_path / "run") == 2
    one_line(capsys.readouterr().err, "no-such-model", "cannot load")
    assert not (tmp_path / "run").exists()


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_weights_are_refused_in_one_line(tiny_model, demo_data, tmp_path, capsys):
    model = tmp_path / "evil-model"
    shutil.copytree(tiny_model, model)
    (model / "model.safetensors").unlink()
    marker = tmp_path / "PWNED"
    with open(model / "pytorch_model.bin", "wb") as f:
        pickle.dump({"weight": _Payload(str(marker))}, f)
    cfg = write_config(tmp_path / "cfg.yaml", model, demo_data)
    assert rerun(cfg, tmp_path / "run") == 2
    one_line(capsys.readouterr().err, "pytorch_model.bin", "refuses to unpickle")
    assert not marker.exists()
    assert not list((tmp_path / "run" / "stages").glob(".tmp-*"))


def test_full_disk_while_building_a_stage_names_the_place(tmp_path):
    stage = Stage("target", "0123456789abcdef", {}, tmp_path)

    def work(tmp: Path) -> dict:
        (tmp / "part").write_text("x")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # f.write(): no file name

    with pytest.raises(OSError) as e:
        build_stage(stage, work, None)
    assert e.value.errno == errno.ENOSPC and ".tmp-target-0123456789abcdef" in e.value.filename
    assert not list((tmp_path / "stages").iterdir())  # nothing half-written is left


def test_atomic_write_names_the_file_on_a_full_disk(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as e:
        atomic_write_text(tmp_path / "rows.jsonl", "{}\n")
    assert e.value.filename == str(tmp_path / "rows.jsonl")
    assert not list(tmp_path.iterdir())


def test_an_internal_error_is_one_line_and_its_traceback_under_v(tmp_path, capsys, monkeypatch):
    def bug(root):
        raise RuntimeError("a bug\nsecond line")

    monkeypatch.setattr(integrity, "verify_tree", bug)
    assert main(["verify", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "xstilts: internal error: RuntimeError: a bug (run with -v for the traceback)"
    assert main(["-v", "verify", str(tmp_path)]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_verify_reports_a_stage_directory_without_record_and_bad_rows(base, tmp_path, capsys):
    _, run = base
    shutil.copytree(run, tmp_path / "run")
    run = tmp_path / "run"
    (run / "stages" / "target-feedfeedfeedfeed").mkdir()
    rows = stage_dir(run, "intermediate") / "rows.jsonl"
    data = rows.read_bytes()
    rows.write_bytes(data[: len(data) // 2] + b"X" * (len(data) - len(data) // 2))  # same size
    assert main(["verify", str(run)]) == 2
    out = capsys.readouterr().out
    assert "target-feedfeedfeedfeed/stage.json: missing" in out
    assert "rows.jsonl: content differs" in out and "rows.jsonl: line" in out
