"""Writers of small retrieval fixture files in the released formats, built from the demo data's
parallel sentences (imported by the other ``test_retrieval_*`` modules; no tests here)."""

from __future__ import annotations

import json
from pathlib import Path

ISO3 = {"de": "deu", "es": "spa", "fr": "fra", "ru": "rus"}


def demo_sentences(demo_data: Path, lang: str, split: str = "test") -> list[str]:
    """Premises then hypotheses of a demo split: the same order in every language."""
    rows = [
        line.split("\t")
        for line in (demo_data / "demo-nli" / f"{split}-{lang}.tsv").read_text().splitlines()
    ]
    out, seen = [], set()
    for text in [r[0] for r in rows] + [r[1] for r in rows]:
        out.append(text if text not in seen else f"{text} ({len(out)})")
        seen.add(out[-1])
    return out


def write_tatoeba(demo_data: Path, root: Path, langs=("de", "es", "fr")) -> Path:
    """LASER layout ``tatoeba/v1/tatoeba.xxx-eng.{xxx,eng}``: demo sentences and their
    English versions, line i of one the translation of line i of the other."""
    d = root / "tatoeba" / "v1"
    d.mkdir(parents=True, exist_ok=True)
    eng = demo_sentences(demo_data, "en")
    for lang in langs:
        code = ISO3[lang]
        (d / f"tatoeba.{code}-eng.{code}").write_text(
            "\n".join(demo_sentences(demo_data, lang)) + "\n"
        )
        (d / f"tatoeba.{code}-eng.eng").write_text("\n".join(eng) + "\n")
    return root


def write_bucc(demo_data: Path, root: Path, lang: str = "de") -> Path:
    """``bucc2018/{lang}-en/{lang}-en.{sample,training}.{lang,en,gold}``: each split holds
    parallel sentences (gold) plus unpaired ones on each side, in shuffled order."""
    src, eng = demo_sentences(demo_data, lang), demo_sentences(demo_data, "en")
    d = root / "bucc2018" / f"{lang}-en"
    d.mkdir(parents=True, exist_ok=True)
    halves = {"sample": range(0, 30), "training": range(30, 60)}
    for split, rows in halves.items():
        rows = list(rows)
        paired, only_src, only_en = rows[:20], rows[20:25], rows[25:30]
        src_rows = paired + only_src
        en_rows = list(reversed(paired)) + only_en
        sid = {r: f"{lang}-{split[0]}{i:06d}" for i, r in enumerate(src_rows)}
        eid = {r: f"en-{split[0]}{i:06d}" for i, r in enumerate(en_rows)}
        (d / f"{lang}-en.{split}.{lang}").write_text(
            "".join(f"{sid[r]}\t{src[r]}\n" for r in src_rows)
        )
        (d / f"{lang}-en.{split}.en").write_text("".join(f"{eid[r]}\t{eng[r]}\n" for r in en_rows))
        (d / f"{lang}-en.{split}.gold").write_text("".join(f"{sid[r]}\t{eid[r]}\n" for r in paired))
    return root


def squad_paragraphs(sentences: list[str], questions: list[str], *, breaks: bool) -> list[dict]:
    """Paragraphs of three sentences; question j asks about sentence j (its first word)."""
    paragraphs = []
    for p in range(0, len(sentences) - 2, 3):
        sents = sentences[p : p + 3]
        context, spans = "", []
        for s in sents:
            if context:
                context += " "
            spans.append([len(context), len(context) + len(s)])
            context += s
        qas = []
        for j, (a, _) in enumerate(spans):
            word = context[a:].split(" ")[0]
            qas.append(
                {
                    "id": f"q{p + j}",
                    "question": questions[p + j],
                    "answers": [{"answer_start": a, "text": word}],
                }
            )
        para = {"context": context, "qas": qas}
        if breaks:
            para["sentence_breaks"] = spans
            para["sentences"] = sents
        paragraphs.append(para)
    return paragraphs


def write_xquad_r(demo_data: Path, root: Path, langs=("en", "de", "es")) -> Path:
    """``xquad-r/{lang}.json``: 3-way parallel paragraphs with sentence breaks; question ids
    shared across languages."""
    d = root / "xquad-r"
    d.mkdir(parents=True, exist_ok=True)
    for lang in langs:
        sents = demo_sentences(demo_data, lang)[:30]
        questions = [f"{s.rstrip('.')}?" for s in demo_sentences(demo_data, lang)[30:60]]
        data = {
            "version": "1.1",
            "data": [{"title": "t", "paragraphs": squad_paragraphs(sents, questions, breaks=True)}],
        }
        (d / f"{lang}.json").write_text(json.dumps(data, ensure_ascii=False))
    return root


def write_squad_train(demo_data: Path, root: Path) -> Path:
    """English SQuAD-format training file without sentence breaks."""
    sents = demo_sentences(demo_data, "en", "train")
    n = len(sents) // 2
    data = {
        "version": "1.1",
        "data": [
            {"title": "t", "paragraphs": squad_paragraphs(sents[:n], sents[n:], breaks=False)}
        ],
    }
    path = root / "squad" / "train-v1.1.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _context(text: str, lang: str, doc: str) -> dict:
    return {
        "document_title": doc,
        "document_url": f"https://example.org/{doc}",
        "document_id": doc,
        "language": lang,
        "text": text,
        "sentence_spans": [{"start": 0, "end": len(text)}],
    }


def _entity(eid: str, description: str) -> dict:
    return {
        "entity_id": eid,
        "title": eid,
        "description": description,
        "sentence_spans": [{"start": 0, "end": len(description)}],
        "description_language": "en",
        "description_url": f"https://en.wikipedia.org/wiki/{eid}",
    }


def write_mewslix(demo_data: Path, root: Path, langs=("de", "es"), n_extra: int = 40) -> Path:
    """``mewslix/``: candidate entities (English demo sentences), WikiNews-style mentions (the
    first word of a translated sentence, linked to the entity of its English version) and
    English Wikipedia training pairs."""
    d = root / "mewslix"
    d.mkdir(parents=True, exist_ok=True)
    eng = demo_sentences(demo_data, "en")
    train_en = demo_sentences(demo_data, "en", "train")
    entities = [_entity(f"Q{i}", s) for i, s in enumerate(eng)]
    entities += [_entity(f"Q{1000 + i}", s) for i, s in enumerate(train_en[:n_extra])]
    (d / "candidate_set_entities.jsonl").write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entities)
    )
    for split, rows in (("dev", range(0, 10)), ("test", range(10, 30))):
        lines = []
        for lang in langs:
            sents = demo_sentences(demo_data, lang)
            for i in rows:
                text = sents[i]
                word = text.split(" ")[0]
                mention = {
                    "example_id": f"{lang}-{split}-{i}",
                    "mention_span": {"start": 0, "end": len(word), "text": word},
                    "entity_id": f"Q{i}",
                }
                lines.append({"context": _context(text, lang, f"doc{i}"), "mentions": [mention]})
        (d / f"wikinews_mentions-{split}.jsonl").write_text(
            "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)
        )
    for split, rows in (("train", range(0, 60)), ("dev", range(60, 80))):
        lines = []
        for i in rows:
            text = train_en[i]
            word = text.split(" ")[0]
            cm = {
                "context": _context(text, "en", f"wp{i}"),
                "mention": {
                    "example_id": f"wp-{i}",
                    "mention_span": {"start": 0, "end": len(word), "text": word},
                    "entity_id": f"Q{1000 + i}",
                },
            }
            lines.append({"contextual_mention": cm, "entity": _entity(f"Q{1000 + i}", text)})
        (d / f"wikipedia_pairs-{split}.jsonl").write_text(
            "".join(json.dumps(x) + "\n" for x in lines)
        )
    return root
