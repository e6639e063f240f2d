"""Which layer and pooling represent a sentence for untrained retrieval.

``layer`` indexes HF ``hidden_states``: 0 is the embedding output, ``n`` the last of ``n``
blocks. xtreme slices the embeddings off first, so its ``--specific_layer 13`` (Tatoeba,
XLM-R Large) is ``hidden_states[14]`` and ``7`` (BUCC; Tatoeba for mBERT) is
``hidden_states[8]``.

Defaults: the reference layer for the models xtreme ran; any other model gets the layer at the
same relative depth as XLM-R Large's reference, ``floor(n * ref / 24 + 0.5)`` (Tatoeba
14/24, BUCC 8/24), e.g. 4 (Tatoeba) and 2 (BUCC) for a 6-layer MiniLM. Pooling defaults to
the reference's: mean for Tatoeba, first token for BUCC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xstilts.config import LayerSelection, Pooling, RetrievalConfig
from xstilts.errors import ConfigError

# (model basename, task) -> (hidden_states index, pooling, number of blocks)
REFERENCE: dict[tuple[str, str], tuple[int, Pooling, int]] = {
    ("xlm-roberta-large", "tatoeba"): (14, Pooling.MEAN, 24),
    ("xlm-roberta-large", "bucc2018"): (8, Pooling.FIRST, 24),
    ("bert-base-multilingual-cased", "tatoeba"): (8, Pooling.MEAN, 12),
    ("bert-base-multilingual-cased", "bucc2018"): (8, Pooling.FIRST, 12),
}
RELATIVE_DEPTH: dict[str, tuple[int, int]] = {"tatoeba": (14, 24), "bucc2018": (8, 24)}
TASK_POOLING: dict[str, Pooling] = {"tatoeba": Pooling.MEAN, "bucc2018": Pooling.FIRST}


@dataclass(frozen=True)
class Representation:
    """Resolved representation of one evaluation: the layers to encode, the headline layer
    (None for ``oracle``: chosen after scoring) and how each was chosen."""

    layers: tuple[int, ...]
    headline: int | None
    pooling: Pooling
    selection: LayerSelection
    rule: str
    num_layers: int
    sweep: bool

    def protocol(self, layer: int, *, selection: str | None = None) -> dict:
        return {
            "layer": layer,
            "pooling": self.pooling.value,
            "layer_selection": selection or self.selection.value,
            "layer_rule": self.rule,
            "num_hidden_layers": self.num_layers,
        }


def default_layer(model_name: str, task: str, num_layers: int) -> tuple[int, str]:
    """(layer, how it was chosen) for ``task`` on a model with ``num_layers`` blocks."""
    base = model_name.rstrip("/").rsplit("/", 1)[-1].lower()
    ref = REFERENCE.get((base, task))
    if ref is not None and ref[2] == num_layers:
        return ref[0], f"reference: xtreme's layer for {base} on {task}"
    if task not in RELATIVE_DEPTH:
        raise ConfigError(f"task '{task}' has no reference layer; set evaluation.retrieval.layer")
    num, den = RELATIVE_DEPTH[task]
    layer = math.floor(num_layers * num / den + 0.5)
    return layer, f"relative depth: floor({num_layers}*{num}/{den}+0.5) (XLM-R Large {num}/{den})"


def resolve(rc: RetrievalConfig, model_name: str, task: str, num_layers: int) -> Representation:
    """The representation ``rc`` asks for on this model and task."""
    pooling = rc.pooling or TASK_POOLING.get(task, Pooling.MEAN)
    every = tuple(range(num_layers + 1))
    if rc.layer is not None:
        if not 0 <= rc.layer <= num_layers:
            raise ConfigError(
                f"evaluation.retrieval.layer={rc.layer} is outside 0..{num_layers} "
                f"(hidden_states of a {num_layers}-layer model; 0 = embeddings)"
            )
        layer, rule = rc.layer, "config: evaluation.retrieval.layer"
    else:
        layer, rule = default_layer(model_name, task, num_layers)
    sweep = rc.sweep_layers or rc.layer_selection is LayerSelection.ORACLE
    if rc.layer_selection is LayerSelection.ORACLE:
        if rc.layer is not None:
            raise ConfigError(
                "evaluation.retrieval: give either layer or layer_selection: oracle, not both"
            )
        return Representation(
            every,
            None,
            pooling,
            rc.layer_selection,
            "oracle: best mean score on the test pairs",
            num_layers,
            True,
        )
    return Representation(
        every if sweep else (layer,), layer, pooling, rc.layer_selection, rule, num_layers, sweep
    )
