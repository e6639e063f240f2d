"""Sentence encoding for retrieval: length-sorted, dynamically padded batches, a token budget
per batch, only the layers needed, and an embedding cache.

Against the reference loop (file order, batch 32, every row padded to 128) three things save
time: rows are sorted by length so a batch is padded only to its own longest row; a batch
holds up to ``batch_tokens`` padded tokens, so short sentences go in large batches; and the
encoder's layers above the highest requested ``hidden_states`` index are not run.

Cache: one ``.npy`` per (encoder id, texts fingerprint, layer, pooling, max length, head), with
a ``.json`` beside it naming those inputs; writes are atomic (temporary file + rename).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xstilts.runtime import device as runtime_device
from xstilts.runtime import model_device, to_device

#: Rows tokenised per tokenizer call. A fast tokenizer's batch output keeps a Rust
#: ``Encoding`` per row (tokens, offsets, word ids, the overflow cut off by truncation): about
#: 200 KiB a (sentence, paragraph) pair, 2.8 GiB for LAReQA's 13,014 pooled candidates in one
#: call. In chunks only the id lists stay.
TOKENIZE_CHUNK = 1024


def tokenize(
    tokenizer, texts: Sequence[str], pairs: Sequence[str | None] | None, *, max_length: int
) -> tuple[list[list[int]], list[list[int]] | None]:
    """Token ids (and token types) of ``texts`` (or ``(text, pair)``), truncated longest-first
    to ``max_length``, unpadded."""
    with_pairs = pairs is not None and any(p is not None for p in pairs)
    ids: list[list[int]] = []
    tti: list[list[int]] | None = []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        chunk = [list(texts[start : start + TOKENIZE_CHUNK])]
        if with_pairs:
            chunk.append([p or "" for p in pairs[start : start + TOKENIZE_CHUNK]])
        enc = tokenizer(
            *chunk,
            truncation="longest_first" if with_pairs else True,
            max_length=max_length,
            padding=False,
            return_attention_mask=False,
        )
        ids.extend(enc["input_ids"])
        types = enc.get("token_type_ids")
        if types is None:
            tti = None
        elif tti is not None:
            tti.extend(types)
    return ids, tti


def length_batches(lengths: np.ndarray, batch_tokens: int, max_rows: int = 512) -> list[np.ndarray]:
    """Row indices sorted by length (longest first) cut into batches of at most
    ``batch_tokens`` padded tokens (``rows * longest``) and ``max_rows`` rows."""
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        width = max(1, int(lengths[order[start]]))  # the longest row of the batch comes first
        rows = max(1, min(max_rows, batch_tokens // width))
        batches.append(order[start : start + rows])
        start += rows
    return batches


def _pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """``[len(rows), longest]`` long tensor of ``rows`` right-padded with ``value`` (the same
    as ``features.base.pad_rows`` to the longest row; retrieval sits below ``features``)."""
    tensors = [torch.as_tensor(list(r), dtype=torch.long) for r in rows]
    return torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True, padding_value=value)


def collate_rows(
    ids: Sequence[Sequence[int]],
    tti: Sequence[Sequence[int]] | None,
    index: Sequence[int],
    pad_id: int,
) -> dict[str, torch.Tensor]:
    """Encoder inputs of the rows at ``index``, padded to the longest of them."""
    rows = [ids[i] for i in index]
    width = max(len(r) for r in rows)
    lens = torch.tensor([len(r) for r in rows])
    batch = {
        "input_ids": _pad(rows, pad_id),  # [batch, width]
        "attention_mask": (torch.arange(width)[None, :] < lens[:, None]).long(),
    }
    if tti is not None:
        batch["token_type_ids"] = _pad([tti[i] for i in index], 0)
    return batch


def _layer_list(encoder) -> tuple[object, str] | None:
    """(module holding the transformer blocks, attribute name) for BERT-like encoders."""
    for owner_name in ("encoder", "transformer"):
        owner = getattr(encoder, owner_name, None)
        blocks = getattr(owner, "layer", None)
        if isinstance(blocks, torch.nn.ModuleList):
            return owner, "layer"
    return None


@contextlib.contextmanager
def truncated(encoder, n_blocks: int | None) -> Iterator[None]:
    """Run only the first ``n_blocks`` transformer blocks (``hidden_states[n_blocks]`` is then
    the last state computed). No-op for unknown architectures or ``None``."""
    found = _layer_list(encoder) if n_blocks is not None else None
    if found is None:
        yield
        return
    owner, attr = found
    full = getattr(owner, attr)
    if n_blocks >= len(full):
        yield
        return
    if not getattr(encoder, "_xstilts_states_hooked", False):
        # transformers 5 collects hidden states with hooks installed on the first forward
        # that asks for them: run one full 1-token forward first, or blocks removed here
        # would never get theirs and later full forwards would return too few states.
        with torch.inference_mode():
            one = torch.zeros((1, 1), dtype=torch.long, device=model_device(encoder))
            encoder(input_ids=one, attention_mask=torch.ones_like(one), output_hidden_states=True)
        encoder._xstilts_states_hooked = True
    setattr(owner, attr, torch.nn.ModuleList(list(full)[:n_blocks]))
    try:
        yield
    finally:
        setattr(owner, attr, full)


def num_hidden_layers(model) -> int:
    """Transformer blocks of the model's encoder (``hidden_states`` has one more entry)."""
    config = model.encoder.config
    n = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", None)
    if n is None:
        raise ValueError(f"cannot tell the number of layers of {type(model.encoder).__name__}")
    return int(n)


@torch.inference_mode()
def encode_rows(
    model,
    task: str,
    ids: Sequence[Sequence[int]],
    tti: Sequence[Sequence[int]] | None,
    *,
    pad_id: int,
    batch_tokens: int,
    head_kwargs: dict | None = None,
    n_blocks: int | None = None,
) -> np.ndarray:
    """``[n_outputs, rows, hidden]`` float32 head outputs in row order.

    The head returns ``[batch, n_outputs, hidden]`` (retrieval head: one output per pooled
    layer) or ``[batch, hidden]`` (dual encoder: one output)."""
    was_training = model.training
    dev = runtime_device()
    model.to(dev)
    model.eval()
    lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=len(ids))
    out: np.ndarray | None = None
    try:
        with truncated(model.encoder, n_blocks):
            for index in length_batches(lengths, batch_tokens):
                batch = to_device(collate_rows(ids, tti, index, pad_id), dev)
                vec = model(task, **batch, **(head_kwargs or {})).cpu()
                if vec.dim() == 2:
                    vec = vec[:, None, :]  # [batch, 1, hidden]
                if out is None:
                    out = np.empty((vec.shape[1], len(ids), vec.shape[2]), dtype=np.float32)
                out[:, index] = vec.float().numpy().transpose(1, 0, 2)
    finally:
        model.train(was_training)
    assert out is not None, "encode_rows needs at least one row"
    return out


# --------------------------------------------------------------------------- cache


def texts_fingerprint(texts: Sequence[str], pairs: Sequence[str | None] | None = None) -> str:
    """Hash of the exact texts (and pair texts) encoded, in order."""
    h = hashlib.sha256()
    for i, t in enumerate(texts):
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
        if pairs is not None and pairs[i] is not None:
            h.update(pairs[i].encode("utf-8", "surrogatepass"))
        h.update(b"\x01")
    return h.hexdigest()


@dataclass(frozen=True)
class EmbeddingCache:
    """Embedding matrices on disk, keyed by everything that determines them."""

    root: Path

    def path(self, key: dict) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        return self.root / f"{digest}.npy"

    def get(self, key: dict) -> np.ndarray | None:
        p = self.path(key)
        return np.load(p, mmap_mode="r") if p.is_file() else None

    def put(self, key: dict, array: np.ndarray) -> np.ndarray:
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.stem}.", suffix=".npy")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(array, dtype=np.float32))
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        p.with_suffix(".json").write_text(json.dumps(key, sort_keys=True, indent=1))
        return np.load(p, mmap_mode="r")

    def open_writer(self, key: dict, shape: tuple[int, int]) -> tuple[np.ndarray, Path]:
        """A float32 ``.npy`` memmap to fill chunk by chunk; publish it with :meth:`commit`."""
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.stem}.{os.getpid()}.partial.npy")
        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        return mm, tmp

    def commit(self, key: dict, mm: np.ndarray, tmp: Path) -> np.ndarray:
        mm.flush()
        del mm
        p = self.path(key)
        os.replace(tmp, p)
        p.with_suffix(".json").write_text(json.dumps(key, sort_keys=True, indent=1))
        return np.load(p, mmap_mode="r")


@dataclass(frozen=True)
class Encoder:
    """A model, its tokenizer and how to call it, with the cache (None: no cache)."""

    model: object
    tokenizer: object
    task: str
    encoder_id: str  # identifies the weights (stage key + checkpoint, or model files hash)
    max_length: int
    batch_tokens: int
    cache: EmbeddingCache | None

    @property
    def pad_id(self) -> int:
        pad = getattr(self.tokenizer, "pad_token_id", None)
        return pad if pad is not None else 0

    def _cached(self, key: dict, rows: int) -> np.ndarray | None:
        """The cached vectors of ``key`` when there are any and they have ``rows`` rows."""
        if self.cache is None:
            return None
        hit = self.cache.get(key)
        return hit if hit is not None and hit.shape[0] == rows else None

    def _key(self, fp: str, what: dict) -> dict:
        return {"encoder": self.encoder_id, "texts": fp, "max_length": self.max_length, **what}

    def layers(
        self, texts: Sequence[str], layers: Sequence[int], pooling: str
    ) -> dict[int, np.ndarray]:
        """``{layer: [n, hidden]}`` pooled ``hidden_states[layer]`` of every text, from the
        cache where present; missing layers are computed in one pass."""
        fp = texts_fingerprint(texts)
        out: dict[int, np.ndarray] = {}
        keys = {lay: self._key(fp, {"layer": lay, "pooling": pooling}) for lay in layers}
        for lay, key in keys.items():
            hit = self._cached(key, len(texts))
            if hit is not None:
                out[lay] = hit
        missing = [lay for lay in layers if lay not in out]
        if missing:
            vecs = self._encode(
                texts,
                None,
                head_kwargs={"pool_layers": tuple(missing), "pooling": pooling},
                # at least one block: with none, HF records no hidden states at all
                n_blocks=max(1, *missing) if min(missing) >= 0 else None,
            )  # [len(missing), n, hidden]
            for j, lay in enumerate(missing):
                out[lay] = self.cache.put(keys[lay], vecs[j]) if self.cache else vecs[j]
        return out

    def _encode(
        self, texts: Sequence[str], pairs: Sequence[str | None] | None, **kwargs
    ) -> np.ndarray:
        """Tokenise and run the model over ``texts`` (``[outputs, n, hidden]``; ``kwargs`` go
        to :func:`encode_rows`)."""
        ids, tti = tokenize(self.tokenizer, texts, pairs, max_length=self.max_length)
        return encode_rows(
            self.model,
            self.task,
            ids,
            tti,
            pad_id=self.pad_id,
            batch_tokens=self.batch_tokens,
            **kwargs,
        )

    def vectors(
        self, texts: Sequence[str], pairs: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """``[n, hidden]`` outputs of a single-output head (the dual encoder) for every text
        (or ``(text, pair)``), cached."""
        key = self._key(texts_fingerprint(texts, pairs), {"head": "dual_encoder"})
        hit = self._cached(key, len(texts))
        if hit is not None:
            return hit
        vecs = self._encode(texts, pairs)[0]
        return self.cache.put(key, vecs) if self.cache else vecs

    def vectors_stream(
        self, chunks: Iterator[tuple[list[str], list[str | None] | None]], n: int, fingerprint: str
    ) -> np.ndarray:
        """``[n, hidden]`` dual-encoder outputs of ``n`` texts arriving in chunks (a million
        candidate descriptions), written chunk by chunk into a cached ``.npy`` memmap so
        memory holds one chunk of tokens and vectors at a time."""
        key = self._key(fingerprint, {"head": "dual_encoder", "rows": n})
        hit = self._cached(key, n)
        if hit is not None:
            return hit
        out, tmp, done = None, None, 0
        try:
            for texts, pairs in chunks:
                vecs = self._encode(texts, pairs)[0]  # [chunk, hidden]
                if out is None:
                    shape = (n, vecs.shape[1])
                    if self.cache is not None:
                        out, tmp = self.cache.open_writer(key, shape)
                    else:
                        out = np.empty(shape, dtype=np.float32)
                out[done : done + len(vecs)] = vecs
                done += len(vecs)
        except BaseException:
            if tmp is not None:
                del out
                Path(tmp).unlink(missing_ok=True)
            raise
        if out is None or done != n:
            raise ValueError(f"expected {n} texts, the chunks held {done}")
        return self.cache.commit(key, out, tmp) if tmp is not None else out
