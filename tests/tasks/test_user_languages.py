"""Languages are data: a language outside a task's table is evaluated when the config gives its
file, its rows say so (and official averages leave it out), and files of languages a run was
not asked to evaluate are named in one line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from xstilts.config import EvalConfig, MissingPolicy, RunConfig, from_dict
from xstilts.errors import ConfigError
from xstilts.pipeline import run as run_mod
from xstilts.pipeline.data import eval_data, language_protocol
from xstilts.tasks.base import get_task


def _tatoeba(root: Path, code: str, n: int = 3) -> Path:
    d = root / "tatoeba/v1"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"tatoeba.{code}-eng.{code}").write_text(
        "".join(f"{code} sentence {i}\n" for i in range(n)), encoding="utf-8"
    )
    (d / f"tatoeba.{code}-eng.eng").write_text(
        "".join(f"english sentence {i}\n" for i in range(n)), encoding="utf-8"
    )
    return d / f"tatoeba.{code}-eng.{code}"


def test_language_outside_the_table_is_evaluated_with_its_file(tmp_path):
    spec = get_task("tatoeba")
    _tatoeba(tmp_path, "deu")
    cat = _tatoeba(tmp_path, "cat")
    # was: "task 'tatoeba' split 'test' has no language 'xyz'"
    ev = EvalConfig(languages=("de", "xyz"), paths={"xyz": "tatoeba/v1/tatoeba.cat-eng.cat"})
    data = eval_data(spec, ev, tmp_path)
    assert set(data) == {"de", "xyz"}
    assert data["xyz"].examples[0].source == "cat sentence 0"
    assert data["xyz"].source == str(cat)
    assert language_protocol(spec, ev, "xyz") == {
        "outside_benchmark": "xtreme-r",
        "user_language": True,
    }
    assert language_protocol(spec, ev, "de") == {}
    # a LASER language of the task's table that XTREME-R's table lacks
    assert language_protocol(spec, ev, "cat") == {"outside_benchmark": "xtreme-r"}
    # without evaluation.languages: the benchmark's table plus the languages given by file
    ev_all = EvalConfig(paths={"xyz": str(cat)}, missing=MissingPolicy.SKIP)
    assert set(eval_data(spec, ev_all, tmp_path)) == {"de", "xyz"}
    with pytest.raises(ConfigError, match="'X!' is not a language code"):
        eval_data(spec, EvalConfig(languages=("X!",), paths={"X!": str(cat)}), tmp_path)
    with pytest.raises(ConfigError, match="has no language 'xyz'"):
        eval_data(spec, EvalConfig(languages=("xyz",)), tmp_path)  # no file: still refused


def test_files_of_languages_not_evaluated_are_named_in_one_line(tmp_path, caplog):
    spec = get_task("tatoeba")
    for code in ("deu", "fra", "cat", "epo"):
        _tatoeba(tmp_path, code)
    with caplog.at_level(logging.WARNING, logger="xstilts.pipeline.data"):
        eval_data(spec, EvalConfig(languages=("de",)), tmp_path)
    (record,) = [r for r in caplog.records if "not evaluated" in r.getMessage()]
    message = record.getMessage()
    assert "3 more language(s) have files" in message and "\n" not in message
    assert message.endswith("fr cat epo")


def test_rows_of_a_user_language_say_so(tiny_model, demo_data, tmp_path):
    cfg = from_dict(
        RunConfig,
        {
            "name": "user-lang",
            "model": {"name_or_path": str(tiny_model), "max_length": 48},
            "target": {
                "task": "demo_nli",
                "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3},
                "evaluation": {
                    "languages": ["de", "xx"],
                    "paths": {"xx": str(demo_data / "demo-nli/test-de.tsv")},
                },
            },
            "seeds": [0],
        },
    )
    rows = run_mod.run(cfg, data_dir=demo_data, out_dir=tmp_path / "run", echo=lambda s: None)
    by_lang = {r["language"]: r["protocol"] for _, r in rows.iterrows()}
    assert by_lang["xx"]["user_language"] is True
    assert "user_language" not in by_lang["de"]


def test_official_average_leaves_a_user_language_out():
    import pandas as pd

    from xstilts.analysis.summary import paper_table
    from xstilts.tasks.languages import XTREME_R, Benchmark

    langs = list(XTREME_R["xcopa"]) + ["xyz"]
    scores = pd.DataFrame(
        {
            "task": "xcopa",
            "language": langs,
            "system": "none",
            "score": [50.0] * len(XTREME_R["xcopa"]) + [0.0],
        }
    )
    table, notes = paper_table(scores, benchmark=Benchmark.XTREME_R, baseline="none")
    assert table.loc["xcopa", "none"] == 50.0  # the 0.0 of xyz is not averaged in
    assert any("xyz" in n and "left out of the average" in n for n in notes)
