"""``xstilts data prepare --from`` on a folder laid out like XTREME's ``download/`` (fixture
files written here from a few lines each), ``xstilts data check``, and the stage-key guarantee
for local files. With ``XSTILTS_SHARED_DATA`` the real files are prepared too."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from xstilts.cli import main
from xstilts.config import DataRef, TaskData
from xstilts.data_prepare.manifest import MANIFEST_NAME, Manifest, check
from xstilts.data_prepare.prepare import prepare, select_tasks
from xstilts.pipeline.data import phase_data
from xstilts.tasks.base import get_task, load_split

SQUAD = {
    "version": "1.1",
    "data": [
        {
            "title": "T",
            "paragraphs": [
                {
                    "context": "Paris is the capital of France.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "What is the capital of France?",
                            "answers": [{"text": "Paris", "answer_start": 0}],
                        }
                    ],
                }
            ],
        }
    ],
}


def _w(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def xtreme_download(root: Path) -> Path:
    """A few files of each task in the layout of XTREME's download_data.sh (``download/``)."""
    d = root / "download"
    _w(
        d / "xnli/train-en.tsv",
        "A man eats.\tA person eats.\tentailment\nA dog.\tA cat.\tneutral\n",
    )
    _w(d / "xnli/dev-de.tsv", "Ein Mann isst.\tEine Person isst.\tentailment\n")
    _w(d / "xnli/test-de.tsv", "Ein Hund.\tEine Katze.\n")
    _w(d / "pawsx/dev-de.tsv", "Ein Satz.\tEin anderer Satz.\t0\n")
    _w(d / "panx/dev-de.tsv", "Anton\tB-PER\nlebt\tO\n\nBerlin\tB-LOC\n")
    _w(d / "udpos/test-de.tsv", "Das\tDET\nHaus\tNOUN\n")
    _w(d / "xquad/xquad.de.json", json.dumps(SQUAD))
    _w(d / "squad/train-v1.1.json", json.dumps(SQUAD))
    _w(d / "mlqa/MLQA_V1/dev/dev-context-de-question-de.json", json.dumps(SQUAD))
    _w(d / "bucc2018/de-en.dev.de", "de-1\tEin Satz.\nde-2\tNoch einer.\n")
    _w(d / "bucc2018/de-en.dev.en", "en-1\tA sentence.\nen-2\tAnother one.\n")
    _w(d / "bucc2018/de-en.dev.gold", "de-1\ten-1\n")
    copa = {"premise": "The man fell.", "choice1": "He slipped.", "choice2": "He sang."}
    copa.update(question="cause", label=0, idx=1)
    _w(d / "xcopa/train.en.jsonl", json.dumps(copa) + "\n")
    _w(d / "xcopa/val.et.jsonl", json.dumps(copa) + "\n")
    # Tatoeba as LASER releases it (XTREME's own copy sorts the English side: no gold left)
    _w(d / "tatoeba/v1/tatoeba.deu-eng.deu", "Hallo.\nDanke.\n")
    _w(d / "tatoeba/v1/tatoeba.deu-eng.eng", "Hello.\nThanks.\n")
    return d


def test_prepare_from_xtreme_layout_then_check(tmp_path, capsys):
    src = xtreme_download(tmp_path)
    out = tmp_path / "data"
    assert main(["data", "prepare", "--all", "--from", str(src), "--to", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "mewslix: nothing found; get it from" in printed  # no hub copy: where to get it
    manifest = Manifest.read(out, required=True)
    entry = manifest.files["xnli/dev-de.tsv"]
    assert entry.examples == {"xnli/dev/de": 1}
    assert entry.source == {"path": str((src / "xnli/dev-de.tsv").resolve())}
    assert entry.sha256 == hashlib.sha256((src / "xnli/dev-de.tsv").read_bytes()).hexdigest()
    # XTREME's MNLI train copy serves mnli train; siblings travel with their file
    assert manifest.files["xnli/train-en.tsv"].examples == {"mnli/train/en": 2}
    assert manifest.files["bucc2018/de-en.dev.gold"].examples == {"bucc2018/dev/de": None}
    assert "tatoeba/v1/tatoeba.deu-eng.eng" in manifest.files
    # one file serving two tasks: one entry, counted for each
    assert set(manifest.files["squad/train-v1.1.json"].examples) == {
        "squad/train/en",
        "lareqa/train/en",
    }
    assert manifest.files["xcopa/val.et.jsonl"].examples == {"xcopa/dev/et": 1}
    assert manifest.files["xcopa/train.en.jsonl"].examples == {"copa/train/en": 1}
    # the prepared directory reads like the source, through the same readers
    for task, split, lang in [
        ("xnli", "dev", "de"),
        ("bucc2018", "dev", "de"),
        ("panx", "dev", "de"),
    ]:
        a = load_split(get_task(task), split, lang, data_dir=src)
        b = load_split(get_task(task), split, lang, data_dir=out)
        assert a.examples == b.examples and a.fingerprint == b.fingerprint
    assert main(["data", "check", str(out)]) == 0
    assert "0 missing, 0 changed, 0 extra" in capsys.readouterr().out

    # resumable: a second run rewrites nothing
    report = prepare(select_tasks([], every=True), out, src=src)
    assert report.written == [] and set(report.unchanged) == set(manifest.files)

    # check names every missing, changed and extra file; exit code 2
    (out / "xquad/xquad.de.json").write_text("{}", encoding="utf-8")
    (out / "tatoeba/v1/tatoeba.deu-eng.eng").unlink()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["data", "check", str(out)]) == 2
    printed = capsys.readouterr().out
    assert "changed: xquad/xquad.de.json" in printed
    assert "missing: tatoeba/v1/tatoeba.deu-eng.eng" in printed
    assert "extra:   notes.txt" in printed
    result = check(out)
    assert (result.changed, result.missing, result.extra) == (
        ("xquad/xquad.de.json",),
        ("tatoeba/v1/tatoeba.deu-eng.eng",),
        ("notes.txt",),
    )

    # a user's file is never overwritten: the changed file is reported and kept
    assert main(["data", "prepare", "xquad", "--from", str(src), "--to", str(out), "--quiet"]) == 2
    assert "exists with other contents" in capsys.readouterr().err
    assert (out / "xquad/xquad.de.json").read_text(encoding="utf-8") == "{}"
    assert (out / "notes.txt").exists()


def test_prepare_reports_a_malformed_source_with_its_line(tmp_path, capsys):
    src = tmp_path / "download"
    _w(src / "xnli/dev-de.tsv", "a\tb\tentailment\nc\td\tmaybe\n")
    _w(src / "xnli/dev-fr.tsv", "a\tb\tentailment\n")
    out = tmp_path / "data"
    assert main(["data", "prepare", "xnli", "--from", str(src), "--to", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "dev-de.tsv:2: field 'label': 'maybe'" in err
    files = Manifest.read(out).files
    assert "xnli/dev-fr.tsv" in files and "xnli/dev-de.tsv" not in files
    assert not (out / "xnli/dev-de.tsv").exists()


def test_bad_arguments_are_one_line(tmp_path, capsys):
    assert main(["data", "prepare", "--to", str(tmp_path)]) == 2
    assert main(["data", "prepare", "xnlii", "--to", str(tmp_path)]) == 2
    assert "did you mean 'xnli'" in capsys.readouterr().err
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    assert "no manifest" in capsys.readouterr().err


def test_local_file_stage_keys_are_unchanged(tmp_path):
    """Local-file sources keep their fingerprints exactly (the file's sha256), so stage keys
    computed before hub revisions existed still match."""
    path = _w(tmp_path / "xtreme-xnli/dev-en.tsv", "A man eats.\tA person eats.\tentailment\n" * 3)
    td = TaskData(train=DataRef(task="xnli", split="dev", language="en"), dev_holdout=1)
    pd = phase_data(get_task("xnli"), td, tmp_path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert pd.fingerprint == {
        "train": digest,
        "dev": None,
        "dev_holdout": 1,
        "holdout_seed": 0,
    }
    assert pd.protocol["train_file"] == str(path)
    from xstilts.pipeline.stages import stage_key

    # the value main computed for these inputs before this change
    assert stage_key({"data": pd.fingerprint}) == PINNED_KEY


PINNED_KEY = "027f8ade5e2e7af0"  # main at 4c0b4a6, same file bytes


@pytest.mark.skipif(not os.environ.get("XSTILTS_SHARED_DATA"), reason="XSTILTS_SHARED_DATA unset")
def test_prepare_real_xtreme_files(tmp_path):
    shared = Path(os.environ["XSTILTS_SHARED_DATA"])
    out = tmp_path / "data"
    report = prepare(select_tasks(["xcopa", "tatoeba", "pawsx"], every=False), out, src=shared)
    assert report.ok
    files = Manifest.read(out).files
    assert files["xcopa/data/et/test.et.jsonl"].examples == {"xcopa/test/et": 500}
    assert files["xtreme-pawsx/dev-de.tsv"].examples == {"pawsx/dev/de": 2000}
    assert len([f for f in files if f.startswith("tatoeba/")]) == 2 * 41
    assert check(out).clean
    assert (out / MANIFEST_NAME).is_file()
