"""Model selection modes: last, best English dev, weight averaging, target-dev oracle."""

from pathlib import Path

import pytest
import torch

from xstilts.config import RunConfig, from_dict
from xstilts.errors import ConfigError
from xstilts.modeling.hf_format import read_state
from xstilts.pipeline.run import oracle_halves, plan_run, run


@pytest.fixture
def xnli_like(demo_data: Path, tmp_path: Path) -> Path:
    """XTREME-layout XNLI dev/test files for en and de, built from the generated demo data."""
    d = tmp_path / "data"
    (d / "xtreme-xnli").mkdir(parents=True)
    for lang in ("en", "de"):
        lines = (demo_data / "demo-nli" / f"test-{lang}.tsv").read_text(encoding="utf-8")
        (d / "xtreme-xnli" / f"dev-{lang}.tsv").write_text(lines, encoding="utf-8")
        (d / "xtreme-xnli" / f"test-{lang}.tsv").write_text(lines, encoding="utf-8")
    (d / "demo-nli").mkdir()
    for name in ("train-en.tsv", "dev-en.tsv"):
        (d / "demo-nli" / name).write_text(
            (demo_data / "demo-nli" / name).read_text(encoding="utf-8")
        )
    return d


def _cfg(model, selection, split="test", train=None):
    return from_dict(
        RunConfig,
        {
            "name": "sel",
            "model": {"name_or_path": str(model), "max_length": 32},
            "target": {
                "task": "xnli",
                "data": {
                    "train": train or {"task": "demo_nli", "split": "train"},
                    "dev": {"task": "demo_nli", "split": "dev"},
                },
                "training": {
                    "epochs": 2,
                    "batch_size": 32,
                    "eval_every": 2,
                    "lr": 1e-3,
                    "selection": selection,
                    "keep_periodic": True,
                },
                "evaluation": {"split": split, "languages": ["en", "de"]},
            },
        },
    )


def test_average_is_the_mean_of_the_evaluated_checkpoints(tiny_model, xnli_like, tmp_path):
    run(
        _cfg(tiny_model, "average"), data_dir=xnli_like, out_dir=tmp_path / "o", echo=lambda s: None
    )
    tgt = next((tmp_path / "o" / "stages").glob("target-*"))
    steps = sorted(tgt.glob("step-*"))
    assert [p.name for p in steps] == ["step-10", "step-2", "step-4", "step-6", "step-8"]
    key = "heads.xnli.out_proj.weight"
    mean = torch.stack([read_state(p)[key].double() for p in steps]).mean(0)
    avg = read_state(tgt / "average")[key]
    assert torch.allclose(avg.double(), mean, atol=1e-6)


def test_oracle_selects_per_language_on_dev_a_and_reports_elsewhere(
    tiny_model, xnli_like, tmp_path
):
    rows = run(
        _cfg(tiny_model, "oracle_target_dev", split="dev"),
        data_dir=xnli_like,
        out_dir=tmp_path / "o",
        echo=lambda s: None,
    )
    assert set(rows["split"]) == {"dev_b"}
    assert (rows["n_examples"] == len(oracle_halves(30)[1])).all()
    for p in rows["protocol"]:
        assert (
            p["oracle"] is True
            and p["selected_on"] == "dev_a"
            and p["selected_step"] in {2, 4, 6, 8, 10}
        )
    from xstilts.results.store import load_rows

    hist = load_rows(tmp_path / "o")
    sel = hist[(hist["stage"] == "target") & (hist["split"] == "dev_a")]
    assert set(sel["language"]) == {"en", "de"} and (sel["n_examples"] == 15).all()


def test_oracle_refuses_to_select_on_translations_of_training_data(tiny_model, xnli_like, tmp_path):
    cfg = _cfg(tiny_model, "oracle_target_dev", train={"task": "xnli", "split": "dev"})
    with pytest.raises(ConfigError, match="translations of the training data"):
        plan_run(cfg, data_dir=xnli_like, out_dir=tmp_path / "o")
