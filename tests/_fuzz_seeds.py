"""Small valid files, one per registered local reader format, that tests/commands/test_fuzz_readers.py
mutates (no tests here). Each seed: (task, format name, file name, language, split, content,
siblings {file name: content}) with the files written side by side."""

from __future__ import annotations

import json
import signal
from contextlib import contextmanager
from typing import NamedTuple


@contextmanager
def alarm(seconds: int, what: str):
    """A validation that spins fails the example instead of hanging the suite."""

    def expired(signum, frame):
        raise TimeoutError(f"{what} ran past {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


class Seed(NamedTuple):
    task: str
    fmt: str
    name: str
    language: str
    split: str
    text: str
    siblings: dict[str, str] = {}


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


_NLI3 = ["entailment", "neutral", "contradiction"]
_PAIRS = [
    ("A man sleeps on a bench.", "A man rests.", "entailment"),
    ("Two dogs run in the snow.", "The dogs are asleep.", "contradiction"),
    ('Eine Frau liest "Faust".', "Sie mag Bücher.", "neutral"),
]

_SQUAD = {
    "version": "1.1",
    "data": [
        {
            "title": "Paris",
            "paragraphs": [
                {
                    "context": "Paris is the capital of France. It is old.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "What is the capital of France?",
                            "answers": [{"text": "Paris", "answer_start": 0}],
                        },
                        {
                            "id": "q2",
                            "question": "How is it?",
                            "answers": [{"text": "old", "answer_start": 38}],
                        },
                    ],
                }
            ],
        }
    ],
}
_SQUAD_V2 = json.loads(json.dumps(_SQUAD))
_SQUAD_V2["version"] = "v2.0"
_SQUAD_V2["data"][0]["paragraphs"][0]["qas"].append(
    {"id": "q3", "question": "Who?", "answers": [], "is_impossible": True}
)
for _qa in _SQUAD_V2["data"][0]["paragraphs"][0]["qas"][:2]:
    _qa["is_impossible"] = False

_XQUAD_R = {
    "data": [
        {
            "paragraphs": [
                {
                    "context": "Paris is big. It is old.",
                    "sentence_breaks": [[0, 13], [14, 24]],
                    "qas": [
                        {
                            "id": "q1",
                            "question": "Where?",
                            "answers": [{"answer_start": 0, "text": "Paris"}],
                        },
                        {
                            "id": "q2",
                            "question": "How old?",
                            "answers": [{"answer_start": 20, "text": "old"}],
                        },
                    ],
                }
            ]
        }
    ]
}

_CONLLU = (
    "# sent_id = s1\n# text = The cat sleeps.\n"
    "1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n"
    "2\tcat\tcat\tNOUN\t_\t_\t3\tnsubj\t_\t_\n"
    "3\tsleeps\tsleep\tVERB\t_\t_\t0\troot\t_\tSpaceAfter=No\n"
    "4\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_\n\n"
    "# sent_id = s2\n"
    "1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "1\tdo\tdo\tAUX\t_\t_\t3\taux\t_\t_\n"
    "2\tn't\tnot\tPART\t_\t_\t3\tadvmod\t_\t_\n"
    "3\trun\trun\tVERB\t_\t_\t0\troot\t_\t_\n\n"
)

SEEDS: list[Seed] = [
    Seed("demo_nli", "tsv", "test-en.tsv", "en", "test",
         "".join(f"{p}\t{h}\t{lab}\n" for p, h, lab in _PAIRS)),
    Seed("mnli", "xtreme-tsv", "train-en.tsv", "en", "train",
         "".join(f"{p}\t{h}\t{lab}\n" for p, h, lab in _PAIRS)),
    Seed("mnli", "glue-tsv", "dev_matched.tsv", "en", "dev",
         "index\tpairID\tsentence1\tsentence2\tgold_label\n"
         + "".join(f"{i}\t{i}e\t{p}\t{h}\t{lab}\n" for i, (p, h, lab) in enumerate(_PAIRS))),
    Seed("anli_r1", "jsonl", "dev.jsonl", "en", "dev",
         _jsonl([{"uid": f"u{i}", "context": p, "hypothesis": h, "label": lab[0]}
                 for i, (p, h, lab) in enumerate(_PAIRS)])),
    Seed("pawsx", "xtreme-tsv", "test-de.tsv", "de", "test",
         "Der Hund bellt.\tDer Hund schläft.\t0\n\"\"\"Angel Eyes\"\" ist\"\tAngel Eyes ist\t1\n"),
    Seed("pawsx", "x-final", "test_2k.tsv", "de", "test",
         "id\tsentence1\tsentence2\tlabel\n1\tEin Satz.\tEin anderer Satz.\t0\n2\tA b.\tA b.\t1\n"),
    Seed("panx", "xtreme-tsv", "test-de.tsv", "de", "test",
         "de:Angela\tB-PER\nde:Merkel\tI-PER\nde:in\tO\nde:Berlin\tB-LOC\n\nde:Die\tO\nde:UN\tB-ORG\n"),
    Seed("udpos", "xtreme-tsv", "test-en.tsv", "en", "test",
         "The\tDET\ncat\tNOUN\nsleeps\tVERB\n.\tPUNCT\n\nRun\tVERB\n!\tPUNCT\n"),
    Seed("udpos", "conllu", "test-en.conllu", "en", "test", _CONLLU),
    Seed("udpos_syntactic", "conllu", "test-en.conllu", "en", "test", _CONLLU),
    Seed("squad", "squad-json", "dev-v1.1.json", "en", "dev", json.dumps(_SQUAD, indent=1)),
    Seed("squad_v2", "squad-v2-json", "dev-v2.0.json", "en", "dev", json.dumps(_SQUAD_V2, indent=1)),
    Seed("xcopa", "xcopa-jsonl", "test.et.jsonl", "et", "test",
         _jsonl([{"premise": "Vihma sadas.", "choice1": "Sain märjaks.", "choice2": "Jäin kuivaks.",
                  "question": "effect", "label": 0, "idx": 1},
                 {"premise": "Ma kukkusin.", "choice1": "Libe tee.", "choice2": "Päike paistis.",
                  "question": "cause", "label": 0, "idx": 2}])),
    Seed("copa", "superglue-jsonl", "val-en.jsonl", "en", "dev",
         _jsonl([{"premise": "It rained.", "choice1": "I got wet.", "choice2": "I got dry.",
                  "question": "effect", "label": 0, "idx": 0}])),
    Seed("siqa", "siqa-jsonl", "dev.jsonl", "en", "dev",
         _jsonl([{"context": "Tracy gave a gift.", "question": "How does Tracy feel?",
                  "answerA": "happy", "answerB": "sad", "answerC": "bored"},
                 {"context": "Kai ran.", "question": "Why?", "answerA": "late",
                  "answerB": "tired", "answerC": "cold"}]),
         {"dev-labels.lst": "1\n3\n"}),
    Seed("tatoeba", "laser", "tatoeba.deu-eng.deu", "de", "test",
         "Ich schlafe.\nDer Hund bellt.\nGuten Morgen!\n",
         {"tatoeba.deu-eng.eng": "I sleep.\nThe dog barks.\nGood morning!\n"}),
    Seed("bucc2018", "bucc-release", "de-en.sample.de", "de", "dev",
         "de-000001\tIch schlafe.\nde-000002\tDer Hund bellt.\nde-000003\tAllein.\n",
         {"de-en.sample.en": "en-000001\tThe dog barks.\nen-000002\tI sleep.\n",
          "de-en.sample.gold": "de-000001\ten-000002\nde-000002\ten-000001\n"}),
    Seed("lareqa", "xquad-r", "de.json", "de", "test", json.dumps(_XQUAD_R, indent=1)),
    Seed("xnli", "xtreme-translate-train", "en-de-translated.tsv", "de", "translate-train",
         "A man sleeps.\tA man rests.\tEin Mann schläft.\tEin Mann ruht.\tentailment\n"
         "Dogs run.\tDogs sleep.\tHunde rennen.\tHunde schlafen.\tcontradictory\n"),
    Seed("pawsx", "xtreme-translate-train", "en-de-translated.tsv", "de", "translate-train",
         "A b.\tB a.\tA b.\tB a.\t0\nC d.\tC d.\tC d.\tC d.\t1\n"),
    Seed("copa", "copa-xml", "dev.xml", "en", "dev",
         '<?xml version="1.0" encoding="utf-8"?>\n<copa-corpus version="1.0">\n'
         '<item id="1" asks-for="effect" most-plausible-alternative="1">\n'
         "<p>It rained.</p>\n<a1>I got wet.</a1>\n<a2>I got dry.</a2>\n</item>\n"
         '<item id="2" asks-for="cause" most-plausible-alternative="2">\n'
         "<p>I fell.</p>\n<a1>The sun shone.</a1>\n<a2>The road was icy.</a2>\n</item>\n"
         "</copa-corpus>\n"),
    Seed("hellaswag", "hellaswag-jsonl", "hellaswag_val.jsonl", "en", "dev",
         _jsonl([{"ind": 1, "ctx_a": "A man walks.", "ctx_b": "he", "ctx": "A man walks. he",
                  "endings": ["sits.", "runs.", "flies.", "swims."], "label": 1}])),
    Seed("commonsenseqa", "commonsenseqa-jsonl", "dev_rand_split.jsonl", "en", "dev",
         _jsonl([{"id": "c1", "answerKey": "B",
                  "question": {"stem": "Where is ice?",
                               "choices": [{"label": k, "text": t} for k, t in
                                           zip("ABCDE", ["sun", "fridge", "oven", "desk", "car"])]}}])),
    Seed("cosmosqa", "cosmosqa-csv", "valid.csv", "en", "dev",
         "id,context,question,answer0,answer1,answer2,answer3,label\n"
         'c1,"I ran, then slept.",Why?,tired,"bored, a bit",hungry,cold,0\n'),
    Seed("mlm", "text", "train-de.txt", "de", "train", "Ein Satz.\n\nNoch ein Satz.\n"),
]  # fmt: skip
