"""Reading the report's tables against the simulator's truth (``calibration.py``): per draw,
whether each test rejected at alpha and whether each CI held the true value. A table or column
the analysis does not have gives no entry (printed "n/a")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
import pandas as pd
from _simulate import COMPONENTS, Design, Draw

ALPHA = 0.05


class Measure(str, Enum):
    REJECT = "reject"  # share of p < alpha
    COVER = "cover"  # share of CIs holding the truth
    ERROR = "error"  # mean of estimate - truth (points^2): a bias, not a calibration target


@dataclass(frozen=True)
class Check:
    key: str
    kind: Measure
    # the test's null still holds under a constant planted shift (spreads do not change)
    null_under_shift: bool = False


CHECKS = [
    Check("averages: p < α", Measure.REJECT),
    Check("averages: p_holm < α", Measure.REJECT),
    Check("averages: CI covers true Δ_avg", Measure.COVER),
    Check("deltas: p < α (per language)", Measure.REJECT),
    Check("deltas: any p_holm < α (per draw)", Measure.REJECT),
    Check("deltas: CI covers true Δ (per language)", Measure.COVER),
    Check("score_ci: CI covers true score", Measure.COVER),
    Check("variance: pm_p < α", Measure.REJECT, True),
    Check("variance: median_p < α", Measure.REJECT),
    Check("variance: SD-ratio CI covers 1", Measure.COVER, True),
]
for _c in COMPONENTS:
    CHECKS += [
        Check(f"decomposition {_c}: CI covers true variance", Measure.COVER, True),
        Check(f"decomposition {_c}: estimate − truth", Measure.ERROR, True),
        Check(f"decomposition {_c}: ratio CI covers truth", Measure.COVER, True),
        Check(f"decomposition {_c}: p < α", Measure.REJECT, True),
        Check(f"decomposition {_c}: p_holm < α", Measure.REJECT, True),
    ]
# per-draw numbers that are summarised, not checked
DIAGNOSTICS = ("delta_avg", "se_avg", "df_avg", "mde_avg", "n_languages")


def spreads_unchanged(design: Design) -> bool:
    """Whether the planted effect leaves every spread as under the null: a constant shift
    (``effect_sd`` 0) of a score linear in p (accuracy; not span F1, which is concave in p)."""
    return design.effect == 0 or (design.effect_sd == 0 and design.task == "xnli")


def _col(frame: pd.DataFrame | None, name: str) -> np.ndarray | None:
    if frame is None or not len(frame) or name not in frame.columns:
        return None
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(float)


def _reject(p: np.ndarray | None) -> float:
    """Share of finite p-values below alpha (NaN: none)."""
    if p is None or not np.isfinite(p).any():
        return math.nan
    return float(np.mean(p[np.isfinite(p)] < ALPHA))


def _cover(lo: np.ndarray | None, hi: np.ndarray | None, truth) -> float:
    if lo is None or hi is None:
        return math.nan
    ok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(truth)
    if not ok.any():
        return math.nan
    t = np.broadcast_to(np.asarray(truth, float), lo.shape)
    return float(np.mean((lo[ok] <= t[ok]) & (t[ok] <= hi[ok])))


def measure(analysis, draw: Draw) -> dict[str, float]:
    """Per-draw rejection indicators / coverage shares of every check (NaN: not available)."""
    d = draw.design
    system = d.effect_system
    out: dict[str, float] = {}
    av = analysis.averages
    av = av[av["system"] == system] if len(av) else av
    n_lang = (
        float(av["n_languages"].iloc[0]) if "n_languages" in av and len(av) else len(draw.languages)
    )
    truth_avg = float(np.mean(draw.true_delta[system][draw.used(n_lang)]))
    out["averages: p < α"] = _reject(_col(av, "p"))
    out["averages: p_holm < α"] = _reject(_col(av, "p_holm"))
    out["averages: CI covers true Δ_avg"] = _cover(_col(av, "ci_lo"), _col(av, "ci_hi"), truth_avg)
    out["delta_avg"] = _first(_col(av, "delta_avg")) - truth_avg  # error, for the empirical SD
    out["se_avg"] = _first(_col(av, "se_avg"))
    out["df_avg"] = _first(_col(av, "df"))
    mde = getattr(analysis, "mde", None)
    mde = mde[mde["system"] == system] if mde is not None and len(mde) else None
    out["mde_avg"] = _first(_col(mde, "mde_avg"))
    out["n_languages"] = n_lang

    dl = analysis.deltas
    dl = dl[dl["system"] == system] if len(dl) else dl
    lang_index = {lang: i for i, lang in enumerate(draw.languages)}
    truth = np.array([draw.true_delta[system][lang_index[x]] for x in dl["language"]])
    out["deltas: p < α (per language)"] = _reject(_col(dl, "p"))
    ph = _col(dl, "p_holm")
    out["deltas: any p_holm < α (per draw)"] = (
        float(np.any(ph[np.isfinite(ph)] < ALPHA)) if ph is not None and np.isfinite(ph).any()
        else math.nan
    )  # fmt: skip
    out["deltas: CI covers true Δ (per language)"] = _cover(
        _col(dl, "ci_lo"), _col(dl, "ci_hi"), truth
    )
    sc = analysis.score_ci
    if len(sc):
        t = np.array(
            [draw.true_score[s][lang_index[x]] for s, x in zip(sc["system"], sc["language"])]
        )
        out["score_ci: CI covers true score"] = _cover(_col(sc, "ci_lo"), _col(sc, "ci_hi"), t)

    va = analysis.variance
    va = va[va["system"] == system] if len(va) else va
    shift_only = spreads_unchanged(d)
    out["variance: pm_p < α"] = _reject(_col(va, "pm_p"))
    out["variance: median_p < α"] = _reject(_col(va, "median_p"))
    if shift_only:
        out["variance: SD-ratio CI covers 1"] = _cover(
            _col(va, "sd_ratio_lo"), _col(va, "sd_ratio_hi"), 1.0
        )
    out.update(_decomposition(getattr(analysis, "decomposition", None), draw, n_lang))
    return out


def _decomposition(table: pd.DataFrame | None, draw: Draw, n_lang: float) -> dict[str, float]:
    """Coverage, estimate error and change tests of ``decomposition`` rows (components by their
    exact names, ``COMPONENTS``) against the simulator's truth for the path the analysis took:
    with per-example predictions (a finite ``example`` value) or without (a CSV)."""
    if table is None or not len(table) or "component" not in table.columns:
        return {}
    d = draw.design
    ex = table[table["component"] == "example"]["value"].to_numpy(float)
    predictions = bool(len(ex)) and bool(np.isfinite(ex).all())
    per: dict[str, dict[str, list[float]]] = {}
    for _, row in table.iterrows():
        comp, system = row["component"], row["system"]
        if comp not in COMPONENTS or system not in draw.true_score:
            continue
        n_used = float(row["n_languages"]) if "n_languages" in row else n_lang
        true = draw.true_components(system, n_used, predictions=predictions)[comp]
        if system == d.effect_system and comp == "language":
            true += 1e4 * d.effect_sd**2  # the planted effect's spread adds to the language's
        acc = per.setdefault(comp, {})

        def num(name: str, row: pd.Series = row) -> np.ndarray | None:
            return np.array([float(row[name])]) if name in row else None

        acc.setdefault("cover", []).append(_cover(num("lo"), num("hi"), true))
        acc.setdefault("error", []).append(float(row["value"]) - true)
        if system != d.baseline:
            true_base = draw.true_components(d.baseline, n_used, predictions=predictions)[comp]
            ratio = math.sqrt(true / true_base) if true_base > 0 else math.nan
            acc.setdefault("ratio", []).append(_cover(num("ratio_lo"), num("ratio_hi"), ratio))
            acc.setdefault("p", []).append(_reject(num("p")))
            acc.setdefault("p_holm", []).append(_reject(num("p_holm")))
    out = {}
    for comp, acc in per.items():
        names = {
            "cover": f"decomposition {comp}: CI covers true variance",
            "error": f"decomposition {comp}: estimate − truth",
            "ratio": f"decomposition {comp}: ratio CI covers truth",
            "p": f"decomposition {comp}: p < α",
            "p_holm": f"decomposition {comp}: p_holm < α",
        }
        for what, values in acc.items():
            v = np.array(values, float)
            out[names[what]] = float(np.nanmean(v)) if np.isfinite(v).any() else math.nan
    return out


def _first(x: np.ndarray | None) -> float:
    return float(x[0]) if x is not None and len(x) else math.nan
