"""grid plan --estimate from the grid file alone; the recipes parse; xstilts bench."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from xstilts.cli import main
from xstilts.config import ModelSelection, TrainConfig
from xstilts.grid import load_grid, sizes
from xstilts.grid.estimate import Throughput, _training, estimate, estimate_text

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "recipes"
PHANG = RECIPES / "phang2020-xstilts-xlmr-large.yaml"


def test_phang_recipe_estimate_without_data(capsys):
    spec = load_grid(PHANG)
    assert spec.data_dir is None  # nothing to read: the estimate needs no data
    est = estimate(spec)
    k = est.kinds
    # 9 intermediate systems x 1 seed; 7 trainable targets x 10 systems; 9 targets x 10
    assert (k["intermediate"].stages, k["target"].stages, k["zero_shot"].stages) == (9, 70, 90)
    assert k["mlm"].stages == 0
    # ANLI+ alone: 16,946 + 45,460 + 100,459 + 392,702 + 550,152 examples
    assert k["intermediate"].examples >= 1_105_719
    assert "ccg/train/en" in est.unknown and "udpos/train/en" not in est.unknown
    assert "panx/test/de" not in est.unknown and "udpos/test/de" in est.unknown
    assert "mnli/dev_matched/en" not in est.unknown
    assert all(c.gpu_hours > 0 for c in k.values() if c.stages)
    # 560M parameters x 16 bytes (fp32 weights, grads, Adam) is the floor of the peak
    peak, line = est.memory["xlmr-large"]
    assert peak > 16 * 560e6 and "activations" in line
    # disk: every intermediate and target stage keeps last/ and best/ (all select on dev)
    ckpt = 4 * 560e6
    assert k["target"].disk == pytest.approx(70 * 2 * ckpt)

    assert main(["grid", "plan", str(PHANG), "--estimate"]) == 0
    out = capsys.readouterr().out
    assert "total" in out and "GPU-h" in out and "unknown sizes" in out and "ROUGH" in out


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("task", "split"), [("udpos", "test"), ("udpos", "dev"), ("panx", "dev"), ("tydiqa", "dev")]
)
def test_counted_sizes_equal_the_shared_files(shared_data, task, split):
    """The per-language sizes counted from the shared data are what the readers read."""
    from xstilts.errors import MissingDataError
    from xstilts.tasks.base import get_task, load_split

    spec = get_task(task)
    checked = 0
    big = 0  # PAN-X: every 10,000-sentence language reads ~1 s; three of them stand for all
    for lang in spec.languages(split):
        known = sizes.EXAMPLES.get((task, split, lang))
        if known is None or (task == "panx" and known == 10_000 and (big := big + 1) > 3):
            continue
        try:
            got = load_split(spec, split, lang, data_dir=shared_data)
        except MissingDataError:  # no shared file for this language (offline): nothing to compare
            continue
        assert len(got.examples) == known, f"{task}/{split}/{lang}: {got.source}"
        checked += 1
    # every counted language has its shared file (UD-POS dev: English only)
    assert (
        checked
        == {"udpos/test": 37, "udpos/dev": 1, "panx/dev": 22, "tydiqa/dev": 9}[f"{task}/{split}"]
    )


def test_steps_follow_the_training_loop():
    # training/loop.py: ceil(epochs * ceil(sum_t ceil(n_t / batch) / grad_accum))
    tc = TrainConfig(epochs=3, batch_size=4, grad_accum=1, selection=ModelSelection.LAST)
    tput = Throughput("t", {128: 1000.0})
    c = _training({"mnli": (392_702, 0)}, tc, 128, tput, 10.0)
    assert c.steps == 3 * math.ceil(392_702 / 4)
    assert c.disk == 10.0  # last/ only
    tc2 = TrainConfig(epochs=2, batch_size=4, grad_accum=8, max_dev_examples=100)
    two = _training({"a": (1001, 50), "b": (7, 50)}, tc2, 128, tput, 1.0)
    assert two.steps == 2 * math.ceil((math.ceil(1001 / 4) + math.ceil(7 / 4)) / 8)
    assert two.disk == 2.0  # best/ and last/
    fixed = _training({"a": (1001, 0)}, TrainConfig(max_steps=17), 128, tput, 1.0)
    assert fixed.steps == 17
    # GPU-hours scale with the tokens: twice the epochs, twice the training time
    one_ep = _training({"mnli": (1000, 0)}, TrainConfig(epochs=1, max_dev_examples=0), 128, tput, 0)
    two_ep = _training({"mnli": (1000, 0)}, TrainConfig(epochs=2, max_dev_examples=0), 128, tput, 0)
    assert two_ep.gpu_hours == pytest.approx(2 * one_ep.gpu_hours)


def test_every_recipe_parses_and_estimates():
    files = sorted(RECIPES.glob("*.yaml"))
    assert len(files) >= 2
    for f in files:
        text = estimate_text(estimate(load_grid(f), gpu="h100"))
        assert "total" in text, f


def test_unknown_gpu_is_one_line_error(capsys):
    assert main(["grid", "plan", str(PHANG), "--estimate", "--gpu", "abacus"]) == 2
    assert "abacus" in capsys.readouterr().err


def test_bench_table_feeds_the_estimate(tiny_model, tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["bench", "--model", str(tiny_model), "--lengths", "16,32", "--batch-size", "2"]
    assert (
        main([*args, "--steps", "1", "--warmup", "0", "--device", "cpu", "--output", str(out)]) == 0
    )
    table = json.loads(out.read_text())
    assert table["model"] == str(tiny_model)
    assert [e["seq_len"] for e in table["entries"]] == [16, 32]
    assert all(e["train_tokens_per_s"] > 0 for e in table["entries"])
    grid = tmp_path / "g.yaml"
    grid.write_text(
        f"name: g\nmodels: [{tiny_model}]\nintermediate: {{systems: [[], [mnli]]}}\n"
        "targets: [xnli]\n"
    )
    spec = load_grid(grid)
    est = estimate(spec, throughput=[out])
    assert any("measured" in n for n in est.notes)
    assert est.kinds["intermediate"].gpu_hours > 0
    # the shape of a local model comes from its config.json
    assert est.memory[str(tiny_model)][0] > 0
    assert sizes.examples("xnli", "test", "de") == 5010
