"""Bootstrap statistics of the ridge: where a per-layer MI curve peaks and whether it really drops.

Layers are indexed 0..L (0 = embedding output). Given a layer stack x (L+1, N, D) and targets
y (N, E), the N samples are resampled with replacement B times and the whole per-layer curve is
re-estimated on every draw, so layer-to-layer comparisons are paired (same samples for every
layer). Gram matrices are built ONCE on the full sample and resampled (K -> K[idx][:, idx]);
they are never rebuilt from x, so a data-dependent bandwidth (sigma="median") stays the full
sample's.

Duplicates: a bootstrap draw repeats about 37 % of the samples. The Gram estimator accepts
duplicate rows (K stays PSD, the duplicate pairs have distance 0), but a draw has only ~63 %
distinct points, so its entropies and MI are biased DOWN relative to the full sample. The bias
is shared by all layers of a draw, which is why only paired, within-draw quantities are used
here: the argmax layer and the drop peak - last. Do not read the bootstrap MI levels as
confidence intervals for the MI itself.

Null correction (FEASIBILITY F2: raw MI is inflated by representation spread): every draw gets
its own permutation null, y shuffled within the draw, with ``draw_permutations`` permutations
(default 2) shared by all layers of the draw, so the null of the drop is paired too. The full
sample uses ``n_permutations`` (default 20, as :func:`estimate_information`). A few permutations
per draw suffice: their mean is an unbiased estimate of the draw's null, and the permutation
noise only widens the bootstrap distribution (wider interval, larger p-value: conservative),
it does not shift it. The cheaper alternative (subtract the full-sample null from every draw)
was rejected because the null depends on the draw's spread, which duplicates change.

The verdict: a max-statistic bootstrap test (the peak is selected, then tested, on the same
data). A ridge is a peak at an intermediate layer 1 <= l < L (layer 0, the embedding output,
is not a ridge) with a real drop to L. With c the full-sample curve, c* a draw's curve, the
drops d_l = c_l - c_L and d*_bl = c*_bl - c*_bL of the intermediate layers l = 1..L-1,

    T   = max_l d_l                                                  (the observed best drop)
    T*b = max_l s_l (d*_bl - mean_b' d*_b'l)                         (centred, per draw b)
    p   = (1 + #{b : T*b >= T}) / (B + 1)

and the verdict is "ridge" when the full-sample arg-max is intermediate and p < level. The max
over ALL intermediate layers is the distribution of the best drop when every layer's true drop
is 0 (Romano-Wolf style), so picking the best layer is paid for. Two corrections of the Gram
bootstrap, both measured (benchmarks/bench_ridge_calibration.py): its draws UNDER-state the
spread of a drop (~20 % at N = 60; ~63 % distinct samples per draw), so each layer's centred
draws are rescaled by s_l = jackknife SE / bootstrap SD of its drop (:func:`jackknife_scale`;
the jackknife variance errs on the large side, Efron-Stein); and duplicates shift the drops of
different layers differently (a location bias that does not cancel in the paired difference),
so the draws are centred at their own mean, not at the full-sample drop. Centred at the
full-sample drop and unscaled, the test fired in 9-10 % of null data sets, scaled but centred
there in 3-7 %; as above in 1-2.5 % (nominal 5 %), with power 98-100 % on a clear peak and
47 % (raw) / 88 % (corrected) on a mild one (N = 60, B = 100). The older "naive" p, the share of draws with c*_peak <= c*_L for the
full-sample peak alone, is kept as ``naive_p_value`` for comparison only: under a null of equal
dependence in every layer it fired in 16-21 % of data sets at the nominal 5 %.

No verdict (``verdict`` None, ``flag`` says why) when it would not mean anything:
``too_few_samples`` (N < :data:`MIN_SAMPLES`), ``flat_curve`` (all layers equal within
:data:`FLAT_ATOL`, e.g. a one-class label: no peak is named either) or ``too_few_draws``
(B < 2 / level - 1: the smallest attainable p, 1 / (B + 1), must be at most half the level).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ._validate import as_tensor, check_alpha, check_base, check_gram, numpy_io, on_tensors
from .entropy import _grams, _information, permutations


@dataclass(frozen=True)
class ResampledInformation:
    """MI of one layer stack on B resamples of the samples.

    Shapes (L' = number of stacked layers, P = permutations per draw):
      mi: (B, L');  null: (B, P, L') MI with y permuted within the draw;
      entropy_x: (B, L');  entropy_y: (B,).
    """

    mi: Tensor
    null: Tensor
    entropy_x: Tensor
    entropy_y: Tensor

    @property
    @on_tensors
    def null_mean(self) -> Tensor:
        """(B, L') mean null of each draw (NaN if no permutations were drawn)."""
        if self.null.shape[1] == 0:
            return torch.full_like(self.mi, float("nan"))
        return self.null.mean(1)

    @property
    @on_tensors
    def corrected(self) -> Tensor:
        """(B, L') raw MI minus the draw's own null mean."""
        return self.mi - self.null_mean


def bootstrap_indices(n: int, n_boot: int, seed: int) -> Tensor:
    """(B, n) sample indices drawn with replacement, seeded (same seed, same rows)."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    g = torch.Generator().manual_seed(int(seed))
    return torch.randint(n, (n_boot, n), generator=g)


@numpy_io("kx", "ky", "indices")
def resampled_information(
    kx,
    ky,
    indices: Tensor,
    *,
    alpha: float = 1.0,
    base: float = 2.0,
    n_permutations: int = 0,
    seed: int = 0,
) -> ResampledInformation:
    """MI and permutation null of Gram matrices restricted to resampled samples.

    Args:
        kx: (L', N, N) Gram matrices of the layers on the full sample.
        ky: (N, N) Gram matrix of the target on the full sample.
        indices: (B, M) sample indices per draw (repeats allowed; M is usually N).
        n_permutations: P permutations of y within each draw.
        seed: draw b uses the permutations of ``permutations(M, P, seed + b)``, so the identity
            draw ``indices = arange(N)[None]`` reproduces ``information_from_grams(kx, ky,
            n_permutations=P, seed=seed)`` exactly.

    Returns:
        :class:`ResampledInformation` with B rows.
    """
    alpha, base = check_alpha(alpha), check_base(base)
    kx, ky = as_tensor(kx, "kx"), as_tensor(ky, "ky")
    check_gram(kx, "kx")
    check_gram(ky, "ky")
    if kx.ndim != 3 or ky.ndim != 2 or kx.shape[-1] != ky.shape[-1]:
        raise ValueError(
            f"need kx (L, N, N) and ky (N, N) with the same N; got {tuple(kx.shape)} and {tuple(ky.shape)}"
        )
    indices = torch.as_tensor(indices, dtype=torch.long, device=kx.device)
    if indices.ndim != 2 or indices.shape[1] < 2:
        raise ValueError(f"indices must be (B, M) with M >= 2; got shape {tuple(indices.shape)}")
    if bool((indices < 0).any()) or bool((indices >= kx.shape[-1]).any()):
        raise ValueError(f"indices must lie in 0..{kx.shape[-1] - 1}")
    mi, null, hx, hy = [], [], [], []
    for b, idx in enumerate(indices):
        # Resample the Grams, not the samples: K(x[idx]) == K(x)[idx][:, idx] for any kernel.
        est = _information(kx[:, idx][:, :, idx], ky[idx][:, idx], alpha, base, n_permutations, seed + b)
        mi.append(est.mi)
        null.append(est.null)
        hx.append(est.entropy_x)
        hy.append(est.entropy_y)
    return ResampledInformation(torch.stack(mi), torch.stack(null), torch.stack(hx), torch.stack(hy))


def leave_one_out_information(kx, ky, *, alpha: float = 1.0, base: float = 2.0, n_permutations: int = 0,
                              seed: int = 0) -> tuple[Tensor, Tensor]:
    """MI and null mean of the N leave-one-out subsamples: ((N, L'), (N, L')).

    kx: (L', N, N); ky: (N, N). The null uses ``n_permutations`` permutations of the FULL sample
    (``permutations(N, P, seed)``), each replicate dropping one (x, y_perm) pair: the same
    pairing in every replicate, so permutation noise is not blown up by the jackknife's N - 1.
    The null mean is NaN without permutations.
    """
    n = int(kx.shape[-1])
    keep = ~torch.eye(n, dtype=torch.bool)
    loo = torch.arange(n).expand(n, n)[keep].reshape(n, n - 1).to(kx.device)
    mi = resampled_information(kx, ky, loo, alpha=alpha, base=base).mi
    nulls = [resampled_information(kx, ky[perm][:, perm], loo, alpha=alpha, base=base).mi
             for perm in permutations(n, n_permutations, seed, ky.device)]
    null = torch.stack(nulls).mean(0) if nulls else torch.full_like(mi, float("nan"))
    return mi, null


MIN_SAMPLES = 30
"""Below this many samples the ridge verdict is not meaningful (flag ``too_few_samples``)."""

FLAT_ATOL = 1e-9
"""A curve whose values all lie within this (in the curve's units, plus 1e-9 relative) is flat."""


def min_draws(level: float) -> int:
    """Fewest bootstrap draws for a verdict at ``level``: the smallest p, 1 / (B + 1), <= level / 2."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level}")
    return int(np.ceil(2 / level - 1 - 1e-9))


def is_flat(curve) -> bool:
    """True when all values of the (L+1,) curve (tensor or array) are equal within
    FLAT_ATOL + 1e-9 * max|curve|."""
    a = np.asarray(curve, dtype=np.float64)
    return float(a.max() - a.min()) <= FLAT_ATOL + 1e-9 * float(np.abs(a).max())


@dataclass(frozen=True)
class RidgeTest:
    """Bootstrap verdict on one per-layer curve (raw or null-corrected), layers 0..L.

    curve: (L+1,) the curve on the full sample.  draws: (B, L+1) the curve per bootstrap draw.
    peak_layer: argmax of ``curve`` (full sample; None for a flat curve); last_layer: L.
    drop: curve[peak] - curve[L] (>= 0; NaN for a flat curve).  drop_draws: (B,) the same per
        draw, paired (NaN for a flat curve).
    drop_scale: the test's jackknife factor at the peak layer (1 when the peak is layer 0 or L,
        or without a jackknife). The reported interval of the drop is the percentile interval of
        drop + drop_scale * (drop_draws - mean(drop_draws)): bootstrap draws repeat samples, which
        shifts every MI (and so the drops) by an amount of their own, so the plain percentiles of
        drop_draws can miss the full-sample drop altogether (seen on Gemma-3-270m: drop 0.031,
        plain interval [0.036, 0.046]); centred and scaled as the test's draws, they do not.
    ridge_layers: (B,) argmax layer of every draw (first one on ties).
    ridge_layer_ci: percentile interval (lo, hi) of ``ridge_layers`` at ``confidence``.
    share_before_last: share of draws whose argmax is < L.
    statistic: T = max over intermediate layers 1..L-1 of curve[l] - curve[L] (NaN when L < 2).
    p_value: max-statistic bootstrap p of T (module docstring); 1.0 when L < 2.
    naive_p_value: the older (k + 1) / (B + 1), k the draws with drop <= 0 for the full-sample
        peak alone (1.0 when the peak is the last layer); optimistic, for comparison only.
    n_samples: N of the full sample (None: unknown, not checked).
    """

    curve: Tensor
    draws: Tensor
    peak_layer: int | None
    last_layer: int
    drop: float
    drop_draws: Tensor
    ridge_layers: Tensor
    ridge_layer_ci: tuple[int, int]
    share_before_last: float
    p_value: float
    confidence: float
    statistic: float = float("nan")
    naive_p_value: float = float("nan")
    n_samples: int | None = None
    drop_scale: float = 1.0

    @property
    def n_boot(self) -> int:
        return int(self.draws.shape[0])

    def flag(self, level: float = 0.05) -> str | None:
        """Why there is no verdict at ``level`` (None when there is one); see the module docstring."""
        if self.n_samples is not None and self.n_samples < MIN_SAMPLES:
            return "too_few_samples"
        if self.peak_layer is None:
            return "flat_curve"
        if self.n_boot < min_draws(level):
            return "too_few_draws"
        return None

    def verdict(self, level: float = 0.05) -> bool | None:
        """True: the peak is at an intermediate layer 1 <= l < L and the max-statistic p < level;
        None when :meth:`flag` says there is no verdict."""
        if self.flag(level) is not None:
            return None
        return bool(0 < self.peak_layer < self.last_layer and self.p_value < level)

    def is_ridge(self, level: float = 0.05) -> bool:
        """:meth:`verdict` with no verdict read as False."""
        return bool(self.verdict(level))

    @on_tensors
    def drop_interval_draws(self) -> Tensor:
        """(B,) the draws' drops centred on the full-sample drop and scaled like the test's
        (see ``drop_scale``); their percentiles are the reported interval of the drop."""
        return self.drop + self.drop_scale * (self.drop_draws - self.drop_draws.mean())

    @on_tensors
    def summary(self, level: float = 0.05) -> dict:
        """Flat dict of the statistics; ``ridge`` is the verdict (None: no verdict, see ``flag``)."""
        lo, hi = self.ridge_layer_ci
        flat = self.peak_layer is None
        centred = None if flat else self.drop_interval_draws()
        nan = float("nan")
        return {
            "peak_layer": nan if flat else self.peak_layer,
            "peak_value": nan if flat else float(self.curve[self.peak_layer]),
            "last_value": float(self.curve[self.last_layer]), "drop": self.drop,
            "drop_ci_low": nan if flat else float(torch.quantile(centred, (1 - self.confidence) / 2)),
            "drop_ci_high": nan if flat else float(torch.quantile(centred, (1 + self.confidence) / 2)),
            "ridge_layer_ci_low": nan if flat else lo, "ridge_layer_ci_high": nan if flat else hi,
            "share_before_last": self.share_before_last, "statistic": self.statistic,
            "p_value": nan if flat else self.p_value, "naive_p_value": nan if flat else self.naive_p_value,
            "ridge": self.verdict(level), "flag": self.flag(level),
        }


def jackknife_scale(curve: Tensor, draws: Tensor, jackknife: Tensor | None) -> Tensor:
    """(L-1,) factor per intermediate layer that brings the bootstrap spread of its drop to the
    jackknife standard error: se_jack(c_l - c_L) / sd_boot(c*_l - c*_L); ones without ``jackknife``.

    jackknife: (N, L+1) the curve with each sample left out once. The Gram bootstrap's draws
    hold ~63 % distinct samples and UNDER-state the spread of a drop (about 20 % at N = 60); the
    jackknife variance is biased up (Efron-Stein), so the rescaled test errs on the safe side.
    """
    ones = torch.ones(curve.shape[0] - 2, dtype=draws.dtype)
    if jackknife is None or curve.shape[0] < 3:
        return ones
    n = jackknife.shape[0]
    drops = jackknife[:, 1:-1] - jackknife[:, -1:]  # (N, L-1)
    se = ((n - 1) / n * (drops - drops.mean(0)).square().sum(0)).sqrt()
    sd = (draws[:, 1:-1] - draws[:, -1:]).std(0)
    # A drop that does not vary in the draws (identical layers) keeps its (zero) spread.
    return torch.where(sd > 0, se.to(sd.dtype) / sd.clamp_min(1e-300), ones)


def max_drop_test(curve: Tensor, draws: Tensor, scale: Tensor | None = None) -> tuple[float, float]:
    """(T, p) of the max-statistic bootstrap test over the intermediate layers 1..L-1.

    curve: (L+1,) full-sample values; draws: (B, L+1); scale: (L-1,) factors of the centred
    draws (see :func:`jackknife_scale`; ones when None). With drops d = curve[1:L] - curve[L]
    and d* = draws[:, 1:L] - draws[:, L:]: T = max_l d_l and
    p = (1 + #{b: max_l scale_l (d*_bl - mean_b d*_l) >= T}) / (B + 1).
    (nan, 1.0) when there is no intermediate layer (L < 2).
    """
    if curve.shape[0] < 3:
        return float("nan"), 1.0
    diff = curve[1:-1] - curve[-1]  # (L-1,) observed drops of the intermediate layers
    boot = draws[:, 1:-1] - draws[:, -1:]  # (B, L-1)
    # Centred at the draws' own mean: duplicates bias the drops of different layers differently.
    centred = boot - boot.mean(0)
    if scale is not None:
        centred = centred * scale
    t = float(diff.max())
    exceed = int((centred.max(1).values >= t).sum())
    return t, (exceed + 1) / (draws.shape[0] + 1)


@numpy_io("curve", "draws", "jackknife")
def ridge_test(curve, draws, confidence: float = 0.95, n_samples: int | None = None,
               jackknife=None) -> RidgeTest:
    """Peak, percentile interval of the argmax layer and max-statistic drop test of one curve.

    curve: (L+1,) full-sample values; draws: (B, L+1) bootstrap values of the same layers;
    n_samples: N behind the curve (checked against :data:`MIN_SAMPLES` by the verdict);
    jackknife: (N, L+1) leave-one-out curves that set the scale of the test
    (:func:`jackknife_scale`; None: the bootstrap's own spread, anti-conservative).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    curve, draws = as_tensor(curve, "curve"), as_tensor(draws, "draws")
    if jackknife is not None:
        jackknife = as_tensor(jackknife, "jackknife")
    if curve.ndim != 1 or draws.ndim != 2 or draws.shape[1] != curve.shape[0] or curve.shape[0] < 2:
        raise ValueError(
            f"need curve (L+1,) and draws (B, L+1) with L >= 1; got {tuple(curve.shape)} and {tuple(draws.shape)}"
        )
    if not bool(torch.isfinite(curve).all() and torch.isfinite(draws).all()):
        raise ValueError("the curve has NaN values; a null-corrected curve needs permutations > 0")
    last = curve.shape[0] - 1
    n_boot = draws.shape[0]
    layers = draws.argmax(1)
    tail = (1 - confidence) / 2
    as_float = layers.to(torch.float64)
    ci = (int(torch.quantile(as_float, tail, interpolation="lower")),
          int(torch.quantile(as_float, 1 - tail, interpolation="higher")))
    share = float((layers < last).double().mean())
    if jackknife is not None and (jackknife.ndim != 2 or jackknife.shape[1] != curve.shape[0]):
        raise ValueError(f"jackknife must be (N, L+1) = (N, {curve.shape[0]}); got {tuple(jackknife.shape)}")
    scale = jackknife_scale(curve, draws, jackknife)  # (L-1,) for the intermediate layers
    statistic, p = max_drop_test(curve, draws, scale)
    if is_flat(curve):  # no peak to name (e.g. a one-class label: every MI is 0)
        return RidgeTest(
            curve=curve, draws=draws, peak_layer=None, last_layer=last, drop=float("nan"),
            drop_draws=torch.full((n_boot,), float("nan"), dtype=draws.dtype), ridge_layers=layers,
            ridge_layer_ci=ci, share_before_last=share, p_value=float("nan"), confidence=confidence,
            statistic=statistic, naive_p_value=float("nan"), n_samples=n_samples,
        )
    peak = int(curve.argmax())
    drop_draws = draws[:, peak] - draws[:, last]
    not_positive = int((drop_draws <= 0).sum())
    return RidgeTest(
        curve=curve, draws=draws, peak_layer=peak, last_layer=last,
        drop=float(curve[peak] - curve[last]), drop_draws=drop_draws, ridge_layers=layers,
        ridge_layer_ci=ci, share_before_last=share, p_value=p, confidence=confidence, statistic=statistic,
        naive_p_value=1.0 if peak == last else (not_positive + 1) / (n_boot + 1), n_samples=n_samples,
        drop_scale=float(scale[peak - 1]) if 0 < peak < last else 1.0,
    )


@dataclass(frozen=True)
class RidgeStatistics:
    """Bootstrap ridge statistics of a layer stack (see the module docstring).

    raw: test on the raw MI curve.  corrected: test on the null-corrected curve (None when
    ``draw_permutations`` is 0).  indices: (B, N) the bootstrap draws.  null: (L+1,) the
    full-sample null mean.  The remaining fields record the settings.
    """

    raw: RidgeTest
    corrected: RidgeTest | None
    indices: Tensor
    null: Tensor
    n_samples: int
    n_boot: int
    n_permutations: int
    draw_permutations: int
    seed: int
    alpha: float
    base: float

    def summary(self, level: float = 0.05) -> dict:
        """Flat dict: raw_* and corrected_* fields of :meth:`RidgeTest.summary` plus settings."""
        out = {f"raw_{k}": v for k, v in self.raw.summary(level).items()}
        if self.corrected is not None:
            out.update({f"corrected_{k}": v for k, v in self.corrected.summary(level).items()})
        out.update(n_samples=self.n_samples, n_boot=self.n_boot, n_permutations=self.n_permutations,
                   draw_permutations=self.draw_permutations, seed=self.seed, alpha=self.alpha, base=self.base)
        return out


def _sub_seeds(seed: int) -> tuple[int, int]:
    """Independent seeds for the resampling and for the per-draw permutations.

    Seeding both from ``seed`` directly would make the first permutation and the first
    resample consume the same random stream.
    """
    a, b = np.random.SeedSequence(int(seed)).generate_state(2)
    return int(a), int(b) & 0x3FFFFFFF  # room for "+ b" per draw


@numpy_io("kx", "ky")
def ridge_statistics_from_grams(
    kx,
    ky,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    n_permutations: int = 20,
    draw_permutations: int = 2,
    seed: int = 0,
    alpha: float = 1.0,
    base: float = 2.0,
) -> RidgeStatistics:
    """Bootstrap ridge statistics from full-sample Gram matrices.

    Args:
        kx: (L+1, N, N) Gram matrices of layers 0..L.
        ky: (N, N) Gram matrix of the target (any kernel, e.g. a sequence kernel).
        n_boot: B bootstrap draws.
        confidence: level of the percentile interval of the ridge layer.
        n_permutations: permutations of the full-sample null (defines the corrected peak).
        draw_permutations: permutations of y within each draw (0: raw curve only).
        seed: seeds the full-sample null (exactly as :func:`estimate_information`), the
            resampling and the per-draw nulls.

    The test's scale comes from the N leave-one-out curves (:func:`leave_one_out_information`;
    the null part with the first ``draw_permutations`` permutations of the full-sample null).

    Cost: about (B + N) x (L+1) x (2 + draw_permutations) eigendecompositions of N x N; for
    L = 12, N = 100, B = 1000 that is ~30 s on one CPU thread.
    """
    alpha, base = check_alpha(alpha), check_base(base)
    kx, ky = as_tensor(kx, "kx"), as_tensor(ky, "ky")
    check_gram(kx, "kx")
    check_gram(ky, "ky")
    if kx.ndim != 3 or kx.shape[0] < 2:
        raise ValueError(f"kx must be a stack (L+1, N, N) of at least 2 layers; got {tuple(kx.shape)}")
    if draw_permutations < 0 or n_permutations < 0:
        raise ValueError("n_permutations and draw_permutations must be >= 0")
    if draw_permutations > 0 and n_permutations == 0:
        raise ValueError("the corrected curve needs n_permutations >= 1 for the full-sample null")
    n = int(kx.shape[-1])
    full = _information(kx, ky.to(device=kx.device, dtype=kx.dtype), alpha, base, n_permutations, seed)
    index_seed, null_seed = _sub_seeds(seed)
    indices = bootstrap_indices(n, n_boot, index_seed).to(kx.device)
    boot = resampled_information(kx, ky, indices, alpha=alpha, base=base,
                                 n_permutations=draw_permutations, seed=null_seed)
    jk_mi, jk_null = leave_one_out_information(kx, ky, alpha=alpha, base=base, n_permutations=draw_permutations,
                                               seed=seed)
    raw = ridge_test(full.mi.cpu(), boot.mi.cpu(), confidence, n, jk_mi.cpu())
    corrected = None
    if draw_permutations > 0:
        corrected = ridge_test(full.corrected.cpu(), boot.corrected.cpu(), confidence, n, (jk_mi - jk_null).cpu())
    return RidgeStatistics(
        raw=raw, corrected=corrected, indices=indices.cpu(), null=full.null_mean.cpu(), n_samples=n,
        n_boot=n_boot, n_permutations=n_permutations, draw_permutations=draw_permutations,
        seed=int(seed), alpha=alpha, base=base,
    )


@numpy_io("x", "y")
def ridge_statistics(
    x,
    y,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    n_permutations: int = 20,
    draw_permutations: int = 2,
    seed: int = 0,
    alpha: float = 1.0,
    base: float = 2.0,
    kernel: str = "gaussian",
    **kernel_kw,
) -> RidgeStatistics:
    """Bootstrap ridge statistics of a layer stack against targets.

    x: (L+1, N, D) states of layers 0..L; y: (N, E) targets. ``kernel`` and ``kernel_kw``
    (sigma, gamma, degree, coef0, normalize) are those of :func:`estimate_information`;
    the other arguments are those of :func:`ridge_statistics_from_grams`. The full-sample
    curves equal ``estimate_information(x, y, n_permutations=n_permutations, seed=seed)``.
    """
    kx, ky = _grams(x, y, kernel, kernel_kw)
    if kx.ndim != 3:
        raise ValueError(f"x must be a layer stack (L+1, N, D); got {kx.ndim - 1}-D samples")
    return ridge_statistics_from_grams(
        kx, ky, n_boot=n_boot, confidence=confidence, n_permutations=n_permutations,
        draw_permutations=draw_permutations, seed=seed, alpha=alpha, base=base,
    )


@dataclass(frozen=True)
class BandwidthCheck:
    """Ridge statistics of one layer stack under several Gaussian bandwidths.

    results: {str(sigma): RidgeStatistics}, in the order given. All bandwidths share the
    bootstrap draws (same seed), so their verdicts are paired.
    """

    results: dict[str, RidgeStatistics]

    def verdicts(self, level: float = 0.05, curve: str = "corrected") -> dict[str, bool | None]:
        """{sigma: verdict} on the raw or null-corrected curve (None: no verdict, see the flag)."""
        return {s: _pick(r, curve).verdict(level) for s, r in self.results.items()}

    def agree(self, level: float = 0.05, curve: str = "corrected") -> bool:
        """True when every bandwidth gives the same ridge verdict."""
        return len(set(self.verdicts(level, curve).values())) == 1

    def table(self, level: float = 0.05) -> list[dict]:
        """One summary dict per bandwidth, with a ``sigma`` field."""
        return [{"sigma": s, **r.summary(level)} for s, r in self.results.items()]


def _pick(stats: RidgeStatistics, curve: str) -> RidgeTest:
    if curve == "raw":
        return stats.raw
    if curve == "corrected":
        if stats.corrected is None:
            raise ValueError("no corrected curve: run with draw_permutations > 0")
        return stats.corrected
    raise ValueError(f"curve must be 'raw' or 'corrected'; got {curve!r}")


@numpy_io("x", "y")
def bandwidth_check(
    x, y, *, sigmas: Sequence[float | str] = (1.0, "median"), **options
) -> BandwidthCheck:
    """The ridge verdict under the paper's sigma = 1 and the median heuristic (Gaussian kernel).

    x: (L+1, N, D); y: (N, E). ``options`` go to :func:`ridge_statistics` (n_boot, seed, ...).
    With "median" each layer (and y) gets its own full-sample median distance as bandwidth.
    """
    if options.get("kernel", "gaussian") != "gaussian" or "sigma" in options:
        raise ValueError("bandwidth_check varies sigma of the Gaussian kernel; pass sigmas, not kernel/sigma")
    if not sigmas:
        raise ValueError("sigmas must list at least one bandwidth")
    return BandwidthCheck({str(s): ridge_statistics(x, y, sigma=s, **options) for s in sigmas})


def ridge_statistics_views(
    kx: torch.Tensor, ky: torch.Tensor, index: dict[str, torch.Tensor], *, n_boot: int,
    confidence: float = 0.95, n_permutations: int = 20, draw_permutations: int = 2, seed: int = 0,
    alpha: float = 1.0, base: float = 2.0,
) -> dict[str, RidgeStatistics]:
    """:func:`~inforidge.info.ridge.ridge_statistics_from_grams` for several views of one stack.

    kx: (M, N, N) Grams of a stack whose layers several views share (see
    :meth:`~inforidge.extract.last_position.LayerStates.views_stacked`); index: {view: layer indices into kx}.
    The estimator and the bootstrap run once on the shared stack; each view's result equals
    ``ridge_statistics_from_grams(kx[index[view]], ky, ...)`` exactly (same draws, same
    permutations: both depend only on N and the seed, never on the layers).
    """
    n = int(kx.shape[-1])
    full = _information(kx, ky.to(device=kx.device, dtype=kx.dtype), alpha, base, n_permutations, seed)
    index_seed, null_seed = _sub_seeds(seed)
    indices = bootstrap_indices(n, n_boot, index_seed).to(kx.device)
    boot = resampled_information(kx, ky, indices, alpha=alpha, base=base, n_permutations=draw_permutations,
                                 seed=null_seed)
    jk_mi, jk_null = leave_one_out_information(kx, ky, alpha=alpha, base=base, n_permutations=draw_permutations,
                                               seed=seed)
    out = {}
    for view, ix in index.items():
        ix = ix.to(full.mi.device)
        raw = ridge_test(full.mi[ix].cpu(), boot.mi[:, ix].cpu(), confidence, n, jk_mi[:, ix].cpu())
        corrected = None
        if draw_permutations > 0:
            corrected = ridge_test(full.corrected[ix].cpu(), boot.corrected[:, ix].cpu(), confidence, n,
                                   (jk_mi - jk_null)[:, ix].cpu())
        out[view] = RidgeStatistics(
            raw=raw, corrected=corrected, indices=indices.cpu(), null=full.null_mean[ix].cpu(), n_samples=n,
            n_boot=n_boot, n_permutations=n_permutations, draw_permutations=draw_permutations, seed=int(seed),
            alpha=alpha, base=base,
        )
    return out
