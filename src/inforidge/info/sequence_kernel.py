"""The sequence kernel of the multi-token extension (METHOD §5; paper §6).

A target Y_i is a variable-length set of token embeddings y_i1..y_in_i. Two targets are
compared by the mean of the pairwise Gaussian kernels between their tokens,

    kappa(Y_i, Y_j) = 1 / (n_i n_j) * sum_a sum_b k(y_ia, y_jb),   k(x, y) = exp(-||x - y||^2 / (2 sigma^2)),

the inner product of the two kernel mean embeddings <mu_i, mu_j>, hence positive
semi-definite. The resulting (N, N) Gram matrix goes to
:func:`~inforidge.info.information_from_grams` as ``ky`` like any other Gram matrix (so the
permutation null and the corrected value apply unchanged).

Implementation: the valid tokens of all targets are flattened to (M, D) (padding never enters
a product); a weight matrix W (N, M) with W[i, m] = 1/n_i for the tokens of sample i turns the
token-level Gram G (M, M) into K = W G W^T. G is never held whole: rows of samples are
processed in chunks whose token block (m_chunk, M) stays under ``max_elements`` entries.
No Python loop over sample pairs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._validate import as_tensor, check_finite, numpy_io
from .kernels import _power_of_two_scale, gram_matrix, l2_normalize, median_bandwidth

DEFAULT_MAX_ELEMENTS = 1 << 24  # 16 M entries of the token Gram per chunk (128 MiB in float64)
MEDIAN_MAX_TOKENS = 4096  # tokens used by sigma="median" (a strided subsample beyond this)


def _check_inputs(embeddings, mask) -> tuple[Tensor, Tensor]:
    emb = as_tensor(embeddings, "embeddings")
    if emb.ndim != 3:
        raise ValueError(
            f"embeddings must be padded target-token embeddings of shape (N, T_max, D); got {tuple(emb.shape)}"
        )
    if not isinstance(mask, Tensor):
        mask = torch.as_tensor(mask)
    mask = mask.to(emb.device).bool()
    if mask.shape != emb.shape[:2]:
        raise ValueError(f"mask must have shape (N, T_max) = {tuple(emb.shape[:2])}; got {tuple(mask.shape)}")
    n = emb.shape[0]
    if n < 2:
        raise ValueError(f"the sequence kernel needs at least 2 targets; got N={n} (use more samples)")
    lengths = mask.sum(1)
    if bool((lengths == 0).any()):
        empty = torch.nonzero(lengths == 0).flatten().tolist()
        raise ValueError(
            f"target(s) {empty[:10]} have no tokens (all-false mask rows); every target needs at least one "
            "token: drop empty targets before building the kernel"
        )
    check_finite(emb[mask], "target embeddings")
    return emb, mask


@numpy_io("embeddings", "mask")
def sequence_gram(
    embeddings,
    mask,
    *,
    sigma: float | str = 1.0,
    normalize: bool = True,
    dtype: torch.dtype = torch.float64,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    check_psd: bool = True,
    psd_tol: float = 1e-8,
) -> Tensor:
    """(N, N) Gram of mean pairwise Gaussian kernels between N variable-length token sets.

    Args:
        embeddings: (N, T_max, D) target-token embeddings, padded (padding rows are ignored;
            they may hold anything finite or not).
        mask: (N, T_max) bool/0-1, True at the real tokens; every row needs at least one.
        sigma: Gaussian bandwidth on the (normalised) token embeddings: a number (1.0, the
            paper's value for single-token labels) or "median" (median pairwise distance
            over the target tokens, at most ``MEDIAN_MAX_TOKENS`` of them, strided; then the
            kernel is scale-free even with ``normalize=False``).
        normalize: L2-normalise every token embedding first (the paper's convention; at any
            magnitude, see :func:`~inforidge.info.kernels.l2_normalize`).
        dtype: computation dtype (float64 by default).
        max_elements: bound on the entries of one chunk of the token Gram (memory knob).
        check_psd: verify the smallest eigenvalue is >= -psd_tol * largest (float64 eigvalsh);
            raise a ValueError otherwise.

    Returns:
        K of shape (N, N), symmetric, on the embeddings' device. K_ii <= 1 (the mean
        self-similarity of target i's tokens); K_ij in [0, 1].
    """
    emb, mask = _check_inputs(embeddings, mask)
    emb = emb.to(dtype)
    n = emb.shape[0]
    lengths = mask.sum(1)  # (N,)
    tokens = emb[mask]  # (M, D), sample-major order
    owner = torch.repeat_interleave(torch.arange(n, device=emb.device), lengths)  # (M,)
    if normalize:
        tokens = l2_normalize(tokens)
    m = tokens.shape[0]
    if isinstance(sigma, str):
        if sigma != "median":
            raise ValueError(f"sigma must be a positive number or 'median'; got {sigma!r}")
        if not normalize:
            # the kernel depends on tokens / sigma only: an exact power-of-two rescale keeps
            # tiny or huge unnormalised embeddings from underflowing or overflowing
            tokens, _ = _power_of_two_scale(tokens, (-2, -1))
        stride = max(1, -(-m // MEDIAN_MAX_TOKENS))
        s = float(median_bandwidth(tokens[::stride], normalize=False)) if m >= 2 else 1.0
    else:
        s = float(sigma)
        if not s > 0 or s == float("inf"):
            raise ValueError(f"sigma must be a positive finite number; got {sigma}")
    c = 0.5 / (s * s)
    weights = torch.zeros(n, m, dtype=dtype, device=emb.device)  # W[i, m] = 1/n_i on i's tokens
    weights[owner, torch.arange(m, device=emb.device)] = 1.0 / lengths[owner].to(dtype)
    sq = (tokens * tokens).sum(-1)  # (M,)
    starts = torch.cumsum(lengths, 0) - lengths  # first token of each sample
    out = torch.empty(n, n, dtype=dtype, device=emb.device)
    row_budget = max(1, int(max_elements) // max(m, 1))  # tokens per chunk
    start, end = starts.tolist(), (starts + lengths).tolist()
    i = 0
    while i < n:
        # as many whole samples as fit the budget (at least one)
        j = i + 1
        while j < n and end[j] - start[i] <= row_budget:
            j += 1
        a, b = start[i], end[j - 1]
        g = tokens[a:b] @ tokens.T  # (m_c, M)
        g.mul_(2.0 * c).sub_(c * (sq[a:b, None] + sq[None, :])).clamp_max_(0.0).exp_()
        out[i:j] = (weights[i:j, a:b] @ g) @ weights.T
        i = j
    out = 0.5 * (out + out.T)
    if check_psd:
        check_positive_semidefinite(out, "sequence Gram", tol=psd_tol)
    return out


def mean_embedding_gram(embeddings, mask, kernel: str = "gaussian", **kernel_kw) -> Tensor:
    """(N, N) Gram K_ij = mean_a mean_b k(y_ia, y_jb) of N variable-length token sets for any
    kernel k of :func:`~inforidge.info.gram_matrix` (the kernel mean embeddings' inner product).

    embeddings: (N, T_max, D) padded token embeddings; mask: (N, T_max), True at real tokens.
    The Gaussian kernel is :func:`sequence_gram` (``sigma``, ``normalize`` from ``kernel_kw``);
    another kernel builds the (M, M) Gram of all M real tokens at once (M is a few hundred for a
    measurement subsample) and averages it per pair of sets. With one token per set, K is
    ``gram_matrix`` of those tokens.
    """
    if kernel == "gaussian":
        return sequence_gram(embeddings, mask, sigma=kernel_kw.get("sigma", 1.0),
                             normalize=kernel_kw.get("normalize", True))
    emb, mask = _check_inputs(embeddings, mask)
    lengths = mask.sum(1)
    tokens = emb.to(torch.float64)[mask]  # (M, D), sample-major
    n, m = emb.shape[0], tokens.shape[0]
    owner = torch.repeat_interleave(torch.arange(n, device=emb.device), lengths)
    weights = torch.zeros(n, m, dtype=torch.float64, device=emb.device)
    weights[owner, torch.arange(m, device=emb.device)] = 1.0 / lengths[owner].to(torch.float64)
    out = weights @ gram_matrix(tokens, kernel, **kernel_kw) @ weights.T
    return 0.5 * (out + out.T)


@numpy_io("k")
def check_positive_semidefinite(k, name: str = "K", tol: float = 1e-8) -> float:
    """Raise ValueError unless min eigenvalue >= -tol * max(|eigenvalue|, 1e-300); return the min.

    k: (N, N) symmetric matrix (tensor or numpy). Returns a Python float either way."""
    lam = torch.linalg.eigvalsh(as_tensor(k, name, torch.float64))
    lo, hi = float(lam[0]), float(lam.abs().max())
    if lo < -tol * max(hi, 1e-300):
        raise ValueError(
            f"{name} is not positive semi-definite (smallest eigenvalue {lo:.3g}, largest {hi:.3g}); "
            "the token embeddings are probably not finite or sigma is extreme"
        )
    return lo


def sequence_gram_reference(embeddings, mask, *, sigma: float = 1.0, normalize: bool = True) -> Tensor:
    """The same kernel by a direct double loop over sample pairs (slow; for tests only)."""
    emb = as_tensor(embeddings, "embeddings", torch.float64)
    mask = torch.as_tensor(mask).bool()
    n = emb.shape[0]
    sets = [emb[i][mask[i]] for i in range(n)]
    if normalize:
        sets = [l2_normalize(s) for s in sets]
    out = torch.empty(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            d2 = ((sets[i][:, None, :] - sets[j][None, :, :]) ** 2).sum(-1)
            out[i, j] = torch.exp(-d2 / (2 * sigma**2)).mean()
    return out
