"""Benchmark language tables, kept as data (as google-research/xtreme ``evaluate.py`` does).

Codes are XTREME's two-letter codes. ``XTREME`` lists are exactly ``TASK2LANGS`` of the xtreme
repo's ``evaluate.py``; ``XTREME_R`` follows the XTREME-R paper (Ruder et al. 2021), whose
additions are listed explicitly so the difference is auditable.
"""

from __future__ import annotations

from enum import Enum


class Benchmark(str, Enum):
    XTREME = "xtreme"
    XTREME_R = "xtreme-r"


def _split(s: str) -> tuple[str, ...]:
    return tuple(s.split(","))


XTREME: dict[str, tuple[str, ...]] = {
    "pawsx": _split("de,en,es,fr,ja,ko,zh"),
    "xnli": _split("ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh"),
    "panx": _split(
        "ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,"
        "ko,th,sw,yo,my,zh,kk,tr,et,fi,hu"
    ),
    "udpos": _split(
        "af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,nl,pt,ru,ta,te,th,tl,tr,"
        "ur,vi,yo,zh"
    ),
    "bucc2018": _split("de,fr,ru,zh"),
    "tatoeba": _split(
        "ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,"
        "sw,zh,kk,tr,et,fi,hu"
    ),
    "xquad": _split("en,es,de,el,ru,tr,ar,vi,th,zh,hi"),
    "mlqa": _split("en,es,de,ar,hi,vi,zh"),
    "tydiqa": _split("en,ar,bn,fi,id,ko,ru,sw,te"),
}

# XTREME-R drops PAWS-X and BUCC, adds XCOPA, LAReQA and Mewsli-X, and extends four tables.
# (in the order of the XTREME-R ``evaluate.py``, so key and summation order match it)
_XTREME_R_ADDED = {
    "udpos": _split("lt,pl,uk,wo,ro"),
    "panx": _split("qu,pl,uk,az,lt,pa,gu,ro"),
    "tatoeba": _split("az,lt,pl,uk,ro"),
    "xquad": _split("ro"),
}
XTREME_R: dict[str, tuple[str, ...]] = {
    "xnli": XTREME["xnli"],
    "xcopa": _split("et,ht,id,it,qu,sw,ta,th,tr,vi,zh"),
    "udpos": XTREME["udpos"] + _XTREME_R_ADDED["udpos"],
    "panx": XTREME["panx"] + _XTREME_R_ADDED["panx"],
    "xquad": XTREME["xquad"] + _XTREME_R_ADDED["xquad"],
    "mlqa": XTREME["mlqa"],
    "tydiqa": XTREME["tydiqa"],
    "tatoeba": XTREME["tatoeba"] + _XTREME_R_ADDED["tatoeba"],
    "lareqa": _split("ar,de,el,en,es,hi,ru,th,tr,vi,zh"),
    "mewslix": _split("ar,de,en,es,fa,ja,pl,ro,ta,tr,uk"),
}

# Tasks whose test sets are translations of one another: an example id names the same item in
# every language (XNLI / PAWS-X rows "<language>-<row>", XCOPA "<language>-<idx>", XQuAD and
# MLQA question ids shared across languages; checked on the released files: XQuAD 1190/1190
# ids in all 12 languages, MLQA dev ids shared by 161-517 questions per language pair, XNLI
# 5010 rows and PAWS-X 2000 rows in every language). The report merges such examples into one
# unit when it averages over languages (analysis/deltas.py).
PARALLEL_TEST_SETS: frozenset[str] = frozenset(
    {"xnli", "pawsx", "xcopa", "xquad", "mlqa", "demo_nli"}
)

TABLES: dict[Benchmark, dict[str, tuple[str, ...]]] = {
    Benchmark.XTREME: XTREME,
    Benchmark.XTREME_R: XTREME_R,
}


def benchmark_languages(task: str) -> dict[Benchmark, tuple[str, ...]]:
    """The language list of ``task`` in every benchmark that contains it."""
    return {b: t[task] for b, t in TABLES.items() if task in t}
