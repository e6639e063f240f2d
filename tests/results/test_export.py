"""xstilts export: zero-shot prediction records -> google-research/xtreme's folder layout.

Synthetic stage directories hold hand-made records for every scored task; the expected numbers
are derived by hand in the comments and recomputed by ``xstilts score`` from the exported files.
"""

from __future__ import annotations

import json

import pytest
from _export import RECORDS
from _export import write_stage as _stage

from xstilts.cli import main
from xstilts.errors import DataError
from xstilts.results.score import PARTIAL_KEY, score_folders
from xstilts.results.xtreme_layout import export_xtreme


def test_every_task_exported_and_rescored_by_hand(tmp_path):
    for i, (key, recs) in enumerate(RECORDS.items()):
        _stage(tmp_path, f"k{i}", {key: recs}, target=key[0])
    report = export_xtreme(tmp_path)
    sub = tmp_path / "xtreme" / "org--enc" / "none" / "seed0"
    assert report.submissions == ["org--enc/none/seed0"]
    assert {s["task"] for s in report.skipped} == {"lareqa"}
    files = {(f["task"], f["language"]): f for f in report.files}
    assert (
        files[("panx", "de")]["split"] == "dev" and files[("panx", "de")]["file"] == "test-de.tsv"
    )
    assert (
        not files[("tydiqa", "sw")]["labels"]
        and (sub / "predictions/tydiqa/test-sw.json").is_file()
    )
    assert not (sub / "labels/tydiqa").exists()

    # the file formats evaluate.py reads
    assert (sub / "predictions/panx/test-de.tsv").read_text() == "B-PER\nI-PER\nO\n\nO\n\n"
    assert (sub / "labels/xcopa/test-et.jsonl").read_text().splitlines()[0] == '{"label": 1}'
    assert (sub / "predictions/tatoeba/test-fr.tsv").read_text() == "0\n2\n2\n"
    assert (sub / "labels/bucc2018/test-de.tsv").read_text() == "de-1\ten-1\nde-3\ten-3\n"
    assert (sub / "predictions/bucc2018/test-de.tsv").read_text() == "de-1\ten-1\nde-2\ten-2\n"
    assert len(json.loads((sub / "predictions/mewslix/test-es.json").read_text())["m2"]) == 20
    assert json.loads((sub / "predictions/xquad/test-de.json").read_text()) == {
        "q1": "Paris",
        "q2": "the cat",
    }

    with pytest.raises(DataError, match=r"test-\w+\.\w+: missing"):
        score_folders(sub / "predictions", sub / "labels", "xtreme-r")
    scores = score_folders(sub / "predictions", sub / "labels", "xtreme", partial=True)
    got = {
        "xnli": scores["xnli"]["accuracy"]["de"],
        "panx": scores["panx"]["f1"]["de"],
        "udpos": scores["udpos"]["f1"]["fr"],
        "tatoeba": scores["tatoeba"]["accuracy"]["fr"],
        "bucc2018": scores["bucc2018"]["f1"]["de"],
        "xquad_em": scores["xquad"]["exact_match"]["de"],
        "xquad_f1": scores["xquad"]["f1"]["de"],
        "mlqa_em": scores["mlqa"]["exact_match"]["de"],
    }
    want = {"xnli": 50.0, "panx": 200 / 3, "udpos": 0.0, "tatoeba": 200 / 3, "bucc2018": 50.0,
            "xquad_em": 50.0, "xquad_f1": 50.0, "mlqa_em": 100.0}  # fmt: skip
    assert got == pytest.approx(want)
    r = score_folders(sub / "predictions", sub / "labels", "xtreme-r", partial=True)
    assert r["xcopa"]["accuracy"]["et"] == pytest.approx(200 / 3)
    assert r["mewslix"]["map@20"]["es"] == pytest.approx(75.0)
    # partial tasks are listed and never enter a group or overall average
    assert set(r[PARTIAL_KEY]) >= {"xnli", "xcopa", "panx", "udpos"}
    assert not {"classification", "tagging", "qa", "xstilts_xtreme_r_average"} & set(r)


def test_clash_splits_submission_and_reexport_replaces(tmp_path):
    recs = {("xnli", "test", "de"): RECORDS[("xnli", "test", "de")]}
    _stage(tmp_path, "a", recs, target="xnli-from-dev", run="r1")
    _stage(tmp_path, "b", recs, target="xnli-from-mnli", run="r1")
    _stage(tmp_path, "c", recs, system="rte+sick", seed=2, target="xnli")
    _stage(tmp_path, "f", {("xcopa", "test", "et"): RECORDS[("xcopa", "test", "et")]})
    (tmp_path / "stages" / ".zero_shot-d.tmp").mkdir()  # a stage being built: ignored
    report = export_xtreme(tmp_path)
    # only the clashing task moves; XCOPA stays in the plain seed folder
    assert report.submissions == [
        "org--enc/none/seed0",
        "org--enc/none/seed0.xnli-from-dev",
        "org--enc/none/seed0.xnli-from-mnli",
        "org--enc/rte+sick/seed2",
    ]
    mine = tmp_path / "xtreme" / "notes.txt"
    mine.write_text("the user's own file, not the export's")
    old_file = tmp_path / "xtreme/org--enc/none/seed0.xnli-from-dev/predictions/xnli/test-de.tsv"
    assert old_file.is_file()
    # same target and run twice (e.g. two evaluation variants): the stage key tells them apart
    _stage(tmp_path, "e", recs, target="xnli-from-dev", run="r1")
    report = export_xtreme(tmp_path)
    assert "org--enc/none/seed0.r1.xnli-from-dev.e" in report.submissions
    # the earlier export's files are replaced (the folder it no longer writes is gone); a file
    # it did not write is kept
    assert not old_file.exists() and not old_file.parent.parent.parent.exists()
    assert mine.read_text() == "the user's own file, not the export's"
    assert not list(tmp_path.glob(".xtreme*"))


def test_cli_export_then_score(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 2
    assert "no finished zero-shot stage" in capsys.readouterr().err
    _stage(tmp_path, "a", {("xnli", "test", "de"): RECORDS[("xnli", "test", "de")]})
    out = tmp_path / "sub"
    assert main(["export", str(tmp_path), "--output", str(out)]) == 0
    assert "org--enc/none/seed0: 1 file(s), tasks xnli" in capsys.readouterr().out
    sub = out / "org--enc" / "none" / "seed0"
    args = ["score", "--predictions", str(sub / "predictions"), "--labels", str(sub / "labels")]
    assert main([*args, "--output", str(tmp_path / "s.json")]) == 2  # 14 languages missing
    assert "test-ar.tsv: missing" in capsys.readouterr().err
    assert main([*args, "--output", str(tmp_path / "s.json"), "--partial"]) == 0
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["xnli"]["accuracy"] == {"de": 50.0} and "classification" not in scores
    assert len(scores[PARTIAL_KEY]["xnli"]) == 14
    assert "(partial: no ar, bg," in capsys.readouterr().out


def test_malformed_record_names_its_line_and_keeps_the_old_export(tmp_path):
    stage = _stage(tmp_path, "a", {("xnli", "test", "de"): RECORDS[("xnli", "test", "de")]})
    export_xtreme(tmp_path)
    bad = stage / "predictions" / "xnli.test.de.jsonl"
    bad.write_text(bad.read_text().replace('"de-2"', "de-2", 1))
    with pytest.raises(DataError, match=r"xnli\.test\.de\.jsonl:2: not JSON"):
        export_xtreme(tmp_path)
    assert (tmp_path / "xtreme" / "manifest.json").is_file()  # the previous export stays
    assert not list(tmp_path.glob(".xtreme*"))
