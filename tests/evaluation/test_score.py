"""Golden tests for `xstilts score` (results/score.py): evaluate.py's JSON from folders.

The tests write the official layout themselves. Unless a test varies a language, every language of
a task gets the same files, so a task's language average equals the per-file value derived by
hand below.
"""

import json
import logging
from pathlib import Path

import pytest

from xstilts.cli import main
from xstilts.errors import DataError
from xstilts.results.score import score_folders
from xstilts.tasks.languages import XTREME, XTREME_R

# --- per-file contents and their hand-derived scores ---------------------------------------

# pawsx: 3 of 4 labels right -> accuracy 75
PAWSX = ("1\n0\n1\n0\n", "1\n0\n0\n0\n")
# xnli: entailment ok, neutral->contradiction wrong, contradiction->neutral wrong, neutral ok: 50
XNLI = (
    "entailment\nneutral\ncontradiction\nneutral\n",
    "entailment\ncontradiction\nneutral\nneutral\n",
)
# panx: gold PER(0,1) LOC(3) | ORG(1,2); pred PER(0,1) | ORG(1,1): P 1/2, R 1/3, F1 40
PANX = (
    "B-PER\nI-PER\nO\nB-LOC\n\nO\nB-ORG\nI-ORG\n",
    "B-PER\nI-PER\nO\nO\n\nO\nB-ORG\nO\n",
)
# udpos: gold ET OUN DV(2,3) UNCT (4 spans), pred ET OUN DV(2) ERB UNCT (5): 3 correct ->
# P 60, R 75, F1 200/3; token accuracy 4/5 = 80
UDPOS = ("DET\nNOUN\nADV\nADV\nPUNCT\n", "DET\nNOUN\nADV\nVERB\nPUNCT\n")
# bucc2018: 2 of 3 predicted pairs correct, 2 of 4 gold found: P 2/3, R 1/2, F1 400/7
BUCC = (
    "de-1\ten-1\nde-2\ten-2\nde-3\ten-3\nde-4\ten-4\n",
    "de-1\ten-1\nde-2\ten-2\nde-3\ten-9\n",
)
# tatoeba: indices 3 1 2 0 vs 3 1 0 0 -> 75
TATOEBA = ("3\n1\n2\n0\n", "3\n1\n0\n0\n")
# xcopa (official jsonl): labels 0 1, predictions 0 0 -> 50
XCOPA = ('{"label": 0}\n{"label": 1}\n', '{"label": 0}\n{"label": 0}\n')
# mewslix: ranks 1, 2, missing, 1 -> (1 + 1/2 + 0 + 1) / 4 = 62.5
MEWSLIX = (
    {"e1": ["Q1"], "e2": ["Q2"], "e3": ["Q3"], "e4": ["Q4"]},
    {"e1": ["Q1", "Q9"], "e2": ["Q9", "Q2"], "e4": ["Q4"]},
)


def _squad(questions: dict[str, list[str]]) -> dict:
    qas = [
        {"id": q, "answers": [{"text": t, "answer_start": 0} for t in a]}
        for q, a in questions.items()
    ]
    return {
        "version": "1.1",
        "data": [{"title": "t", "paragraphs": [{"context": "c", "qas": qas}]}],
    }


# xquad: q1 exact; q2 "Panthers team" vs "Carolina Panthers" F1 1/2 -> EM 50, F1 75, avg 62.5
XQUAD = (
    _squad({"q1": ["Denver Broncos"], "q2": ["Carolina Panthers"]}),
    {"q1": "the Denver Broncos", "q2": "Panthers team"},
)
# mlqa: q1 exact in every language; q2 unanswered -> 0: EM 50, F1 50, avg 50
MLQA = (_squad({"q1": ["Paris"], "q2": ["Seine"]}), {"q1": "Paris"})
# tydiqa: "1990" vs max("in 1990" F1 2/3, "1990 and 1991" F1 1/2) -> EM 0, F1 200/3, avg 100/3
TYDIQA = (_squad({"q1": ["in 1990", "1990 and 1991"]}), {"q1": "1990"})

CONTENT = {
    "pawsx": ("tsv", PAWSX),
    "xnli": ("tsv", XNLI),
    "panx": ("tsv", PANX),
    "udpos": ("tsv", UDPOS),
    "bucc2018": ("tsv", BUCC),
    "tatoeba": ("tsv", TATOEBA),
    "xcopa": ("jsonl", XCOPA),
    "mewslix": ("json", MEWSLIX),
    "xquad": ("json", XQUAD),
    "mlqa": ("json", MLQA),
    "tydiqa": ("json", TYDIQA),
}
AVG_METRIC = {
    "pawsx": 75.0,
    "xnli": 50.0,
    "panx": 40.0,
    "udpos": 200 / 3,
    "bucc2018": 400 / 7,
    "tatoeba": 75.0,
    "xcopa": 50.0,
    "mewslix": 62.5,
    "xquad": 62.5,
    "mlqa": 50.0,
    "tydiqa": 100 / 3,
}


def _write(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")


def write_task(root: Path, task: str, langs, content=None) -> None:
    suffix, (labels, preds) = CONTENT[task] if content is None else content
    for lang in langs:
        _write(root / "labels" / task / f"test-{lang}.{suffix}", labels)
        _write(root / "predictions" / task / f"test-{lang}.{suffix}", preds)


def score(root: Path, benchmark="xtreme", **kw) -> dict:
    return score_folders(root / "predictions", root / "labels", benchmark, **kw)


# --- aggregation -----------------------------------------------------------------------------


def test_complete_xtreme(tmp_path, caplog):
    for task, langs in XTREME.items():
        write_task(tmp_path, task, langs)
    with caplog.at_level(logging.WARNING):
        got = score(tmp_path)
    # the missing MLQA answer scores 0 with a warning naming the file, as evaluate.py prints
    assert any(
        "mlqa/test-en.json" in r.message and "unanswered" in r.message for r in caplog.records
    )
    for task in XTREME:
        assert got[task]["avg_metric"] == pytest.approx(AVG_METRIC[task]), task
    assert got["panx"]["precision"]["de"] == pytest.approx(50.0)
    assert got["panx"]["avg_recall"] == pytest.approx(100 / 3)
    assert got["xquad"]["avg_exact_match"] == pytest.approx(50.0)
    assert got["xquad"]["avg_f1"] == pytest.approx(75.0)
    # evaluate.py key layout: metric -> {lang: value}, then avg_<metric>, then avg_metric
    assert list(got["bucc2018"]) == [
        "f1", "precision", "recall", "avg_f1", "avg_precision", "avg_recall", "avg_metric"
    ]  # fmt: skip
    assert list(got["tydiqa"]["f1"]) == list(XTREME["tydiqa"])
    # groups: classification (75 + 50) / 2; tagging (200/3 + 40) / 2; qa (62.5 + 50 + 100/3) / 3;
    # retrieval (400/7 + 75) / 2; all_task: mean of the nine avg_metric values (~56.627)
    assert got["classification"] == pytest.approx(62.5)
    assert got["tagging"] == pytest.approx((200 / 3 + 40) / 2)
    assert got["qa"] == pytest.approx((62.5 + 50 + 100 / 3) / 3)
    assert got["retrieval"] == pytest.approx((400 / 7 + 75) / 2)
    assert got["all_task"] == pytest.approx(sum(AVG_METRIC[t] for t in XTREME) / 9)
    assert got["all_task"] == pytest.approx(56.6270, abs=1e-4)
    assert "xstilts_xtreme_r_average" not in got and "xstilts_extras" not in got


def test_language_average(tmp_path):
    langs = XTREME["pawsx"]
    write_task(tmp_path, "pawsx", langs)
    # de all wrong (0), the other six 75 -> (0 + 6 * 75) / 7
    _write(tmp_path / "predictions/pawsx/test-de.tsv", "0\n1\n0\n1\n")
    got = score(tmp_path)
    assert got["pawsx"]["accuracy"]["de"] == 0.0
    assert got["pawsx"]["avg_accuracy"] == pytest.approx(450 / 7)


def test_incomplete_group_and_unlabelled_task(tmp_path, caplog):
    write_task(tmp_path, "pawsx", XTREME["pawsx"])
    write_task(tmp_path, "udpos", XTREME["udpos"])
    # xnli labels exist but no predictions; a predicted task without labels is only warned about
    (tmp_path / "labels/xnli").mkdir()
    _write(tmp_path / "predictions/panx/test-en.tsv", "O\n")
    with caplog.at_level(logging.WARNING):
        got = score(tmp_path)
    assert set(got) == {"pawsx", "udpos"}  # no group is complete, no all_task
    assert any("no label folder" in r.message for r in caplog.records)


def test_complete_xtreme_r(tmp_path):
    for task, langs in XTREME_R.items():
        if task != "lareqa":
            write_task(tmp_path, task, langs)
    # one XCOPA language in the one-label-per-line form: labels 0 1, predictions 0 0 -> 50 too
    lang = XTREME_R["xcopa"][0]
    for side, text in (("labels", "0\n1\n"), ("predictions", "0\n0\n")):
        (tmp_path / side / "xcopa" / f"test-{lang}.jsonl").unlink()
        _write(tmp_path / side / "xcopa" / f"test-{lang}.tsv", text)
    got = score(tmp_path, "xtreme-r", extras=True)
    scored = [t for t in XTREME_R if t != "lareqa"]
    for task in scored:
        assert got[task]["avg_metric"] == pytest.approx(AVG_METRIC[task]), task
    assert list(got["mewslix"]) == ["map@20", "avg_map@20", "avg_metric"]
    assert got["classification"] == pytest.approx(50.0)  # (xnli 50 + xcopa 50) / 2
    assert got["multi_choice"] == pytest.approx(50.0)
    assert got["retrieval"] == pytest.approx((75 + 62.5) / 2)  # tatoeba, mewslix
    assert "all_task" not in got  # evaluate.py cannot produce it for XTREME-R (LAReQA)
    # xstilts' own average over the nine scorable tasks: 490 / 9
    assert got["xstilts_xtreme_r_average"] == pytest.approx(490 / 9)
    # extras: UD-POS token accuracy 4/5 beside the span F1
    assert got["xstilts_extras"]["udpos"]["avg_accuracy"] == pytest.approx(80.0)


# --- edge behaviour, strict mode and bad files ---------------------------------------------


def test_missing_qa_prediction_strict(tmp_path):
    write_task(tmp_path, "mlqa", XTREME["mlqa"])
    with pytest.raises(DataError, match=r"predictions/mlqa/test-en.json: 1 of 2 question.*q2"):
        score(tmp_path, strict=True)


def test_strict_stray_file_and_blank_line(tmp_path, caplog):
    write_task(tmp_path, "bucc2018", XTREME["bucc2018"])
    _write(tmp_path / "predictions/bucc2018/dev-de.tsv", "x\ty\n")
    with pytest.raises(DataError, match="dev-de.tsv: not a bucc2018 test file"):
        score(tmp_path, strict=True)
    (tmp_path / "predictions/bucc2018/dev-de.tsv").unlink()
    # a trailing blank line: evaluate.py counts the pair ('',), so P = 2/4, R = 2/4, F1 = 50
    _write(tmp_path / "predictions/bucc2018/test-fr.tsv", BUCC[1] + "\n")
    with caplog.at_level(logging.WARNING):
        got = score(tmp_path)
    assert got["bucc2018"]["f1"]["fr"] == pytest.approx(50.0)
    assert any("test-fr.tsv:4" in r.message for r in caplog.records)
    with pytest.raises(DataError, match=r"test-fr.tsv:4: 1 blank line"):
        score(tmp_path, strict=True)


def test_prediction_outside_label_values(tmp_path):
    write_task(tmp_path, "xnli", XTREME["xnli"])
    _write(tmp_path / "predictions/xnli/test-ar.tsv", "entailment\n0\nneutral\nneutral\n")
    assert score(tmp_path)["xnli"]["accuracy"]["ar"] == pytest.approx(50.0)
    with pytest.raises(DataError, match=r"xnli/test-ar.tsv:2: 1 prediction\(s\) not among"):
        score(tmp_path, strict=True)


def test_count_mismatch_names_both_files(tmp_path):
    write_task(tmp_path, "pawsx", XTREME["pawsx"])
    _write(tmp_path / "predictions/pawsx/test-fr.tsv", "1\n0\n1\n")
    with pytest.raises(
        DataError,
        match=r"predictions/pawsx/test-fr.tsv: 3 predictions but .*labels/pawsx/test-fr.tsv has 4",
    ):
        score(tmp_path)


def test_tag_mismatch_names_lines(tmp_path):
    write_task(tmp_path, "panx", XTREME["panx"])
    _write(tmp_path / "predictions/panx/test-hu.tsv", "B-PER\nI-PER\nO\nO\n\nO\nB-ORG\n")
    with pytest.raises(
        DataError, match=r"panx/test-hu.tsv:6: sentence has 2 tags but .*test-hu.tsv:6 has 3"
    ):
        score(tmp_path)


def test_missing_language_file_and_bad_json(tmp_path):
    write_task(tmp_path, "tydiqa", XTREME["tydiqa"])
    (tmp_path / "predictions/tydiqa/test-sw.json").unlink()
    with pytest.raises(DataError, match=r"predictions/tydiqa/test-sw.json: missing"):
        score(tmp_path)
    _write(tmp_path / "predictions/tydiqa/test-sw.json", '{"q1": "1990",\n "q2": }')
    with pytest.raises(DataError, match=r"tydiqa/test-sw.json:2: invalid JSON"):
        score(tmp_path)


def test_bad_xcopa_and_tatoeba_lines(tmp_path):
    write_task(tmp_path, "xcopa", XTREME_R["xcopa"])
    _write(tmp_path / "predictions/xcopa/test-et.jsonl", '{"label": 0}\n{"label": 2}\n')
    with pytest.raises(DataError, match=r"xcopa/test-et.jsonl:2: field 'label': 2 is not 0 or 1"):
        score(tmp_path, "xtreme-r")
    write_task(tmp_path, "tatoeba", XTREME["tatoeba"])
    _write(tmp_path / "predictions/tatoeba/test-ar.tsv", "3\n1\nfoo\n0\n")
    with pytest.raises(DataError, match=r"tatoeba/test-ar.tsv:3: field 'index'"):
        score(tmp_path)


# --- CLI -------------------------------------------------------------------------------------


def test_cli_writes_evaluate_py_json(tmp_path, capsys):
    write_task(tmp_path, "pawsx", XTREME["pawsx"])
    write_task(tmp_path, "xnli", XTREME["xnli"])
    out = tmp_path / "out" / "scores.json"
    args = [
        "score",
        "--predictions",
        str(tmp_path / "predictions"),
        "--labels",
        str(tmp_path / "labels"),
    ]
    assert main([*args, "--output", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(score(tmp_path)))
    assert list(written) == ["classification", "pawsx", "xnli"]
    assert written["classification"] == pytest.approx(62.5)
    assert "classification" in capsys.readouterr().out


def test_cli_bad_input_exit_2_and_nothing_written(tmp_path, capsys):
    write_task(tmp_path, "pawsx", XTREME["pawsx"])
    _write(tmp_path / "predictions/pawsx/test-ko.tsv", "1\n")
    out = tmp_path / "scores.json"
    rc = main(
        ["score", "--predictions", str(tmp_path / "predictions"), "--labels", str(tmp_path / "labels"),
         "--output", str(out), "--strict"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("xstilts: error: ") and "\n" not in err
    assert "pawsx/test-ko.tsv" in err
    assert not out.exists()


# --- real data ------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_xquad_mlqa_udpos_gold_as_predictions(shared_data, tmp_path):
    """Real SQuAD-format files through the readers: the first 30 questions of every XQuAD (XTREME
    languages) and MLQA-dev file, predicted with their first gold answer, score EM = F1 = 100;
    the first 50 UD-POS test sentences, tags from the real token<TAB>tag files, score 100 too."""
    for task, langs, src in (
        ("xquad", XTREME["xquad"], "xquad/xquad.{lang}.json"),
        ("mlqa", XTREME["mlqa"], "mlqa/MLQA_V1/dev/dev-context-{lang}-question-{lang}.json"),
    ):
        for lang in langs:
            data = json.loads((shared_data / src.format(lang=lang)).read_text(encoding="utf-8"))
            qas = [qa for art in data["data"] for par in art["paragraphs"] for qa in par["qas"]][
                :30
            ]
            gold = {"data": [{"paragraphs": [{"context": "", "qas": qas}]}]}
            preds = {qa["id"]: qa["answers"][0]["text"] for qa in qas}
            _write(tmp_path / "labels" / task / f"test-{lang}.json", gold)
            _write(tmp_path / "predictions" / task / f"test-{lang}.json", preds)
    got = score(tmp_path, strict=True)
    for task in ("xquad", "mlqa"):
        assert got[task]["avg_exact_match"] == pytest.approx(100.0), task
        assert got[task]["avg_f1"] == pytest.approx(100.0), task

    from xstilts.evaluation.tagging import pos_accuracy, span_f1

    lines = (shared_data / "xtreme-udpos/test-en.tsv").read_text(encoding="utf-8").split("\n\n")
    tags = [[row.split("\t")[1] for row in block.splitlines()] for block in lines[:50]]
    assert span_f1(tags, tags)["f1"] == 100.0 and pos_accuracy(tags, tags)["accuracy"] == 100.0


@pytest.mark.parametrize("task", ["xnli", "udpos", "tatoeba", "bucc2018", "xcopa", "xquad"])
def test_byte_order_mark_is_not_data(tmp_path, task):
    """A UTF-8 BOM opening a file (Windows converters write one) changes no score: evaluate.py
    would read it into the first label (that line then wrong) or refuse the JSON; xstilts reads
    utf-8-sig. Every prediction file and every gold file gets one in turn."""
    suffix, (labels, preds) = CONTENT[task]
    langs = XTREME.get(task) or XTREME_R[task]
    write_task(tmp_path / "clean", task, langs)
    want = score(tmp_path / "clean", "xtreme-r" if task == "xcopa" else "xtreme")[task]
    for side, content in (("predictions", preds), ("labels", labels)):
        root = tmp_path / side
        write_task(root, task, langs)
        text = content if isinstance(content, str) else json.dumps(content)
        for lang in langs:
            (root / side / task / f"test-{lang}.{suffix}").write_text(
                "\ufeff" + text, encoding="utf-8"
            )
        assert score(root, "xtreme-r" if task == "xcopa" else "xtreme")[task] == want, side
    if task == "xnli":  # 2 of 4 right, the first line among them: 50, not 25
        assert want["avg_accuracy"] == 50.0
