"""English multiple-choice intermediate tasks: HellaSwag, Cosmos QA and CommonsenseQA readers
(golden, per released format), hub conversion (monkeypatched ``datasets.load_dataset``), bad
input, and the ANLI+ example config. Fixture files are written here in the released layouts
(CCG: ``test_intermediate_tasks_ccg.py``; SQuAD v2.0: ``test_intermediate_tasks_squad_v2.py``)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
import types
from pathlib import Path

import pytest

from xstilts.config_check import load_config
from xstilts.errors import DataError
from xstilts.pipeline.data import phase_data
from xstilts.tasks.base import get_task, load_split
from xstilts.tasks.readers.choice import ChoiceExample
from xstilts.tasks.readers.english_mc import (
    examples_from_mc_rows,
    read_commonsenseqa_jsonl,
    read_cosmosqa_csv,
    read_cosmosqa_jsonl,
    read_hellaswag_jsonl,
)

ROOT = Path(__file__).resolve().parents[2]

HELLASWAG_VAL = [
    {"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.",
     "ctx_b": "he", "ctx": "A man is sitting on a roof. he", "split": "val",
     "split_type": "indomain", "label": 3, "source_id": "activitynet~v_-JhWjGDPHMY",
     "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                 "is holding a rubik's cube.", "starts pulling up roofing on a roof."]},
    {"ind": 92, "activity_label": "Clean and jerk", "split": "val", "split_type": "zeroshot",
     "ctx_a": "A lady walks to a barbell. She bends down and grabs the pole.",
     "ctx_b": "the lady",
     "ctx": "A lady walks to a barbell. She bends down and grabs the pole. the lady",
     "label": 3, "source_id": "activitynet~v_-lJS58hyo1c",
     "endings": ["swings and lands in her arms.", "pulls the barbell forward.",
                 "pulls a rope attached to the barbell.",
                 "stands and lifts the weight over her head."]},
    {"ind": 106, "activity_label": "Home and Garden", "split": "val", "split_type": "indomain",
     "ctx_a": "[header] How to keep ants out of your kitchen [title] Wipe the counters.",
     "ctx_b": "",
     "ctx": "[header] How to keep ants out of your kitchen [title] Wipe the counters.",
     "label": 0, "source_id": "wikihow~12345",
     "endings": ["[step] Crumbs and sticky spills draw ants in.", "[step] Buy a new oven.",
                 "[step] Leave the fruit bowl uncovered.", "[step] Paint the walls white."]},
]  # fmt: skip

COSMOS_ROWS = [
    ["id", "context", "question", "answer0", "answer1", "answer2", "answer3", "label"],
    ["3Q9SPIIRWJKVQ8244310E8TUS6YWAC##34V1S5K3GTZMDUBNBIGY93FLDOB690##A1S1K7134S2VUC##Blog_1044056"
     "##q1_a1##3XU9MCX6VQQG7YPLCSAFDPQNH4GR20",
     "Good Old War and person L : I saw both of these bands Wednesday night , and they both blew "
     'me away . seriously . Good Old War is acoustic and makes me smile , "this is the life" .',
     "In the future , will this person go to see other bands play ?",
     "None of the above choices .",
     "This person likes music and likes to see the show , they will see other bands play .",
     "This person only likes Good Old War and Person L , no other bands .",
     "Other bands is not on the list of favorites .", "1"],
    ["3E24UO25QZOMYXHZN4TEH9EMT9GO6L##3UN61F00HXNWYQ7V0G6F8I1FMXXR5I##AO33H4GL9KZX9##Blog_292639"
     "##q1_a1##375VMB7D4LXQH9KIJU0NVGG0RIJIDI",
     "The bus stopped at a red light.\nI got off two blocks early , since it was quicker to walk.",
     "Why did the narrator walk ?", "It was quicker than the bus .", "The bus broke down .",
     "They wanted exercise .", "None of the above choices .", "0"],
]  # fmt: skip
# as pandas' to_csv wrote the release: comma-separated, quoted where needed, "" for a quote
_buf = io.StringIO()
csv.writer(_buf, lineterminator="\n").writerows(COSMOS_ROWS)
COSMOS_CSV = _buf.getvalue()
COSMOS_TEST = [
    {"id": "3BFF0DJK8XA7YNK2OWV0ZJ2PZ3QTSC##q1", "context": "My cat knocked a glass off the "
     "table this morning , and then stared at me .", "question": "What may happen next ?",
     "answer0": "I will clean up the glass .", "answer1": "The cat will apologise .",
     "answer2": "The glass will fly back .", "answer3": "None of the above choices ."},
]  # fmt: skip

CSQA_DEV = [
    {"answerKey": "A", "id": "1afa02df02c908a558b4036e80242fac",
     "question": {"question_concept": "revolving door",
                  "choices": [{"label": "A", "text": "bank"}, {"label": "B", "text": "library"},
                              {"label": "C", "text": "department store"},
                              {"label": "D", "text": "mall"}, {"label": "E", "text": "new york"}],
                  "stem": "A revolving door is convenient for two direction travel, but it also "
                          "serves as a security measure at a what?"}},
    {"answerKey": "E", "id": "a7ab086045575bb497933726e4e6ad28",
     "question": {"question_concept": "people",
                  "choices": [{"label": "C", "text": "charming"}, {"label": "A", "text": "complete job"},
                              {"label": "B", "text": "learn from each other"},
                              {"label": "D", "text": "talk to each other"},
                              {"label": "E", "text": "kill animals"}],
                  "stem": "What do people aim to do at work?"}},
]  # fmt: skip


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------- HellaSwag


def test_hellaswag_jsonl_golden(tmp_path):
    got = read_hellaswag_jsonl(_jsonl(tmp_path / "hellaswag_val.jsonl", HELLASWAG_VAL))
    assert got[0] == ChoiceExample(
        "24",
        "A man is sitting on a roof.",
        "",
        (
            "he is using wrap to wrap a pair of skis.",
            "he is ripping level tiles off.",
            "he is holding a rubik's cube.",
            "he starts pulling up roofing on a roof.",
        ),
        "3",
        "en",
        1,
    )
    assert got[0].first_text == "A man is sitting on a roof."
    # empty ctx_b (WikiHow): the bare endings, no leading space
    assert got[2].choices[0] == "[step] Crumbs and sticky spills draw ants in."
    assert [e.label for e in got] == ["3", "3", "0"]
    # the test file has no label
    test = [{k: v for k, v in r.items() if k != "label"} for r in HELLASWAG_VAL]
    got = read_hellaswag_jsonl(_jsonl(tmp_path / "hellaswag_test.jsonl", test))
    assert [e.label for e in got] == [None, None, None]


def test_hellaswag_found_under_data_dir_with_val_name(tmp_path):
    _jsonl(tmp_path / "hellaswag" / "hellaswag_val.jsonl", HELLASWAG_VAL)
    loaded = load_split(get_task("hellaswag"), "dev", "en", data_dir=tmp_path)
    assert loaded.source.endswith("hellaswag/hellaswag_val.jsonl")
    assert len(loaded.examples) == 3


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"label": 4}, "label", "4 is not a choice index in 0..3"),
        ({"label": "two"}, "label", "'two' is not a choice index"),
        ({"endings": ["a", "b", "c"]}, "endings", "3 endings, expected 4"),
        ({"endings": ["a", "b", "c", 5]}, "endings[3]", "not a non-empty string: 5"),
        ({"ctx_a": ""}, "ctx_a", "not a non-empty string"),
        ({"ctx_b": None}, "ctx_b", "not a string: None"),
    ],
)
def test_hellaswag_bad_records(tmp_path, change, field, message):
    rows = [HELLASWAG_VAL[0], {**HELLASWAG_VAL[1], **change}]
    with pytest.raises(DataError, match=r"hellaswag_train\.jsonl:2: ") as e:
        read_hellaswag_jsonl(_jsonl(tmp_path / "hellaswag_train.jsonl", rows))
    assert e.value.line == 2 and e.value.field == field and message in str(e.value)


def test_invalid_json_line_names_its_line(tmp_path):
    p = tmp_path / "hellaswag_train.jsonl"
    p.write_text(json.dumps(HELLASWAG_VAL[0]) + "\n\n" + '{"ind": 3, "ctx_a": "x",\n')
    with pytest.raises(DataError, match=r"hellaswag_train\.jsonl:3: invalid JSON"):
        read_hellaswag_jsonl(p)
    p = tmp_path / "train_rand_split.jsonl"
    p.write_text(json.dumps(CSQA_DEV[0]) + "\n[1, 2]\n")
    with pytest.raises(DataError, match=r"train_rand_split\.jsonl:2: expected a JSON object"):
        read_commonsenseqa_jsonl(p)


# ------------------------------------------------------------------------------- Cosmos QA


def test_cosmosqa_csv_golden(tmp_path):
    p = tmp_path / "valid.csv"
    p.write_text(COSMOS_CSV, encoding="utf-8")
    got = read_cosmosqa_csv(p)
    assert len(got) == 2
    first = got[0]
    assert first.guid.endswith("##3XU9MCX6VQQG7YPLCSAFDPQNH4GR20")
    assert first.context.endswith('makes me smile , "this is the life" .')  # "" unquoted
    assert first.question == "In the future , will this person go to see other bands play ?"
    assert first.first_text == f"{first.context} {first.question}"
    assert first.choices[0] == "None of the above choices ."
    assert first.choices[1].startswith("This person likes music and likes to see the show ,")
    assert (first.label, first.line) == ("1", 2)
    # a quoted context with a line break: the next record starts on physical line 3
    assert got[1].context == (
        "The bus stopped at a red light.\nI got off two blocks early , since it was quicker to walk."
    )
    assert (got[1].label, got[1].line) == ("0", 3)


def test_cosmosqa_jsonl_test_is_unlabelled_and_found_as_dev_valid(tmp_path):
    got = read_cosmosqa_jsonl(_jsonl(tmp_path / "test.jsonl", COSMOS_TEST))
    assert got[0].label is None and got[0].guid == COSMOS_TEST[0]["id"]
    assert got[0].choices[3] == "None of the above choices ."
    (tmp_path / "cosmosqa").mkdir()
    (tmp_path / "cosmosqa" / "valid.csv").write_text(COSMOS_CSV, encoding="utf-8")
    loaded = load_split(get_task("cosmosqa"), "dev", "en", data_dir=tmp_path)
    assert loaded.source.endswith("cosmosqa/valid.csv") and len(loaded.examples) == 2


def test_cosmosqa_bad_input(tmp_path):
    p = tmp_path / "train.csv"
    # the second record spans physical lines 3-4: it is reported where it starts
    p.write_text(COSMOS_CSV.replace("None of the above choices .,0\n", "None of the above,7\n"))
    with pytest.raises(DataError, match=r"train\.csv:3: field 'label': '7' is not a choice"):
        read_cosmosqa_csv(p)
    p.write_text("id,context,question,answer0,answer1,answer2,label\nx,c,q,a,b,c,0\n")
    with pytest.raises(DataError, match=r"train\.csv:1: field 'header': header lacks .*answer3"):
        read_cosmosqa_csv(p)
    p.write_text(COSMOS_CSV.split("\n")[0] + "\nx,c,q,a,b,c\n")
    with pytest.raises(DataError, match=r"train\.csv:2: field 'columns': 6 columns"):
        read_cosmosqa_csv(p)
    rows = [{**COSMOS_TEST[0], "answer4": "a fifth"}]
    with pytest.raises(DataError, match=r"test\.jsonl:1: field 'answers': 5 answers, expected 4"):
        read_cosmosqa_jsonl(_jsonl(tmp_path / "test.jsonl", rows))


# --------------------------------------------------------------------------- CommonsenseQA


def test_commonsenseqa_jsonl_golden(tmp_path):
    got = read_commonsenseqa_jsonl(_jsonl(tmp_path / "dev_rand_split.jsonl", CSQA_DEV))
    assert got[0] == ChoiceExample(
        "1afa02df02c908a558b4036e80242fac",
        CSQA_DEV[0]["question"]["stem"],
        "",
        ("bank", "library", "department store", "mall", "new york"),
        "0",
        "en",
        1,
    )
    # choices listed out of letter order are put in A-E order; E is "4"
    assert got[1].choices == (
        "complete job",
        "learn from each other",
        "charming",
        "talk to each other",
        "kill animals",
    )
    assert got[1].label == "4"
    test = [{k: v for k, v in r.items() if k != "answerKey"} for r in CSQA_DEV]
    _jsonl(tmp_path / "commonsenseqa" / "test_rand_split_no_answers.jsonl", test)
    loaded = load_split(get_task("commonsenseqa"), "test", "en", data_dir=tmp_path)
    assert [e.label for e in loaded.examples] == [None, None]


@pytest.mark.parametrize(
    "question_change, key, field, message",
    [
        ({}, "F", "answerKey", "'F' is not one of"),
        ({"choices": CSQA_DEV[0]["question"]["choices"][:4]}, "A", "question.choices",
         "4 choices, expected 5"),
        ({"choices": [*CSQA_DEV[0]["question"]["choices"][:4], {"label": "A", "text": "x"}]}, "A",
         "question.choices[4].label", "'A' is not one of"),
        ({"choices": [*CSQA_DEV[0]["question"]["choices"][:4], {"label": "E", "text": " "}]}, "A",
         "question.choices[4].text", "not a non-empty string"),
        ({"stem": ""}, "A", "stem", "not a non-empty string"),
    ],
)  # fmt: skip
def test_commonsenseqa_bad_records(tmp_path, question_change, key, field, message):
    bad = {**CSQA_DEV[0], "answerKey": key}
    bad["question"] = {**CSQA_DEV[0]["question"], **question_change}
    p = _jsonl(tmp_path / "train_rand_split.jsonl", [CSQA_DEV[1], bad])
    with pytest.raises(DataError) as e:
        read_commonsenseqa_jsonl(p)
    assert (e.value.line, e.value.field) == (2, field) and message in str(e.value)


# ------------------------------------------------------------------------------- hub rows


def _fake_datasets(monkeypatch, rows_by_call: dict):
    """Install a fake ``datasets`` module whose ``load_dataset`` returns the rows registered
    for (dataset, config, split) and records the calls."""
    calls = []

    def load_dataset(name, config=None, split=None, revision=None):
        calls.append((name, config, split))
        return rows_by_call[(name, config, split)]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    return calls


def test_hub_rows_convert_like_the_released_files(monkeypatch, tmp_path):
    hs_rows = [{**r, "label": str(r["label"])} for r in HELLASWAG_VAL]
    hs_test = [{**r, "label": ""} for r in HELLASWAG_VAL[:1]]
    cosmos_rows = [{**COSMOS_TEST[0], "label": 0}, {**COSMOS_TEST[0], "id": "b", "label": -1}]
    csqa_rows = [
        {
            "id": r["id"],
            "question": r["question"]["stem"],
            "question_concept": r["question"]["question_concept"],
            "choices": {
                "label": [c["label"] for c in r["question"]["choices"]],
                "text": [c["text"] for c in r["question"]["choices"]],
            },
            "answerKey": r["answerKey"],
        }
        for r in CSQA_DEV
    ]
    calls = _fake_datasets(
        monkeypatch,
        {
            ("Rowan/hellaswag", None, "validation"): hs_rows,
            ("Rowan/hellaswag", None, "test"): hs_test,
            ("allenai/cosmos_qa", None, "train"): cosmos_rows,
            ("tau/commonsense_qa", None, "validation"): csqa_rows,
        },
    )
    hs = load_split(get_task("hellaswag"), "dev", "en", data_dir=None)
    assert hs.source == "hf://Rowan/hellaswag//validation@refs/pr/7"  # the pinned revision
    from_file = read_hellaswag_jsonl(_jsonl(tmp_path / "hellaswag_val.jsonl", HELLASWAG_VAL))
    assert hs.examples == from_file  # same guids, texts, labels and row numbers
    assert load_split(get_task("hellaswag"), "test", "en", data_dir=None).examples[0].label is None
    cos = load_split(get_task("cosmosqa"), "train", "en", data_dir=None).examples
    assert [e.label for e in cos] == ["0", None] and cos[0].question == "What may happen next ?"
    cs = load_split(get_task("commonsenseqa"), "dev", "en", data_dir=None).examples
    assert cs == read_commonsenseqa_jsonl(_jsonl(tmp_path / "dev_rand_split.jsonl", CSQA_DEV))
    assert ("allenai/cosmos_qa", None, "train") in calls


def test_hub_rows_bad_input_names_row_and_field():
    rows = [{**HELLASWAG_VAL[0], "label": "5"}]
    with pytest.raises(DataError, match=r"hf://Rowan/hellaswag//train:1: field 'label'"):
        examples_from_mc_rows("hellaswag", rows, source="hf://Rowan/hellaswag//train")
    rows = [{"id": "x", "question": "Where?", "choices": {"label": ["A", "B"], "text": ["a"]}}]
    with pytest.raises(DataError, match=r"src:1: field 'choices': 2 choice labels but 1 texts"):
        examples_from_mc_rows("commonsenseqa", rows, source="src")


def test_offline_hub_is_not_tried(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="no file for task 'cosmosqa' split 'dev'.*hub is offline"):
        load_split(get_task("cosmosqa"), "dev", "en", data_dir=tmp_path)


def test_fixed_label_tasks_keep_their_label_set(tmp_path):
    from xstilts.config import TaskData

    _jsonl(tmp_path / "hellaswag" / "hellaswag_train.jsonl", HELLASWAG_VAL)
    _jsonl(tmp_path / "hellaswag" / "hellaswag_val.jsonl", HELLASWAG_VAL[:2])
    pd = phase_data(get_task("hellaswag"), TaskData(), tmp_path)
    assert pd.labels == ("0", "1", "2", "3")
    assert "labels_from_data" not in pd.protocol


# ---------------------------------------------------------------------------------- ANLI+


def _nli_rows(uid: str) -> list[dict]:
    return [
        {"uid": f"{uid}-{i}", "context": p, "hypothesis": h, "label": lab}
        for i, (p, h, lab) in enumerate(
            [
                ("A man plays a guitar on stage.", "A man is playing music.", "e"),
                ("A dog runs in the park.", "A cat sleeps on a sofa.", "n"),
                ("A woman is singing.", "Nobody is singing.", "c"),
            ]
        )
    ]


def test_anli_plus_example_config_validates(tmp_path, demo_data):
    """The example config loads, its five tasks share the 'nli' head, and a plan with a small
    target (the demo task) passes every check, reading each release layout."""
    import dataclasses

    from xstilts.pipeline.run import plan_run

    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    for r in (1, 2, 3):
        for split in ("train", "dev"):
            _jsonl(data / "anli_v1.0" / f"R{r}" / f"{split}.jsonl", _nli_rows(f"r{r}"))
    snli = [
        {"sentence1": x["context"], "sentence2": x["hypothesis"], "pairID": x["uid"],
         "gold_label": {"e": "entailment", "n": "neutral", "c": "contradiction"}[x["label"]]}
        for x in _nli_rows("s")
    ]  # fmt: skip
    for split in ("train", "dev"):
        _jsonl(data / "snli_1.0" / f"snli_1.0_{split}.jsonl", snli)
    for split in ("train", "dev_matched"):
        _jsonl(data / "multinli_1.0" / f"multinli_1.0_{split}.jsonl", snli)
    cfg = load_config(ROOT / "configs" / "anli-plus-example.yaml")
    assert cfg.intermediate.shared_heads == {
        "nli": ("anli_r1", "anli_r2", "anli_r3", "mnli", "snli")
    }
    small = dataclasses.replace(
        cfg,
        target=dataclasses.replace(
            cfg.target, task="demo_nli", evaluation=type(cfg.target.evaluation)(split="test")
        ),
    )
    plan = plan_run(small, data_dir=data, out_dir=tmp_path / "out")
    assert set(plan.intermediate) == {"anli_r1", "anli_r2", "anli_r3", "mnli", "snli"}
    assert {p.labels for p in plan.intermediate.values()} == {
        ("entailment", "neutral", "contradiction")
    }
