"""Small synthetic multilingual sentence-pair data for the offline demo.

Everything here is generated from templates and small hand-written lexicons; no dataset
text is copied. The target task is 3-way NLI over short "shopping" sentences::

    Anna bought 3 red bags in Berlin.  /  Anna bought 5 red bags.  ->  contradiction

A premise states who (name), did what (verb), how many (digit), which colour, which object,
where (city) and optionally when (day). A hypothesis repeats the name, verb and object and a
random subset of the other facts:

* entailment: every mentioned fact matches the premise;
* contradiction: one mentioned number, colour, city or day conflicts with the premise;
* neutral: a different person, or a day that the premise does not mention.

Test items are rendered in every language of :data:`DEMO_LANGUAGES` from the same abstract
facts (parallel, like XNLI). Digits and person names are kept identical across languages,
and a few city names and cognates are close, which gives an English-only model something
to transfer. The intermediate task is English-only, 2-way (RTE-like ``entailment`` /
``not_entailment``) and built from different templates ("Anna lives in Rome and owns 3
black bikes.") over the same names, digits, colours and cities.

Files use the XTREME-processed XNLI tsv layout: no header, ``text_a<TAB>text_b<TAB>label``,
UTF-8, ``\\n`` line ends.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

DEMO_LANGUAGES: tuple[str, ...] = ("en", "de", "es", "fr", "ru")
TARGET_LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
INTERMEDIATE_LABELS: tuple[str, ...] = ("entailment", "not_entailment")

TARGET_DIR = "demo-nli"
INTERMEDIATE_DIR = "demo-inter"

# Names are never translated; the gender drives Russian verb agreement.
NAMES: tuple[tuple[str, str], ...] = (
    ("Anna", "f"), ("Maria", "f"), ("Laura", "f"), ("Sofia", "f"), ("Elena", "f"),
    ("Tom", "m"), ("David", "m"), ("Daniel", "m"), ("Mark", "m"), ("Leon", "m"),
)  # fmt: skip
NUMBERS: tuple[int, ...] = tuple(range(2, 13))

# Per-language lexicons, aligned by index across languages.
VERBS = {
    "en": ("bought", "sold", "found"),
    "de": ("kaufte", "verkaufte", "fand"),
    "es": ("compró", "vendió", "encontró"),
    "fr": ("a acheté", "a vendu", "a trouvé"),
    "ru": (("купила", "купил"), ("продала", "продал"), ("нашла", "нашёл")),  # (f, m)
}
# en/de: plural; es/fr: (plural, gender); ru: (nom/acc plural, gen singular, gen plural).
NOUNS = {
    "en": ("bags", "books", "cups", "hats", "chairs", "cars"),
    "de": ("Taschen", "Bücher", "Tassen", "Hüte", "Stühle", "Autos"),
    "es": (("bolsas", "f"), ("libros", "m"), ("tazas", "f"), ("sombreros", "m"),
           ("sillas", "f"), ("coches", "m")),
    "fr": (("sacs", "m"), ("livres", "m"), ("tasses", "f"), ("chapeaux", "m"),
           ("chaises", "f"), ("voitures", "f")),
    "ru": (("сумки", "сумки", "сумок"), ("книги", "книги", "книг"),
           ("чашки", "чашки", "чашек"), ("шляпы", "шляпы", "шляп"),
           ("стулья", "стула", "стульев"), ("машины", "машины", "машин")),
}  # fmt: skip
# en: base; de: strong plural; es/fr: (masc plural, fem plural); ru: (nom plural, gen plural).
COLORS = {
    "en": ("red", "blue", "green", "yellow", "black", "white"),
    "de": ("rote", "blaue", "grüne", "gelbe", "schwarze", "weiße"),
    "es": (("rojos", "rojas"), ("azules", "azules"), ("verdes", "verdes"),
           ("amarillos", "amarillas"), ("negros", "negras"), ("blancos", "blancas")),
    "fr": (("rouges", "rouges"), ("bleus", "bleues"), ("verts", "vertes"),
           ("jaunes", "jaunes"), ("noirs", "noires"), ("blancs", "blanches")),
    "ru": (("красные", "красных"), ("синие", "синих"), ("зелёные", "зелёных"),
           ("жёлтые", "жёлтых"), ("чёрные", "чёрных"), ("белые", "белых")),
}  # fmt: skip
# Full locative phrases ("in Berlin"), since prepositions and case differ per language.
CITIES = {
    "en": ("in Berlin", "in Madrid", "in Paris", "in Rome", "in London", "in Vienna"),
    "de": ("in Berlin", "in Madrid", "in Paris", "in Rom", "in London", "in Wien"),
    "es": ("en Berlín", "en Madrid", "en París", "en Roma", "en Londres", "en Viena"),
    "fr": ("à Berlin", "à Madrid", "à Paris", "à Rome", "à Londres", "à Vienne"),
    "ru": ("в Берлине", "в Мадриде", "в Париже", "в Риме", "в Лондоне", "в Вене"),
}
# Sentence-initial time phrases.
DAYS = {
    "en": ("On Monday,", "On Tuesday,", "On Wednesday,", "On Friday,", "On Sunday,"),
    "de": ("Am Montag", "Am Dienstag", "Am Mittwoch", "Am Freitag", "Am Sonntag"),
    "es": ("El lunes,", "El martes,", "El miércoles,", "El viernes,", "El domingo,"),
    "fr": ("Lundi,", "Mardi,", "Mercredi,", "Vendredi,", "Dimanche,"),
    "ru": ("В понедельник", "Во вторник", "В среду", "В пятницу", "В воскресенье"),
}

# English-only lexicon for the intermediate task.
THINGS = ("bikes", "boats", "lamps", "kites", "sofas", "umbrellas")
JOBS = ("teacher", "doctor", "baker", "pilot", "nurse", "farmer")


@dataclass(frozen=True)
class Sentence:
    """Abstract content of one target sentence; ``None`` means the fact is not mentioned."""

    name: int
    verb: int
    noun: int
    n: int | None = None
    color: int | None = None
    city: int | None = None
    day: int | None = None


def _ru_count_form(n: int) -> int:
    """Index into the Russian noun tuple after the numeral ``n`` (valid for 2 <= n <= 20)."""
    return 1 if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14) else 2


def render(s: Sentence, lang: str) -> str:
    """Render an abstract sentence in ``lang``."""
    name, gender = NAMES[s.name]
    city = f" {CITIES[lang][s.city]}" if s.city is not None else ""
    num = str(s.n) if s.n is not None else None
    if lang == "en":
        np = " ".join(x for x in (num, _opt(COLORS[lang], s.color), NOUNS[lang][s.noun]) if x)
        core = f"{name} {VERBS[lang][s.verb]} {np}{city}"
    elif lang == "de":
        np = " ".join(x for x in (num, _opt(COLORS[lang], s.color), NOUNS[lang][s.noun]) if x)
        verb = VERBS[lang][s.verb]  # verb-second: "Am Montag kaufte Anna ..."
        if s.day is not None:
            return f"{DAYS[lang][s.day]} {verb} {name} {np}{city}."
        core = f"{name} {verb} {np}{city}"
    elif lang in ("es", "fr"):
        noun, g = NOUNS[lang][s.noun]
        color = COLORS[lang][s.color][g == "f"] if s.color is not None else None
        det = num if num is not None else ("des" if lang == "fr" else None)
        np = " ".join(x for x in (det, noun, color) if x)
        core = f"{name} {VERBS[lang][s.verb]} {np}{city}"
    elif lang == "ru":
        forms = NOUNS[lang][s.noun]
        if s.n is None:
            words = (_opt([c[0] for c in COLORS[lang]], s.color), forms[0])
        else:
            words = (num, _opt([c[1] for c in COLORS[lang]], s.color), forms[_ru_count_form(s.n)])
        np = " ".join(x for x in words if x)
        core = f"{name} {VERBS[lang][s.verb][gender == 'm']} {np}{city}"
    else:
        raise ValueError(f"unsupported demo language {lang!r}; expected one of {DEMO_LANGUAGES}")
    if s.day is not None:
        return f"{DAYS[lang][s.day]} {core}."
    return f"{core}."


def _opt(words, index: int | None) -> str | None:
    return words[index] if index is not None else None


def _other(rng: random.Random, value: int, options) -> int:
    """A random option different from ``value``."""
    return rng.choice([o for o in options if o != value])


def _balanced_labels(rng: random.Random, labels: tuple[str, ...], n: int) -> list[str]:
    out = [labels[i % len(labels)] for i in range(n)]
    rng.shuffle(out)
    return out


def _target_pair(rng: random.Random, label: str) -> tuple[Sentence, Sentence]:
    n_days = len(DAYS["en"])
    premise = Sentence(
        name=rng.randrange(len(NAMES)),
        verb=rng.randrange(len(VERBS["en"])),
        noun=rng.randrange(len(NOUNS["en"])),
        n=rng.choice(NUMBERS),
        color=rng.randrange(len(COLORS["en"])),
        city=rng.randrange(len(CITIES["en"])),
        day=rng.randrange(n_days) if rng.random() < 0.5 else None,
    )
    # Each optional fact is repeated in the hypothesis with some probability.
    keep = {slot: rng.random() < 0.6 for slot in ("n", "color", "city", "day")}
    hyp = replace(premise, **{slot: None for slot, kept in keep.items() if not kept})
    if label == "contradiction":
        slots = ["n", "color", "city"] + (["day"] if premise.day is not None else [])
        slot = rng.choice(slots)
        options = {
            "n": NUMBERS,
            "color": range(len(COLORS["en"])),
            "city": range(len(CITIES["en"])),
            "day": range(n_days),
        }[slot]
        hyp = replace(hyp, **{slot: _other(rng, getattr(premise, slot), options)})
    elif label == "neutral":
        if premise.day is None and rng.random() < 0.5:
            hyp = replace(hyp, day=rng.randrange(n_days))  # a time the premise never gives
        else:
            hyp = replace(hyp, name=_other(rng, premise.name, range(len(NAMES))))
    elif label != "entailment":
        raise ValueError(f"unknown target label {label!r}")
    return premise, hyp


def _intermediate_pair(rng: random.Random, label: str) -> tuple[str, str]:
    """English RTE-like pair, e.g. 'Anna lives in Rome and owns 3 black bikes.'"""
    facts = {
        "name": rng.randrange(len(NAMES)),
        "city": rng.randrange(len(CITIES["en"])),
        "n": rng.choice(NUMBERS),
        "color": rng.randrange(len(COLORS["en"])),
        "thing": rng.randrange(len(THINGS)),
        "job": rng.randrange(len(JOBS)) if rng.random() < 0.5 else None,
    }
    present = [c for c in _CLAUSES if c != "job" or facts["job"] is not None]
    shown = set(rng.sample(present, rng.randint(1, len(present))))
    hyp = dict(facts)
    if label == "not_entailment":
        options = {
            "name": range(len(NAMES)),
            "city": range(len(CITIES["en"])),
            "n": NUMBERS,
            "color": range(len(COLORS["en"])),
            "thing": range(len(THINGS)),
            "job": range(len(JOBS)),  # a different job, or one the premise never mentions
        }
        kind = rng.choice(tuple(options))
        hyp[kind] = _other(rng, facts[kind], options[kind])
        if kind != "name":
            shown.add(kind if kind in ("job", "city") else "pets")
    elif label != "entailment":
        raise ValueError(f"unknown intermediate label {label!r}")
    return _inter_render(facts, present), _inter_render(hyp, shown)


_CLAUSES = ("job", "city", "pets")


def _inter_render(f: dict, clauses) -> str:
    parts = []
    for clause in _CLAUSES:
        if clause not in clauses:
            continue
        if clause == "job":
            parts.append(f"works as a {JOBS[f['job']]}")
        elif clause == "city":
            parts.append(f"lives {CITIES['en'][f['city']]}")
        else:
            parts.append(f"owns {f['n']} {COLORS['en'][f['color']]} {THINGS[f['thing']]}")
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{NAMES[f['name']][0]} {body}."


def _unique_rows(rng, labels, make, seen: set) -> list:
    """One generated item per label, skipping any whose English rendering was already used."""
    rows = []
    for label in labels:
        for _ in range(1000):
            item = make(rng, label)
            key = item[2]
            if key not in seen:
                seen.add(key)
                rows.append(item)
                break
        else:
            raise RuntimeError("demo generator ran out of distinct examples; lower the sizes")
    return rows


def _write_tsv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for row in rows:
        for field in row:
            if "\t" in field or "\n" in field or "\r" in field:
                raise ValueError(f"demo field contains a tab or newline: {field!r}")
        lines.append("\t".join(row) + "\n")
    path.write_bytes("".join(lines).encode("utf-8"))
    return path


def write_demo_data(
    out_dir: Path, *, seed: int = 0, n_train: int = 600, n_dev: int = 150, n_test: int = 300
) -> dict[str, Path]:
    """Write the demo target, intermediate and parallel test sets under ``out_dir``.

    Returns logical names (``target_train``, ``target_dev``, ``intermediate_train``,
    ``intermediate_dev``, ``test_<lang>``) mapped to the written paths. The same ``seed``
    always gives byte-identical files; no split repeats a pair from another split.
    """
    for label, size in (("n_train", n_train), ("n_dev", n_dev), ("n_test", n_test)):
        if size < 1:
            raise ValueError(f"{label} must be >= 1, got {size}")
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    paths: dict[str, Path] = {}

    def target(r, label):
        premise, hyp = _target_pair(r, label)
        return premise, hyp, (render(premise, "en"), render(hyp, "en")), label

    seen: set = set()
    splits = {}
    for split, size in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        labels = _balanced_labels(rng, TARGET_LABELS, size)
        splits[split] = _unique_rows(rng, labels, target, seen)
    for split in ("train", "dev"):
        rows = [(*item[2], item[3]) for item in splits[split]]
        paths[f"target_{split}"] = _write_tsv(out_dir / TARGET_DIR / f"{split}-en.tsv", rows)
    for lang in DEMO_LANGUAGES:
        rows = [(render(p, lang), render(h, lang), label) for p, h, _, label in splits["test"]]
        paths[f"test_{lang}"] = _write_tsv(out_dir / TARGET_DIR / f"test-{lang}.tsv", rows)

    def intermediate(r, label):
        premise, hyp = _intermediate_pair(r, label)
        return premise, hyp, (premise, hyp), label

    seen = set()
    for split, size in (("train", n_train), ("dev", n_dev)):
        labels = _balanced_labels(rng, INTERMEDIATE_LABELS, size)
        rows = [(p, h, label) for p, h, _, label in _unique_rows(rng, labels, intermediate, seen)]
        path = out_dir / INTERMEDIATE_DIR / f"{split}-en.tsv"
        paths[f"intermediate_{split}"] = _write_tsv(path, rows)
    return paths
