"""Commands that write a directory or file never overwrite or delete what they did not write.

``export --output``, ``score --output``, ``report --output-dir`` and ``run --output-dir`` accept
a new, empty or own earlier destination and refuse anything else with one line (exit 2) before
any work; a failing export (a full disk, a read-only directory) leaves the earlier export whole.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from _export import RECORDS
from _export import write_stage as _stage

from xstilts.cli import main
from xstilts.results.xtreme_layout import LAYOUT, MANIFEST, WRITTEN_BY, export_xtreme

XNLI = {("xnli", "test", "de"): RECORDS[("xnli", "test", "de")]}


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xstilts: error:"), err
    for n in needles:
        assert n in lines[0], (n, err)


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    root = tmp_path / "run"
    _stage(root, "a", XNLI)
    (root / "config.yaml").write_text("name: r\n")
    return root


def test_export_into_the_run_directory_itself_is_refused(run_dir, capsys):
    before = _tree(run_dir)
    assert main(["export", str(run_dir), "--output", str(run_dir)]) == 2
    _one_line_error(capsys.readouterr().err, "contains the results directory")
    assert _tree(run_dir) == before  # nothing removed, nothing written
    # a folder above the run directory contains it too
    assert main(["export", str(run_dir), "--output", str(run_dir.parent)]) == 2
    # inside stages/ is refused as well
    assert main(["export", str(run_dir), "--output", str(run_dir / "stages" / "x")]) == 2
    assert _tree(run_dir) == before and not (run_dir / "stages" / "x").exists()


def test_foreign_directory_is_refused_before_any_work_and_kept(tmp_path, capsys):
    empty_run = tmp_path / "empty-run"
    empty_run.mkdir()
    imp = tmp_path / "imp"
    imp.mkdir()
    (imp / "thesis.tex").write_text("x\n")
    # checked before looking for stages: the destination error, not "no finished stage"
    assert main(["export", str(empty_run), "--output", str(imp)]) == 2
    _one_line_error(capsys.readouterr().err, "not an earlier export", str(imp))
    assert _tree(imp) == {"thesis.tex": b"x\n"}
    # a run with stages: refused all the same
    _stage(tmp_path / "run", "a", XNLI)
    assert main(["export", str(tmp_path / "run"), "--output", str(imp)]) == 2
    assert _tree(imp) == {"thesis.tex": b"x\n"}
    assert not list(tmp_path.glob(".imp*"))


def test_current_directory_symlink_and_file_are_refused(run_dir, tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["export", str(run_dir), "--output", "."]) == 2
    _one_line_error(capsys.readouterr().err, "the current directory")

    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    assert main(["export", str(run_dir), "--output", str(link)]) == 2
    _one_line_error(capsys.readouterr().err, "symbolic link")
    assert link.is_symlink() and not list(target.iterdir())

    f = tmp_path / "file.txt"
    f.write_text("mine")
    assert main(["export", str(run_dir), "--output", str(f)]) == 2
    _one_line_error(capsys.readouterr().err, "not a directory")
    assert f.read_text() == "mine"


def test_new_empty_and_own_earlier_export_are_written(run_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", str(run_dir), "--output", str(empty)]) == 0
    manifest = json.loads((empty / MANIFEST).read_text())
    assert manifest["written_by"] == WRITTEN_BY
    listed = set(manifest["written"])
    assert listed == set(_tree(empty)) - {MANIFEST}
    assert "org--enc/none/seed0/labels/xnli/test-de.tsv" in listed
    # again into its own export: replaced whole (the directory holds only its files)
    _stage(run_dir, "b", {("xcopa", "test", "et"): RECORDS[("xcopa", "test", "et")]})
    assert main(["export", str(run_dir), "--output", str(empty)]) == 0
    assert "org--enc/none/seed0/predictions/xcopa/test-et.jsonl" in _tree(empty)
    assert not list(tmp_path.glob(".empty*"))


def test_export_of_an_earlier_version_is_recognised(run_dir, tmp_path):
    """Manifests written before ``written_by`` existed: their files follow from the entries."""
    old = tmp_path / "old"
    f = "org--enc/none/seed0/{}/xnli/test-fr.tsv"
    for kind in ("predictions", "labels"):
        (old / f.format(kind)).parent.mkdir(parents=True, exist_ok=True)
        (old / f.format(kind)).write_text("entailment\n")
    entry = {"submission": "org--enc/none/seed0", "task": "xnli", "file": "test-fr.tsv",
             "labels": True}  # fmt: skip
    (old / MANIFEST).write_text(json.dumps({"layout": LAYOUT, "files": [entry], "skipped": []}))
    export_xtreme(run_dir, old)
    assert not (old / f.format("predictions")).exists()  # the old export's own file: replaced
    assert (old / "org--enc/none/seed0/predictions/xnli/test-de.tsv").is_file()


def test_full_disk_during_export_keeps_the_earlier_export(run_dir, capsys, monkeypatch):
    assert main(["export", str(run_dir)]) == 0
    before = _tree(run_dir / "xtreme")
    real = Path.write_text

    def full(self, *a, **k):  # f.write() on a full disk: an OSError without a file name
        if ".xtreme.tmp" in str(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", full)
    assert main(["export", str(run_dir)]) == 2
    _one_line_error(capsys.readouterr().err, "No space left on device", ".xtreme.tmp")
    assert _tree(run_dir / "xtreme") == before
    assert not list(run_dir.glob(".xtreme*"))


def test_two_exports_racing_for_a_new_destination_both_succeed(run_dir, monkeypatch):
    """Two grid workers finishing together both export: the second's rename meets the first's
    new export ("Directory not empty", which once ended a worker with exit 2). It looks at the
    destination again and swaps its own export over the other's."""
    from xstilts.results import xtreme_layout

    real = xtreme_layout._swap_in
    raced = []

    def other_worker_first(new, dest):
        if not raced:  # the other process's whole export lands between our check and rename
            raced.append(True)
            with monkeypatch.context() as other:  # another process: its own temporary names
                other.setattr(xtreme_layout, "_swap_in", real)
                other.setattr(os, "getpid", lambda: 1)
                export_xtreme(run_dir)
        return real(new, dest)

    monkeypatch.setattr(xtreme_layout, "_swap_in", other_worker_first)
    _stage(run_dir, "b", {("xcopa", "test", "et"): RECORDS[("xcopa", "test", "et")]})
    report = export_xtreme(run_dir)
    assert raced and report.out == run_dir / "xtreme"
    manifest = json.loads((run_dir / "xtreme" / MANIFEST).read_text())
    assert set(manifest["written"]) == set(_tree(run_dir / "xtreme")) - {MANIFEST}
    assert "org--enc/none/seed0/predictions/xcopa/test-et.jsonl" in manifest["written"]
    assert not list(run_dir.glob(".xtreme*"))  # no temporary or old tree left behind


def test_read_only_destination_is_one_line(run_dir, tmp_path, capsys, monkeypatch):
    # the tests run as root, where chmod does not stop a write: the refusal is simulated
    real = os.replace

    def read_only(src, dst, *a, **k):
        if "ro-out" in str(dst):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(src), None, str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", read_only)
    assert main(["export", str(run_dir), "--output", str(tmp_path / "ro-out")]) == 2
    _one_line_error(capsys.readouterr().err, "Read-only file system", "ro-out")
    assert not (tmp_path / "ro-out").exists() and not list(tmp_path.glob(".ro-out*"))

    def forbidden(self, *a, **k):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "mkdir", forbidden)
    assert main(["export", str(run_dir), "--output", str(tmp_path / "new" / "out")]) == 2
    _one_line_error(capsys.readouterr().err, "Permission denied", "new")


def test_user_files_beside_an_export_survive_a_re_export(run_dir):
    export_xtreme(run_dir)
    notes = run_dir / "xtreme" / "NOTES.md"
    notes.write_text("mine")
    extra = run_dir / "xtreme" / "org--enc" / "none" / "seed0" / "mine.txt"
    extra.write_text("mine too")
    export_xtreme(run_dir)
    assert notes.read_text() == "mine" and extra.read_text() == "mine too"
    manifest = json.loads((run_dir / "xtreme" / MANIFEST).read_text())
    assert "NOTES.md" not in manifest["written"]


def test_score_output_is_never_another_file(tmp_path, capsys):
    thesis = tmp_path / "thesis.tex"
    thesis.write_text("\\documentclass{article}\n")
    args = ["score", "--predictions", str(tmp_path / "p"), "--labels", str(tmp_path / "l")]
    assert main([*args, "--output", str(thesis)]) == 2
    _one_line_error(capsys.readouterr().err, "not an earlier score file")
    assert thesis.read_text() == "\\documentclass{article}\n"
    assert main([*args, "--output", str(tmp_path)]) == 2
    _one_line_error(capsys.readouterr().err, "is a directory")
    earlier = tmp_path / "scores.json"
    earlier.write_text('{"xnli": {}}')
    # an earlier score file passes the check (then the missing folders are the error)
    assert main([*args, "--output", str(earlier)]) == 2
    assert "predictions folder not found" in capsys.readouterr().err


def test_report_and_run_output_dirs_refuse_foreign_directories(tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "report.md").write_text("my own report")
    assert main(["report", str(tmp_path / "absent.csv"), "--output-dir", str(foreign)]) == 2
    _one_line_error(capsys.readouterr().err, "not an earlier xstilts report")
    assert (foreign / "report.md").read_text() == "my own report"
    # an earlier xstilts report (its generator mark) passes the check
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "report.html").write_text(
        '<!DOCTYPE html>\n<html><head><meta name="generator" content="xstilts report">'
    )
    assert main(["report", str(tmp_path / "absent.csv"), "--output-dir", str(ours)]) == 2
    assert "not an earlier xstilts report" not in capsys.readouterr().err

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("name: t\nmodel: {name_or_path: /nowhere}\ntarget: {task: demo_nli}\n")
    assert main(["run", str(cfg), "--output-dir", str(foreign), "--data-dir", str(tmp_path)]) == 2
    _one_line_error(capsys.readouterr().err, "not an xstilts run directory")
    assert sorted(p.name for p in foreign.iterdir()) == ["report.md"]
