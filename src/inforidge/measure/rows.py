"""THE row schema of every results table, and the one builder of rows from an estimate.

A row is one number: ``value`` of ``metric`` at ``layer`` for one model state (``step``), one
evaluation ``split`` and one subsample ``seed``, under the estimator settings in the other
columns. Column types (schema 3; :func:`inforidge.results.table.normalize_columns` enforces
them on every table written and read): ``step, layer, seed, n_samples, n_permutations`` nullable
integers (Int64); ``value, alpha, sigma, base`` floats; ``split, metric, final_norm, kernel,
sigma_rule, label_view, null, flag, estimator`` categoricals.

- ``layer`` NA (:data:`WHOLE_CURVE`): a number about no single layer: the label/target
  entropy, or a statement about the whole per-layer curve (the ridge statistics).
- ``sigma`` is the Gaussian bandwidth as a number when ``sigma_rule`` is "fixed"; with
  ``sigma_rule`` "median" (the median-distance rule, one bandwidth per layer and subsample)
  ``sigma`` is NA; both NA for rows of no Gaussian kernel.
- ``step = -1`` (:data:`NO_STEP`): a row of no decoding step (multi-token analysis: the
  content-vs-stopword rows, whose ``split`` names the token group).

Layer 0 is the embedding output, layer l the output of block l.

``estimator`` says which estimator produced an information row: "exact" (eigendecomposition
of the N x N Grams) or "stochastic" (matrix-free, :mod:`inforidge.info.stochastic`); NA on
rows that are no information estimate (accuracies, dominant dimensions, attention, ...). A
stochastic estimate's standard errors are rows of their own, metric ``<metric>_se``
(:data:`SE_SUFFIX`), in the same long format as ``<metric>_null_std``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

COLUMNS = [
    "step", "split", "metric", "layer", "value", "seed", "n_samples",
    "alpha", "kernel", "sigma", "sigma_rule", "base", "final_norm", "label_view", "n_permutations", "null", "estimator",
    "flag",
]


# The columns that identify a row; a second row with the same key is a duplicate.
KEY = ["step", "split", "metric", "layer", "seed", "final_norm", "label_view", "kernel", "sigma", "sigma_rule", "alpha",
       "estimator"]

WHOLE_CURVE = None
"""``layer`` of a row about no single layer (entropy of the labels, ridge statistics): NA in a
table (schema 2 wrote -1; reading an older table turns -1 into NA)."""

NO_STEP = -1
"""``step`` of a row about no decoding step (the content/stopword rows of the multi-token analysis)."""


# Rows of each analysis stage: metric names start with these prefixes.
STAGE_PREFIX = {"ridge": "ridge_", "attention": "attention_", "scaling": "residual_scale",
                "kernels": "kernel_ablation_"}
SKIPPED_PREFIX = "skipped_"
"""``skipped_<analysis>``: an analysis that could not run; ``flag`` holds the reason, value NaN."""
ROBUST_PREFIX = "robustness_"
"""Prefix of the predictive-information rows at the second (robustness) bandwidth."""

# Metric names of the predictive measurement (:class:`~inforidge.measure.predictive.Evaluator`).
PREDICTIVE_INFORMATION = "predictive_information"
INCREMENTAL_GAIN = "incremental_gain"
EARLY_EXIT_ACCURACY = "early_exit_accuracy"
REPRESENTATION_ENTROPY = "representation_entropy"
LABEL_ENTROPY = "label_entropy"
NULL_SUFFIXES = ("_null", "_null_std", "_corrected", "_p_value", "_z")
"""An information metric ``m`` comes with ``m_null`` (mean of the permutation null),
``m_null_std``, ``m_corrected`` (``m`` minus the null mean), ``m_p_value`` (one-sided
permutation p-value of ``m``, (1 + #{null >= m}) / (1 + P); resolution 1 / (1 + P)) and
``m_z`` ((m - null mean) / null std)."""

SE_SUFFIX = "_se"
"""``<metric>_se``: the standard error of the row ``<metric>`` from the stochastic estimator's
probes (Monte-Carlo error of the trace estimates only, not the Lanczos quadrature error and not
the spread over subsamples), for ``m``, ``m_null``, ``m_corrected``, ``representation_entropy``
and the label entropy; exact rows have none. ``m_corrected_se`` counts the joint entropies only
(S(X) and S(Y) cancel in m minus the null mean)."""

ESTIMATOR_COLUMN = {"exact": "exact", "slq": "stochastic"}
"""``estimator`` column value of an InformationEstimate's ``estimator`` field."""

DEGENERATE_GRAM = "degenerate_gram"
DEGENERATE_GRAM_SHARE = 0.05
"""A representation whose entropy is below this share of log N (its maximum): its Gram is
nearly all ones (the kernel bandwidth is far above the spread of the states), so every MI
of it is squeezed towards 0 whatever the dependence; its rows get ``flag`` = degenerate_gram."""


DOMINANT_DIMENSION = "dominant_dimension_share"
"""Per layer: the mean over samples of the largest single dimension's share of a state's squared
norm (1/D for spread-out states, near 1 when one "massive activation" dimension dominates)."""

MASSIVE_DIMENSION = "massive_dimension"
MASSIVE_DIMENSION_SHARE = 0.5
"""A layer whose states put at least this share of their squared norm in one dimension gets
``flag`` = massive_dimension on its rows: its Gaussian Gram reads mostly that one coordinate.
Only for states of at least MASSIVE_DIMENSION_MIN_D dimensions (in a handful of dimensions one
of them holds half the norm by chance)."""
MASSIVE_DIMENSION_MIN_D = 16


def dominant_dimension_rows(x: Tensor, index: dict[str, Tensor], common: dict, first_layer: int = 0) -> list[dict]:
    """Rows of :data:`DOMINANT_DIMENSION` for a stack ``x`` (S, N, D) in several final-norm views
    (``index`` as in :func:`estimate_rows`); ``dimension`` = the most frequent dominant dimension."""
    sq = x.double() ** 2
    total = sq.sum(-1).clamp_min(torch.finfo(torch.float64).tiny)
    top, where = sq.max(-1)
    share = (top / total).mean(-1)  # (S,)
    mode = torch.mode(where, dim=-1).values  # (S,)
    rows = []
    for view, ix in index.items():
        rows += [{**common, "final_norm": view, "metric": DOMINANT_DIMENSION, "layer": first_layer + layer,
                  "value": float(share[m]), "dimension": int(mode[m]),
                  **({"flag": MASSIVE_DIMENSION} if share[m] >= MASSIVE_DIMENSION_SHARE
                     and x.shape[-1] >= MASSIVE_DIMENSION_MIN_D else {})}
                 for layer, m in enumerate(ix.tolist())]
    return rows


def flag_massive_dimensions(rows: list[dict], dominant: list[dict]) -> list[dict]:
    """Set ``flag`` = massive_dimension on unflagged rows of the (view, layer)s flagged in ``dominant``."""
    hit = {(r["final_norm"], r["layer"]) for r in dominant if r.get("flag") == MASSIVE_DIMENSION}
    for r in rows:
        if (r.get("final_norm"), r.get("layer")) in hit and not r.get("flag"):
            r["flag"] = MASSIVE_DIMENSION
    return rows


def degenerate_grams(estimate) -> Tensor:
    """(S,) True where the representation entropy (S,) of ``estimate`` is below
    :data:`DEGENERATE_GRAM_SHARE` of its maximum log_base N."""
    top = math.log(estimate.n_samples) / math.log(estimate.base)
    return estimate.entropy_x.reshape(-1) < DEGENERATE_GRAM_SHARE * top


def estimate_rows(estimate, index: Mapping[str, object], common: dict, metric: str, *, first_layer: int = 0,
                  entropy_x: bool = True, entropy_y: str | None = None) -> list[dict]:
    """Rows of one information estimate over a stack of layers in several final-norm views.

    estimate: an :class:`~inforidge.info.InformationEstimate` over a stack of S states (its
        ``mi``, ``null_mean``, ``null_std``, ``corrected``, ``entropy_x``: (S,) tensors).
    index: final-norm view -> the positions of its layers in the stack (in layer order).
    common: the columns every row shares (step, split, seed, settings...).
    metric: the metric name; the null statistics get the suffixes of :data:`NULL_SUFFIXES`.
    first_layer: layer number of the first position of each view (1 for incremental gains).
    entropy_x: add ``representation_entropy`` rows. entropy_y: the metric name of the
        label/target entropy row (layer :data:`WHOLE_CURVE`); None for none.

    Every row gets ``estimator`` (:data:`ESTIMATOR_COLUMN`); a stochastic estimate (one with
    ``mi_se``) adds the ``<name>_se`` rows of :data:`SE_SUFFIX`.
    """
    rows: list[dict] = []
    common = {**common, "estimator": ESTIMATOR_COLUMN.get(getattr(estimate, "estimator", None))}
    with_se = getattr(estimate, "mi_se", None) is not None
    for view, ix in index.items():
        series = {
            metric: estimate.mi, f"{metric}_null": estimate.null_mean,
            f"{metric}_null_std": estimate.null_std, f"{metric}_corrected": estimate.corrected,
            f"{metric}_p_value": estimate.p_value, f"{metric}_z": estimate.z,
        }
        if entropy_x:
            series[REPRESENTATION_ENTROPY] = estimate.entropy_x
        if with_se:
            series |= {metric + SE_SUFFIX: estimate.mi_se, f"{metric}_null{SE_SUFFIX}": estimate.null_mean_se,
                       f"{metric}_corrected{SE_SUFFIX}": estimate.corrected_se}
            if entropy_x:
                series[REPRESENTATION_ENTROPY + SE_SUFFIX] = estimate.entropy_x_se
        degenerate = degenerate_grams(estimate)[ix].tolist()
        for name, values in series.items():
            rows += [{**common, "final_norm": view, "metric": name, "layer": first_layer + layer, "value": float(v),
                      **({"flag": DEGENERATE_GRAM} if degenerate[layer] else {})}
                     for layer, v in enumerate(values[ix])]
        if entropy_y is not None:
            rows.append({**common, "final_norm": view, "metric": entropy_y, "layer": WHOLE_CURVE,
                         "value": float(estimate.entropy_y)})
            if with_se:
                rows.append({**common, "final_norm": view, "metric": entropy_y + SE_SUFFIX, "layer": WHOLE_CURVE,
                             "value": float(estimate.entropy_y_se)})
    return rows
