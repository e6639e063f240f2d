"""statsmodels' MixedLM on a seeds × languages table: the library cross-check of
``xstilts.analysis.decomposition.reml_components`` (closed-form REML on balanced tables).

MixedLM with one group, language and seed as variance components, REML. In the interior (every
ANOVA estimate positive) it reaches the closed form's solution; at the boundary it fails to
converge, which is why the report does not use it (the decomposition's docstring).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from xstilts.analysis.decomposition import mean_squares


def mixedlm_components(y: np.ndarray) -> tuple[tuple[float, float, float], str]:
    """(σ²_L, σ²_S, σ²_R) of ``y [r, L]`` by statsmodels MixedLM (REML; one group, language
    and seed as variance components), and a note. When MixedLM fails or warns (convergence, a
    boundary fit), the ANOVA estimates truncated at 0 are returned instead, with the note
    saying so."""
    import pandas as pd
    import statsmodels.formula.api as smf

    y = np.asarray(y, float)
    r, n_lang = y.shape
    frame = pd.DataFrame(
        {
            "y": y.ravel(),
            "seed": np.repeat(np.arange(r), n_lang),
            "language": np.tile(np.arange(n_lang), r),
            "group": 0,
        }
    )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = smf.mixedlm(
                "y ~ 1",
                frame,
                groups="group",
                re_formula="0",
                vc_formula={"language": "0 + C(language)", "seed": "0 + C(seed)"},
            )
            fit = model.fit(reml=True)
        # a convergence or boundary warning, a singular covariance: the fit is not to be
        # trusted as it stands (library deprecation notices are not about the fit)
        bad = [w for w in caught if not issubclass(w.category, DeprecationWarning | FutureWarning)]
        if bad:
            raise RuntimeError(str(bad[0].message))
        if not fit.converged:
            raise RuntimeError("did not converge")
        vc = dict(zip(model.exog_vc.names, np.asarray(fit.vcomp, float)))
        est = (vc["language"], vc["seed"], float(fit.scale))
        if not all(math.isfinite(v) and v >= 0 for v in est):
            raise RuntimeError(f"invalid estimates {est}")
        return est, ""
    except Exception as e:  # noqa: BLE001 - a warning above, or a numerical failure
        sl, ss, sr = mean_squares(y).anova()
        msg = str(e).lower()
        why = next(
            (say for key, say in _REML_FAILURES if key in msg),
            str(e).splitlines()[0][:60] if str(e) else type(e).__name__,
        )
        return (max(sl, 0.0), max(ss, 0.0), max(sr, 0.0)), f"REML {why}: ANOVA estimates used"


_REML_FAILURES = (
    ("converge", "did not converge"),
    ("boundary", "on the boundary"),
    ("singular", "covariance singular"),
)
