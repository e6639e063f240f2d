"""Multiple choice: COPA / XCOPA / Balanced-COPA / SIQA readers, the family, the head and the
XCOPA translation-leak check. Fixture files are written in the released layouts."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from xstilts.errors import ConfigError, DataError
from xstilts.features.choice import MultipleChoice
from xstilts.modeling.heads_choice import MultipleChoiceHead
from xstilts.tasks.base import get_task, load_split
from xstilts.tasks.choice import check_no_translation_leak
from xstilts.tasks.readers.choice import (
    ChoiceExample,
    read_copa_jsonl,
    read_copa_xml,
    read_siqa_jsonl,
    read_siqa_zip,
)

COPA_TRAIN = [
    {"premise": "My body cast a shadow over the grass.", "choice1": "The sun was rising.",
     "choice2": "The grass was cut.", "question": "cause", "label": 0, "idx": 0},
    {"premise": "The women met for coffee.", "choice1": "The cafe reopened in a new location.",
     "choice2": "They wanted to catch up with each other.", "question": "cause", "label": 1,
     "idx": 1},
]  # fmt: skip
COPA_VAL = [
    {"premise": "The man turned on the faucet.", "choice1": "The toilet filled with water.",
     "choice2": "Water flowed from the spout.", "question": "effect", "label": 1, "idx": 0},
    {"premise": "The girl found a bug in her cereal.", "choice1": "She poured milk in the bowl.",
     "choice2": "She lost her appetite.", "question": "effect", "label": 1, "idx": 1},
]  # fmt: skip
XCOPA_ET_VAL = [
    {"premise": "Mees keeras kraani lahti.", "choice1": "Tualett täitus veega.",
     "choice2": "Tilast voolas vett.", "question": "effect", "label": 1, "idx": 0,
     "changed": False},
    {"premise": "Tüdruk leidis oma helveste seest putuka.", "choice1": "Ta kallas piima kaussi.",
     "choice2": "Ta kaotas oma isu.", "question": "effect", "label": 1, "idx": 1,
     "changed": False},
]  # fmt: skip
SIQA = [
    {"context": "Tracy didn't go home that evening and resisted Riley's attacks.",
     "question": "What does Tracy need to do before this?", "answerA": "make a new plan",
     "answerB": "Go home and see Riley", "answerC": "Find somewhere to go"},
    {"context": "Sydney walked past a homeless woman asking for change.",
     "question": "How would you describe Sydney?", "answerA": "sympathetic",
     "answerB": "like a person who was unable to help", "answerC": "incredulous"},
]  # fmt: skip
BALANCED_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE copa-corpus SYSTEM "copa.dtd">
<copa-corpus  version="1.0">

  <item id="1" asks-for="cause" most-plausible-alternative="1">
    <p>My body cast a shadow over the grass.</p>
    <a1>The sun was rising.</a1>
    <a2>The grass was cut.</a2>
  </item>

  <item id="401" asks-for="effect" most-plausible-alternative="2">
    <p>The man turned on the faucet.</p>
    <a1>The toilet filled with water.</a1>
    <a2>Water flowed from the spout.</a2>
  </item>

  <item id="1401" asks-for="cause" most-plausible-alternative="1">
    <p>The bathroom sink was overflowing.</p>
    <a1>Water flowed from the spout.</a1>
    <a2> The toilet filled with water.</a2>
  </item>
</copa-corpus>
"""


def jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def siqa_zip(path: Path) -> Path:
    """The official AI2 zip, resource-fork entries included."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(r) + "\n" for r in SIQA)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("socialiqa-train-dev/", "")
        z.writestr("socialiqa-train-dev/train.jsonl", body)
        z.writestr("socialiqa-train-dev/train-labels.lst", "3\n1\n")
        z.writestr("__MACOSX/socialiqa-train-dev/._train.jsonl", b"\x00\x05\x16\x07Mac OS X")
        z.writestr("__MACOSX/socialiqa-train-dev/._train-labels.lst", b"\x00\x05\x16\x07")
        z.writestr("socialiqa-train-dev/dev.jsonl", body[: body.index("\n") + 1])
        z.writestr("socialiqa-train-dev/dev-labels.lst", "2\n")
    return path


# ----------------------------------------------------------------------------- readers


def test_xcopa_jsonl_golden(tmp_path):
    path = jsonl(tmp_path / "xcopa/data/et/val.et.jsonl", XCOPA_ET_VAL)
    loaded = load_split(get_task("xcopa"), "dev", "et", data_dir=tmp_path)
    assert loaded.source == str(path)
    assert loaded.examples == [
        ChoiceExample("et-0", "Mees keeras kraani lahti.", "What happened as a result?",
                      ("Tualett täitus veega.", "Tilast voolas vett."), "1", "et", 1),
        ChoiceExample("et-1", "Tüdruk leidis oma helveste seest putuka.",
                      "What happened as a result?",
                      ("Ta kallas piima kaussi.", "Ta kaotas oma isu."), "1", "et", 2),
    ]  # fmt: skip
    assert loaded.examples[0].first_text == "Mees keeras kraani lahti. What happened as a result?"


def test_translate_test_folder_only_when_asked(tmp_path):
    jsonl(tmp_path / "xcopa/data/et/test.et.jsonl", XCOPA_ET_VAL)
    jsonl(tmp_path / "xcopa/data-gmt/et/test.et.jsonl", COPA_VAL)
    assert load_split(get_task("xcopa"), "test", "et", data_dir=tmp_path).examples[0].context == (
        "Mees keeras kraani lahti."
    )
    mt = load_split(get_task("xcopa_translate_test"), "test", "et", data_dir=tmp_path)
    assert "data-gmt" in mt.source and mt.examples[0].context == "The man turned on the faucet."
    assert "qu" not in get_task("xcopa_translate_test").languages("test")


def test_copa_jsonl_source_items_and_unlabelled_test(tmp_path):
    jsonl(tmp_path / "copa-en/train-en.jsonl", COPA_TRAIN)
    jsonl(tmp_path / "copa-en/val-en.jsonl", COPA_VAL)
    copa = get_task("copa")
    train = load_split(copa, "train", "en", data_dir=tmp_path).examples
    val = load_split(copa, "dev", "en", data_dir=tmp_path).examples
    assert [e.source_item for e in train] == ["copa:1", "copa:2"]
    assert [e.source_item for e in val] == ["copa:401", "copa:402"]
    assert train[0].question == "What was the cause?" and train[0].label == "0"
    # SuperGLUE test files have no label (XTREME-R's have label 0 everywhere: stored as given)
    test = jsonl(
        tmp_path / "COPA/test.jsonl",
        [{k: v for k, v in r.items() if k != "label"} for r in COPA_VAL],
    )
    assert [e.label for e in read_copa_jsonl(test, language="en", split="test")] == [None, None]


def test_balanced_copa_xml(tmp_path):
    path = tmp_path / "copa-en/balanced-copa-dev-all.xml"
    path.parent.mkdir()
    path.write_text(BALANCED_XML, encoding="utf-8")
    examples = load_split(get_task("copa"), "balanced", "en", data_dir=tmp_path).examples
    assert examples == read_copa_xml(path)
    assert [(e.guid, e.label, e.question, e.line) for e in examples] == [
        ("copa:1", "0", "What was the cause?", 1),
        ("copa:401", "1", "What happened as a result?", 2),
        ("copa:1401", "0", "What was the cause?", 3),
    ]
    assert examples[2].choices == ("Water flowed from the spout.", "The toilet filled with water.")


def test_siqa_jsonl_with_labels_lst_and_v14(tmp_path):
    path = jsonl(tmp_path / "socialiqa-train-dev/dev.jsonl", SIQA)
    (tmp_path / "socialiqa-train-dev/dev-labels.lst").write_text("3\n1\n")
    examples = read_siqa_jsonl(path)
    assert examples[0] == ChoiceExample(
        "en-1",
        SIQA[0]["context"],
        SIQA[0]["question"],
        ("make a new plan", "Go home and see Riley", "Find somewhere to go"),
        "2",
        "en",
        1,
    )
    assert [e.label for e in examples] == ["2", "0"]
    v14 = jsonl(tmp_path / "siqa/socialIQa_v1.4_tst.jsonl", [dict(SIQA[0], correct="B")])
    loaded = load_split(get_task("siqa"), "test", "en", data_dir=tmp_path)
    assert loaded.source == str(v14) and loaded.examples[0].label == "1"


def test_siqa_zip_skips_macosx_entries(tmp_path):
    path = siqa_zip(tmp_path / "siqa/socialiqa-train-dev.zip")
    train = read_siqa_zip(path, split="train")
    assert [(e.context, e.label) for e in train] == [
        (SIQA[0]["context"], "2"),
        (SIQA[1]["context"], "0"),
    ]
    # through the task: train from the zip (no v1.4 train file), capped with max_examples
    loaded = load_split(get_task("siqa"), "train", "en", data_dir=tmp_path, max_examples=1)
    assert loaded.source == str(path) and len(loaded.examples) == 1
    assert [e.label for e in read_siqa_zip(path, split="dev")] == ["1"]
    with pytest.raises(
        DataError, match=r"no 'test.jsonl' in the zip \(it has \['dev.jsonl', 'train.jsonl'\]\)"
    ):
        read_siqa_zip(path, split="test")


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "change, field, needle",
    [
        ({"label": 2}, "label", "2 is not in the label set [0, 1]"),
        ({"question": "reason"}, "question", "'reason' is not one of ['cause', 'effect']"),
        ({"choice2": ""}, "choice2", "not a non-empty string"),
        ({"premise": None}, "premise", "not a non-empty string: None"),
    ],
)
def test_copa_bad_records(tmp_path, change, field, needle):
    path = jsonl(tmp_path / "val.et.jsonl", [XCOPA_ET_VAL[0], dict(XCOPA_ET_VAL[1], **change)])
    with pytest.raises(DataError) as e:
        read_copa_jsonl(path, language="et")
    assert f"val.et.jsonl:2: field '{field}'" in str(e.value) and needle in str(e.value)


def test_invalid_json_line_and_bad_lst(tmp_path):
    path = tmp_path / "val.et.jsonl"
    path.write_text(json.dumps(XCOPA_ET_VAL[0]) + "\n" + '{"premise": "x",\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"val.et.jsonl:2: invalid JSON"):
        read_copa_jsonl(path, language="et")
    d = jsonl(tmp_path / "dev.jsonl", SIQA)
    (tmp_path / "dev-labels.lst").write_text("1\n4\n")
    with pytest.raises(DataError, match=r"dev-labels.lst:2: field 'label': '4' is not 1, 2 or 3"):
        read_siqa_jsonl(d)
    (tmp_path / "dev-labels.lst").write_text("1\n")
    with pytest.raises(DataError, match="1 labels for 2 questions"):
        read_siqa_jsonl(d)
    bad_xml = tmp_path / "copa.xml"
    bad_xml.write_text(
        BALANCED_XML.replace('most-plausible-alternative="2"', 'most-plausible-alternative="3"')
    )
    with pytest.raises(
        DataError, match=r"copa.xml:2: field 'most-plausible-alternative': item id=401"
    ):
        read_copa_xml(bad_xml)
    # an encoding name expat does not know raises LookupError, not ParseError (found by fuzzing)
    bad_xml.write_text('<?xml version="1.0" encoding="I-"?>\n<copa-corpus></copa-corpus>\n')
    with pytest.raises(DataError, match=r"copa.xml:1: field 'encoding': .*unknown encoding: I-"):
        read_copa_xml(bad_xml)
    bad_zip = tmp_path / "socialiqa-train-dev.zip"
    bad_zip.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a zip file"):
        read_siqa_zip(bad_zip, split="train")


# ------------------------------------------------------------------- family and head


def test_family_encode_collate_decode_and_head(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    fam = MultipleChoice()
    examples = [
        ChoiceExample("a", "Anna bought 3 bags.", "What was the cause?", ("She had money.", "It rained."), "0", "en"),
        ChoiceExample("b", "Tom sold 5 cups in Berlin today.", "What happened as a result?", ("He got rich.", "No."), None, "de"),
    ]  # fmt: skip
    feats = fam.encode(examples, tok, max_length=12, labels=("0", "1"))
    assert len(feats) == 2 and feats.labels.tolist() == [0, -100]
    assert all(len(c) <= 12 for q in feats.input_ids for c in q)
    pair = tok(examples[0].first_text, "It rained.", truncation=True, max_length=12)["input_ids"]
    assert feats.input_ids[0][1] == pair
    assert feats.lengths.tolist() == [max(len(c) for c in q) for q in feats.input_ids]
    batch = fam.collate(feats, [1, 0], tok.pad_token_id)
    assert batch["input_ids"].shape[0] == 4 and int(batch["num_choices"]) == 2
    assert batch["input_ids"][2, : len(feats.input_ids[0][0])].tolist() == feats.input_ids[0][0]
    assert batch["labels"].tolist() == [-100, 0]
    torch.manual_seed(0)
    head = MultipleChoiceHead(16, 2, 0.0)
    hidden = torch.randn(4, batch["input_ids"].shape[1], 16)
    scores = head(hidden, batch["attention_mask"], num_choices=batch["num_choices"])
    assert scores.shape == (2, 2)
    # row b * n + c of the flat batch is choice c of question b
    flat = head.out_proj(torch.tanh(head.dense(hidden[:, 0]))).squeeze(-1)
    assert torch.allclose(scores.flatten(), flat)
    assert fam.decode(
        feats, [np.array([0.1, 0.9]), np.array([2.0, -1.0])], examples, ("0", "1")
    ) == ["1", "0"]
    with pytest.raises(DataError, match="has 2 choices but the task has 3"):
        fam.encode(examples, tok, max_length=12, labels=("0", "1", "2"))
    with pytest.raises(ConfigError, match="choice indices"):
        fam.encode(examples, tok, max_length=12, labels=("a", "b"))


# ------------------------------------------------------------------------- leak check


def test_translation_leak_check(tmp_path):
    jsonl(tmp_path / "copa-en/train-en.jsonl", COPA_TRAIN)
    val_path = jsonl(tmp_path / "copa-en/val-en.jsonl", COPA_VAL)
    (tmp_path / "copa-en/balanced-copa-dev-all.xml").write_text(BALANCED_XML)
    copa = get_task("copa")
    train = load_split(copa, "train", "en", data_dir=tmp_path).examples
    val = load_split(copa, "dev", "en", data_dir=tmp_path).examples
    balanced = load_split(copa, "balanced", "en", data_dir=tmp_path).examples
    ok = {"target train": train, "target dev": []}
    check_no_translation_leak("xcopa", "dev", ok, data_dir=tmp_path)
    # COPA val as the English dev set is fine for XCOPA test, refused for XCOPA val
    check_no_translation_leak("xcopa", "test", {"target dev": val}, data_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"target dev contains an English copa dev item \(line 1"):
        check_no_translation_leak("xcopa", "dev", {**ok, "target dev": val}, data_dir=tmp_path)
    # Balanced-COPA: the val item (401) and its mirror (1401) leak, item 1 does not
    for item in balanced[1:]:
        with pytest.raises(ConfigError, match="Balanced-COPA mirror"):
            check_no_translation_leak(
                "xcopa_translate_test", "dev", {"intermediate": [item]}, data_dir=tmp_path
            )
    check_no_translation_leak("xcopa", "dev", {"intermediate": balanced[:1]}, data_dir=tmp_path)
    # COPA val renamed and read as a training split is caught by content (ids say train)
    disguised = read_copa_jsonl(val_path, language="en", split="train")
    assert disguised[0].source_item == "copa:1"
    with pytest.raises(ConfigError, match="target train"):
        check_no_translation_leak("xcopa", "dev", {"target train": disguised}, data_dir=tmp_path)
    # without the English text the ids still catch COPA val and the mirrors
    with pytest.raises(ConfigError):
        check_no_translation_leak("xcopa", "dev", {"x": [balanced[2]]}, data_dir=tmp_path / "none")
    # other targets are not concerned
    check_no_translation_leak("xquad", "test", {"target dev": val}, data_dir=tmp_path)
