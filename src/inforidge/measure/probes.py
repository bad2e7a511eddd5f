"""Relation of layer metrics to downstream quality (Skean et al. 2025, §5 and Figs. 3, 8-9;
METHOD §7).

A per-layer downstream score (here: the cross-validated accuracy of a linear probe on each
layer's pooled features, :func:`probe_scores`) is compared with each per-layer metric across
layers with Spearman's rho, Kendall's tau and the distance correlation
(:func:`metric_score_correlations`; dCor computed in numpy by :func:`distance_correlation`,
equal to ``dcor.distance_correlation``). :func:`load_labelled_texts` reads the labelled texts a
probe is trained on.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from inforidge.info.correlation import distance_correlation

CORRELATION_COLUMNS = ["metric", "spearman", "spearman_p", "kendall", "kendall_p", "dcor", "n_layers"]


# Rank and distance correlations need at least this many layers to mean anything.
MIN_LAYERS = 3


def _check_labels(labels, n_folds: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be one-dimensional (N,); got shape {y.shape}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError("labels contain NaN/inf; drop the unlabelled samples first")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(
            f"labels hold only one class ({classes[0].item()!r}); a probe needs at least two classes: "
            "give texts of at least two labels"
            if len(classes) else "labels is empty; a probe needs labelled samples"
        )
    if counts.min() < n_folds:
        small = classes[counts.argmin()]
        raise ValueError(
            f"class {small!r} has {counts.min()} sample(s), fewer than folds={n_folds}: stratified "
            f"{n_folds}-fold cross-validation needs at least {n_folds} samples per class "
            "(lower folds or add samples)"
        )
    return y


def probe_scores(
    features: dict[int, np.ndarray], labels: np.ndarray, *, folds: int = 5, seed: int = 0
) -> pd.Series:
    """Cross-validated linear-probe accuracy per layer.

    Args:
        features: layer -> (N, D_l) features of the N samples at that layer (e.g. the
            mean-pooled token states of each prompt); the same N samples, in the same order,
            for every layer.
        labels: (N,) class labels (ints or strings), at least two classes, each with at least
            ``folds`` samples.
        folds: number of stratified folds (>= 2), shuffled with ``seed``.
        seed: seeds the fold split; the probe itself is deterministic (lbfgs).

    Returns:
        Series indexed by layer (ascending, index name "layer"), name "probe_accuracy": the
        mean over folds of the held-out accuracy of a logistic regression (scikit-learn
        defaults: L2, C = 1) on standardised features (the scaler is fitted on each training
        fold only). The same folds are used for every layer.
    """
    from inforidge._optional import require

    require("sklearn", "the linear probes")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not isinstance(features, dict) or not features:
        raise ValueError("features must be a non-empty dict {layer: (N, D) array}")
    if isinstance(folds, bool) or not isinstance(folds, int | np.integer) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2; got {folds!r}")
    y = _check_labels(labels, folds)
    splitter = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=int(seed))
    scores = {}
    for layer in sorted(features):
        x = np.asarray(features[layer])
        if x.ndim != 2:
            raise ValueError(f"features[{layer}] must have shape (N, D); got {x.shape}")
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"features[{layer}] has {x.shape[0]} samples but labels has {y.shape[0]}; they "
                "must describe the same samples in the same order"
            )
        if not np.issubdtype(x.dtype, np.number):
            raise ValueError(f"features[{layer}] must be numeric; got dtype {x.dtype}")
        x = x.astype(np.float64)
        if not np.isfinite(x).all():
            raise ValueError(
                f"features[{layer}] contains {int((~np.isfinite(x)).sum())} NaN/inf value(s); "
                "check the model's dtype (fp16 overflow?) or drop the affected samples"
            )
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        with warnings.catch_warnings():
            # Perfectly separable folds make lbfgs hit max_iter while already at 100 %.
            warnings.simplefilter("ignore", category=ConvergenceWarning)
            acc = cross_val_score(probe, x, y, cv=splitter, scoring="accuracy", error_score="raise")
        scores[layer] = float(np.mean(acc))
    out = pd.Series(scores, name="probe_accuracy", dtype=float)
    out.index.name = "layer"
    return out


def _nan_row(name, n: int) -> dict:
    return {"metric": name, "spearman": math.nan, "spearman_p": math.nan, "kendall": math.nan,
            "kendall_p": math.nan, "dcor": math.nan, "n_layers": n}


def metric_score_correlations(metrics: pd.DataFrame, score: pd.Series) -> pd.DataFrame:
    """Spearman, Kendall and distance correlation between each metric and a score, over layers.

    Args:
        metrics: index = layer, one numeric column per metric (e.g. a pivot of the results
            table: ``rows.pivot_table(index="layer", columns="metric", values="value", observed=True)``).
        score: index = layer, the downstream score per layer (e.g. :func:`probe_scores`).

    The two are aligned on their common layers; for each metric, layers where the metric or
    the score is NaN are dropped. A metric (or score) that is constant over the remaining
    layers, or fewer than 3 remaining layers, gives NaN correlations (no exception, no
    warning): rank and distance correlations are undefined there.

    Returns:
        One row per metric (in column order) with columns metric, spearman, spearman_p
        (scipy.stats.spearmanr), kendall, kendall_p (scipy.stats.kendalltau, tau-b),
        dcor (:func:`distance_correlation`, the value of ``dcor.distance_correlation``, in
        [0, 1]; 1 for any exact linear relation, increasing or decreasing) and n_layers (the
        layers used).
    """
    from inforidge._optional import require

    stats = require("scipy.stats", "the rank correlations")

    if not isinstance(metrics, pd.DataFrame):
        raise TypeError(f"metrics must be a pandas DataFrame (index = layer); got {type(metrics).__name__}")
    if isinstance(score, pd.DataFrame) and score.shape[1] == 1:
        score = score.iloc[:, 0]
    if not isinstance(score, pd.Series):
        raise TypeError(f"score must be a pandas Series (index = layer); got {type(score).__name__}")
    for name, idx in (("metrics", metrics.index), ("score", score.index)):
        if idx.has_duplicates:
            raise ValueError(f"{name} has duplicate layers in its index; aggregate them first")
    common = metrics.index.intersection(score.index)
    if len(common) == 0:
        raise ValueError(
            f"metrics and score share no layers (metrics: {list(metrics.index)[:6]}, score: "
            f"{list(score.index)[:6]}); both must be indexed by layer"
        )
    try:
        s_all = pd.to_numeric(score.loc[common], errors="raise").astype(float)
    except (TypeError, ValueError) as e:
        raise ValueError(f"score must be numeric: {e}") from None
    rows = []
    for name in metrics.columns:
        try:
            m_all = pd.to_numeric(metrics.loc[common, name], errors="raise").astype(float)
        except (TypeError, ValueError) as e:
            raise ValueError(f"metric column {name!r} must be numeric: {e}") from None
        keep = np.isfinite(m_all.to_numpy()) & np.isfinite(s_all.to_numpy())
        m, s = m_all.to_numpy()[keep], s_all.to_numpy()[keep]
        n = int(keep.sum())
        if n < MIN_LAYERS or np.ptp(m) == 0 or np.ptp(s) == 0:
            rows.append(_nan_row(name, n))
            continue
        rho, rho_p = stats.spearmanr(m, s)
        tau, tau_p = stats.kendalltau(m, s)
        rows.append({
            "metric": name, "spearman": float(rho), "spearman_p": float(rho_p), "kendall": float(tau),
            "kendall_p": float(tau_p), "dcor": distance_correlation(m, s), "n_layers": n,
        })
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)
