"""Multiple-choice features (COPA, XCOPA, SIQA): one (context + question, choice) pair per choice.

A feature row is one question with all its choices, so length grouping and batching keep the
choices of a question together; ``collate`` flattens a batch to ``[batch * num_choices, seq]``
(question-major: row ``b * num_choices + c`` is choice ``c`` of question ``b``) and passes
``num_choices`` as an extra batch key, which the model hands to the head
(``head(hidden, attention_mask, num_choices=...) -> [batch, num_choices]``). Pairs are truncated
longest-first to ``max_length`` tokens. Labels are choice indices as strings, so a task's label
set must be ``("0", "1", ...)`` with one label per choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xstilts.errors import ConfigError, DataError
from xstilts.features.base import Family, pad_rows, register_family
from xstilts.tasks.base import HeadKind
from xstilts.tasks.readers.choice import ChoiceExample


@dataclass
class ChoiceFeatures:
    """Unpadded token ids per question and choice (``[questions][choices][tokens]``)."""

    input_ids: list[list[list[int]]]
    token_type_ids: list[list[list[int]]] | None
    labels: np.ndarray  # [questions] index of the correct choice, -100 where unlabelled

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        # a question costs its longest choice times the number of choices
        return np.fromiter(
            (max(len(c) for c in q) for q in self.input_ids), dtype=np.int64, count=len(self)
        )


def check_choice_labels(labels: tuple[str, ...]) -> None:
    if labels != tuple(str(i) for i in range(len(labels))) or len(labels) < 2:
        raise ConfigError(
            f"multiple-choice labels must be choice indices '0', '1', ...; got {list(labels)}"
        )


class MultipleChoice(Family):
    head = HeadKind.MULTIPLE_CHOICE

    def encode(self, examples, tokenizer, *, max_length, labels):
        check_choice_labels(labels)
        n = len(labels)
        first, second = [], []
        for ex in examples:
            if len(ex.choices) != n:
                raise DataError(
                    None,
                    f"question {ex.guid!r} has {len(ex.choices)} choices but the task has {n}",
                    line=ex.line,
                    field="choices",
                )
            first.extend([ex.first_text] * n)
            second.extend(ex.choices)
        enc = tokenizer(
            first,
            second,
            truncation=True,  # longest-first
            max_length=max_length,
            padding=False,
            return_attention_mask=False,
        )
        ids = list(enc["input_ids"])
        tti = enc.get("token_type_ids")
        grouped = [ids[i * n : (i + 1) * n] for i in range(len(examples))]
        grouped_tt = (
            [list(tti[i * n : (i + 1) * n]) for i in range(len(examples))]
            if tti is not None
            else None
        )
        gold = np.array(
            [int(ex.label) if ex.label is not None else -100 for ex in examples], dtype=np.int64
        )
        return ChoiceFeatures(grouped, grouped_tt, gold)

    def collate(self, features, index, pad_id):
        questions = [features.input_ids[i] for i in index]
        n = len(questions[0])
        rows = [c for q in questions for c in q]  # [batch * num_choices] question-major
        width = max(len(r) for r in rows)
        lens = torch.tensor([len(r) for r in rows])
        batch = {
            "input_ids": pad_rows(rows, width, pad_id),  # [batch * num_choices, seq]
            "attention_mask": (torch.arange(width)[None, :] < lens[:, None]).long(),
        }
        if features.token_type_ids is not None:
            tt = [c for i in index for c in features.token_type_ids[i]]
            batch["token_type_ids"] = pad_rows(tt, width, 0)
        batch["num_choices"] = torch.tensor(n)  # 0-d: a tensor so batches move to devices whole
        batch["labels"] = torch.from_numpy(features.labels[np.asarray(index)])  # [batch]
        return batch

    def decode(self, features, outputs, examples, labels):
        return [labels[int(np.argmax(o))] for o in outputs]

    def references(self, examples: Sequence[ChoiceExample]):
        return [ex.label for ex in examples]


register_family(MultipleChoice())
