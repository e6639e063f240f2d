"""Property-based fuzzing (Hypothesis) of every covered local reader, called as the task
registry calls it (``LocalFormat.reader(path, language, split)``): a small valid file
(tests/_fuzz_seeds.py), mutated at random (truncated at a byte, random or invalid UTF-8 bytes,
a BOM, lines dropped, repeated or swapped, columns dropped, repeated or swapped, empty fields,
huge numbers, labels outside the set), is either read or refused with one ``DataError`` line
that names the file; never another exception, never a hang."""

from __future__ import annotations

import random
import re
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fuzz_seeds import SEEDS, Seed, alarm  # noqa: E402

from xstilts.errors import DataError  # noqa: E402
from xstilts.tasks.base import all_tasks, get_task  # noqa: E402

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)

# Tokens put in place of a word, number or label: huge and odd numbers, labels outside every
# label set, JSON that changes a value's type, nothing at all.
HOSTILE = [
    "", " ", "99999999999999999999999", "-1", "1e309", "NaN", "-0", "0.5", "null", "true",
    '""', "[]", "{}", '"', "\t", "MAYBE", "B-XXX", "I-", "_", "\u200b", "\x00", "ü", "1-1",
]  # fmt: skip
BYTES = [b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\r", b"\r\n", b"\n\n", b"\x00"]


def _lines_op(data: bytes, rnd: random.Random, op: str) -> bytes:
    lines = data.split(b"\n")
    i, j = rnd.randrange(len(lines)), rnd.randrange(len(lines))
    if op == "drop line":
        del lines[i]
    elif op == "repeat line":
        lines.insert(i, lines[i])
    else:
        lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def _columns_op(data: bytes, rnd: random.Random, op: str) -> bytes:
    """Columns of tab-separated lines (every tsv-like format here); one line or all lines."""
    lines = data.split(b"\n")
    targets = range(len(lines)) if rnd.random() < 0.5 else [rnd.randrange(len(lines))]
    for k in targets:
        cols = lines[k].split(b"\t")
        i, j = rnd.randrange(len(cols)), rnd.randrange(len(cols))
        if op == "drop column" and len(cols) > 1:
            del cols[i]
        elif op == "repeat column":
            cols.insert(i, cols[i])
        elif op == "swap columns":
            cols[i], cols[j] = cols[j], cols[i]
        else:  # empty field
            cols[i] = b""
        lines[k] = b"\t".join(cols)
    return b"\n".join(lines)


def _token_op(data: bytes, rnd: random.Random) -> bytes:
    """One word, number or JSON string's content replaced by a hostile token."""
    spans = [m.span() for m in re.finditer(rb"[\w.+-]+", data)]
    if not spans:
        return data
    a, b = rnd.choice(spans)
    return data[:a] + rnd.choice(HOSTILE).encode() + data[b:]


OPS = [
    "truncate", "insert bytes", "overwrite bytes", "bom", "invalid utf-8",
    "drop line", "repeat line", "swap lines", "drop column", "repeat column",
    "swap columns", "empty field", "token", "token", "token",
]  # fmt: skip


def mutate(data: bytes, ops: list[str], seed: int, noise: bytes) -> bytes:
    rnd = random.Random(seed)
    for op in ops:
        if not data:
            break
        at = rnd.randrange(len(data) + 1)
        if op == "truncate":
            data = data[:at]
        elif op == "insert bytes":
            data = data[:at] + (noise or rnd.choice(BYTES)) + data[at:]
        elif op == "overwrite bytes":
            data = data[:at] + noise + data[at + len(noise) :]
        elif op == "bom":
            data = b"\xef\xbb\xbf" + data
        elif op == "invalid utf-8":
            data = data[:at] + rnd.choice(BYTES[1:4]) + data[at:]
        elif op in ("drop line", "repeat line", "swap lines"):
            data = _lines_op(data, rnd, op)
        elif op in ("drop column", "repeat column", "swap columns", "empty field"):
            data = _columns_op(data, rnd, op)
        else:
            data = _token_op(data, rnd)
    return data


def _files(d: Path, seed: Seed) -> tuple[Path, list[Path]]:
    main = d / seed.name
    main.write_bytes(seed.text.encode("utf-8"))
    siblings = []
    for name, text in seed.siblings.items():
        (d / name).write_bytes(text.encode("utf-8"))
        siblings.append(d / name)
    return main, siblings


def _read(seed: Seed, path: Path):
    fmt = next(f for f in get_task(seed.task).local if f.name == seed.fmt)
    with alarm(10, f"{seed.task}/{seed.fmt} reader"):
        return fmt.reader(path, seed.language, seed.split)


IDS = [f"{s.task}-{s.fmt}" for s in SEEDS]


@pytest.mark.parametrize("seed", SEEDS, ids=IDS)
def test_seeds_are_valid(seed):
    with tempfile.TemporaryDirectory() as d:
        main, _ = _files(Path(d), seed)
        assert len(_read(seed, main)) >= 1


def test_the_seeds_cover_the_main_formats():
    """Every family named in issue 16 has a seed; the formats without one are listed here so
    that a new format is a visible decision."""
    registered = {(s.name, f.name) for s in all_tasks() for f in s.local}
    seeded = {(s.task, s.fmt) for s in SEEDS}
    assert seeded <= registered, seeded - registered
    families = {s.task for s in SEEDS}
    for needed in ("mnli", "pawsx", "panx", "udpos", "squad", "xcopa", "copa", "siqa"):
        assert needed in families
    for needed in ("tatoeba", "bucc2018", "lareqa"):
        assert needed in families


@pytest.mark.parametrize("seed", SEEDS, ids=IDS)
@FUZZ
@given(
    ops=st.lists(st.sampled_from(OPS), min_size=1, max_size=3),
    rnd=st.integers(0, 2**32 - 1),
    noise=st.binary(max_size=6),
    target=st.integers(0, 3),
)
def test_mutated_file_is_read_or_one_data_error(seed, ops, rnd, noise, target):
    with tempfile.TemporaryDirectory() as d:
        main, siblings = _files(Path(d), seed)
        files = [main, *siblings]
        victim = files[target % len(files)] if target < 3 else main  # mostly the main file
        victim.write_bytes(mutate(victim.read_bytes(), ops, rnd, noise))
        try:
            out = _read(seed, main)
        except DataError as e:
            msg = str(e)
            assert "\n" not in msg and "\r" not in msg, repr(msg)
            assert any(f.name in msg for f in files), msg
        else:
            assert isinstance(out, list)


# Real files as seeds (the first lines, cut at a sentence's end): (task, format, file under
# $XSTILTS_SHARED_DATA, language, split, siblings (replacing the last extension)); skipped
# without the shared data.
REAL = [
    ("xnli", "xtreme-tsv", "xtreme-xnli/dev-de.tsv", "de", "dev", ()),
    ("pawsx", "xtreme-tsv", "xtreme-pawsx/dev-de.tsv", "de", "dev", ()),
    ("panx", "xtreme-tsv", "xtreme-panx/dev-de.tsv", "de", "dev", ()),
    ("udpos", "xtreme-tsv", "xtreme-udpos/dev-en.tsv", "en", "dev", ()),
    ("udpos", "conllu", "ud-2.5/UD_German-GSD/de_gsd-ud-test.conllu", "de", "test", ()),
    ("xcopa", "xcopa-jsonl", "xcopa/data/et/val.et.jsonl", "et", "dev", ()),
    ("tatoeba", "laser", "tatoeba/v1/tatoeba.deu-eng.deu", "de", "test", ("eng",)),
]


def _head(path: Path, n: int = 40) -> str:
    """The first ``n`` lines, continued to the end of a blank-line-separated block."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    end = min(n, len(lines))
    while end < len(lines) and lines[end - 1].strip():
        end += 1
    return "".join(lines[:end])


@pytest.mark.realdata
@pytest.mark.parametrize("case", REAL, ids=[f"{c[0]}-{c[1]}" for c in REAL])
@settings(FUZZ, max_examples=20)
@given(
    ops=st.lists(st.sampled_from(OPS), min_size=1, max_size=3),
    rnd=st.integers(0, 2**32 - 1),
    noise=st.binary(max_size=6),
)
def test_mutated_real_file_is_read_or_one_data_error(shared_data, case, ops, rnd, noise):
    task, fmt, rel, language, split, sib = case
    src = shared_data / rel
    siblings = {f"{src.stem}.{ext}": _head(src.with_suffix(f".{ext}")) for ext in sib}
    seed = Seed(task, fmt, src.name, language, split, _head(src), siblings)
    with tempfile.TemporaryDirectory() as d:
        main, others = _files(Path(d), seed)
        assert _read(seed, main)  # the unmutated head reads
        main.write_bytes(mutate(main.read_bytes(), ops, rnd, noise))
        try:
            out = _read(seed, main)
        except DataError as e:
            assert "\n" not in str(e) and main.name in str(e), str(e)
        else:
            assert isinstance(out, list)
