"""The in-process caches of a stage's fixed costs are invisible to results, and never shared
mutably; stage directories are durable before they are published."""

import json
import os
import pickle
import shutil
import struct
from pathlib import Path

import pytest
import torch

from xstilts import caching
from xstilts.features import cache as features_cache
from xstilts.features.base import family_for
from xstilts.grid import run_grid
from xstilts.grid.spec import parse_grid
from xstilts.modeling import cache as model_cache
from xstilts.modeling.model import (
    HeadInfo,
    MultiTaskModel,
    load_checkpoint,
    load_checkpoint_state,
    load_encoder,
    save_checkpoint,
)
from xstilts.pipeline import stages
from xstilts.tasks.base import HeadKind
from xstilts.tasks.examples import PairExample

TRAIN = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "eval_batch_size": 64}
CLS = HeadKind.SEQUENCE_CLASSIFICATION
LABELS = ("entailment", "neutral", "contradiction")


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch):
    n = torch.get_num_threads()
    monkeypatch.delenv(caching.ENV, raising=False)
    caching.clear_all()
    yield
    caching.clear_all()
    torch.set_num_threads(n)


def _quiet(msg: str) -> None:
    pass


@pytest.fixture
def data(demo_data: Path, tmp_path: Path) -> Path:
    """The demo data plus XTREME-layout XNLI dev/test files for en and de (oracle selection
    needs target-language dev sets), as in ``test_selection.py``."""
    d = tmp_path / "data"
    shutil.copytree(demo_data, d)
    (d / "xtreme-xnli").mkdir()
    for lang in ("en", "de"):
        lines = (demo_data / "demo-nli" / f"test-{lang}.tsv").read_text(encoding="utf-8")
        for split in ("dev", "test"):
            (d / "xtreme-xnli" / f"{split}-{lang}.tsv").write_text(lines, encoding="utf-8")
    return d


def _grid(model: Path, data: Path) -> dict:
    """Intermediate transfer, a target scoring target-language dev sets at each evaluation, an
    oracle target (step checkpoints, dev halves), two seeds: every cached path."""
    every = {**TRAIN, "eval_every": 5}
    xnli_data = {
        "train": {"task": "demo_nli", "split": "train"},
        "dev": {"task": "demo_nli", "split": "dev"},
    }
    return {
        "name": "g",
        "models": [{"name": "tiny", "name_or_path": str(model), "max_length": 32}],
        "data_dir": str(data),
        "threads": 1,
        # another max_length than the targets': tokenizer state must not leak across stages
        "intermediate": {"systems": [[], ["demo_inter"]], "training": TRAIN,
                         "data": {"demo_inter": {"max_length": 24}}},
        "targets": [
            {"name": "best", "task": "demo_nli",
             "training": {**every, "target_dev_each_eval": True},
             "evaluation": {"max_examples": 12}},
            {"name": "oracle", "task": "xnli", "data": xnli_data,
             "training": {**every, "selection": "oracle_target_dev", "keep_periodic": True},
             "evaluation": {"languages": ["en", "de"], "max_examples": 12}},
        ],
        "seeds": [1, 2],
    }  # fmt: skip


def _tree(root: Path) -> dict[str, bytes]:
    """Every file of a grid's stages, with the only run-dependent fields taken out: the wall
    clock of a row's write and a stage's wall and CPU seconds (and the order of a safetensors
    header, which differs between two runs without caches too)."""
    out = {}
    for f in sorted((root / "stages").rglob("*")):
        rel = str(f.relative_to(root / "stages"))
        if not f.is_file() or rel.startswith("."):
            continue
        data = f.read_bytes()
        if f.name == "rows.jsonl":
            rows = [json.loads(line) for line in data.decode().splitlines()]
            data = "\n".join(json.dumps({**r, "time": None}, sort_keys=True) for r in rows).encode()
        elif f.suffix == ".safetensors":  # its metadata map is written in hash order
            n = struct.unpack("<Q", data[:8])[0]
            header = json.dumps(json.loads(data[8 : 8 + n]), sort_keys=True).encode()
            data = header + data[8 + n :]
        elif f.name == stages.STAGE_FILE:
            info = json.loads(data)
            # the recorded hashes of the files above whose bytes are run-dependent
            for name, meta in info["integrity"]["files"].items():
                if name.endswith((".safetensors", "rows.jsonl")):
                    meta.pop("sha256")
            data = json.dumps({**info, "wall_s": None, "cpu_s": None}, sort_keys=True).encode()
        out[rel] = data
    return out


def test_grid_with_caches_is_byte_identical_to_one_without(tiny_model, data, tmp_path, monkeypatch):
    spec = parse_grid(_grid(tiny_model, data))
    monkeypatch.setenv(caching.ENV, "0")
    _, stats = run_grid(spec, tmp_path / "off", echo=_quiet)
    assert not stats.failed
    assert all(s["hits"] == s["misses"] == 0 for s in caching.stats().values())

    monkeypatch.delenv(caching.ENV)
    _, stats = run_grid(spec, tmp_path / "on", echo=_quiet)
    assert not stats.failed
    used = caching.stats()
    for name in ("tokenizers", "modules", "features", "checkpoint layouts"):
        assert used[name]["hits"] > 0, (name, used)

    off, on = _tree(tmp_path / "off"), _tree(tmp_path / "on")
    assert off.keys() == on.keys()  # the same stages (keys) and files
    assert any(k.endswith(".jsonl") and "/predictions/" in k for k in on)
    assert any(k.endswith("tokenizer.json") for k in on)  # checkpoints compared too
    differ = [k for k in off if off[k] != on[k]]
    assert not differ, differ[:5]


def _examples(n: int = 12) -> list[PairExample]:
    return [
        PairExample(f"g{i}", f"a cat number {i} sleeps", "an animal rests", LABELS[i % 3], "en", i)
        for i in range(n)
    ]


def test_cached_features_are_equal_and_never_shared(tiny_model):
    _, tok = load_encoder(str(tiny_model))
    fam = family_for(CLS)
    ex = _examples()
    fresh = fam.encode(ex, tok, max_length=16, labels=LABELS)
    first = features_cache.encode(fam, ex, tok, max_length=16, labels=LABELS)  # miss
    second = features_cache.encode(fam, list(ex), tok, max_length=16, labels=LABELS)  # hit
    assert caching.stats()["features"]["hits"] == 1
    assert pickle.dumps(first) == pickle.dumps(fresh) == pickle.dumps(second)
    assert first is not second and first.input_ids[0] is not second.input_ids[0]

    before = pickle.dumps(second)
    first.input_ids[0].append(999)  # a stage mutating its features ...
    first.labels[0] = 2
    second.input_ids.clear()
    third = features_cache.encode(fam, ex, tok, max_length=16, labels=LABELS)
    assert pickle.dumps(third) == before  # ... is seen by no other stage

    # other examples, length or labels: other entries
    features_cache.encode(fam, ex[:5], tok, max_length=16, labels=LABELS)
    features_cache.encode(fam, ex, tok, max_length=8, labels=LABELS)
    assert caching.stats()["features"]["misses"] == 3


def test_features_cache_replays_tokenizer_state_and_ignores_foreign_tokenizers(tiny_model):
    from transformers import AutoTokenizer

    _, tok = load_encoder(str(tiny_model))
    fam = family_for(CLS)
    features_cache.encode(fam, _examples(), tok, max_length=16, labels=LABELS)
    left = tok.backend_tokenizer.truncation
    assert left is not None and left["max_length"] == 16  # what save_pretrained would write
    _, tok2 = load_encoder(str(tiny_model))
    assert tok2 is tok and tok.backend_tokenizer.truncation is None  # reset as loaded
    features_cache.encode(fam, _examples(), tok, max_length=16, labels=LABELS)  # a hit
    assert tok.backend_tokenizer.truncation == left

    other = AutoTokenizer.from_pretrained(tiny_model)  # not from the cache: not cached
    features_cache.encode(fam, _examples(), other, max_length=16, labels=LABELS)
    assert caching.stats()["features"]["hits"] == 1


def test_cached_encoders_are_fresh_copies(tiny_model, monkeypatch):
    a, _ = load_encoder(str(tiny_model))
    b, _ = load_encoder(str(tiny_model))
    assert a is not b and caching.stats()["modules"]["hits"] == 1
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert all(torch.equal(pa[k], pb[k]) and pa[k].data_ptr() != pb[k].data_ptr() for k in pa)
    with torch.no_grad():
        a.embeddings.word_embeddings.weight.add_(1.0)  # training one stage's copy ...
    c, _ = load_encoder(str(tiny_model))
    assert torch.equal(c.embeddings.word_embeddings.weight, pb["embeddings.word_embeddings.weight"])
    assert a.training == b.training == c.training  # as from_pretrained left it

    monkeypatch.setenv(model_cache.MODEL_CACHE_ENV, "0")
    caching.clear_all()
    load_encoder(str(tiny_model))
    load_encoder(str(tiny_model))
    assert caching.stats()["modules"]["hits"] == 0  # over budget: loaded from disk each time


def test_checkpoint_state_matches_the_built_model(tiny_model, tmp_path):
    enc, tok = load_encoder(str(tiny_model))
    heads = {"mlm": HeadInfo(HeadKind.MASKED_LM, ()), "xnli": HeadInfo(CLS, LABELS)}
    model = MultiTaskModel(enc, heads, 0.1)  # the masked-LM head ties the input embeddings
    save_checkpoint(model, tok, tmp_path / "ck", {"step": 3})
    for _ in range(2):  # learnt layout, then from the cache
        want = load_checkpoint(tmp_path / "ck", tokenizer=False)[0].state_dict()
        got = load_checkpoint_state(tmp_path / "ck")
        assert list(got) == list(want)
        assert all(torch.equal(got[k], want[k]) and got[k].dtype == want[k].dtype for k in want)
    assert caching.stats()["checkpoint layouts"]["hits"] == 1


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads fd paths from /proc")
def test_published_stage_was_fsynced_before_the_rename(tmp_path, monkeypatch):
    synced: set[str] = set()
    real_fsync, real_replace = os.fsync, os.replace
    published = []

    def fsync(fd: int) -> None:
        synced.add(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(src, dst) -> None:
        src = Path(src)
        if src.name.startswith(stages.TMP_PREFIX):
            files = {str(p) for p in src.rglob("*")} | {str(src)}
            published.append(files - synced)  # what was not durable at publishing
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)

    def work(tmp: Path) -> dict:
        (tmp / "predictions").mkdir()
        (tmp / "predictions" / "a.jsonl").write_text("{}\n")
        (tmp / "weights.bin").write_bytes(b"\0" * 1000)
        return {}

    stage = stages.make_stage("zero_shot", {"x": 1}, tmp_path)
    stages.run_stage(stage, work, settings=None)
    assert stage.done and published == [set()]
