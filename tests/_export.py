"""Export builders and checks shared by the pipeline and results tests.

- ``RECORDS``: hand-made zero-shot prediction records for every scored task (and one with no
  scorer), with the expected official score derived in a comment beside each;
- ``write_stage``: a synthetic finished zero-shot stage holding such records;
- ``check_export``: a run's xtreme-layout export rescores to exactly the run's own rows.
"""

from __future__ import annotations

import json
from pathlib import Path

from xstilts.results.score import score_file
from xstilts.results.store import load_rows


def check_export(out: Path, *, labelled: bool = True) -> list[dict]:
    """Rescore every exported language file of ``out/xtreme`` with ``xstilts score``'s scorer and
    compare with the zero-shot rows of the same stage; return the manifest's file entries."""
    manifest = json.loads((out / "xtreme" / "manifest.json").read_text())
    rows = load_rows(out / "stages")
    compared = 0
    for f in manifest["files"]:
        sub = out / "xtreme" / f["submission"]
        pred = sub / "predictions" / f["task"] / f["file"]
        gold = sub / "labels" / f["task"] / f["file"]
        assert pred.is_file() and f["file"] == f"test-{f['language']}.{pred.suffix[1:]}"
        assert gold.is_file() == f["labels"] == labelled
        if not labelled:
            continue
        mine = rows[
            (rows["stage_key"] == f["stage_key"])
            & (rows["task"] == f["task"])
            & (rows["language"] == f["language"])
        ]
        want = dict(zip(mine["metric"], mine["value"]))
        got = score_file(f["task"], f["language"], pred, gold, strict=True)
        shared = set(want) & set(got)
        assert shared, (f, want, got)
        for metric in shared:
            assert abs(got[metric] - want[metric]) < 1e-9, (f, metric, got[metric], want[metric])
            compared += 1
    assert manifest["files"] and (compared > 0 or not labelled)
    return manifest["files"]


E, N, C = "entailment", "neutral", "contradiction"
RECORDS = {
    # 2 of 4 right -> 50.0
    ("xnli", "test", "de"): [
        {"guid": "de-1", "pred": E, "gold": E},
        {"guid": "de-2", "pred": N, "gold": N},
        {"guid": "de-3", "pred": C, "gold": N},
        {"guid": "de-4", "pred": E, "gold": C},
    ],
    # 2 of 3 right -> 66.67
    ("xcopa", "test", "et"): [
        {"guid": "et-0", "pred": "1", "gold": "1"},
        {"guid": "et-1", "pred": "0", "gold": "1"},
        {"guid": "et-2", "pred": "1", "gold": "1"},
    ],
    # PER found, LOC missed: precision 1/1, recall 1/2 -> F1 66.67
    ("panx", "dev", "de"): [
        {"guid": "de-1", "pred": ["B-PER", "I-PER", "O"], "gold": ["B-PER", "I-PER", "O"]},
        {"guid": "de-2", "pred": ["O"], "gold": ["B-LOC"]},
    ],
    # evaluate.py's seqeval-over-POS quirk: NOUN NOUN is one chunk, NOUN VERB two -> F1 0
    ("udpos", "test", "fr"): [{"guid": "fr-1", "pred": ["NOUN", "VERB"], "gold": ["NOUN", "NOUN"]}],
    # official direction en2xx: 0 and 2 right of 0, 1, 2 -> 66.67 (xx2en would give 100)
    ("tatoeba", "test", "fr"): [
        {"guid": "fr-1", "en2xx": 0, "xx2en": 0, "gold": 0},
        {"guid": "fr-2", "en2xx": 2, "xx2en": 1, "gold": 1},
        {"guid": "fr-3", "en2xx": 2, "xx2en": 2, "gold": 2},
    ],
    # predicted {a-x, b-y}, gold {a-x, c-z}: precision 1/2, recall 1/2 -> F1 50
    ("bucc2018", "test", "de"): [
        {"src": "de-1", "trg": "en-1", "score": 1.2, "pred": True, "gold": True},
        {"src": "de-2", "trg": "en-2", "score": 1.1, "pred": True, "gold": False},
        {"src": "de-3", "trg": "en-3", "score": None, "pred": False, "gold": True},
    ],
    # gold at rank 2 and rank 1 -> MAP@20 (1/2 + 1) / 2 = 75
    ("mewslix", "test", "es"): [
        {"guid": "m1", "pred": ["Q1", "Q2"], "gold": "Q2"},
        {"guid": "m2", "pred": ["Q3"] + [f"Q{i}" for i in range(10, 40)], "gold": "Q3"},
    ],
    # "Paris" = "paris"; "the cat" vs "a dog" share nothing after normalising -> EM 50, F1 50
    ("xquad", "test", "de"): [
        {"guid": "q1", "question": "Wo?", "pred": "Paris", "gold": ["paris"]},
        {"guid": "q2", "question": "Was?", "pred": "the cat", "gold": ["a dog"]},
    ],
    # MLQA's German articles ("der") are dropped: "der Hund" = "Hund" -> EM 100, F1 100
    ("mlqa", "dev", "de"): [{"guid": "m1", "pred": "der Hund", "gold": ["Hund"]}],
    # the shared TyDiQA-GoldP dev copies: gold stripped -> predictions only
    ("tydiqa", "dev", "sw"): [{"guid": "t1", "pred": "x", "gold": None}],
    # no evaluate.py scorer -> skipped
    ("lareqa", "test", "de"): [{"guid": "l1", "pred": ["a"], "gold": ["a"]}],
}


def write_stage(
    root: Path, key: str, records: dict, *, system="none", seed=0, target=None, run="r"
) -> Path:
    """A finished zero-shot stage ``root/stages/zero_shot-<key>``: one row naming the run,
    model "org/enc", ``system`` and ``seed``, and one prediction file per
    ``(task, split, language): records`` item."""
    stage = root / "stages" / f"zero_shot-{key}"
    (stage / "predictions").mkdir(parents=True)
    row = {"run": run, "stage": "zero_shot", "stage_key": key, "model": "org/enc",
           "intermediate": system, "seed": seed, "target": target}  # fmt: skip
    (stage / "rows.jsonl").write_text(json.dumps(row) + "\n")
    for (task, split, lang), recs in records.items():
        text = "".join(json.dumps(r) + "\n" for r in recs)
        (stage / "predictions" / f"{task}.{split}.{lang}.jsonl").write_text(text)
    return stage
