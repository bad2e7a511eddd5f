"""Gram matrices of the kernels used by the matrix-based Renyi estimators (METHOD §1)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from ._validate import as_tensor, check_samples, numpy_io

KernelName = Literal["gaussian", "laplacian", "polynomial", "linear"]
KERNELS: tuple[str, ...] = ("gaussian", "laplacian", "polynomial", "linear")
# Infinitely divisible kernels: I <= min(H) holds for them at every alpha; I >= 0 only at alpha = 1
# (a four-point counterexample at alpha = 2 is in tests/test_info_estimators.py).
INFINITELY_DIVISIBLE: tuple[str, ...] = ("gaussian", "laplacian")


COLLAPSED_DISTANCE = 1e-6  # pairwise distances below this (unit rows) are round-off


def _power_of_two_scale(x: Tensor, dims: int | tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Split x into y * 2**e with max |y| in [0.5, 1) over ``dims`` (kept as size-1 axes).

    Returns (y, e) with e int32. Scaling by a power of two is exact (no rounding) unless an
    entry falls below the smallest normal number, i.e. is over 2**1000 times smaller than the
    largest one of its group; all-zero groups get e = 0. Two ldexp steps, so a subnormal
    maximum (whose 2**-e overflows) is handled too.
    """
    _, e = torch.frexp(x.abs().amax(dims, keepdim=True))
    half = torch.div(e, 2, rounding_mode="floor")
    return torch.ldexp(torch.ldexp(x, -half), half - e), e


@numpy_io("x")
def l2_normalize(x) -> Tensor:
    """Scale each row (last axis) to unit L2 norm, at any scale. x: (..., N, D) -> (..., N, D).

    Scale-free: every finite nonzero row, whatever its magnitude (subnormal ~1e-310 up to
    ~1e308), becomes a unit row. Each row is first scaled by the power of two that brings its
    largest |entry| into [0.5, 1) (exact, so the result is bit for bit x / ||x|| wherever that
    does not underflow or overflow), then divided by its norm. An exactly zero row stays
    exactly zero (it has no direction; no NaN, no error).
    """
    x = as_tensor(x, "x")
    y, _ = _power_of_two_scale(x, -1)
    n = torch.linalg.vector_norm(y, dim=-1, keepdim=True)
    return y / torch.where(n > 0, n, torch.ones((), dtype=n.dtype, device=n.device))


def squared_distances(x: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances, (..., N, D) -> (..., N, N), via one matmul."""
    sq = (x * x).sum(-1)
    d2 = sq.unsqueeze(-1) + sq.unsqueeze(-2) - 2.0 * (x @ x.transpose(-1, -2))
    d2 = d2.clamp_min_(0.0)
    d2.diagonal(dim1=-2, dim2=-1).zero_()  # exact zeros despite round-off
    return d2


def _gaussian_gram(x: Tensor, sigma: Tensor) -> Tensor:
    """exp(-||xi - xj||^2 / (2 sigma^2)) with one matmul and in-place passes. sigma: () or (...)."""
    c = (0.5 / sigma.square()).reshape(sigma.shape + (1, 1))
    sq = (x * x).sum(-1, keepdim=True)  # (..., N, 1)
    if bool(((sq - 1.0).abs() < 1e-12).all()) and bool((c < 1e6).all()):
        # Unit rows (the L2-normalised default): ||xi - xj||^2 = 2 - 2 xi.xj, no (N, N)
        # temporary. (With a tiny sigma, the round-off of xi.xj - 1 would be amplified.)
        k = x @ x.transpose(-1, -2)
        k.sub_(1.0).mul_(2.0 * c)
    else:
        # exponent = -c * (|xi|^2 + |xj|^2 - 2 xi.xj); the sum is formed first to stay symmetric.
        # Formed on y = x * 2**-e (max |entry| in [0.5, 1)) with c * 4**e: exactly the same
        # products where nothing under/overflows, and no inf - inf for huge or tiny inputs.
        y, e = _power_of_two_scale(x, (-2, -1))
        cy = c.expand(torch.broadcast_shapes(c.shape, e.shape)).contiguous()
        cy = torch.ldexp(torch.ldexp(cy, e), e)  # (..., 1, 1); inf when scale / sigma > ~1e154
        sq = (y * y).sum(-1, keepdim=True)
        k = y @ y.transpose(-1, -2)
        sq = sq * cy
        k.mul_(2.0 * cy).sub_(sq + sq.transpose(-1, -2))
        huge = ~torch.isfinite(cy)
        if bool(huge.any()):
            # every nonzero distance is then >> sigma: the kernel is 1 on equal rows, else 0
            same = squared_distances(y) == 0
            zero = torch.zeros((), dtype=k.dtype, device=k.device)
            k = torch.where(huge, torch.where(same, zero, -torch.inf), k)
    k.clamp_max_(0.0).exp_()  # clamp: round-off must not push a distance below 0
    k.diagonal(dim1=-2, dim2=-1).fill_(1.0)
    return k


@numpy_io("x")
def median_bandwidth(x, *, normalize: bool = True) -> Tensor:
    """Median pairwise Euclidean distance (off-diagonal) of x: (..., N, D) -> (...,).

    The "median heuristic" for the Gaussian kernel's sigma; rows are L2-normalised first
    when ``normalize`` (matching :func:`gram_matrix`). A collapsed set (median distance
    below ``COLLAPSED_DISTANCE`` times the largest row norm R -- R = 1 for normalised rows --
    e.g. the same token at the same position in every sample) falls back to the mean
    distance, then to R (1 if every row is zero): a near-zero bandwidth would turn round-off
    into "all points different" and report log N of entropy for identical states.

    Scale-free: each batch element is first scaled by the power of two that brings its
    largest |entry| into [0.5, 1) (exact), and the result scaled back, so unnormalised
    inputs at magnitudes from ~1e-300 to ~1e300 neither underflow nor overflow and
    median_bandwidth(c * x) = c * median_bandwidth(x) up to rounding.
    """
    x = as_tensor(x, "x")
    check_samples(x, "x")
    if normalize:
        x = l2_normalize(x)
    x, e = _power_of_two_scale(x, (-2, -1))
    e = e[..., 0, 0]
    n = x.shape[-2]
    d = squared_distances(x).sqrt()
    iu = torch.triu_indices(n, n, offset=1, device=d.device)
    # The usual median (mean of the two middle values for an even pair count, as numpy's);
    # torch.median would return the lower of the two.
    v = d[..., iu[0], iu[1]].sort(dim=-1).values
    m = v.shape[-1]
    median = 0.5 * (v[..., (m - 1) // 2] + v[..., m // 2])
    mean = v.mean(-1)
    r = torch.linalg.vector_norm(x, dim=-1).amax(-1)  # largest row norm (scaled units)
    thr = COLLAPSED_DISTANCE * r
    fallback = torch.where(r > 0, r, torch.ones((), dtype=v.dtype, device=v.device))
    out = torch.where(median > thr, median, torch.where(mean > thr, mean, fallback))
    return torch.where(r > 0, torch.ldexp(torch.ldexp(out, e // 2), e - e // 2), out)


@numpy_io("x")
def gram_matrix(
    x,
    kernel: KernelName = "gaussian",
    *,
    sigma: float | str | Tensor = 1.0,
    gamma: float = 1.0,
    degree: int = 2,
    coef0: float = 1.0,
    normalize: bool = True,
    dtype: torch.dtype | None = torch.float64,
) -> Tensor:
    """Gram matrix K_ij = kappa(x_i, x_j).

    Args:
        x: samples, shape (N, D) or batched (..., N, D); torch tensor or numpy array.
        kernel: "gaussian" exp(-||x-y||^2 / (2 sigma^2)), "laplacian" exp(-gamma ||x-y||_1),
            "polynomial" (x.y + coef0)^degree, or "linear" x.y.
        sigma: Gaussian bandwidth: a number (the paper's default 1.0), a tensor of shape (...)
            for one bandwidth per batch element, or "median" for the median pairwise distance
            of each batch element (see :func:`median_bandwidth`; scale-free, also without
            ``normalize``).
        normalize: L2-normalise every row first (the paper's convention; scale-free, see
            :func:`l2_normalize`: all-zero rows stay zero).
        dtype: computation dtype (float64 by default; None keeps x's dtype).

    Returns:
        K of shape (..., N, N), on x's device.
    """
    x = as_tensor(x, "x", dtype)
    check_samples(x, "x")
    if normalize:
        x = l2_normalize(x)
    if kernel == "gaussian":
        if isinstance(sigma, str):
            if sigma != "median":
                raise ValueError(f"sigma must be a positive number or 'median'; got {sigma!r}")
            if not normalize:
                # The kernel depends on x / sigma only: work at a power-of-two scale (exact)
                # so that sigma^2 of tiny or huge unnormalised inputs cannot under/overflow.
                x, _ = _power_of_two_scale(x, (-2, -1))
            s = median_bandwidth(x, normalize=False)
        else:
            s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
            if bool((s <= 0).any()) or not bool(torch.isfinite(s).all()):
                raise ValueError(f"sigma must be a positive finite number; got {sigma}")
        return _gaussian_gram(x, s.to(x.dtype))
    if kernel == "laplacian":
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0 for the Laplacian kernel; got {gamma}")
        return torch.exp(-gamma * torch.cdist(x, x, p=1.0))
    if kernel == "polynomial":
        if int(degree) != degree or degree < 1:
            raise ValueError(f"degree must be a positive integer; got {degree}")
        return (x @ x.transpose(-1, -2) + coef0) ** int(degree)
    if kernel == "linear":
        return x @ x.transpose(-1, -2)
    raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
