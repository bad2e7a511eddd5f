"""Rows of the bootstrap ridge statistics and of the kernel ablation, measured on an
Evaluator's subsamples and extracted states.

The ridge bootstrap resamples rows and columns of the N x N Grams (:mod:`inforidge.info.ridge`),
so it is always exact (``estimator`` = exact), whatever ``MeasureSettings.estimator`` says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from inforidge.config.settings import bandwidth_columns
from inforidge.info import gram_matrix
from inforidge.info.ridge import ridge_statistics_views
from inforidge.measure.predictive import Evaluator
from inforidge.measure.rows import STAGE_PREFIX, WHOLE_CURVE

# Kernels of the ablation (paper Fig. 11); the measurement's own kernel is not measured again.
ABLATION_KERNELS = ("gaussian", "laplacian", "polynomial")


RIDGE_FIELDS = {  # metric stem -> key of RidgeTest.summary()
    "ridge_layer": "peak_layer", "ridge_peak_value": "peak_value", "ridge_layer_ci_low": "ridge_layer_ci_low",
    "ridge_layer_ci_high": "ridge_layer_ci_high", "ridge_p_value": "p_value", "ridge_drop": "drop",
    "ridge_drop_ci_low": "drop_ci_low", "ridge_drop_ci_high": "drop_ci_high",
    "ridge_share_before_last": "share_before_last", "ridge_statistic": "statistic", "ridge_verdict": "ridge",
}


def _value(v) -> float:
    return float("nan") if v is None else float(v)


def verdict_rows(test, common: dict, suffix: str = "", level: float = 0.05) -> list[dict]:
    """The rows of one :class:`~inforidge.info.ridge.RidgeTest` (metric ``stem + suffix`` for each
    stem of :data:`RIDGE_FIELDS`), every row carrying the test's ``flag`` (None when it has a verdict)."""
    summary = test.summary(level)
    return [{**common, "metric": stem + suffix, "value": _value(summary[key]), "flag": summary["flag"]}
            for stem, key in RIDGE_FIELDS.items()]


def ridge_sigmas(settings) -> list:
    """Bandwidths of the check: the measurement's own sigma and the median heuristic (Gaussian);
    the measurement's kernel alone otherwise."""
    if settings.kernel != "gaussian":
        return [None]
    return list(dict.fromkeys([settings.sigma, "median"]))


def ridge_rows(evaluator: Evaluator, states: dict, step: int, *, n_boot: int, confidence: float = 0.95,
               draw_permutations: int = 2, level: float = 0.05) -> list[dict]:
    """Rows of the bootstrap ridge statistics per split, final-norm view and bandwidth, on
    ``states`` (from ``evaluator.extract``) restricted to the subsample of the first seed.

    Metrics (layer -1, a statement about the whole curve): ``ridge_layer`` (arg-max layer on the
    full sample), ``ridge_layer_ci_low/high`` (percentile interval of the draws' arg-max),
    ``ridge_statistic`` (T = largest drop of an intermediate layer to the last) and
    ``ridge_p_value`` (its max-statistic bootstrap p, :mod:`inforidge.info.ridge`), ``ridge_drop``
    (+ CI), ``ridge_share_before_last``, ``ridge_verdict`` (1 = peak at an intermediate layer
    1..L-1 and p < level); each for the raw curve and, with suffix ``_corrected``, the
    null-corrected one. ``sigma`` tells the bandwidth (the measurement's and 'median').
    When there is no verdict (N < 30, a flat curve, B < 2/level - 1) ``ridge_verdict`` is NaN
    and every row of that curve carries the reason in ``flag`` (``too_few_samples``,
    ``flat_curve``, ``too_few_draws``); a flat curve also has no peak (NaN layer and p).
    """
    st = evaluator.settings
    seed = int(st.seeds[0])
    perms = st.n_permutations
    draws = draw_permutations if perms > 0 else 0
    kernel_kw = {} if st.kernel == "gaussian" else st.kernel_kw()
    rows = []
    for split in evaluator.splits:
        s = states[split]
        idx = evaluator.positions(split, seed)
        x, index = s.views_stacked(st.final_norm_views)
        x = x[:, idx]
        for sigma in ridge_sigmas(st):
            kw = dict(kernel_kw) if sigma is None else {"sigma": sigma}
            kx, ky = gram_matrix(x, st.kernel, **kw), evaluator.label_gram(s, idx, st.kernel, **kw)
            by_view = ridge_statistics_views(kx, ky, index, n_boot=n_boot, confidence=confidence,
                                             n_permutations=perms, draw_permutations=draws, seed=seed,
                                             alpha=st.alpha, base=st.base)
            common = {"step": int(step), "split": split, "seed": seed, "n_samples": int(len(idx)),
                      **st.row_settings(), **({} if sigma is None else bandwidth_columns(sigma)), "layer": WHOLE_CURVE,
                      "estimator": "exact",
                      "ridge_n_boot": n_boot, "ridge_confidence": confidence, "ridge_draw_permutations": draws,
                      "ridge_level": level}
            for view, stats in by_view.items():
                tests = {"": stats.raw, "_corrected": stats.corrected}
                for suffix, test in tests.items():
                    if test is None:
                        continue
                    rows += verdict_rows(test, {**common, "final_norm": view}, suffix, level)
    return rows


def kernel_ablation_rows(evaluator: Evaluator, states: dict, step: int,
                         kernels: Sequence[str] = ABLATION_KERNELS) -> list[dict]:
    """Predictive-information rows (``kernel_ablation_`` prefix) for each kernel other than the
    measurement's own, measured on ``states`` (from ``evaluator.extract``) and the Evaluator's
    subsamples with settings that name that kernel (and the measurement's estimator where it
    applies: the non-Gaussian kernels are measured exactly)."""
    rows = []
    for kernel in kernels:
        if kernel == evaluator.settings.kernel:
            continue
        estimator = evaluator.settings.estimator if kernel == "gaussian" else "exact"
        settings = replace(evaluator.settings, kernel=kernel, estimator=estimator)
        rows += [{**r, "metric": STAGE_PREFIX["kernels"] + r["metric"]}
                 for r in evaluator.information_rows(states, step, settings, predictive_only=True)]
    return rows
