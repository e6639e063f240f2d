"""Null (and planted-effect) XNLI-like results with known variance components, written as a
results directory or a long CSV for the calibration benchmark (``calibration.py``) and its
fast test (``tests/analysis/test_calibration.py``).

Model of one draw, on the accuracy (probability) scale, for languages l, systems s, seeds k:

    P[s, k, l] = accuracy + english_gap * [l = en] + a[l] + delta[s, l] + b[s, k] + c[s, k, l]
    a[l] ~ N(0, sd_language)           language effect, shared by every system and seed
    b[s, k] ~ N(0, sd_seed)            seed effect of one trained model, shared by its languages
    c[s, k, l] ~ N(0, sd_language_seed)
    delta[s, l] = effect (+ N(0, effect_sd)) for ``effect_system``, 0 for the others

P is the trained model's expected accuracy on language l over the population of examples.
Examples are parallel (XNLI's test sets are translations of one another): example i has one
gold label in every language and a difficulty z[l, i] = sqrt(rho) e[i] + sqrt(1 - rho) e[l, i]
(e ~ N(0, 1)), correlated across languages and shared by every system and seed. The model is
correct on it with probability

    p[s, k, l, i] = Phi(Phi^-1(P[s, k, l]) * sqrt(1 + sd_difficulty^2) + sd_difficulty * z[l, i])

which averages to exactly P over the example population (E Phi(m + sigma Z) =
Phi(m / sqrt(1 + sigma^2))), so the simulator knows every true value exactly:

* expected score of (system, language) over seeds and test sets: 100 (accuracy + gap + a + delta);
* per-language delta: 100 delta[s, l]; language average: its mean over the languages used;
* variance components of one score, in points^2: language 100^2 sd_language^2 (plus
  gap^2 / L when English is among the L languages: the expected sample variance of L values
  one of which is shifted by the gap), seed 100^2 sd_seed^2, language x seed
  100^2 sd_language_seed^2, example 100^2 P (1 - P) / n averaged over the languages (the
  variance of one score over test sets of n examples: difficulty sampling plus the
  run-by-example Bernoulli noise, both shrinking with n);
* under the null every SD ratio (system / baseline) is 1.

PAN-X (``panx_design``): the same model of p, with one gold entity per sentence that the
model finds exactly (probability p), gives another type (w = ``wrong_type`` of the misses) or
misses; the official score is seqeval's micro span F1 = 2 tp / (n_pred + n_gold), a ratio of
counts. Its population value for a model is 200 p / (1 + p + (1 - p) w); the expected score
over seeds is that averaged over the seed effects (Gauss-Hermite), and the true delta the
difference of expected scores. Span F1 is not linear in p, so no exact variance components
are claimed for it (n/a).

Defaults follow the CPU study (``studies/cpu-minilm/report/tables``, XNLI, MiniLM, 3 seeds):
non-English accuracies 33-48 (``scores.csv``), English ~51 (``spread_languages.csv``: transfer
gap ~16 points), seed SD per language 0.1-2 points at n = 1000 (``spread_seeds.csv``), SD over
seeds of the baseline's language average 0.47 (``mde.csv``).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats as st

from xstilts.results.store import ResultRow, write_predictions, write_rows
from xstilts.tasks.languages import XTREME

TASK = "xnli"
LABELS = ("entailment", "neutral", "contradiction")
ENTITY_TYPES = ("PER", "ORG", "LOC")
SENTENCE_WORDS = 6  # PAN-X: words per simulated sentence, one gold entity in each
# a PAN-X subset of the 40 languages: the XNLI ones PAN-X has (its test sets are not parallel)
PANX_LANGUAGES = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur",
                  "vi", "zh")  # fmt: skip
COMPONENTS = ("language", "seed", "language×seed", "example")
# probabilities are kept inside this band (a realistic design never reaches it; counted)
P_MIN, P_MAX = 0.005, 0.995


@dataclass(frozen=True)
class Design:
    languages: tuple[str, ...] = XTREME[TASK]  # the 15 XNLI languages
    english: str = "en"
    n_examples: int = 300  # evaluation examples per language (the same ids in every language)
    seeds: int = 3  # seeds per system
    systems: tuple[str, ...] = ("none", "sick")  # baseline first
    effect_system: str = "sick"  # the system that gets ``effect``
    accuracy: float = 0.40  # mean expected accuracy of the non-English languages
    english_gap: float = 0.12  # English's expected accuracy above the others
    sd_language: float = 0.035
    sd_seed: float = 0.005
    sd_language_seed: float = 0.008
    sd_difficulty: float = 1.0  # example difficulty, probit scale
    parallel_corr: float = 0.5  # correlation of one example's difficulty across languages
    effect: float = 0.0  # planted shift of ``effect_system``'s accuracy (fraction, not points)
    effect_sd: float = 0.0  # SD across languages of the planted shift
    task: str = TASK  # "xnli" (accuracy) or "panx" (span F1, see ``panx_design``)
    wrong_type: float = 0.5  # PAN-X: share of missed entities predicted with the wrong type

    @property
    def baseline(self) -> str:
        return self.systems[0]


@dataclass
class Draw:
    """One simulated data set and its true values (points)."""

    design: Design
    gold: np.ndarray  # XNLI: [n] label of each parallel example; PAN-X: [L, n, 3] entities
    # system -> [r, L, n]: XNLI the predicted label, PAN-X the variant (see ``_panx_tags``)
    preds: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]  # system -> [r, L] accuracy in points, as stored
    true_score: dict[str, np.ndarray]  # system -> [L] expected score
    true_delta: dict[str, np.ndarray]  # system != baseline -> [L]
    true_p: dict[str, np.ndarray]  # system -> [L] expected accuracy (fraction), for "example"
    clipped: int = 0  # probabilities moved into [P_MIN, P_MAX]
    languages: tuple[str, ...] = field(default=())
    difficulty: np.ndarray | None = None  # [L, n] z of every example (XNLI)

    def test_set_score(self, system: str) -> np.ndarray:
        """[L] expected accuracy (points) of ``system`` on the draw's own test sets: over seeds
        and Bernoulli outcomes, not over test sets (to first order in the seed effects). What a
        seeds-only CI (a CSV: no per-example data) is about; XNLI only."""
        d = self.design
        m = st.norm.ppf(self.true_p[system]) * math.sqrt(1 + d.sd_difficulty**2)  # [L]
        return 100.0 * st.norm.cdf(m[:, None] + d.sd_difficulty * self.difficulty).mean(axis=1)

    def used(self, n_languages: float) -> np.ndarray:
        """Mask [L] of the languages a table row with ``n_languages`` used: all, or all but
        English when it says one fewer (the new analysis leaves English out by default)."""
        langs = np.array(self.languages)
        mask = np.ones(len(langs), bool)
        if n_languages == len(langs) - 1 and self.design.english in self.languages:
            mask &= langs != self.design.english
        return mask

    def true_components(
        self, system: str, n_languages: float, *, predictions: bool = True
    ) -> dict[str, float]:
        """True variance components (points^2) of ``system`` over the languages used, as
        ``analysis.decomposition`` defines them (docs/report.md, "Variance decomposition").

        * language: the variance of the language effects, 100^2 sd_language^2 (+ the English
          gap's share when English is used). Without predictions (a CSV) the decomposition
          cannot remove the test-set sampling that every seed of a language shares (its test
          set is fixed), so its target is that plus the expected between-language spread of
          those shared test-set effects, sum_l Var t_l - L Var(mean t), over L - 1 (t_l: the
          test set's mean success probability minus P_l; correlated across languages through
          the parallel examples);
        * seed: 100^2 sd_seed^2; language x seed: 100^2 sd_language_seed^2, plus, without
          predictions, the seed-specific sampling E_i[p (1 - p)] / n (the run-by-example
          Bernoulli noise that the residual holds);
        * example: the sampling variance of one cell's score, 100^2 P (1 - P) / n, mean over
          the languages used.
        """
        d, mask = self.design, self.used(n_languages)
        if d.task != TASK:  # span F1 is not linear in p: no exact components (n/a)
            return dict.fromkeys(COMPONENTS, math.nan)
        n_used = int(mask.sum())
        lang = d.sd_language**2
        if d.english in np.array(self.languages)[mask] and n_used > 0:
            lang += d.english_gap**2 / n_used
        p = self.true_p[system][mask]
        example = float(np.mean(p * (1 - p))) / d.n_examples
        ls = d.sd_language_seed**2
        if not predictions:
            cov, bern = test_set_sampling(d, p)  # [L, L], [L] per example (not / n)
            between = (np.trace(cov) - cov.sum() / n_used) / (n_used - 1)
            lang += between / d.n_examples
            ls += float(np.mean(bern)) / d.n_examples
        v = {"language": lang, "seed": d.sd_seed**2, "language×seed": ls}
        return {**{k: 1e4 * x for k, x in v.items()}, "example": 1e4 * example}


def test_set_sampling(design: Design, mean_p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-example moments of the simulated success probabilities p[l, i] at expected
    accuracies ``mean_p`` [L] (Gauss-Hermite): the covariance [L, L] over examples of p[l, i]
    and p[l', i] (the parallel difficulty shared with correlation ``parallel_corr``; the
    diagonal is Var_i p[l, i]) and the mean Bernoulli variance E_i[p (1 - p)] [L]. Divided by
    n, the covariance is that of two languages' test-set effects, and the Bernoulli variance
    the seed-specific sampling variance of one score."""
    s, rho = design.sd_difficulty, design.parallel_corr
    x, w = _nodes(80)
    m = st.norm.ppf(np.asarray(mean_p, float)) * math.sqrt(1 + s**2)  # [L]
    # given the shared part e of the difficulty, E[p | e] over the language's own part
    g = st.norm.cdf((m[:, None] + s * math.sqrt(rho) * x[None]) / math.sqrt(1 + s**2 * (1 - rho)))
    mean = g @ w  # [L]
    cov = (g * w) @ g.T - np.outer(mean, mean)  # [L, L]
    p = st.norm.cdf(m[:, None] + s * x[None])  # [L, nodes]: the full difficulty
    var = (p**2) @ w - (p @ w) ** 2
    np.fill_diagonal(cov, var)
    bern = (p * (1 - p)) @ w
    return cov, bern


def panx_design(**kw) -> Design:
    """A PAN-X-like design: span F1 (a ratio of counts, not a mean over examples), 15 languages,
    one gold entity per sentence, detected exactly with probability p (else missed or, with
    probability ``wrong_type``, predicted with another type). Its test sets are not parallel.
    F1 ~62 for the other languages (SD ~6 across them), ~75 for English; p stays 6 SDs of the
    language effect away from the band that would be clipped."""
    base = dict(task="panx", languages=PANX_LANGUAGES, accuracy=0.55, english_gap=0.15,
                sd_language=0.06, parallel_corr=0.0)  # fmt: skip
    return Design(**{**base, **kw})


def score_of(design: Design, p: np.ndarray) -> np.ndarray:
    """Population score (points) of a model with expected per-example success ``p``:
    accuracy 100 p; PAN-X span F1 = 2 tp / (n_pred + n_gold) with E tp = p n, E n_pred =
    (p + (1 - p) w) n, n_gold = n."""
    if design.task == "panx":
        return 200.0 * p / (1.0 + p + (1.0 - p) * design.wrong_type)
    return 100.0 * p


def expected_score(design: Design, mean_p: np.ndarray) -> np.ndarray:
    """Expected score over seeds (points) of models whose success probability is ``mean_p``
    plus the seed and language x seed effects: Gauss-Hermite over their sum (exact for a
    linear score such as accuracy)."""
    if design.task != "panx":
        return score_of(design, mean_p)
    x, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / w.sum()
    sd = math.hypot(design.sd_seed, design.sd_language_seed)
    p = np.clip(mean_p[..., None] + sd * x, P_MIN, P_MAX)
    return np.sum(w * score_of(design, p), axis=-1)


def simulate(design: Design, rng: np.random.Generator) -> Draw:
    d = design
    langs = tuple(d.languages)
    n_lang, n, r = len(langs), d.n_examples, d.seeds
    is_en = np.array([lang == d.english for lang in langs], float)
    base = d.accuracy + d.english_gap * is_en + rng.normal(0.0, d.sd_language, n_lang)  # [L]
    if d.task == "panx":  # per (language, sentence): entity type, length 1-2, first word
        gold = np.stack(
            [rng.integers(0, len(ENTITY_TYPES), (n_lang, n)), rng.integers(1, 3, (n_lang, n)),
             rng.integers(0, SENTENCE_WORDS - 1, (n_lang, n))], axis=-1,
        )  # fmt: skip  # [L, n, 3]
    else:
        gold = rng.integers(0, len(LABELS), n)  # [n] parallel: one label per example id
    rho = d.parallel_corr
    z = math.sqrt(rho) * rng.standard_normal(n) + math.sqrt(1 - rho) * rng.standard_normal(
        (n_lang, n)
    )  # [L, n]
    inflate = math.sqrt(1.0 + d.sd_difficulty**2)
    preds, scores, true_score, true_delta, true_p = {}, {}, {}, {}, {}
    clipped = 0
    for system in d.systems:
        delta = np.zeros(n_lang)
        if system == d.effect_system:
            delta = d.effect + d.effect_sd * rng.standard_normal(n_lang)
        mean_p = base + delta  # [L] expected success over seeds and examples
        b = rng.normal(0.0, d.sd_seed, r)  # [r]
        c = rng.normal(0.0, d.sd_language_seed, (r, n_lang))  # [r, L]
        prob = mean_p[None, :] + b[:, None] + c  # [r, L]
        clipped += int(np.sum((prob < P_MIN) | (prob > P_MAX)))
        prob = np.clip(prob, P_MIN, P_MAX)
        p = st.norm.cdf(st.norm.ppf(prob)[:, :, None] * inflate + d.sd_difficulty * z[None])
        correct = rng.random((r, n_lang, n)) < p  # [r, L, n]
        if d.task == "panx":
            # 0: the gold entity; 1, 2: its span with another type; 3: nothing predicted
            other = rng.integers(1, 3, (r, n_lang, n))
            typed = rng.random((r, n_lang, n)) < d.wrong_type
            preds[system] = np.where(correct, 0, np.where(typed, other, 3))
            tp = correct.sum(axis=2)
            n_pred = tp + (~correct & typed).sum(axis=2)
            scores[system] = 200.0 * tp / (n_pred + n)  # seqeval micro F1, [r, L]
        else:
            wrong = (gold[None, None, :] + rng.integers(1, len(LABELS), (r, n_lang, n))) % 3
            preds[system] = np.where(correct, gold[None, None, :], wrong)
            # the expression of ``evaluation.metrics.accuracy``, so the stored score is
            # re-scored from the predictions to the last bit
            scores[system] = 100.0 * correct.sum(axis=2) / n
        true_score[system] = expected_score(d, mean_p)
        true_p[system] = mean_p
    for system in d.systems[1:]:
        true_delta[system] = true_score[system] - true_score[d.baseline]
    return Draw(d, gold, preds, scores, true_score, true_delta, true_p, clipped, langs, z)


def seeds_of(design: Design) -> list[int]:
    return list(range(design.seeds))


def _panx_tags(gold: np.ndarray) -> list[list[list[str]]]:
    """IOB2 tags of the 4 prediction variants of one sentence ``gold`` = (type, length, start):
    [gold, the span with type + 1, with type + 2, all O]."""
    t, length, start = (int(x) for x in gold)
    out = []
    for shift in range(3):
        name = ENTITY_TYPES[(t + shift) % 3]
        tags = ["O"] * SENTENCE_WORDS
        tags[start] = f"B-{name}"
        if length == 2:
            tags[start + 1] = f"I-{name}"
        out.append(tags)
    return [*out, ["O"] * SENTENCE_WORDS]


def _records(draw: Draw, system: str, k: int, li: int, lang: str) -> list[dict]:
    """Prediction records of one (system, seed index, language) as ``Family.record`` writes
    them (tagging adds the words); guids as the XTREME readers' ``{language}-{line}``."""
    pred = draw.preds[system][k, li].tolist()
    if draw.design.task == "panx":
        words = [f"w{j}" for j in range(SENTENCE_WORDS)]
        out = []
        for i, v in enumerate(pred):
            variants = _panx_tags(draw.gold[li, i])
            out.append({"guid": f"{lang}-{i + 1}", "line": i + 1, "pred": variants[v],
                        "gold": variants[0], "words": words})  # fmt: skip
        return out
    return [
        {"guid": f"{lang}-{i + 1}", "line": i + 1, "pred": LABELS[pv], "gold": LABELS[g]}
        for i, (pv, g) in enumerate(zip(pred, draw.gold.tolist()))
    ]


def _metrics(draw: Draw, system: str, k: int, li: int) -> dict[str, float]:
    """The metric rows of one evaluation, as the task's metric reports them (percent)."""
    score = float(draw.scores[system][k, li])
    if draw.design.task != "panx":
        return {"accuracy": score}
    pred = draw.preds[system][k, li]
    tp, n_pred, n = int(np.sum(pred == 0)), int(np.sum(pred < 3)), len(pred)
    return {"f1": score, "precision": 100.0 * tp / n_pred if n_pred else 0.0,
            "recall": 100.0 * tp / n}  # fmt: skip


def write_results_dir(draw: Draw, root: Path) -> Path:
    """The draw as ``xstilts run`` writes it: one zero-shot stage per (system, seed) with its
    ``rows.jsonl`` (``store.write_rows``) and ``predictions/<task>.test.<lang>.jsonl``
    (``store.write_predictions``)."""
    d = draw.design
    for system in d.systems:
        for k, seed in enumerate(seeds_of(d)):
            key = f"zero_shot-{system}-{seed}"
            stage = root / "stages" / key
            rows = []
            for li, lang in enumerate(draw.languages):
                write_predictions(stage / "predictions" / f"{d.task}.test.{lang}.jsonl",
                                  _records(draw, system, k, li, lang), sync=False)  # fmt: skip
                for metric, value in _metrics(draw, system, k, li).items():
                    rows.append(
                        ResultRow(
                            run="calibration", stage="zero_shot", stage_key=key, task=d.task,
                            language=lang, split="test", metric=metric, value=value,
                            n_examples=d.n_examples, seed=seed, model="simulated",
                            intermediate=system, target=d.task, task_version="1",
                            protocol={"phase": "zero_shot", "model_selection": "best_en_dev"},
                        )
                    )  # fmt: skip
            write_rows(stage, rows, sync=False)
    return root


def write_long_csv(draw: Draw, path: Path) -> Path:
    """The draw's seed-level scores as a long CSV (task,language,system,seed,metric,value)."""
    d = draw.design
    metric = "f1" if d.task == "panx" else "accuracy"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["task", "language", "system", "seed", "metric", "value"])
        for system in d.systems:
            for k, seed in enumerate(seeds_of(d)):
                for li, lang in enumerate(draw.languages):
                    w.writerow([d.task, lang, system, seed, metric,
                                repr(float(draw.scores[system][k, li]))])  # fmt: skip
    return path


def empirical_se_avg(design: Design, n_languages: int, draws: int = 400, seed: int = 0) -> float:
    """SD of the language-averaged delta over ``draws`` null simulations (no analysis run):
    the design SE where no closed form is at hand (PAN-X's span F1)."""
    d = dataclasses.replace(design, effect=0.0)
    keep = np.array([not (n_languages < len(d.languages) and x == d.english)
                     for x in d.languages])  # fmt: skip
    est = []
    for i in range(draws):
        draw = simulate(d, np.random.default_rng([seed, 99, i]))
        diff = draw.scores[d.effect_system].mean(0) - draw.scores[d.baseline].mean(0)  # [L]
        est.append(float(np.mean(diff[keep])))
    return float(np.std(est, ddof=1))


@functools.lru_cache(maxsize=4)
def _nodes(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights for the standard normal (cached: an eigenproblem)."""
    x, w = np.polynomial.hermite_e.hermegauss(k)
    return x, w / w.sum()


def design_se_avg(design: Design, n_languages: int) -> float:
    """SE (points) of the language-averaged delta under the null, from the known components.

    Per language and seed pair the two systems' scores differ by their seed effects, their
    language x seed effects and, per example, the Bernoulli noise of two runs on the same
    example (the shared difficulty cancels): Var = 2 E[p (1 - p)] / n with p the per-example
    probability. Seed effects are shared by the languages (not averaged away); the rest is
    independent across languages. Languages: ``n_languages`` of the design's, English left
    out when one fewer than all.
    """
    d = design
    langs = [x for x in d.languages if not (n_languages < len(d.languages) and x == d.english)]
    mean_p = np.array([d.accuracy + d.english_gap * (x == d.english) for x in langs])
    bern = np.array([_mean_bernoulli_var(p, d.sd_difficulty) for p in mean_p])
    r, n_l = d.seeds, len(langs)
    var = 2 * d.sd_seed**2 / r + 2 * d.sd_language_seed**2 / (r * n_l)
    var += 2 * float(np.mean(bern)) / (r * d.n_examples * n_l)
    return 100.0 * math.sqrt(var)


def _mean_bernoulli_var(mean_p: float, sd_difficulty: float) -> float:
    """E[p (1 - p)] over examples when p = Phi(Phi^-1(P) sqrt(1 + s^2) + s Z), by
    Gauss-Hermite quadrature (the language effect is ignored: it moves P by a few points)."""
    x, w = _nodes(80)
    p = st.norm.cdf(st.norm.ppf(mean_p) * math.sqrt(1 + sd_difficulty**2) + sd_difficulty * x)
    return float(np.sum(w * p * (1 - p)))


def score_frame(draw: Draw):
    """The draw's seed-level scores as ``load_results`` gives them for a long CSV: task,
    language, system, seed, score (points)."""
    import pandas as pd

    d = draw.design
    rows = [
        (d.task, lang, system, k, float(draw.scores[system][k, li]))
        for system in d.systems
        for k in range(d.seeds)
        for li, lang in enumerate(draw.languages)
    ]
    return pd.DataFrame(rows, columns=["task", "language", "system", "seed", "score"])


def cell_source(draw: Draw):
    """The per-example statistics of a (task, language) for given seeds, as ``deltas.
    cell_stats`` reads them from the draw's written predictions (XNLI: correct or not per
    example; ids ``<language>-<i>``, parallel across languages, as ``write_results_dir``)."""
    from xstilts.analysis.deltas import CellStats
    from xstilts.analysis.rescoring import ACCURACY

    d = draw.design
    if d.task != TASK:
        raise ValueError("per-example statistics of the simulator: XNLI only")
    correct = {s: (draw.preds[s] == draw.gold[None, None, :]).astype(float) for s in d.systems}
    index = {x: j for j, x in enumerate(draw.languages)}

    def source(task: str, language: str, seeds) -> CellStats:
        stats = {s: correct[s][:, index[language], :, None] for s in seeds}  # [r, n, 1]
        ids = [f"{language}-{k + 1}" for k in range(d.n_examples)]
        return CellStats(stats, ACCURACY, d.n_examples, "", ids)

    return source
