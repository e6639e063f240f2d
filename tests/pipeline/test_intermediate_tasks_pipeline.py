"""Each new English intermediate task (HellaSwag, Cosmos QA, CommonsenseQA, SQuAD v2.0, CCG)
trained on the tiny model before the demo target, alone and all five together; the target
phase drops every intermediate head and keeps the encoder."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from xstilts.config import RunConfig, from_dict
from xstilts.pipeline.run import run

TASKS = ("hellaswag", "cosmosqa", "commonsenseqa", "squad_v2", "ccg")

_PEOPLE = ["A man", "A woman", "The boy", "Two girls", "An old man", "The chef"]
_ACTS = ["is painting a fence.", "is washing a car.", "opens a window.", "ties a rope."]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _hellaswag(n: int, offset: int) -> list[dict]:
    rows = []
    for i in range(n):
        who, act = _PEOPLE[i % 6], _ACTS[i % 4]
        endings = ["stops and smiles.", "falls into a lake.", "sings a song.", "keeps going."]
        rows.append(
            {"ind": offset + i, "activity_label": "Demo", "ctx_a": f"{who} {act}",
             "ctx_b": "then he" if i % 2 else "", "ctx": f"{who} {act}", "split": "train",
             "split_type": "indomain", "endings": endings, "label": i % 4,
             "source_id": f"demo~{i}"}
        )  # fmt: skip
    return rows


def _cosmos_csv(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            ["id", "context", "question", "answer0", "answer1", "answer2", "answer3", "label"]
        )
        for i in range(n):
            who = _PEOPLE[i % 6]
            w.writerow(
                [f"c{i}", f"{who} was late , so they ran to the station .", "Why did they run ?",
                 "They were late .", "They like trains .", "It was raining .",
                 "None of the above choices .", i % 4]
            )  # fmt: skip


def _csqa(n: int) -> list[dict]:
    words = ["bank", "library", "kitchen", "garden", "station"]
    return [
        {"answerKey": "ABCDE"[i % 5], "id": f"q{i}",
         "question": {"question_concept": "place", "stem": f"Where would {_PEOPLE[i % 6]} cook?",
                      "choices": [{"label": "ABCDE"[k], "text": words[k]} for k in range(5)]}}
        for i in range(n)
    ]  # fmt: skip


def _squad_v2(n: int) -> dict:
    qas = []
    context = (
        "The man painted the fence in the garden on Sunday. The woman washed the car at the "
        "station before the rain came."
    )
    for i in range(n):
        if i % 3 == 2:
            qas.append(
                {"id": f"s{i}", "question": "Who flew the plane?", "answers": [],
                 "plausible_answers": [{"text": "The man", "answer_start": 0}],
                 "is_impossible": True}
            )  # fmt: skip
        else:
            text = "the fence" if i % 2 else "the car"
            qas.append(
                {"id": f"s{i}", "question": "What was painted?" if i % 2 else "What was washed?",
                 "answers": [{"text": text, "answer_start": context.index(text)}],
                 "is_impossible": False}
            )  # fmt: skip
    return {
        "version": "v2.0",
        "data": [{"title": "Demo", "paragraphs": [{"context": context, "qas": qas}]}],
    }


def _ccg(n: int, with_unseen: bool = False) -> str:
    lines = []
    for i in range(n):
        noun = "dogs" if i % 2 else "cats"
        verb = "(S[dcl]\\NP)/NP" if i % 3 else "S[dcl]\\NP"
        lines.append(f"The|DT|NP[nb]/N {noun}|NNS|N chase|VBP|{verb} birds|NNS|N .|.|.")
    if with_unseen:
        lines.append("Quickly|RB|(S\\NP)/(S\\NP) run|VB|S[b]\\NP .|.|.")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory, demo_data) -> Path:
    root = tmp_path_factory.mktemp("intermediate-data")
    shutil.copytree(demo_data, root, dirs_exist_ok=True)
    _write_jsonl(root / "hellaswag" / "hellaswag_train.jsonl", _hellaswag(16, 0))
    _write_jsonl(root / "hellaswag" / "hellaswag_val.jsonl", _hellaswag(6, 100))
    _cosmos_csv(root / "cosmosqa" / "train.csv", 16)
    _cosmos_csv(root / "cosmosqa" / "valid.csv", 6)
    _write_jsonl(root / "commonsenseqa" / "train_rand_split.jsonl", _csqa(16))
    _write_jsonl(root / "commonsenseqa" / "dev_rand_split.jsonl", _csqa(6))
    (root / "squad").mkdir()
    (root / "squad" / "train-v2.0.json").write_text(json.dumps(_squad_v2(16)))
    (root / "squad" / "dev-v2.0.json").write_text(json.dumps(_squad_v2(6)))
    (root / "ccg").mkdir()
    (root / "ccg" / "wsj02-21.stagged").write_text(_ccg(16))
    (root / "ccg" / "wsj00.stagged").write_text(_ccg(4, with_unseen=True))
    return root


def test_each_new_task_before_the_demo_target(tiny_model, data, tmp_path):
    systems = [[t] for t in TASKS] + [list(TASKS)]
    cfg = from_dict(
        RunConfig,
        {
            "name": "english-intermediate",
            "model": {"name_or_path": str(tiny_model), "max_length": 48},
            "threads": 1,
            "intermediate": {
                "systems": systems,
                "training": {"epochs": 1, "batch_size": 8},
            },
            "target": {
                "task": "demo_nli",
                "training": {"epochs": 1, "batch_size": 32, "max_dev_examples": 20},
                "evaluation": {"split": "test", "languages": ["en", "de"]},
            },
        },
    )
    out = tmp_path / "o"
    rows = run(cfg, data_dir=data, out_dir=out, echo=lambda s: None)
    assert set(rows["intermediate"]) == {*TASKS, "+".join(TASKS)}
    assert set(rows["language"]) == {"en", "de"}
    stages = out / "stages"
    by_system = {}
    for stage in stages.glob("intermediate-*"):
        info = json.loads((stage / "stage.json").read_text())
        by_system[tuple(sorted(info["inputs"]["tasks"]))] = stage
    assert len(by_system) == len(systems)
    # every task trained, was scored on its dev set with its own metric, and left its head
    history = {}
    for stage in by_system.values():
        for line in (stage / "rows.jsonl").read_text().splitlines():
            r = json.loads(line)
            history.setdefault(r["task"], set()).add(r["metric"])
    assert history["hellaswag"] == history["cosmosqa"] == history["commonsenseqa"] == {"accuracy"}
    assert history["ccg"] == {"accuracy"}
    assert {"f1", "exact_match", "has_ans_f1", "no_ans_f1"} <= history["squad_v2"]
    all_five = by_system[tuple(sorted(TASKS))]
    heads = json.loads((all_five / "last" / "checkpoint.json").read_text())["heads"]
    assert set(heads) == set(TASKS)
    ccg_labels = heads["ccg"]["labels"]
    # the training supertags in code-point order, then <unk>
    assert ccg_labels == ["(S[dcl]\\NP)/NP", ".", "N", "NP[nb]/N", "S[dcl]\\NP", "<unk>"]
    assert "(S\\NP)/(S\\NP)" not in ccg_labels  # only in dev: mapped to <unk>
    assert heads["commonsenseqa"]["labels"] == ["0", "1", "2", "3", "4"]
    # the target phase starts from each intermediate encoder and drops its heads
    for report_path in stages.glob("target-*/transfer_report.json"):
        report = json.loads(report_path.read_text())
        dropped = {k.split(".")[1] for k in report["dropped"] if k.startswith("heads.")}
        assert dropped and dropped <= set(TASKS)
        assert not any(k.startswith("heads.") for k in report["loaded"])
        assert any(k.startswith("encoder.") for k in report["loaded"])
    reports = [json.loads(p.read_text()) for p in stages.glob("target-*/transfer_report.json")]
    dropped_sets = sorted(
        tuple(sorted({k.split(".")[1] for k in r["dropped"] if k.startswith("heads.")}))
        for r in reports
    )
    assert dropped_sets == sorted([(t,) for t in TASKS] + [tuple(sorted(TASKS))])
