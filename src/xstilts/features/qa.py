"""Extractive QA features: sliding windows over the context, spans mapped back to characters.

Each question is tokenised once with its whole context (fast tokenizer, offset mapping); the
context tokens are then cut into windows of ``room = max_length - question - special tokens``
tokens, consecutive windows overlapping by ``doc_stride`` tokens (the HF ``run_qa`` meaning of
``doc_stride``; XTREME's legacy ``run_squad`` instead *advances* windows by ``doc_stride``).
``max_length`` is the run-level ``model.max_length`` (set it to 384 for QA, as XTREME and HF
``run_qa`` do); questions keep at most ``max_query_length`` tokens (64, as XTREME), fewer when
``max_length`` is small, and the overlap is capped at half a window so windows always advance.

Training targets are the first gold answer's first and last context tokens (those overlapping
its character span, surrounding whitespace ignored); a window that does not contain the whole
answer points both at the ``[CLS]`` position, as HF ``run_qa``. Inference takes, per window, the
``n_best`` (20) highest start and end logits over context tokens, keeps pairs with
``start <= end`` and at most ``max_answer_length`` (30) tokens, and answers with the best
``start + end`` score over all windows of the question, cut from the original context by the
token character offsets (so accents, case and spacing are exactly the file's; combining marks
after the last token are kept, see :func:`span_text`). HF's
``token_is_max_context`` filter is not applied (HF ``run_qa`` does not apply it either).

SQuAD v2.0 (examples with ``allow_no_answer``, see ``readers/qa.py``): an unanswerable question
(``answers == ()``) points every window at ``[CLS]``, as HF ``run_qa`` does. Decoding computes
the *null score* of a question as the smallest ``start + end`` logit of ``[CLS]`` over its
windows (HF ``postprocess_qa_predictions``' ``min_null_score``) and predicts ``""`` when
``null score - best span score > null_score_diff_threshold`` (HF's
``null_score_diff_threshold``, default 0), or when no window has a valid span. Examples without
``allow_no_answer`` (SQuAD v1.1, XQuAD, MLQA, TyDiQA) are decoded exactly as before.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xstilts.errors import ConfigError
from xstilts.features.base import Family, pad_rows, register_family
from xstilts.tasks.base import HeadKind
from xstilts.tasks.readers.qa import QAExample


@dataclass
class SpanFeatures:
    """Windows (rows) of a list of questions.

    ``positions`` are the gold (start, end) row positions (``-100`` when unlabelled);
    ``offsets[e]`` are the ``[context tokens, 2]`` character spans of question ``e``'s context
    tokens, indexed by ``window_start + (row position - context_start)``.
    """

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    example_index: np.ndarray  # [rows] question of each window
    context_start: np.ndarray  # [rows] row position of the window's first context token
    window_start: np.ndarray  # [rows] index of that token among the question's context tokens
    window_len: np.ndarray  # [rows] context tokens in the window
    positions: np.ndarray  # [rows, 2] gold start/end row positions, -100 if unlabelled
    offsets: list[np.ndarray]  # per question: [context tokens, 2] int character offsets
    cls_index: np.ndarray | None = None  # [rows] position of [CLS], the no-answer position

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self))


def answer_token_span(offsets: np.ndarray, context: str, start: int, text: str) -> tuple[int, int]:
    """First and last context token overlapping the answer's characters (surrounding
    whitespace ignored); ``(-1, -1)`` if no token does."""
    a, b = start, start + len(text)
    while a < b and context[a].isspace():
        a += 1
    while b > a and context[b - 1].isspace():
        b -= 1
    if a >= b or len(offsets) == 0:
        return -1, -1
    ts = int(np.searchsorted(offsets[:, 1], a, side="right"))  # first token ending after a
    te = int(np.searchsorted(offsets[:, 0], b, side="left")) - 1  # last token starting before b
    if ts > te or ts >= len(offsets) or te < 0:
        return -1, -1
    return ts, te


def span_text(context: str, start: int, end: int) -> str:
    """``context[start:end]``, extended over combining marks that follow ``end``: tokenizers
    that strip accents (uncased BERT) drop Thai and Devanagari vowel signs from their offsets,
    which would otherwise cut the answer's last character short."""
    while end < len(context) and unicodedata.category(context[end]).startswith("M"):
        end += 1
    return context[start:end]


class SpanExtraction(Family):
    head = HeadKind.SPAN_EXTRACTION
    doc_stride = 128  # overlap between consecutive windows, in tokens
    max_query_length = 64  # question tokens kept
    n_best = 20  # start and end candidates per window
    max_answer_length = 30  # tokens
    # SQuAD v2.0: answer "" when the null score beats the best span by more than this (logits)
    null_score_diff_threshold = 0.0

    def encode(self, examples, tokenizer, *, max_length, labels):
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError(
                "extractive QA needs a fast (Rust) tokenizer: answers are mapped back to the "
                "context through its offset mapping"
            )
        q_first = tokenizer.padding_side == "right"  # as HF run_qa: context on the padding side
        questions = [ex.question.lstrip() for ex in examples]  # leading spaces only waste tokens
        contexts = [ex.context for ex in examples]
        first, second = (questions, contexts) if q_first else (contexts, questions)
        enc = tokenizer(
            first,
            second,
            truncation=False,
            padding=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            verbose=False,  # whole contexts are longer than the model: windows come next
        )
        n_special = tokenizer.num_special_tokens_to_add(pair=True)
        q_cap = max(1, min(self.max_query_length, (max_length - n_special) // 2))
        cls_id = tokenizer.cls_token_id
        ctx_seq = 1 if q_first else 0
        tti_all = enc.get("token_type_ids")
        rows: list[list[int]] = []
        types: list[list[int]] | None = [] if tti_all is not None else None
        ex_index, ctx_start, win_start, win_len, positions, cls_index = [], [], [], [], [], []
        offsets: list[np.ndarray] = []
        for i, ex in enumerate(examples):
            ids = enc["input_ids"][i]
            tti = tti_all[i] if tti_all is not None else None
            seq = enc.sequence_ids(i)
            q_pos = [k for k, s in enumerate(seq) if s == 1 - ctx_seq]
            c_pos = [k for k, s in enumerate(seq) if s == ctx_seq]
            drop = set(q_pos[q_cap:])
            c0, c1 = (c_pos[0], c_pos[-1] + 1) if c_pos else (len(ids), len(ids))
            if c1 - c0 != len(c_pos):
                raise ValueError(f"tokenizer split the context of question {ex.guid!r}")
            keep_pre = [k for k in range(c0) if k not in drop]
            keep_suf = [k for k in range(c1, len(ids)) if k not in drop]
            ctx_ids = ids[c0:c1]
            offs = np.asarray(enc["offset_mapping"][i][c0:c1], dtype=np.int64).reshape(-1, 2)
            offsets.append(offs)
            room = max_length - len(keep_pre) - len(keep_suf)
            if room < 1:
                raise ConfigError(
                    f"max_length {max_length} leaves no room for the context of question "
                    f"{ex.guid!r} ({len(keep_pre) + len(keep_suf)} question and special tokens)"
                )
            overlap = min(self.doc_stride, room // 2)
            starts = [0]
            while starts[-1] + room < len(ctx_ids):
                starts.append(starts[-1] + room - overlap)
            span = (-1, -1)
            if ex.answers:  # None: unlabelled; (): unanswerable (SQuAD v2.0), i.e. [CLS]
                span = answer_token_span(offs, ex.context, ex.answer_starts[0], ex.answers[0])
            for ws in starts:
                wl = min(room, len(ctx_ids) - ws)
                row = (
                    [ids[k] for k in keep_pre] + ctx_ids[ws : ws + wl] + [ids[k] for k in keep_suf]
                )
                rows.append(row)
                if types is not None:
                    types.append(
                        [tti[k] for k in keep_pre]
                        + tti[c0 + ws : c0 + ws + wl]
                        + [tti[k] for k in keep_suf]
                    )
                ex_index.append(i)
                ctx_start.append(len(keep_pre))
                win_start.append(ws)
                win_len.append(wl)
                cls = row.index(cls_id) if cls_id is not None and cls_id in row else 0
                cls_index.append(cls)
                if ex.answers is None:
                    positions.append((-100, -100))
                elif span[0] >= ws and span[1] < ws + wl:
                    positions.append((len(keep_pre) + span[0] - ws, len(keep_pre) + span[1] - ws))
                else:  # no answer, or not (wholly) in this window: point at [CLS]
                    positions.append((cls, cls))
        return SpanFeatures(
            rows,
            types,
            np.asarray(ex_index, dtype=np.int64),
            np.asarray(ctx_start, dtype=np.int64),
            np.asarray(win_start, dtype=np.int64),
            np.asarray(win_len, dtype=np.int64),
            np.asarray(positions, dtype=np.int64).reshape(-1, 2),
            offsets,
            np.asarray(cls_index, dtype=np.int64),
        )

    def collate(self, features, index, pad_id):
        rows = [features.input_ids[i] for i in index]
        width = max(len(r) for r in rows)
        lens = torch.tensor([len(r) for r in rows])
        batch = {
            "input_ids": pad_rows(rows, width, pad_id),  # [batch, seq]
            "attention_mask": (torch.arange(width)[None, :] < lens[:, None]).long(),
        }
        if features.token_type_ids is not None:
            batch["token_type_ids"] = pad_rows(
                [features.token_type_ids[i] for i in index], width, 0
            )
        batch["labels"] = torch.from_numpy(features.positions[np.asarray(index)])  # [batch, 2]
        return batch

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean of the start and end cross-entropies over positions (logits ``[batch, seq,
        2]``, labels ``[batch, 2]``), as HF ``*ForQuestionAnswering``."""
        ce = torch.nn.functional.cross_entropy
        start = ce(logits[..., 0], labels[:, 0], ignore_index=-100)
        end = ce(logits[..., 1], labels[:, 1], ignore_index=-100)
        return (start + end) / 2

    def outputs(self, logits, batch):
        lens = batch["attention_mask"].sum(dim=1).tolist()
        return [logits[i, :n].float().numpy() for i, n in enumerate(lens)]  # [len_i, 2] each

    def best_spans(
        self, features: SpanFeatures, outputs: Sequence[np.ndarray], n_examples: int
    ) -> list[tuple[float, int, int] | None]:
        """Per question, the best ``(score, first, last context token)`` over its windows."""
        best: list[tuple[float, int, int] | None] = [None] * n_examples
        for row, logit in enumerate(outputs):
            wl = int(features.window_len[row])
            if wl == 0:
                continue
            cs, ws = int(features.context_start[row]), int(features.window_start[row])
            s, e = logit[cs : cs + wl, 0], logit[cs : cs + wl, 1]
            si = np.argsort(-s, kind="stable")[: self.n_best]
            ei = np.argsort(-e, kind="stable")[: self.n_best]
            length = ei[None, :] - si[:, None] + 1  # [n_best, n_best] tokens of each pair
            valid = (length >= 1) & (length <= self.max_answer_length)
            if not valid.any():
                continue
            score = np.where(valid, s[si][:, None] + e[ei][None, :], -np.inf)
            a, b = np.unravel_index(int(np.argmax(score)), score.shape)
            cand = (float(score[a, b]), ws + int(si[a]), ws + int(ei[b]))
            ex = int(features.example_index[row])
            if best[ex] is None or cand[0] > best[ex][0]:
                best[ex] = cand
        return best

    def null_scores(
        self, features: SpanFeatures, outputs: Sequence[np.ndarray], n_examples: int
    ) -> np.ndarray:
        """Per question, the smallest ``[CLS]`` start + end logit over its windows (HF
        ``run_qa``'s ``min_null_score``); ``[n_examples]``, +inf for a question without rows."""
        null = np.full(n_examples, np.inf)
        cls = features.cls_index
        for row, logit in enumerate(outputs):
            c = int(cls[row]) if cls is not None else 0
            ex = int(features.example_index[row])
            null[ex] = min(null[ex], float(logit[c, 0] + logit[c, 1]))
        return null

    def decode(self, features, outputs, examples, labels):
        preds = []
        best = self.best_spans(features, outputs, len(examples))
        null = (
            self.null_scores(features, outputs, len(examples))
            if any(getattr(ex, "allow_no_answer", False) for ex in examples)
            else None
        )
        for e, (ex, offs, cand) in enumerate(zip(examples, features.offsets, best)):
            if cand is None:
                preds.append("")  # no valid span in any window: scores 0, like no answer
                continue
            if null is not None and ex.allow_no_answer:
                if null[e] - cand[0] > self.null_score_diff_threshold:
                    preds.append("")  # SQuAD v2.0: the null answer beats the best span
                    continue
            _, first, last = cand
            preds.append(span_text(ex.context, int(offs[first, 0]), int(offs[last, 1])))
        return preds

    def references(self, examples: Sequence[QAExample]):
        return [list(ex.answers) if ex.answers is not None else None for ex in examples]

    def record(self, example, prediction):
        return {
            "guid": example.guid,
            "line": example.line,
            "question": example.question,
            "pred": prediction,
            "gold": self.references([example])[0],
        }


register_family(SpanExtraction())
