"""Zero-shot evaluation of the retrieval tasks, every language of a stage at once.

The pipeline's zero-shot stage calls :func:`prepare` while planning (before any training, so
a missing BUCC sample split or a gold entity outside the Mewsli-X pool stops the run before
anything is written) and :func:`evaluate` with the stage's model. Rows come back as
:class:`ScoredRow` (language, metric, value, protocol additions); the stage adds the rest.

* Tatoeba: nearest neighbour both ways per language (``accuracy`` = English queries over the
  other language, the direction of xtreme's published number; ``accuracy_xx2en`` beside it).
* BUCC: margin mining per language; the threshold is chosen on the sample (dev) split and
  applied to the evaluated split (or chosen on the split itself when that is dev).
* Layer sweep / oracle: every layer is encoded in the same pass; sweep rows carry the metric
  name suffixed ``@layerN``; oracle rows use the layer of best mean primary score.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from xstilts.config import EvalConfig, LayerSelection, ModelConfig, RetrievalConfig
from xstilts.errors import ConfigError, DataError
from xstilts.pipeline import evaluate_dual as dual
from xstilts.retrieval import bucc
from xstilts.retrieval.encode import Encoder, num_hidden_layers
from xstilts.retrieval.layers import Representation, resolve
from xstilts.retrieval.search import nearest, normalize
from xstilts.retrieval.types import Aux, Outcome, ScoredRow
from xstilts.tasks.base import (
    HeadKind,
    LoadedSplit,
    RetrievalEval,
    TaskSpec,
    file_fingerprint,
    load_split,
)


def mode(spec: TaskSpec) -> RetrievalEval:
    """How ``spec`` is evaluated: its ``retrieval`` field, else its head kind's default."""
    if spec.retrieval is not None:
        return spec.retrieval
    return RetrievalEval.POOLED if spec.head is HeadKind.DUAL_ENCODER else RetrievalEval.NEAREST


# --------------------------------------------------------------------------- planning


def _bucc_dev_path(path: Path) -> Path:
    """The sample split beside an explicit test file (released or XTREME naming)."""
    name = re.sub(r"\.training\.", ".sample.", path.name)
    if name == path.name:
        name = re.sub(r"\.test\.", ".dev.", path.name)
    if name == path.name:
        raise DataError(path, "cannot tell the sample (dev) split's file from this name")
    return path.with_name(name)


def prepare(
    spec: TaskSpec,
    ev: EvalConfig,
    evaluation: dict[str, LoadedSplit],
    data_dir: Path | None,
    *,
    model: ModelConfig | None = None,
) -> Aux:
    """Load and check what :func:`evaluate` will need besides ``evaluation``; with ``model``,
    also that the requested layer exists (from the model's config, no weights loaded)."""
    aux = Aux()
    if model is not None and spec.head is HeadKind.RETRIEVAL:
        from transformers import AutoConfig

        from xstilts.modeling.model import resolve_model_path

        try:
            config = AutoConfig.from_pretrained(
                resolve_model_path(model.name_or_path),
                revision=model.revision,
                trust_remote_code=model.trust_remote_code,
            )
        except OSError as e:
            raise ConfigError(
                f"model '{model.name_or_path}': cannot load its config ({e})"
            ) from None
        n = getattr(config, "num_hidden_layers", None)
        if n is not None:
            resolve(ev.retrieval, model.name_or_path, spec.name, int(n))
    if mode(spec) is RetrievalEval.MINING and ev.split == "test":
        for lang, test in evaluation.items():
            explicit = ev.paths.get(lang)
            path = _bucc_dev_path(Path(test.source)) if explicit else None
            aux.dev[lang] = load_split(
                spec, "dev", lang, data_dir=data_dir, path=path, max_examples=ev.max_examples
            )
        aux.fingerprint["bucc_dev"] = {lang: d.fingerprint for lang, d in aux.dev.items()}
    if mode(spec) is RetrievalEval.CANDIDATE_FILE:
        aux.candidates, aux.candidate_ids = dual.mewslix_candidates(
            evaluation, data_dir, ev.retrieval.max_candidates
        )
        aux.fingerprint["candidates"] = (
            f"{file_fingerprint(aux.candidates)}[:{ev.retrieval.max_candidates}]"
        )
    return aux


def stage_inputs(spec: TaskSpec, rc: RetrievalConfig, aux: Aux) -> dict:
    """What changes a retrieval evaluation's rows, for the zero-shot stage key (the cache
    location and batch size change only speed; the layer settings only untrained tasks)."""
    if spec.head is HeadKind.DUAL_ENCODER:
        return {"max_candidates": rc.max_candidates, "aux": aux.fingerprint}
    return {
        "layer": rc.layer,
        "pooling": rc.pooling.value if rc.pooling else None,
        "layer_selection": rc.layer_selection.value,
        "sweep_layers": rc.sweep_layers,
        "bucc_neighbourhood": rc.bucc_neighbourhood,
        "aux": aux.fingerprint,
    }


# --------------------------------------------------------------------------- evaluation


def evaluate(
    spec: TaskSpec,
    evaluation: dict[str, LoadedSplit],
    encoder: Encoder,
    rc: RetrievalConfig,
    *,
    split: str,
    model_name: str,
    aux: Aux,
    echo: Callable[[str], None] = print,
) -> Outcome:
    how = mode(spec)
    if how is RetrievalEval.CANDIDATE_FILE:
        return dual.evaluate_mewslix(spec, evaluation, encoder, aux=aux, split=split, echo=echo)
    if how is RetrievalEval.POOLED:
        return dual.evaluate_pooled(spec, evaluation, encoder, split=split, echo=echo)
    rep = resolve(rc, model_name, spec.name, num_hidden_layers(encoder.model))
    if how is RetrievalEval.MINING:
        return _bucc(spec, evaluation, encoder, rep, rc, aux=aux, split=split, echo=echo)
    return _tatoeba(spec, evaluation, encoder, rep, split=split, echo=echo)


def _rows(
    scores: dict[tuple[str, int], dict[str, float]],
    sizes: dict[str, int],
    rep: Representation,
    primary: str,
    extra: Callable[[str, int], dict] = lambda lang, layer: {},
) -> tuple[list[ScoredRow], int]:
    """Headline rows at the chosen layer (oracle: best mean ``primary``), plus sweep rows."""
    langs = list(sizes)
    if rep.headline is not None:
        headline, selection = rep.headline, rep.selection.value
    else:
        means = {
            lay: np.mean([scores[(lang, lay)][primary] for lang in langs]) for lay in rep.layers
        }
        headline = max(rep.layers, key=lambda lay: (means[lay], -lay))  # ties: lower layer
        selection = LayerSelection.ORACLE.value
    rows = []
    for lang in langs:
        for metric, value in scores[(lang, headline)].items():
            proto = {**rep.protocol(headline, selection=selection), **extra(lang, headline)}
            rows.append(ScoredRow(lang, metric, value, sizes[lang], proto))
    if rep.sweep:
        for lay in rep.layers:
            for lang in langs:
                for metric, value in scores[(lang, lay)].items():
                    proto = {**rep.protocol(lay, selection="sweep"), **extra(lang, lay)}
                    rows.append(ScoredRow(lang, f"{metric}@layer{lay}", value, sizes[lang], proto))
    return rows, headline


def _tatoeba(spec, evaluation, enc: Encoder, rep: Representation, *, split, echo) -> Outcome:
    scores: dict[tuple[str, int], dict[str, float]] = {}
    preds: dict[tuple[str, int], list[dict]] = {}
    sizes = {}
    for lang, data in evaluation.items():
        ex = data.examples
        sizes[lang] = len(ex)
        src = enc.layers([e.source for e in ex], rep.layers, rep.pooling.value)
        eng = enc.layers([e.target for e in ex], rep.layers, rep.pooling.value)
        for layer in rep.layers:
            x, y = normalize(src[layer]), normalize(eng[layer])
            # xtreme similarity_search(x=xx, y=en): indexes x, queries with y
            p = [{"en2xx": int(a), "xx2en": int(b)} for a, b in zip(nearest(y, x), nearest(x, y))]
            preds[(lang, layer)] = p
            scores[(lang, layer)] = spec.metric(list(range(len(ex))), p, language=lang)
        shown = rep.headline if rep.headline is not None else rep.layers[-1]
        values = ", ".join(f"{k} {v:.2f}" for k, v in scores[(lang, shown)].items())
        echo(f"       {lang} (layer {shown}): {values}")
    direction = {
        "headline_direction": "en2xx: English sentence queries, the other language indexed "
        "(xtreme's similarity_search(x=xx, y=en))",
        "similarity": "cosine, exact",
    }
    rows, headline = _rows(scores, sizes, rep, spec.primary_metric, lambda lang, lay: direction)
    predictions = {
        f"{spec.name}.{split}.{lang}.jsonl": [
            {"guid": e.guid, "line": e.line, **p, "gold": i}
            for i, (e, p) in enumerate(zip(evaluation[lang].examples, preds[(lang, headline)]))
        ]
        for lang in evaluation
    }
    return Outcome(rows, predictions, {"layer": headline})


def _bucc_mine(examples, enc: Encoder, rep: Representation, k: int):
    """(candidate scores per layer, gold pairs) of one BUCC corpus."""
    src = [e for e in examples if e.side != "en"]
    tgt = [e for e in examples if e.side == "en"]
    _, src_unique = bucc.unify([e.text for e in src])
    _, tgt_unique = bucc.unify([e.text for e in tgt])
    src_ids = bucc.sent2id([e.text for e in src], [e.guid for e in src])
    tgt_ids = bucc.sent2id([e.text for e in tgt], [e.guid for e in tgt])
    vx = enc.layers(src_unique, rep.layers, rep.pooling.value)
    vy = enc.layers(tgt_unique, rep.layers, rep.pooling.value)
    present = {e.guid for e in tgt}
    gold = {(e.guid, e.gold) for e in src if e.gold is not None and e.gold in present}
    c2s = {
        layer: bucc.candidate_scores(
            bucc.mine(vx[layer], vy[layer], k=k), src_unique, tgt_unique, src_ids, tgt_ids
        )
        for layer in rep.layers
    }
    return c2s, gold


def _bucc(spec, evaluation, enc, rep, rc: RetrievalConfig, *, aux: Aux, split, echo) -> Outcome:
    k = rc.bucc_neighbourhood
    scores, sizes, info, predicted = {}, {}, {}, {}
    for lang, data in evaluation.items():
        test_c2s, test_gold = _bucc_mine(data.examples, enc, rep, k)
        if lang in aux.dev:
            dev_c2s, dev_gold = _bucc_mine(aux.dev[lang].examples, enc, rep, k)
            source = f"sample split ({aux.dev[lang].source})"
        else:
            dev_c2s, dev_gold, source = test_c2s, test_gold, "the evaluated split itself"
        if not test_gold or not dev_gold:
            raise DataError(data.source, "no gold pairs among the sentences read")
        sizes[lang] = len(test_gold)
        for layer in rep.layers:
            th = bucc.optimize_threshold(dev_c2s[layer], dev_gold)
            pred = bucc.extract(test_c2s[layer], th)
            scores[(lang, layer)] = spec.metric(sorted(test_gold), pred, language=lang)
            info[(lang, layer)] = {"threshold": th, "threshold_source": source}
            # every predicted pair and every gold pair, flagged: the file alone rescores the
            # language (xstilts export writes both sides in xtreme's layout)
            chosen = set(pred)
            predicted[(lang, layer)] = [
                {
                    "src": a,
                    "trg": b,
                    "score": test_c2s[layer][(a, b)],
                    "pred": True,
                    "gold": (a, b) in test_gold,
                }
                for a, b in pred
            ] + [
                {
                    "src": a,
                    "trg": b,
                    "score": test_c2s[layer].get((a, b)),
                    "pred": False,
                    "gold": True,
                }
                for a, b in sorted(test_gold - chosen)
            ]
        shown = rep.headline if rep.headline is not None else rep.layers[-1]
        echo(f"       {lang} (layer {shown}): f1 {scores[(lang, shown)]['f1']:.2f}")

    def extra(lang, layer):
        return {**info[(lang, layer)], "margin": "ratio", "neighbourhood": k, "retrieval": "max"}

    rows, headline = _rows(scores, sizes, rep, spec.primary_metric, extra)
    predictions = {
        f"{spec.name}.{split}.{lang}.jsonl": predicted[(lang, headline)] for lang in evaluation
    }
    return Outcome(rows, predictions, {"layer": headline})
