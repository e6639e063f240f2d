"""Evaluation of the dual-encoder tasks: LAReQA (XQuAD-R) and Mewsli-X.

LAReQA: the candidates of every evaluated language form one pool (each sentence encoded with
its paragraph, as it was trained); each question ranks the whole pool and its relevant
answers are its answer sentence in every pooled language (``utils_lareqa``: candidates sharing
the question's ``xling_id``). Rows: mAP@20 per question language.

Mewsli-X: mentions rank the candidate entities (up to ~1M descriptions), encoded in chunks
into a cached memmap and searched in blocks; MAP@20 of ``utils_mewslix.evaluate`` per
mention language.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from xstilts.errors import DataError
from xstilts.retrieval.encode import Encoder
from xstilts.retrieval.search import topk
from xstilts.retrieval.types import Aux, Outcome, ScoredRow
from xstilts.tasks.base import LoadedSplit, TaskSpec
from xstilts.tasks.readers.retrieval import iter_mewslix_entities

TOP_K = 20
CHUNK = 65536  # candidate descriptions tokenised and encoded at a time
REPRESENTATION = "dual encoder: mean of the last layer, L2-normalised (trained target head)"


def evaluate_pooled(
    spec: TaskSpec, evaluation: dict[str, LoadedSplit], enc: Encoder, *, split, echo
):
    pools, seen = [], set()
    for data in evaluation.values():
        pool = data.examples[0].pool
        if id(pool) not in seen:
            seen.add(id(pool))
            pools.append(pool)
    candidates = [c for pool in pools for c in pool.candidates]
    uids = [c.uid for c in candidates]
    if len(set(uids)) != len(uids):
        raise DataError(pools[0].source, "candidate ids repeat across the pooled files")
    relevant: dict[str, set[str]] = {}
    for data in evaluation.values():
        for q in data.examples:
            relevant.setdefault(q.xling_id, set()).update(q.answer_uids)
    c_vecs = enc.vectors([c.text for c in candidates], [c.context for c in candidates])
    rows, predictions = [], {}
    protocol = {
        "representation": REPRESENTATION,
        "pool_languages": sorted({c.language for c in candidates}),
        "pool_size": len(candidates),
        "candidate_input": "(sentence, paragraph) pair",
        "k": TOP_K,
    }
    for lang, data in evaluation.items():
        questions = data.examples
        q_vecs = enc.vectors([q.question for q in questions])
        _, idx = topk(q_vecs, c_vecs, TOP_K)
        ranked = [[uids[j] for j in r] for r in idx]
        rel = [relevant[q.xling_id] for q in questions]
        for metric, value in spec.metric(rel, ranked, language=lang).items():
            rows.append(ScoredRow(lang, metric, value, len(questions), dict(protocol)))
        predictions[f"{spec.name}.{split}.{lang}.jsonl"] = [
            {"guid": q.guid, "line": q.line, "pred": r, "gold": sorted(g)}
            for q, r, g in zip(questions, ranked, rel)
        ]
        echo(f"       {lang}: " + ", ".join(f"{r.metric} {r.value:.2f}" for r in rows[-1:]))
    return Outcome(rows, predictions)


def mewslix_candidates(
    evaluation: dict[str, LoadedSplit], data_dir: Path | None, limit: int | None
) -> tuple[Path, list[str]]:
    """The candidate file (beside the mentions file, else ``mewslix/`` under ``data_dir``) and
    its entity ids in file order; every gold entity must be among them."""
    tried = []
    for data in evaluation.values():
        tried.append(Path(data.source).with_name("candidate_set_entities.jsonl"))
        break
    if data_dir is not None:
        tried += [Path(data_dir) / "mewslix" / "candidate_set_entities.jsonl"]
    path = next((p for p in tried if p.is_file()), None)
    if path is None:
        raise DataError(None, f"no Mewsli-X candidate file (tried {', '.join(map(str, tried))})")
    ids: list[str] = []
    position: dict[str, int] = {}
    for line, eid, _ in iter_mewslix_entities(path, limit=limit):
        if eid in position:
            raise DataError(path, f"entity {eid!r} listed twice", line=line, field="entity_id")
        position[eid] = len(ids)
        ids.append(eid)
    for data in evaluation.values():
        for m in data.examples:
            if m.entity_id not in position:
                scope = f"the first {limit} entities of " if limit is not None else ""
                raise DataError(
                    data.source,
                    f"gold entity {m.entity_id!r} of mention {m.guid!r} is not in the candidate "
                    f"pool ({scope}{path})",
                    line=m.line,
                    field="entity_id",
                )
    return path, ids


def _chunks(path: Path, limit: int | None) -> Iterator[tuple[list[str], None]]:
    texts: list[str] = []
    for _, _, text in iter_mewslix_entities(path, limit=limit):
        texts.append(text)
        if len(texts) == CHUNK:
            yield texts, None
            texts = []
    if texts:
        yield texts, None


def evaluate_mewslix(
    spec: TaskSpec,
    evaluation: dict[str, LoadedSplit],
    enc: Encoder,
    *,
    aux: Aux,
    split: str,
    echo: Callable[[str], None],
):
    ids = aux.candidate_ids
    echo(f"       encoding {len(ids)} candidate entities from {aux.candidates}")
    limit = len(ids)
    c_vecs = enc.vectors_stream(
        _chunks(aux.candidates, limit), limit, aux.fingerprint["candidates"]
    )
    rows, predictions = [], {}
    protocol = {"representation": REPRESENTATION, "pool_size": limit, "k": TOP_K}
    for lang, data in evaluation.items():
        mentions = data.examples
        _, idx = topk(enc.vectors([m.query for m in mentions]), c_vecs, TOP_K)
        ranked = [[ids[j] for j in r] for r in idx]
        for metric, value in spec.metric(
            [{m.entity_id} for m in mentions], ranked, language=lang
        ).items():
            rows.append(ScoredRow(lang, metric, value, len(mentions), dict(protocol)))
        predictions[f"{spec.name}.{split}.{lang}.jsonl"] = [
            {"guid": m.guid, "line": m.line, "pred": r, "gold": m.entity_id}
            for m, r in zip(mentions, ranked)
        ]
        echo(f"       {lang}: {rows[-1].metric} {rows[-1].value:.2f}")
    return Outcome(rows, predictions)
