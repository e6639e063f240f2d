"""The file-level helpers every reader shares (xstilts.tasks.readers.files): one treatment of
missing files, UTF-8, BOMs, CRLF and JSON lines, with the file and line in every error."""

from __future__ import annotations

from pathlib import Path

import pytest

from xstilts.errors import DataError
from xstilts.tasks.mlm import read_text_corpus
from xstilts.tasks.readers.files import (
    iter_jsonl,
    jsonl_records,
    physical_lines,
    read_json,
    read_text,
)
from xstilts.tasks.readers.retrieval import read_tatoeba


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_read_text_drops_bom_and_names_the_bad_line(tmp_path: Path) -> None:
    p = _write(tmp_path / "a.txt", "\ufeffone\r\ntwo\n".encode())
    assert read_text(p)[1] == "one\r\ntwo\n"
    bad = _write(tmp_path / "b.txt", b"ok\nok\n\xff bad\n")
    with pytest.raises(DataError, match=r"b\.txt:3: not valid UTF-8"):
        read_text(bad)
    with pytest.raises(DataError, match="file not found"):
        read_text(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="not a regular file"):
        read_text(tmp_path)


def test_physical_lines_split_on_newline_only() -> None:
    # U+2028 and a bare \r stay inside their line; CRLF reads as LF; no phantom last line
    assert physical_lines("a\u2028b\r\nc\rd\n\ne\n") == ["a\u2028b", "c\rd", "", "e"]


def test_jsonl_records_and_iter_jsonl_agree(tmp_path: Path) -> None:
    text = '\ufeff{"a": 1}\r\n\n{"a": 2}\n'
    p = _write(tmp_path / "x.jsonl", text.encode())
    want = [(1, {"a": 1}), (3, {"a": 2})]
    assert jsonl_records(*read_text(p)) == want
    assert list(iter_jsonl(p)) == want


@pytest.mark.parametrize(
    "data, message",
    [
        (b'{"a": 1}\n[1, 2]\n', r"bad\.jsonl:2: expected a JSON object, got list"),
        (b'{"a": 1}\n\n{"a": \n', r"bad\.jsonl:3: invalid JSON"),
        (b'{"a": 1}\n{"a": "\xff"}\n', r"bad\.jsonl:2: not valid UTF-8"),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path: Path, data: bytes, message: str) -> None:
    p = _write(tmp_path / "bad.jsonl", data)
    with pytest.raises(DataError, match=message):
        list(iter_jsonl(p))
    with pytest.raises(DataError, match=message):  # the whole-file path: read, then parse
        jsonl_records(*read_text(p))


def test_empty_jsonl(tmp_path: Path) -> None:
    p = _write(tmp_path / "e.jsonl", b"\n\n")
    with pytest.raises(DataError, match="empty file"):
        jsonl_records(*read_text(p))
    assert list(iter_jsonl(p)) == []  # streamed readers decide what empty means


def test_read_json_names_line_and_column(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.json", b'{\n  "data": [\n    1,\n  ]\n}\n')
    with pytest.raises(DataError, match=r"d\.json:4: invalid JSON \(Expecting value, column 3\)"):
        read_json(p)
    assert read_json(_write(tmp_path / "ok.json", b'\xef\xbb\xbf{"data": []}'))[1] == {"data": []}


def test_text_corpus_and_tatoeba_keep_lines_whole(tmp_path: Path) -> None:
    # a stray \r or U+2028 inside a sentence must not shift the lines of a parallel file
    corpus = _write(tmp_path / "c.txt", "one\u2028still one\r\n\ntwo\rstill two\n".encode())
    rows = read_text_corpus(corpus, language="xx")
    assert [(r.line, r.text) for r in rows] == [(1, "one\u2028still one"), (3, "two\rstill two")]
    xx = _write(tmp_path / "tatoeba.deu-eng.deu", b"eins\rzwei\ndrei\n")
    _write(tmp_path / "tatoeba.deu-eng.eng", b"one two\nthree\n")
    pairs = read_tatoeba(xx, language="de")
    assert len(pairs) == 2
