"""Token-tagging features (UD-POS, PAN-X): one prediction per input word, never truncated.

Every word is tokenised on its own (as XTREME's ``utils_tag.py`` does); its first sub-word
carries the word's label and the others ``-100``. A word that tokenises to nothing (a control
character, an empty form) becomes the tokenizer's unknown token, so it still gets a prediction.
A sentence whose sub-words do not fit ``max_length`` (special tokens included) is cut, between
words, into consecutive *windows* that each fit; every window is a model row, and ``decode``
puts the windows' predictions back together, one per word. A single word longer than a whole
window keeps its first sub-words only (only the first one is ever read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xstilts.errors import ConfigError
from xstilts.features.base import Family, pad_rows, register_family
from xstilts.tasks.base import HeadKind
from xstilts.tasks.readers.tagging import TaggedExample


@dataclass
class TagFeatures:
    """Model rows of a list of examples; a long example spans several consecutive rows."""

    input_ids: list[list[int]]  # [rows][tokens], special tokens included
    labels: list[list[int]]  # [rows][tokens] label id on first sub-words, -100 elsewhere
    word_positions: list[np.ndarray]  # [rows][words in window] token index of each first sub-word
    example: np.ndarray  # [rows] index of the row's example
    first_word: np.ndarray  # [rows] index (in its example) of the row's first word
    n_words: np.ndarray  # [examples] words per example
    token_type: bool  # whether the encoder takes token_type_ids (all zero here)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self))


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after one sequence (``[CLS]``/``[SEP]``, ``<s>``/
    ``</s>`` …), found by locating a probe's ids inside its encoding with special tokens."""
    probe = "hello"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for k in range(len(full) - len(bare) + 1):
        if full[k : k + len(bare)] == bare:
            return list(full[:k]), list(full[k + len(bare) :])
    raise ConfigError(f"cannot find where {type(tokenizer).__name__} puts a sequence's tokens")


def word_piece_ids(words: Sequence[str], tokenizer) -> dict[str, list[int]]:
    """Sub-word ids of every distinct word (tokenised once each, in one batch call)."""
    unique = sorted(set(words))
    if not unique:
        return {}
    ids = tokenizer(unique, add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    out = {}
    for w, pieces in zip(unique, ids):
        if not pieces:
            if unk is None:
                raise ConfigError(
                    f"word {w!r} has no sub-words and {type(tokenizer).__name__} has no unk token"
                )
            pieces = [unk]
        out[w] = list(pieces)
    return out


def windows(pieces: Sequence[Sequence[int]], budget: int) -> list[tuple[int, int]]:
    """Cut a sentence's words (their sub-word id lists) into ``[start, end)`` word windows of at
    most ``budget`` sub-words each (a word longer than ``budget`` alone fills one window)."""
    out: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, p in enumerate(pieces):
        n = min(len(p), budget)
        if used + n > budget and i > start:
            out.append((start, i))
            start, used = i, 0
        used += n
    if start < len(pieces) or not out:
        out.append((start, len(pieces)))
    return out


def encode_tagged(
    examples: Sequence[TaggedExample],
    tokenizer,
    *,
    max_length: int,
    label_to_id: dict[str, int],
) -> TagFeatures:
    """Tokenise ``examples`` into windows of at most ``max_length`` tokens (module docstring)."""
    prefix, suffix = special_tokens(tokenizer)
    budget = max_length - len(prefix) - len(suffix)  # sub-words per window
    if budget < 1:
        raise ConfigError(f"max_length={max_length} leaves no room for words after special tokens")
    vocab = word_piece_ids([w for ex in examples for w in ex.words], tokenizer)
    rows_ids, rows_labels, positions, row_example, row_first = [], [], [], [], []
    for e, ex in enumerate(examples):
        pieces = [vocab[w][:budget] for w in ex.words]
        tags = ex.tags
        for start, end in windows(pieces, budget):
            ids, labels, pos = list(prefix), [-100] * len(prefix), []
            for j in range(start, end):
                pos.append(len(ids))
                ids.extend(pieces[j])
                first = label_to_id[tags[j]] if tags is not None else -100
                labels.extend([first] + [-100] * (len(pieces[j]) - 1))
            ids.extend(suffix)
            labels.extend([-100] * len(suffix))
            rows_ids.append(ids)
            rows_labels.append(labels)
            positions.append(np.asarray(pos, dtype=np.int64))
            row_example.append(e)
            row_first.append(start)
    return TagFeatures(
        rows_ids,
        rows_labels,
        positions,
        np.asarray(row_example, dtype=np.int64),
        np.asarray(row_first, dtype=np.int64),
        np.asarray([len(ex.words) for ex in examples], dtype=np.int64),
        "token_type_ids" in getattr(tokenizer, "model_input_names", ()),
    )


def collate_tagged(
    features: TagFeatures, index: Sequence[int], pad_id: int
) -> dict[str, torch.Tensor]:
    """Pad the rows at ``index`` to the longest of them; padded labels are ``-100``."""
    rows = [features.input_ids[i] for i in index]
    width = max(len(r) for r in rows)
    ids = pad_rows(rows, width, pad_id)  # [batch, seq]
    mask = (torch.arange(width)[None, :] < torch.tensor([len(r) for r in rows])[:, None]).long()
    batch = {"input_ids": ids, "attention_mask": mask}  # mask: [batch, seq]
    if features.token_type:
        batch["token_type_ids"] = torch.zeros_like(ids)
    batch["labels"] = pad_rows([features.labels[i] for i in index], width, -100)  # [batch, seq]
    return batch


def merge_windows(
    features: TagFeatures, outputs: Sequence[np.ndarray], labels: Sequence[str]
) -> list[list[str]]:
    """One tag per word per example from the rows' per-token label ids; checks that every word
    got exactly one prediction."""
    preds: list[list[str | None]] = [[None] * int(n) for n in features.n_words]
    for r, out in enumerate(outputs):
        e, first = int(features.example[r]), int(features.first_word[r])
        for k, pos in enumerate(features.word_positions[r]):
            if preds[e][first + k] is not None:
                raise AssertionError(f"example {e} word {first + k} predicted twice")
            preds[e][first + k] = labels[int(out[pos])]
    for e, p in enumerate(preds):
        if any(t is None for t in p):
            raise AssertionError(f"example {e}: {p.count(None)} word(s) without a prediction")
    return preds  # type: ignore[return-value]


class TokenTagging(Family):
    head = HeadKind.TOKEN_TAGGING

    def encode(self, examples, tokenizer, *, max_length, labels):
        l2i = {lab: i for i, lab in enumerate(labels)}
        return encode_tagged(examples, tokenizer, max_length=max_length, label_to_id=l2i)

    def collate(self, features, index, pad_id):
        return collate_tagged(features, index, pad_id)

    def outputs(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[np.ndarray]:
        """Per row: the arg-max label id of every real (unpadded) token, ``[tokens]``."""
        best = logits.argmax(-1).cpu().numpy()  # [batch, seq]
        lengths = batch["attention_mask"].sum(-1).tolist()  # [batch] real tokens
        return [best[i, :n] for i, n in enumerate(lengths)]

    def decode(self, features, outputs, examples, labels):
        return merge_windows(features, outputs, labels)

    def references(self, examples):
        return [list(ex.tags) if ex.tags is not None else None for ex in examples]

    def record(self, example, prediction):
        return {**super().record(example, prediction), "words": list(example.words)}

    def split_protocol(self, examples: Sequence[TaggedExample]) -> dict[str, object]:
        """What a result row of these examples must record: the treebank(s) behind the score
        and the multiword-token tokenisation (UD-POS only; empty for PAN-X)."""
        out: dict[str, object] = {}
        treebanks = sorted({ex.treebank for ex in examples if ex.treebank})
        if treebanks:
            out["treebank"] = treebanks[0] if len(treebanks) == 1 else "+".join(treebanks)
        modes = sorted({ex.tokenisation for ex in examples if ex.tokenisation})
        if modes:
            out["tokenisation"] = "+".join(modes)
        return out


register_family(TokenTagging())
