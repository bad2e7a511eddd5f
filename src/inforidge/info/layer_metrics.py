"""Layer-by-Layer representation metrics (Skean et al. 2025, arXiv 2502.02013; METHOD §7).

Pure tensor functions: every metric takes hidden states that the caller has already extracted
(numpy arrays or CPU/CUDA tensors; results are float64 tensors on the input's device, or
numpy for numpy input, see :mod:`inforidge.info`).

Reference implementation: github.com/OFSkean/information_flow,
``experiments/utils/metrics/metric_functions.py`` (``normalize``, ``compute_entropy``,
``compute_curvature``, ``compute_infonce``, ``compute_LDA_matrix``/``compute_lidar``,
``compute_dime``) and ``repitl`` (``matrix_itl.matrixAlphaEntropy``,
``difference_of_entropies.doe``). Where these functions deviate, the docstring says so.

Preprocessing ("their preprocessing"): the reference's ``normalize`` centres a block of row
vectors on its mean and scales every row to unit L2 norm. Its pipeline applies it to the
(non-padding) token states of ONE prompt for the prompt-level metrics, and to a batch of
mean-pooled prompt vectors (separately per augmentation) for the dataset-level and
augmentation metrics. Here ``center`` and ``unit_norm`` switch the two steps; rows whose
centred norm is below ``1e-10`` times the largest row norm of the block are treated as exact
zeros (tokens equal to their prompt's mean: their direction is round-off noise), and zero
rows stay zero instead of becoming NaN as in the reference. All scale-invariant metrics are
scale-free in float64 from ~1e-300 to ~1e300 (blocks are rescaled by exact powers of two
before any norm or Gram is formed).

Entropies use the Gram matrix of the linear kernel (K = Z Z^T) and :func:`matrix_entropy`
(trace normalisation, float64 ``eigvalsh``, base ``base``; bits by default, the reference
reports nats). A block with no spread at all (all rows zero after preprocessing, e.g. a
prompt of identical tokens when centring) has entropy 0 by convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ._validate import (
    as_tensor,
    check_alpha,
    check_base,
    check_finite,
    check_samples,
    numpy_io,
)
from .entropy import entropy_from_spectrum, matrix_entropy, permutations
from .kernels import _power_of_two_scale, gram_matrix

_DTYPE = torch.float64
# Rows whose norm is below this fraction of the block's largest row norm count as zero.
_ZERO_RTOL = 1e-10

GramMethod = Literal["auto", "gram", "covariance"]


# --------------------------------------------------------------------------------------------
# Validation and preprocessing helpers
# --------------------------------------------------------------------------------------------


def _as_mask(mask, name: str, shape: tuple[int, ...], device: torch.device) -> Tensor:
    m = mask if isinstance(mask, Tensor) else torch.as_tensor(np.asarray(mask))
    if tuple(m.shape) != shape:
        raise ValueError(
            f"{name} must have shape {shape} (1 = real token, 0 = padding) to match the "
            f"states; got shape {tuple(m.shape)}"
        )
    m = m.to(device)
    if m.dtype != torch.bool:
        if m.is_complex() or not bool(((m == 0) | (m == 1)).all()):
            raise ValueError(f"{name} must contain only 0/1 (or booleans); got other values")
        m = m != 0
    return m


def _prepare_rows(
    z, mask, name: str, *, min_rows: int, shapes: str
) -> tuple[Tensor, Tensor, bool]:
    """Validate (N, D) or (B, N, D) states with an optional (N,)/(B, N) 0/1 mask.

    Returns the states as float64 (B, N, D) with masked rows set to 0 (their values, even
    NaN, are never used), the (B, N) boolean mask of real rows, and whether the input was
    batched.
    """
    x = as_tensor(z, name, _DTYPE)
    if x.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape {shapes}; got shape {tuple(x.shape)}")
    batched = x.ndim == 3
    x3 = x if batched else x.unsqueeze(0)
    b, n, d = x3.shape
    if d < 1:
        raise ValueError(f"{name} has feature dimension D={d}; at least 1 is needed")
    if mask is None:
        valid = torch.ones(b, n, dtype=torch.bool, device=x3.device)
    else:
        want = (b, n) if batched else (n,)
        m = _as_mask(mask, "mask", want, x3.device)
        valid = m if batched else m.unsqueeze(0)
        x3 = torch.where(valid.unsqueeze(-1), x3, torch.zeros((), dtype=_DTYPE, device=x3.device))
    check_finite(x3, name)
    counts = valid.sum(-1)
    short = torch.nonzero(counts < min_rows).flatten()
    if short.numel():
        i = int(short[0])
        where = f" (batch element {i})" if batched else ""
        raise ValueError(
            f"{name}{where} has {int(counts[i])} unmasked row(s); at least {min_rows} are "
            "needed (drop shorter prompts or check the mask)"
        )
    return x3, valid, batched


def _preprocess(x: Tensor, valid: Tensor | None, center: bool, unit_norm: bool) -> Tensor:
    """Centre each (..., N, D) block over its valid rows and/or scale rows to unit norm.

    Masked rows stay exactly 0; rows that are zero up to round-off become exactly 0.
    Scale-free: the block is worked on at the power of two that brings its largest |entry|
    into [0.5, 1) (exact), so norms neither underflow nor overflow at magnitudes from ~1e-300
    to ~1e300; without ``unit_norm`` the result is scaled back to the input's units.
    """
    if not (center or unit_norm):
        return x
    x, e = _power_of_two_scale(x, (-2, -1))
    x = _center_unit(x, valid, center, unit_norm)
    return x if unit_norm else _ldexp(x, e)


def _ldexp(x: Tensor, e: Tensor) -> Tensor:
    """x * 2**e in two exact steps (e int, broadcastable)."""
    half = torch.div(e, 2, rounding_mode="floor")
    return torch.ldexp(torch.ldexp(x, half), e - half)


def _block_scaled(x: Tensor) -> Tensor:
    """x (..., N, D) times the power of two bringing each block's max |entry| into [0.5, 1).

    Exact; for the scale-invariant quantities (trace-normalised entropies, angles).
    """
    return _power_of_two_scale(x, (-2, -1))[0]


def _center_unit(x: Tensor, valid: Tensor | None, center: bool, unit_norm: bool) -> Tensor:
    """The work of :func:`_preprocess` on a block already at a safe scale."""
    scale = x.norm(dim=-1).amax(-1, keepdim=True)  # (..., 1): largest row norm per block
    if center:
        if valid is None:
            x = x - x.mean(-2, keepdim=True)
        else:
            v = valid.unsqueeze(-1).to(x.dtype)
            mean = (x * v).sum(-2, keepdim=True) / v.sum(-2, keepdim=True)
            x = (x - mean) * v
    norms = x.norm(dim=-1)
    zero = norms <= _ZERO_RTOL * scale
    if unit_norm:
        x = x / torch.where(zero, torch.ones_like(norms), norms).unsqueeze(-1)
    return torch.where(zero.unsqueeze(-1), torch.zeros((), dtype=x.dtype, device=x.device), x)


def _entropy_or_zero(k: Tensor, alpha: float, base: float) -> Tensor:
    """matrix_entropy of PSD k (..., M, M), with 0 for all-zero (trace 0) matrices."""
    tr = k.diagonal(dim1=-2, dim2=-1).sum(-1)
    flat = tr <= 0
    if bool(flat.any()):
        e1 = torch.zeros_like(k)
        e1[..., 0, 0] = 1.0  # a single nonzero eigenvalue: entropy 0
        k = torch.where(flat[..., None, None], e1, k)
    return matrix_entropy(k, alpha, base)


def _row_entropy(x: Tensor, alpha: float, base: float, method: GramMethod) -> Tensor:
    """Renyi entropy of the linear Gram of the rows of x: (..., N, D) -> (...).

    ``covariance`` uses the D x D matrix X^T X (the Gram of the columns), whose nonzero
    spectrum equals that of X X^T; ``auto`` picks it when N > D.
    """
    n, d = x.shape[-2], x.shape[-1]
    if method == "auto":
        use_cov = n > d >= 2
    elif method == "covariance":
        if d < 2:
            raise ValueError("method='covariance' needs D >= 2 features; use 'gram' or 'auto'")
        use_cov = True
    elif method == "gram":
        use_cov = False
    else:
        raise ValueError(f"method must be 'auto', 'gram' or 'covariance'; got {method!r}")
    x = _block_scaled(x)  # the trace-normalised entropy is scale-invariant; no underflow
    rows = x.transpose(-1, -2) if use_cov else x
    k = gram_matrix(rows, "linear", normalize=False)
    return _entropy_or_zero(k, alpha, base)


def _log_base(n: Tensor | float, base: float):
    if isinstance(n, Tensor):
        return torch.log(n) / math.log(base)
    return math.log(n) / math.log(base)


def _pair(z1, z2) -> tuple[Tensor, Tensor]:
    a, b = as_tensor(z1, "z1", _DTYPE), as_tensor(z2, "z2", _DTYPE)
    for t, name in ((a, "z1"), (b, "z2")):
        if t.ndim != 2:
            raise ValueError(
                f"{name} must have shape (N, D), one pooled vector per prompt; "
                f"got shape {tuple(t.shape)}"
            )
    if a.shape != b.shape:
        raise ValueError(
            f"z1 and z2 must have the same shape (row i of each is an augmentation of prompt "
            f"i); got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    check_samples(a, "z1")
    check_samples(b, "z2")
    return a, b.to(a.device)


def _max_entropy(n: int, d: int, base: float) -> float:
    m = min(n, d)
    if m < 2:
        raise ValueError(f"normalized=True needs min(N, D) >= 2; got N={n}, D={d}")
    return _log_base(float(m), base)


# --------------------------------------------------------------------------------------------
# Information-theoretic metrics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptEntropy:
    """Prompt entropy per prompt.

    Shapes: (B,) for a batch, () for one prompt.
      raw: S_alpha of the token Gram, in units of log(base);
      normalized: raw / log_base(T) with T the prompt's number of real tokens, in [0, 1];
      n_tokens: T (int64).
    Average over prompts (``raw.mean()``) for the paper's per-layer value.
    """

    raw: Tensor
    normalized: Tensor
    n_tokens: Tensor
    alpha: float
    base: float


def _positive_spectrum_entropy(k: Tensor, alpha: float, base: float) -> Tensor:
    """repitl's matrixAlphaEntropy: keep eigenvalues > 0, rescale them to sum 1."""
    lam = torch.linalg.eigvalsh(k).clamp_min(0.0)
    total = lam.sum(-1, keepdim=True)
    flat = total <= 0
    lam = torch.where(flat, torch.zeros_like(lam), lam / torch.where(flat, 1.0, total))
    lam[..., -1] = torch.where(flat[..., 0], 1.0, lam[..., -1])
    return entropy_from_spectrum(lam, alpha, base)


def _clamped_entropy(x: Tensor, t: Tensor, alpha: float, base: float, method: GramMethod) -> Tensor:
    """prompt_entropy(clamp_negative=True) of preprocessed (B, T, D) states with T_b real rows.

    Masked rows are zero: they add zero rows/columns to Z Z^T (zero eigenvalues, dropped) and
    nothing to Z^T Z, so the padded batch gives each prompt's own value.
    """
    d = x.shape[-1]
    if method == "auto":
        use_cov = t > d  # the reference's rule, with each prompt's own T
    elif method in ("gram", "covariance"):
        use_cov = torch.full_like(t, method == "covariance", dtype=torch.bool)
    else:
        raise ValueError(f"method must be 'auto', 'gram' or 'covariance'; got {method!r}")
    x = _block_scaled(x)
    h = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for cov in (False, True):
        sel = use_cov == cov
        if bool(sel.any()):
            rows = x[sel].mT if cov else x[sel]
            k = (rows @ rows.mT).clamp_min(0.0)  # (b, T, T) or (b, D, D); D = 1 gives 0
            h[sel] = _positive_spectrum_entropy(k, alpha, base)
    return h


@numpy_io("z", "mask")
def prompt_entropy(
    z,
    mask=None,
    alpha: float = 1.0,
    base: float = 2.0,
    *,
    center: bool = True,
    unit_norm: bool = True,
    method: GramMethod = "auto",
    clamp_negative: bool = False,
) -> PromptEntropy:
    """Prompt entropy: matrix Renyi entropy of the token Gram of each prompt (paper §3.3.1).

    Args:
        z: token states of one prompt (T, D), or a batch (B, T, D).
        mask: optional 0/1 attention mask, (T,) or (B, T); 0 marks padding, which may sit
            anywhere (left or right) and may hold any values (even NaN): padded tokens are
            excluded exactly. Prompts of different lengths are handled in one batched
            eigendecomposition (excluded tokens become zero rows, which leave the spectrum's
            nonzero part unchanged); no Python loop.
        alpha, base: Renyi order (1: von Neumann, the paper's default) and log base (2: bits).
        center, unit_norm: preprocessing of each prompt's real tokens: subtract the prompt's
            mean token, then scale every token to unit L2 norm (the reference's ``normalize``,
            applied per prompt). Centring caps the rank at T - 1.
        method: "gram" (T x T token Gram Z Z^T), "covariance" (D x D Z^T Z; same nonzero
            spectrum) or "auto" (covariance when T > D).
        clamp_negative: reproduce the reference ``compute_entropy``: build, per prompt, the
            SMALLER of the two Grams of its T real (preprocessed) tokens Z (T x D) -- Z^T Z
            (D x D) when T > D, else Z Z^T (T x T) -- set its negative ENTRIES to 0
            (``torch.clamp(cov, min=0)``), then take repitl's ``matrixAlphaEntropy``: the
            entropy of its positive eigenvalues rescaled to sum 1 (eigenvalues below
            N eps max count as 0, as in :func:`entropy_from_spectrum`). The choice is made
            per prompt from its own T (masked batches mix both); ``method`` overrides it
            ("gram": always T x T, "covariance": always D x D; "auto" is the reference's
            rule). Clamping changes the nonzero spectrum, so the two choices give different
            numbers. Off by default: the clamped matrix is not a Gram matrix (it can be
            indefinite).

    Returns:
        :class:`PromptEntropy` with ``raw`` and ``normalized`` (raw / log_base T, METHOD §7;
        the reference's "logN" option) of shape (B,) or ().
        A prompt whose tokens are all identical (no spread) has entropy 0.
    """
    alpha, base = check_alpha(alpha), check_base(base)
    x, valid, batched = _prepare_rows(
        z, mask, "z", min_rows=2, shapes="(T, D) for one prompt or (B, T, D) for a batch"
    )
    x = _preprocess(x, valid, center, unit_norm)
    t = valid.sum(-1)
    if clamp_negative:
        h = _clamped_entropy(x, t, alpha, base, method)
    else:
        h = _row_entropy(x, alpha, base, method)
    hn = h / _log_base(t.to(h.dtype), base)
    if not batched:
        h, hn, t = h[0], hn[0], t[0]
    return PromptEntropy(raw=h, normalized=hn, n_tokens=t, alpha=alpha, base=base)


@numpy_io("z")
def dataset_entropy(
    z,
    alpha: float = 1.0,
    base: float = 2.0,
    *,
    center: bool = True,
    unit_norm: bool = True,
    method: GramMethod = "auto",
    normalized: bool = False,
) -> Tensor:
    """Dataset entropy: matrix Renyi entropy over N mean-pooled prompt vectors (paper §3.3.1).

    Args:
        z: (N, D) mean-pooled prompt vectors (pool over real tokens only), or a stack of
            layers (L, N, D).
        alpha, base: Renyi order and log base (2: bits).
        center, unit_norm: centre the N vectors on their mean, then scale each to unit L2
            norm (the reference's ``normalize`` on the pooled vectors). The reference applies
            it per forward-pass batch; here it is applied over all N vectors (the same when
            one batch holds the whole set).
        method: "gram" (N x N Z Z^T), "covariance" (D x D Z^T Z, the dual with the same
            nonzero spectrum; cheaper when N > D) or "auto" (covariance when N > D).
        normalized: divide by log_base(min(N, D)) (the reference's "maxEntropy" default).

    Returns:
        Tensor of shape () or (L,), in units of log(base). 0 when all vectors coincide.
    """
    alpha, base = check_alpha(alpha), check_base(base)
    x, _, batched = _prepare_rows(
        z, None, "z", min_rows=2, shapes="(N, D), or (L, N, D) for a stack of layers"
    )
    x = _preprocess(x, None, center, unit_norm)
    h = _row_entropy(x, alpha, base, method)
    if normalized:
        h = h / _max_entropy(x.shape[-2], x.shape[-1], base)
    return h if batched else h[0]


@numpy_io("z", "mask")
def effective_rank(
    z, mask=None, *, center: bool = False, unit_norm: bool = False
) -> Tensor:
    """Effective rank (Roy & Vetterli 2007): exp of the Shannon entropy of the singular values.

    erank(Z) = exp(-sum_i p_i ln p_i), p_i = sigma_i / sum_j sigma_j, sigma the singular values
    of Z. Ranges over [1, rank(Z)]; equals k for k orthogonal rows of equal norm.

    Args:
        z: (N, D), or a batch (B, N, D) (e.g. prompts or layers).
        mask: optional (N,) / (B, N) 0/1 row mask; masked rows are dropped exactly.
        center, unit_norm: optional preprocessing as in :func:`prompt_entropy`. Off by
            default: Roy & Vetterli define erank on the matrix as given (no centring). Turn
            both on to measure the same matrix as the default prompt entropy.

    Relation to the matrix entropy (Skean et al. Theorem 1 / METHOD §7): the paper states
    erank(Z) <= exp(S_1(Z)), but the inequality holds the other way round:
    exp(S_1(Z)) <= erank(Z), with S_1 in nats on the same (preprocessed) Z. S_1 uses
    q_i = sigma_i^2 / sum sigma_j^2, which majorises p_i (squaring concentrates the mass),
    and Shannon entropy is Schur-concave; equality iff the nonzero singular values are equal.
    E.g. sigma = (2, 1): erank = 1.890 > exp(S_1) = 1.649.

    Returns:
        Tensor of shape () or (B,).
    """
    x, valid, batched = _prepare_rows(
        z, mask, "z", min_rows=1, shapes="(N, D) or a batch (B, N, D)"
    )
    x = _preprocess(x, valid, center, unit_norm)
    # Masked rows are zero, so the transpose has the same singular values; the SVD of the
    # tall orientation is several times faster on CPUs (prompts are usually shorter than D).
    s = torch.linalg.svdvals(x if x.shape[-2] >= x.shape[-1] else x.mT)
    total = s.sum(-1)
    if bool((total <= 0).any()):
        raise ValueError(
            "effective rank is undefined for an all-zero matrix (after centring, all rows "
            "were equal); check the input or pass center=False"
        )
    p = s / total.unsqueeze(-1)
    er = torch.exp(-torch.special.xlogy(p, p).sum(-1))
    return er if batched else er[0]


# --------------------------------------------------------------------------------------------
# Geometric metric
# --------------------------------------------------------------------------------------------


@numpy_io("z", "mask")
def curvature(
    z,
    mask=None,
    *,
    center: bool = False,
    unit_norm: bool = False,
    absolute: bool = False,
) -> Tensor:
    """Average curvature of the token trajectory (Hosseini & Fedorenko 2023; paper §3.3.2).

    C = 1/(T-2) sum_{k=1}^{T-2} angle(v_{k+1}, v_k), v_k = z_{k+1} - z_k, the angle being
    arccos of the cosine, in [0, pi] (radians). A straight line gives 0, a right-angle zigzag
    pi/2, a full reversal pi. Angles are computed as 2 atan2(|u - w|, |u + w|) on the unit
    directions (exact near 0 and pi, where arccos loses half the digits).

    Args:
        z: token states (T, D) of one prompt, or a batch (B, T, D).
        mask: optional (T,) / (B, T) 0/1 attention mask; padding (anywhere, e.g. left
            padding) is dropped and the real tokens keep their order; no Python loop.
        center, unit_norm: optional per-prompt preprocessing. Off by default (the paper's
            formula on the raw states). The reference pipeline applies its ``normalize``
            (centre + unit norm) before curvature; pass both True to reproduce that.
        absolute: use arccos(|cos|) in [0, pi/2], as the reference ``compute_curvature``
            does (``torch.abs(a.T @ b)``); off by default (the paper's formula has no abs).

    A difference v_k of zero length (two equal consecutive tokens) has no direction: the
    angles that involve it are left out of the mean (the reference counts them as 0). A
    prompt without any defined angle gets NaN.

    Returns:
        Tensor of shape () or (B,).
    """
    x, valid, batched = _prepare_rows(
        z, mask, "z", min_rows=3, shapes="(T, D) for one prompt or (B, T, D) for a batch"
    )
    x = _block_scaled(_preprocess(x, valid, center, unit_norm))  # angles: scale-invariant
    # Move the real tokens to the front, in order (stable sort of the padding indicator).
    order = torch.sort((~valid).to(torch.uint8), dim=-1, stable=True).indices
    x = torch.gather(x, 1, order.unsqueeze(-1).expand_as(x))
    t = valid.sum(-1)
    v = x[:, 1:] - x[:, :-1]  # (B, T-1, D)
    nv = v.norm(dim=-1)
    scale = x.norm(dim=-1).amax(-1, keepdim=True)
    has_dir = nv > _ZERO_RTOL * scale
    u = v / torch.where(has_dir, nv, torch.ones_like(nv)).unsqueeze(-1)
    a, b = u[:, 1:], u[:, :-1]
    angle = 2.0 * torch.atan2((a - b).norm(dim=-1), (a + b).norm(dim=-1))
    if absolute:
        angle = torch.minimum(angle, math.pi - angle)
    k = torch.arange(angle.shape[-1], device=x.device)
    ok = (k.unsqueeze(0) < (t - 2).unsqueeze(-1)) & has_dir[:, 1:] & has_dir[:, :-1]
    angle = torch.where(ok, angle, torch.zeros_like(angle))
    c = angle.sum(-1) / ok.sum(-1).to(angle.dtype)  # 0/0 -> NaN when no angle is defined
    return c if batched else c[0]


@dataclass(frozen=True)
class DominantTokens:
    """The token with the largest state norm in each prompt (attention-sink "massive
    activations", Sun et al. 2024), per prompt of a batch.

    ratio: (B,) its norm over the median norm of the prompt's real tokens (>= 1).
    position: (B,) its index among the prompt's real tokens (0 = first real token).
    dimension: (B,) the dimension holding its largest absolute value.
    share: (B,) that dimension's share of the token's squared norm, in [0, 1].
    """

    ratio: Tensor
    position: Tensor
    dimension: Tensor
    share: Tensor


def dominant_tokens(z, mask=None) -> DominantTokens:
    """Find the token that dominates each prompt's norms (see :class:`DominantTokens`).

    z: (B, T, D) token states; mask: optional (B, T) 0/1 attention mask (padding anywhere).
    A prompt whose real tokens all have norm 0 gets ratio 1 (nothing dominates).
    """
    x = as_tensor(z, "z").to(_DTYPE)
    if x.ndim != 3:
        raise ValueError(f"z must be (B, T, D); got shape {tuple(x.shape)}")
    valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None else (
        _as_mask(mask, "mask", tuple(x.shape[:2]), x.device))
    if not bool(valid.any(-1).all()):
        raise ValueError("every prompt needs at least one real token (a mask row is all zeros)")
    norms = x.norm(dim=-1)
    real_norms = torch.where(valid, norms, torch.full_like(norms, float("nan")))
    median = real_norms.nanquantile(0.5, dim=-1)  # the mean of the middle two for even counts
    top = torch.where(valid, norms, torch.full_like(norms, -1.0)).argmax(-1)
    rows = torch.arange(x.shape[0], device=x.device)
    peak = norms[rows, top]
    ratio = torch.where(median > 0, peak / torch.where(median > 0, median, torch.ones_like(median)),
                        torch.where(peak > 0, torch.full_like(peak, float("inf")), torch.ones_like(peak)))
    token = x[rows, top]
    dimension = token.abs().argmax(-1)
    share = torch.where(peak > 0, token[rows, dimension] ** 2 / torch.where(peak > 0, peak, torch.ones_like(peak)) ** 2,
                        torch.zeros_like(peak))
    position = top - valid.to(torch.long).argmax(-1)  # index among real tokens (padding on either side)
    return DominantTokens(ratio, position, dimension, share)


# --------------------------------------------------------------------------------------------
# Augmentation-invariance metrics
# --------------------------------------------------------------------------------------------


@numpy_io("z1", "z2")
def infonce(
    z1,
    z2,
    temperature: float = 0.1,
    *,
    center: bool = True,
    unit_norm: bool = True,
    symmetric: bool = False,
    loss: Literal["infonce", "nt_xent"] = "infonce",
) -> Tensor:
    """InfoNCE loss between two augmented views (Oord et al. 2018; paper §3.3.3). Lower is better.

    loss="infonce" (default):
    loss = -1/N sum_i log( exp(<a_i, b_i>/tau) / sum_j exp(<a_i, b_j>/tau) ), in nats:
    cross-entropy of the logits A B^T / tau with the matching row as the label; follows the
    reference ``compute_infonce`` (metric_functions.py; temperature 0.1 in its pipeline).
    Each anchor a_i has N - 1 negatives b_j (j != i), all from the other view.
    log(N) - loss is a lower bound on I(X; Z) (paper Theorem 3; the reference's
    "mi-lower-bound" is 1 - loss / log N).

    loss="nt_xent": SimCLR's NT-Xent (Chen et al. 2020). The 2N vectors u = [A; B] are all
    anchors; anchor u_k's positive is its other view and its 2N - 2 negatives are every other
    vector of BOTH views (itself excluded):
    loss = -1/(2N) sum_k log( exp(<u_k, u_pos(k)>/tau) / sum_{m != k} exp(<u_k, u_m>/tau) ).
    It is symmetric by construction and compares with log(2N - 1), not log N.

    Args:
        z1, z2: (N, D) mean-pooled states of two augmentations of the same N prompts, row i
            of each from prompt i.
        temperature: tau > 0.
        center, unit_norm: each view is centred on its own mean over the N prompts and its
            rows scaled to unit norm (the reference's ``normalize`` per augmentation), so the
            logits are cosine similarities / tau.
        symmetric: with loss="infonce", the mean of the A->B and B->A cross-entropies above
            (a two-direction / CLIP-style average; each anchor still has only the N - 1
            negatives of the other view, so this is NOT SimCLR's NT-Xent: use
            loss="nt_xent" for that). Off by default, as in the reference (A->B only).
        loss: "infonce" (the reference's, default) or "nt_xent" (see above); ``symmetric``
            must stay False with "nt_xent".

    Returns:
        0-d tensor (nats).
    """
    a, b = _pair(z1, z2)
    temperature = float(temperature)
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0; got {temperature}")
    if loss not in ("infonce", "nt_xent"):
        raise ValueError(f"loss must be 'infonce' or 'nt_xent'; got {loss!r}")
    if loss == "nt_xent" and symmetric:
        raise ValueError("loss='nt_xent' is symmetric by construction; leave symmetric=False")
    a = _preprocess(a, None, center, unit_norm)
    b = _preprocess(b, None, center, unit_norm)
    if loss == "nt_xent":
        n = a.shape[0]
        u = torch.cat([a, b])  # (2N, D)
        logits = (u @ u.T) / temperature
        logits.fill_diagonal_(float("-inf"))  # an anchor is not its own negative
        pos = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(u.device)
        return -torch.log_softmax(logits, dim=-1).gather(1, pos[:, None]).mean()
    logits = (a @ b.T) / temperature
    out = -torch.log_softmax(logits, dim=-1).diagonal().mean()
    if symmetric:
        out = 0.5 * (out - torch.log_softmax(logits.T, dim=-1).diagonal().mean())
    return out


@numpy_io("z_aug")
def lidar(
    z_aug,
    *,
    delta: float = 1e-4,
    alpha: float = 1.0,
    base: float = 2.0,
    center: bool = True,
    unit_norm: bool = True,
    normalized: bool = False,
) -> Tensor:
    """LiDAR: entropy of the linear-discriminant (LDA) spectrum, each prompt its own class.

    Follows the reference ``compute_LDA_matrix`` / ``compute_lidar`` (Thilak et al. 2024):
      mu_i = mean over the A augmentations of prompt i, mu = mean of all N*A vectors;
      S_b = 1/N sum_i (mu_i - mu)(mu_i - mu)^T;
      S_w = 1/(N A) sum_{i,j} (z_ij - mu_i)(z_ij - mu_i)^T + delta I   (delta = 1e-4);
      LDA = S_w^{-1/2} S_b S_w^{-1/2};  LiDAR = S_alpha(LDA / tr LDA).
    Higher is better (augmentations cluster tightly, prompts spread over many directions).
    Like the reference this returns the entropy; Thilak et al.'s LiDAR is its exponential
    (exp of S_1 in nats, a smooth rank), and they add a small epsilon to the eigenvalues,
    which is omitted here.

    Args:
        z_aug: (N, A, D): N prompts, A >= 2 augmentations each, D features (mean-pooled).
        delta: ridge added to S_w (> 0).
        alpha, base: Renyi order and log base (2: bits; the reference uses nats).
        center, unit_norm: for each augmentation index separately, centre the N pooled
            vectors on their mean and scale rows to unit norm (the reference's ``normalize``
            per augmentation).
        normalized: divide by log_base(min(N, D)) (the reference's "maxEntropy" default).

    Returns:
        0-d tensor. 0 when all class means coincide (no between-class scatter).
    """
    alpha, base = check_alpha(alpha), check_base(base)
    x = as_tensor(z_aug, "z_aug", _DTYPE)
    if x.ndim != 3:
        raise ValueError(
            "z_aug must have shape (N, A, D): N prompts x A augmentations x D features; "
            f"got shape {tuple(x.shape)}"
        )
    n, n_aug, d = x.shape
    if n < 2:
        raise ValueError(f"z_aug has N={n} prompts; at least 2 are needed")
    if n_aug < 2:
        raise ValueError(f"z_aug has A={n_aug} augmentation(s) per prompt; at least 2 are needed")
    if d < 2:
        raise ValueError(f"z_aug has D={d} features; at least 2 are needed")
    check_finite(x, "z_aug")
    delta = float(delta)
    if not math.isfinite(delta) or delta <= 0:
        raise ValueError(f"delta must be a finite number > 0 (ridge on S_w); got {delta}")
    x = _preprocess(x.transpose(0, 1), None, center, unit_norm).transpose(0, 1)
    class_means = x.mean(1)  # (N, D)
    db = class_means - class_means.mean(0)
    s_b = db.T @ db / n
    dw = (x - class_means.unsqueeze(1)).reshape(n * n_aug, d)
    s_w = dw.T @ dw / (n * n_aug)
    s_w = s_w + delta * torch.eye(d, dtype=x.dtype, device=x.device)
    evals, evecs = torch.linalg.eigh(s_w)
    w = (evecs * evals.rsqrt()) @ evecs.T
    lda = w @ s_b @ w
    lda = 0.5 * (lda + lda.T)
    h = _entropy_or_zero(lda, alpha, base)
    if normalized:
        h = h / _max_entropy(n, d, base)
    return h


@numpy_io("z1", "z2")
def dime(
    z1,
    z2,
    alpha: float = 1.0,
    base: float = 2.0,
    *,
    n_permutations: int = 10,
    seed: int = 0,
    center: bool = True,
    unit_norm: bool = True,
    normalized: bool = False,
) -> Tensor:
    """DiME: difference of matrix-based entropies of random vs true pairings (Skean et al. 2023).

    DiME = mean_P S_alpha(K1 o P K2 P^T) - S_alpha(K1 o K2), o the Hadamard product, P random
    permutations of the N prompts, K = Z Z^T the linear Gram of each view. Follows
    repitl's ``difference_of_entropies.doe`` as called by the reference ``compute_dime``
    (10 permutations). Higher is better: true pairs are more aligned than random ones.

    Deviations: the reference builds Z^T Z (D x D) instead of Z Z^T when N > D, which makes
    its permutation shuffle feature dimensions rather than prompts; here the N x N Gram is
    always used (the joint entropy and the pairing are defined over prompts). Permutations
    are seeded (reproducible); alpha = 1 is the von Neumann limit.

    Args:
        z1, z2: (N, D) mean-pooled states of two augmentations of the same N prompts.
        alpha, base: Renyi order and log base (2: bits; the reference uses nats).
        n_permutations: random pairings averaged (>= 1). seed: their seed.
        center, unit_norm: each view centred on its mean over the N prompts, rows scaled to
            unit norm (the reference's ``normalize`` per augmentation).
        normalized: divide by log_base(min(N, D)) (the reference's "maxEntropy" default).

    Returns:
        0-d tensor, in units of log(base).
    """
    alpha, base = check_alpha(alpha), check_base(base)
    a, b = _pair(z1, z2)
    if int(n_permutations) != n_permutations or n_permutations < 1:
        raise ValueError(f"n_permutations must be an integer >= 1; got {n_permutations}")
    a = _preprocess(a, None, center, unit_norm)
    b = _preprocess(b, None, center, unit_norm)
    k1 = gram_matrix(_block_scaled(a), "linear", normalize=False)  # trace-normalised: the
    k2 = gram_matrix(_block_scaled(b), "linear", normalize=False)  # scale of a view is irrelevant
    n = k1.shape[-1]
    h_true = _entropy_or_zero(k1 * k2, alpha, base)
    h_perm = torch.zeros((), dtype=h_true.dtype, device=h_true.device)
    for p in permutations(n, int(n_permutations), seed, k1.device):
        h_perm = h_perm + _entropy_or_zero(k1 * k2[p][:, p], alpha, base)
    d = h_perm / n_permutations - h_true
    if normalized:
        d = d / _max_entropy(n, a.shape[-1], base)
    return d


__all__ = [
    "PromptEntropy",
    "curvature",
    "dataset_entropy",
    "dime",
    "effective_rank",
    "infonce",
    "lidar",
    "prompt_entropy",
]
