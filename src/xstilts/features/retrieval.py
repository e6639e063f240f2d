"""Families of the retrieval head kinds.

``RETRIEVAL`` (Tatoeba, BUCC): rows are sentences; the head pools chosen layers; Tatoeba's
decode is nearest-neighbour search both ways. The pipeline evaluates these tasks through
:mod:`xstilts.pipeline.evaluate_retrieval` (layer choice, caching, BUCC's two splits); this family is
the same computation for one example list, e.g. for ``training.loop.predict``.

``DUAL_ENCODER`` (LAReQA, Mewsli-X): a row is a (query, answer) pair. A batch holds its
queries, then its answers (one encoder pass over both, padded to the longest); the head
returns ``[queries, answers]`` similarity logits and the loss is in-batch softmax
cross-entropy. Answers sharing the positive's key are masked out of a query's negatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xstilts.errors import ConfigError
from xstilts.features.base import Family, register_family
from xstilts.retrieval.encode import collate_rows, tokenize
from xstilts.retrieval.search import nearest, normalize, topk
from xstilts.tasks.base import HeadKind
from xstilts.tasks.readers.retrieval_examples import BuccSentence, DualPair, TatoebaPair

TOP_K = 20  # ranked answers kept per query (mAP@20, MAP@20)
IGNORE = -100  # label of an in-batch answer that is neither the positive nor a negative


@dataclass
class SentenceFeatures:
    """Token ids of sentence rows (Tatoeba: the other-language side, then the English side)
    and the pooled layers / pooling the head is asked for."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    layers: tuple[int, ...] = (-1,)
    pooling: str = "mean"

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self))


class SentenceRetrieval(Family):
    head = HeadKind.RETRIEVAL

    def encode(self, examples, tokenizer, *, max_length, labels):
        texts = _sentence_texts(examples)
        ids, tti = tokenize(tokenizer, texts, None, max_length=max_length)
        return SentenceFeatures(ids, tti)

    def collate(self, features, index, pad_id):
        batch = collate_rows(features.input_ids, features.token_type_ids, index, pad_id)
        return {**batch, "pool_layers": features.layers, "pooling": features.pooling}

    def outputs(self, logits, batch):
        return list(logits[:, 0].float().numpy())  # first pooled layer: [hidden] per row

    def decode(self, features, outputs, examples, labels):
        if not examples or not isinstance(examples[0], TatoebaPair):
            raise ConfigError(
                "BUCC is mined over a whole corpus with a threshold from its sample split: "
                "evaluate it with xstilts.pipeline.evaluate_retrieval, not per example"
            )
        n = len(examples)
        vecs = normalize(np.stack(outputs))  # [2n, hidden]
        src, eng = vecs[:n], vecs[n:]
        en2xx, xx2en = nearest(eng, src), nearest(src, eng)
        return [{"en2xx": int(a), "xx2en": int(b)} for a, b in zip(en2xx, xx2en)]

    def references(self, examples):
        if examples and isinstance(examples[0], BuccSentence):
            return [ex.gold for ex in examples]
        return list(range(len(examples)))  # row i's translation is row i

    def record(self, example, prediction):
        gold = example.gold if isinstance(example, BuccSentence) else example.line - 1
        return {"guid": example.guid, "line": example.line, **prediction, "gold": gold}


def _sentence_texts(examples: Sequence) -> list[str]:
    if examples and isinstance(examples[0], TatoebaPair):
        return [ex.source for ex in examples] + [ex.target for ex in examples]
    if examples and isinstance(examples[0], BuccSentence):
        return [ex.text for ex in examples]
    raise TypeError(f"not a sentence-retrieval example: {type(examples[0]).__name__}")


@dataclass
class PairFeatures:
    """Queries and answers (answer, context) tokenised separately, and the answer keys."""

    query_ids: list[list[int]]
    query_tti: list[list[int]] | None
    answer_ids: list[list[int]]
    answer_tti: list[list[int]] | None
    keys: list[str]

    def __len__(self) -> int:
        return len(self.query_ids)

    @property
    def lengths(self) -> np.ndarray:
        # a batch is padded to its longest query or answer
        return np.fromiter(
            (max(len(q), len(a)) for q, a in zip(self.query_ids, self.answer_ids)),
            dtype=np.int64,
            count=len(self),
        )


class DualEncoder(Family):
    head = HeadKind.DUAL_ENCODER
    # The loss scores each query against every answer of its batch (in-batch negatives): a
    # data-parallel launch cannot split a batch without changing it (``training/loop.py``).
    batch_coupled = True

    def encode(self, examples, tokenizer, *, max_length, labels):
        for ex in examples[:1]:
            if not isinstance(ex, DualPair):
                raise TypeError(f"not a dual-encoder training pair: {type(ex).__name__}")
        q_ids, q_tti = tokenize(
            tokenizer, [ex.query for ex in examples], None, max_length=max_length
        )
        a_ids, a_tti = tokenize(
            tokenizer,
            [ex.answer for ex in examples],
            [ex.answer_context for ex in examples],
            max_length=max_length,
        )
        return PairFeatures(q_ids, q_tti, a_ids, a_tti, [ex.answer_key for ex in examples])

    def collate(self, features, index, pad_id):
        n = len(index)
        ids = [features.query_ids[i] for i in index] + [features.answer_ids[i] for i in index]
        tti = None
        if features.query_tti is not None and features.answer_tti is not None:
            tti = [features.query_tti[i] for i in index] + [features.answer_tti[i] for i in index]
        batch = collate_rows(ids, tti, range(2 * n), pad_id)  # [2n, width]: queries, answers
        keys = [features.keys[i] for i in index]
        same = torch.tensor([[a == b for b in keys] for a in keys])  # [n, n]
        labels = torch.where(same, IGNORE, 0)
        labels.fill_diagonal_(1)
        return {**batch, "n_queries": n, "labels": labels}

    def loss(self, logits, labels):
        """Cross-entropy of each query over the batch's answers (positive on the diagonal);
        other answers with the positive's key are left out."""
        masked = logits.masked_fill(labels == IGNORE, float("-inf"))  # [n, n]
        target = torch.arange(len(logits), device=logits.device)
        return torch.nn.functional.cross_entropy(masked, target)

    def outputs(self, logits, batch):
        n = batch["n_queries"]
        vecs = logits.float().numpy()  # evaluation mode: [2n, hidden] unit vectors
        return [np.stack([vecs[i], vecs[n + i]]) for i in range(n)]  # [2, hidden] per row

    def decode(self, features, outputs, examples, labels):
        """Top-20 answer keys per query among the distinct answers of ``examples``."""
        queries = np.stack([o[0] for o in outputs])
        first: dict[str, int] = {}
        for i, key in enumerate(features.keys):
            first.setdefault(key, i)
        keys = list(first)
        answers = np.stack([outputs[first[k]][1] for k in keys])
        _, rows = topk(queries, answers, TOP_K)
        return [[keys[j] for j in r] for r in rows]

    def references(self, examples):
        return [{ex.answer_key} for ex in examples]

    def record(self, example, prediction):
        return {"guid": example.guid, "line": example.line, "pred": prediction[:5],
                "gold": example.answer_key}  # fmt: skip


register_family(SentenceRetrieval())
register_family(DualEncoder())
