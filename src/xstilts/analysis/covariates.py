"""Per-language covariates for "who gains": typological distance to English, script, tokenizer
fertility and unknown-token rate on the language's evaluation text.

Typology comes from URIEL through ``lang2vec`` (1.1.2 on PyPI, data shipped inside the wheel,
works offline); its data files are read directly, so its module (which imports
``pkg_resources``) is never run. That release ships
feature vectors but no distance matrices, so distances are computed here as URIEL's paper does
for vector-valued features: the cosine distance between English's and the language's vectors of
``syntax_knn`` (syntactic, 103 WALS/SSWL/Ethnologue features, kNN-imputed), ``fam`` (genetic,
3718 Glottolog family memberships) and ``geo`` (geographic, distances to 299 fixed points on the
globe). When lang2vec is missing or fails, every typology column is unavailable with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

TYPOLOGY = {"syntactic": "syntax_knn", "genetic": "fam", "geographic": "geo"}

# Script of each XTREME / XTREME-R language's evaluation text (ISO 15924 family only as far as the
# report needs it: Latin or not). Data, like ``tasks/languages.py``.
LATIN_SCRIPT = frozenset(
    "af az de en es et eu fi fr ht hu id it jv lt ms nl pl pt qu ro sw tl tr vi wo yo".split()
)
NON_LATIN_SCRIPT = frozenset(
    "ar bg bn el fa gu he hi ja ka kk ko ml mr my pa ru ta te th uk ur zh".split()
)
# languages written without spaces between words: whitespace "words" are phrases or sentences
NO_WORD_SPACES = frozenset({"zh", "ja", "th", "my", "km", "lo"})


@dataclass(frozen=True)
class Typology:
    distances: dict[str, dict[str, float]]  # kind -> language -> cosine distance to English
    note: str = ""  # why (some) distances are unavailable


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return math.nan
    return float(1.0 - a @ b / (na * nb))


# lang2vec 1.1.2's FEATURE_SETS_DICT entries for the sets used here: (file under the package's
# data/, source row, feature-name prefix). Copied, not imported: importing ``lang2vec.lang2vec``
# costs ~3 s (it imports pkg_resources and, at import time, scans every URIEL language of the
# genetic table, re-reading its language array once per language) and the report needs 3 sets.
FEATURE_SETS = {
    "syntax_knn": ("feature_predictions.npz", "predicted", "S_"),
    "fam": ("family_features.npz", "FAM", ""),
    "geo": ("geocoord_features.npz", "GEOCOORDS", ""),
}


@lru_cache(maxsize=1)
def _lang2vec_data() -> Path:
    """The ``data`` directory of the installed lang2vec package, found without running it.

    Its wheel also installs a *script* ``bin/lang2vec.py``; when Python runs a console script
    from that ``bin`` (``xstilts report``), ``bin`` is first on ``sys.path`` and the script
    would be found instead of the package. So directories holding a ``lang2vec.py`` are
    skipped, and the package is located by ``PathFinder`` (which imports nothing)."""
    import sys
    from importlib.machinery import PathFinder

    paths = [p for p in sys.path if not (Path(p or ".") / "lang2vec.py").is_file()]
    spec = PathFinder.find_spec("lang2vec", paths)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("No module named 'lang2vec'")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (data / "letter_codes.json").is_file():
        raise ImportError(f"lang2vec at {data.parent} has no data/letter_codes.json")
    return data


@lru_cache(maxsize=1)
def _letter_codes() -> dict[str, str]:
    """lang2vec's two-letter -> ISO 639-3 table (``data/letter_codes.json``)."""
    import json

    return json.loads((_lang2vec_data() / "letter_codes.json").read_text(encoding="utf-8"))


def _vectors(languages: tuple[str, ...], feature_set: str) -> dict[str, np.ndarray | str]:
    """URIEL vector of every language (or the reason it has none); -1 marks a missing value.

    lang2vec's own ``get_features`` re-reads the compressed array for every feature index it
    looks up (minutes per call); this reads the same file once and selects the same feature
    names (``prefix``) and source as its ``get_named_set`` does, for the wanted languages'
    rows only (the genetic table is 7970 × 3718: selecting features before rows copies
    120 MB and took 1.4 s).
    """
    codes = _letter_codes()
    filename, source, prefix = FEATURE_SETS[feature_set]
    with np.load(_lang2vec_data() / filename) as db:
        index = {str(code): i for i, code in enumerate(db["langs"])}
        feats = np.array([str(f).startswith(prefix) for f in db["feats"]])
        src = int(np.flatnonzero(db["sources"] == source)[0])
        data = db["data"]  # [langs, feats, sources]
    out: dict[str, np.ndarray | str] = {}
    for lang in languages:
        code = codes.get(lang, lang)  # XTREME's two-letter code -> ISO 639-3
        if code not in index:
            out[lang] = f"'{lang}' ({code}) not in URIEL {source}"
            continue
        vec = data[index[code], feats, src].astype(float)
        if np.any(vec == -1):
            out[lang] = f"URIEL {source} has missing values for '{lang}'"
            continue
        out[lang] = vec
    return out


def typology(languages: list[str], *, english: str = "en") -> Typology:
    """Cosine distances to ``english`` per kind (syntactic, genetic, geographic)."""
    try:
        _letter_codes()
    except Exception as e:  # noqa: BLE001 - not installed, or its data files unreadable
        return Typology(
            {k: {} for k in TYPOLOGY}, f"lang2vec unavailable ({type(e).__name__}: {e})"
        )
    langs = tuple(sorted(set(languages) | {english}))
    distances: dict[str, dict[str, float]] = {}
    missing: dict[str, str] = {}
    for kind, fs in TYPOLOGY.items():
        vecs = _vectors(langs, fs)
        en = vecs.get(english)
        distances[kind] = {}
        for lang in languages:
            v = vecs.get(lang)
            if isinstance(v, np.ndarray) and isinstance(en, np.ndarray):
                distances[kind][lang] = max(0.0, _cosine_distance(en, v))  # no -1e-16
            else:
                missing.setdefault(lang, v if isinstance(v, str) else str(en))
    note = "; ".join(f"no URIEL vector: {why}" for why in missing.values())
    return Typology(distances, note)


def is_latin(language: str, text: str | None = None) -> float:
    """1.0 for Latin script, 0.0 for another script, nan when unknown. Known codes use the
    table above; other codes are judged from ``text`` (majority of letters named LATIN)."""
    if language in LATIN_SCRIPT:
        return 1.0
    if language in NON_LATIN_SCRIPT:
        return 0.0
    if not text:
        return math.nan
    import unicodedata

    letters = [c for c in text[:20000] if c.isalpha()]
    if not letters:
        return math.nan
    latin = sum(unicodedata.name(c, "").startswith("LATIN") for c in letters)
    return 1.0 if latin * 2 > len(letters) else 0.0


# --------------------------------------------------------------------------- tokenizer statistics


@dataclass(frozen=True)
class TokenStats:
    fertility: float  # sub-word tokens per word
    unk_rate: float  # share of sub-word tokens that are the unknown token
    n_words: int
    note: str = ""


def words_of(examples: list, max_words: int = 20000) -> tuple[list[str], bool]:
    """Words of the first examples' text, and whether they came pre-tokenised.

    Pre-tokenised examples (a list-of-strings field such as ``tokens``/``words``) give their
    words; otherwise every string field that is text (not ids, labels or language codes) is split
    on whitespace. Stops after ``max_words`` so large test sets stay cheap.
    """
    skip = {"guid", "language", "label", "id", "line", "answer_start"}
    words: list[str] = []
    pretokenised = False
    for ex in examples:
        fields = ex.__dict__ if hasattr(ex, "__dict__") else {}
        for name, value in fields.items():
            if name in skip or name.endswith("_id") or name.endswith("label"):
                continue
            if (
                isinstance(value, (list, tuple))
                and value
                and all(isinstance(v, str) for v in value)
            ):
                if name.endswith("labels") or name in ("tags", "answers"):
                    continue
                words.extend(value)
                pretokenised = True
            elif isinstance(value, str):
                words.extend(value.split())
        if len(words) >= max_words:
            break
    return words[:max_words], pretokenised


def token_stats(tokenizer, words: list[str], *, language: str, pretokenised: bool) -> TokenStats:
    """Fertility and UNK rate of ``tokenizer`` over ``words`` (each word tokenised alone, no
    special tokens)."""
    if not words:
        return TokenStats(math.nan, math.nan, 0, "no evaluation text")
    enc = tokenizer(words, add_special_tokens=False)["input_ids"]
    n_sub = sum(len(e) for e in enc)
    unk = tokenizer.unk_token_id
    n_unk = sum(t == unk for e in enc for t in e) if unk is not None else 0
    note = ""
    if language in NO_WORD_SPACES and not pretokenised:
        note = "no spaces between words: fertility per whitespace-delimited chunk"
    if unk is None:
        note = (note + "; " if note else "") + "tokenizer has no unknown token"
    return TokenStats(n_sub / len(words), n_unk / n_sub if n_sub else math.nan, len(words), note)


@lru_cache(maxsize=8)
def load_tokenizer(path: str):
    """A tokenizer from a local directory (never the network)."""
    from transformers import AutoTokenizer

    if not Path(path).is_dir():
        from xstilts.modeling.model import resolve_model_path

        path = resolve_model_path(path)
        if not Path(path).is_dir():
            raise FileNotFoundError(f"{path} is not a local tokenizer directory")
    return AutoTokenizer.from_pretrained(path, local_files_only=True)
