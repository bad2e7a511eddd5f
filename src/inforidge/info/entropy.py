"""Matrix-based Renyi entropy and mutual information (Giraldo et al. 2014; METHOD §1).

All functions work on Gram matrices (``*_from_grams``) or on samples, on CPU or CUDA tensors
and numpy arrays (numpy in, numpy out; see :mod:`inforidge.info`). Entropies are returned in units of ``log(base)`` (bits for base 2).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ._validate import (
    as_tensor,
    check_alpha,
    check_base,
    check_gram,
    check_pair,
    numpy_io,
    on_tensors,
)
from .kernels import gram_matrix

_EIG_DTYPE = torch.float64
_EPS64 = torch.finfo(torch.float64).eps


def _trace(k: Tensor) -> Tensor:
    tr = k.diagonal(dim1=-2, dim2=-1).sum(-1)
    if bool((tr <= 0).any()):
        raise ValueError(
            "a Gram matrix has trace <= 0, so it cannot be normalised to unit trace; "
            "all-zero samples with the linear kernel do this (use the Gaussian kernel)"
        )
    return tr


def _eigvalsh_cpu_parallel(flat: Tensor, workers: int) -> Tensor:
    """eigvalsh of (M, N, N) with one single-threaded LAPACK call per worker at a time.

    The tridiagonal reduction inside eigvalsh scales poorly over threads; running
    independent matrices side by side uses the cores better. Restores torch's thread count.
    """
    out = torch.empty(flat.shape[:-1], dtype=flat.dtype)
    size = -(-flat.shape[0] // workers)
    groups = [slice(i, i + size) for i in range(0, flat.shape[0], size)]  # views, no copies

    def work(rows: slice) -> None:
        out[rows] = torch.linalg.eigvalsh(flat[rows])

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(len(groups)) as pool:
            list(pool.map(work, groups))
    finally:
        torch.set_num_threads(prev)
    return out


def eigvalsh(k: Tensor) -> Tensor:
    """Eigenvalues (ascending) of symmetric matrices (..., N, N), in float64.

    On the CPU, a batch is spread over torch's intra-op threads one matrix per thread.
    """
    k = k.to(_EIG_DTYPE)
    threads = torch.get_num_threads()
    if k.device.type != "cpu" or threads < 2 or k.ndim < 3 or k[..., 0, 0].numel() < 2:
        return torch.linalg.eigvalsh(k)
    flat = k.reshape(-1, *k.shape[-2:])
    return _eigvalsh_cpu_parallel(flat, min(threads, flat.shape[0])).reshape(k.shape[:-1])


# |alpha - 1| below this uses the log1p / expm1 form of S_alpha (see entropy_from_spectrum).
NEAR_ONE = 0.25


@numpy_io("lam")
def entropy_from_spectrum(lam, alpha: float, base: float = 2.0) -> Tensor:
    """Renyi entropy of order alpha of eigenvalues lam (..., N) that sum to 1 -> (...).

    Eigenvalues below N * eps * max(lam) are round-off of a zero eigenvalue and are set to
    0 (for alpha < 1 their powers would otherwise add spurious entropy).

    Forms (d = alpha - 1, sums over the nonzero lam):
      alpha == 1: von Neumann, -sum lam log lam (exactly this, unchanged);
      0 < |d| < NEAR_ONE: S = -log1p( sum lam * expm1(d log lam) ) / d. This is the same
        quantity as log(sum lam^alpha) / (1 - alpha) when sum lam = 1, but its terms never
        cancel (all expm1 share the sign of -d), so it keeps full relative accuracy as
        alpha -> 1 and tends to the von Neumann value; the direct form loses
        ~eps / |d| (e.g. 2e-2 bits at alpha = 1 + 1e-14). A sum of lam that is 1 only up to
        round-off eps changes the result by O(eps), not O(eps / |d|).
      otherwise: log(sum lam^alpha) / (1 - alpha).
    """
    lam = as_tensor(lam, "lam")
    tol = lam.shape[-1] * _EPS64 * lam.amax(-1, keepdim=True).clamp_min(0.0)
    zero = torch.zeros((), dtype=lam.dtype, device=lam.device)
    lam = torch.where(lam > tol, lam, zero)
    if alpha == 1.0:
        h = -torch.special.xlogy(lam, lam).sum(-1)
    elif abs(alpha - 1.0) < NEAR_ONE:
        d = alpha - 1.0
        pos = lam > 0
        log_lam = torch.log(torch.where(pos, lam, torch.ones((), dtype=lam.dtype, device=lam.device)))
        u = torch.where(pos, lam * torch.expm1(d * log_lam), zero).sum(-1)
        h = -torch.log1p(u) / d
    else:
        h = torch.log((lam**alpha).sum(-1)) / (1.0 - alpha)
    return h / math.log(base)


def _entropy(k: Tensor, alpha: float, base: float, tr: Tensor | None = None) -> Tensor:
    """Entropy of K / tr K for PSD matrices k: (..., N, N) -> (...), without copying K / tr K."""
    tr = _trace(k) if tr is None else tr
    if alpha == 2.0:
        # sum(lambda^2) = ||K||_F^2 / tr(K)^2: no eigendecomposition needed.
        return -torch.log(k.square().sum((-2, -1)) / tr.square()) / math.log(base)
    lam = eigvalsh(k) / tr.to(_EIG_DTYPE)[..., None]
    return entropy_from_spectrum(lam, alpha, base).to(k.dtype)


@numpy_io("k")
def matrix_entropy(k, alpha: float = 1.0, base: float = 2.0) -> Tensor:
    """Renyi entropy S_alpha(K / tr K) of a Gram matrix.

    Args:
        k: Gram matrix (N, N) or batch (..., N, N), symmetric positive semi-definite.
        alpha: Renyi order > 0; 1 is the von Neumann limit -sum(l log l); 2 uses the
            Frobenius norm (no eigendecomposition); others use a float64 ``eigvalsh`` with
            round-off negatives clipped to 0.
        base: logarithm base (2: bits).

    Returns:
        Tensor of shape (...) (0-d for a single matrix). Satisfies 0 <= S <= log_base(N).
    """
    alpha, base = check_alpha(alpha), check_base(base)
    k = as_tensor(k, "k")
    check_gram(k, "k")
    return _entropy(k, alpha, base)


@numpy_io("k1", "k2")
def joint_entropy(k1, k2, alpha: float = 1.0, base: float = 2.0) -> Tensor:
    """Joint entropy S_alpha((K1 o K2) / tr(K1 o K2)), o the Hadamard product.

    k1, k2: Gram matrices (..., N, N) that broadcast against each other.
    """
    k1, k2 = as_tensor(k1, "k1"), as_tensor(k2, "k2")
    check_gram(k1, "k1")
    check_gram(k2, "k2")
    if k1.shape[-1] != k2.shape[-1]:
        raise ValueError(f"k1 and k2 must have the same N; got {k1.shape[-1]} and {k2.shape[-1]}")
    return matrix_entropy(k1 * k2, alpha, base)


@dataclass(frozen=True)
class InformationEstimate:
    """Mutual information with its permutation null.

    Shapes: ``L`` is the number of stacked representations (absent for one).
      mi: (L,) raw I(X; Y);  null: (P, L), I with Y's samples permuted;
      entropy_x: (L,);  entropy_y: ();  joint: (L,).
    From numpy inputs the fields are numpy, and so are the properties.
    """

    # The properties are written once, in torch; @on_tensors runs them on tensor views of
    # numpy fields and converts back, so both kinds give the same numbers (torch's std is
    # unbiased, numpy's is not: two implementations would drift apart).

    mi: Tensor
    null: Tensor
    entropy_x: Tensor
    entropy_y: Tensor
    joint: Tensor
    alpha: float
    base: float
    n_samples: int
    estimator: str = "exact"  # "exact" (eigendecomposition) or "slq" (info.stochastic)

    @property
    @on_tensors
    def null_mean(self) -> Tensor:
        """Mean of the permutation null, shape (L,) (NaN if no permutations were drawn)."""
        if self.null.shape[0] == 0:
            return torch.full_like(self.mi, float("nan"))
        return self.null.mean(0)

    @property
    @on_tensors
    def null_std(self) -> Tensor:
        if self.null.shape[0] < 2:
            return torch.full_like(self.mi, float("nan"))
        return self.null.std(0)

    @property
    @on_tensors
    def corrected(self) -> Tensor:
        """Null-corrected MI: raw minus the null mean, shape (L,)."""
        return self.mi - self.null_mean

    @property
    @on_tensors
    def p_value(self) -> Tensor:
        """One-sided permutation p-value of the raw MI, shape (L,): (1 + #{null >= mi}) / (1 + P).

        Exact for the permutations drawn (plain or stratified, whichever made ``null``); its
        resolution is :attr:`p_resolution` = 1 / (1 + P), the smallest value it can take.
        NaN when no permutations were drawn.
        """
        n_perm = self.null.shape[0]
        if n_perm == 0:
            return torch.full_like(self.mi, float("nan"))
        # a null value within round-off of the raw MI is a tie (e.g. a constant representation,
        # where both are 0 up to ~1e-15), and a tie counts as "at least as large"
        exceed = (self.null >= (self.mi - self._round_off).unsqueeze(0)).sum(0)
        return (1.0 + exceed.to(self.mi.dtype)) / (1.0 + n_perm)

    @property
    def p_resolution(self) -> float:
        """Smallest attainable p-value, 1 / (1 + P) (NaN without permutations)."""
        return 1.0 / (1 + self.null.shape[0]) if self.null.shape[0] else float("nan")

    @property
    @on_tensors
    def _round_off(self) -> Tensor:
        """(L,) size of floating-point noise in an MI: 100 eps times the entropies it sums."""
        scale = (self.entropy_x.abs() + self.entropy_y.abs()).clamp_min(1.0)
        return 100 * torch.finfo(self.mi.dtype).eps * scale

    @property
    @on_tensors
    def z(self) -> Tensor:
        """(mi - null mean) / null std, shape (L,); NaN where the null has no spread (P < 2 or
        every permutation gave the same value up to round-off): a ratio over 0 says nothing."""
        std = self.null_std
        z = self.corrected / std
        return torch.where(std > self._round_off, z, torch.full_like(z, float("nan")))


def permutations(n: int, n_permutations: int, seed: int, device=None, *, groups=None) -> Tensor:
    """(P, n) seeded random permutations of range(n); the same seed gives the same rows.

    groups: optional (n,) labels; each permutation then only shuffles samples within a group
    (a stratified null that keeps whatever the groups share, e.g. the prompt length).
    """
    if n_permutations == 0:  # torch.stack([]) raises; mutual_information asks for none
        return torch.empty(0, n, dtype=torch.long, device=device)
    g = torch.Generator().manual_seed(int(seed))
    if groups is None:
        perms = torch.stack([torch.randperm(n, generator=g) for _ in range(n_permutations)])
        return perms.reshape(n_permutations, n).to(device)
    labels = torch.as_tensor(np.asarray(groups)).reshape(-1)
    if labels.shape[0] != n:
        raise ValueError(f"groups must give one label per sample ({n}); got {labels.shape[0]}")
    members = [torch.nonzero(labels == v).flatten() for v in torch.unique(labels)]
    perms = torch.empty(n_permutations, n, dtype=torch.long)
    for row in perms:
        for idx in members:
            row[idx] = idx[torch.randperm(len(idx), generator=g)]
    return perms.to(device)


@numpy_io("kx", "ky", "groups")
def information_from_grams(
    kx,
    ky,
    *,
    alpha: float = 1.0,
    base: float = 2.0,
    n_permutations: int = 0,
    seed: int = 0,
    groups=None,
) -> InformationEstimate:
    """I(X; Y) = S(Kx) + S(Ky) - S(Kx o Ky) from precomputed Gram matrices, with a null.

    Args:
        kx: (N, N) or a stack (L, N, N) of Gram matrices of the representations.
        ky: (N, N) Gram matrix of the target (e.g. a sequence kernel); computed once for all L.
        n_permutations: P draws of the permutation null: Ky -> P Ky P^T (samples of Y
            shuffled against X). S(Ky) is permutation invariant, so only the joint is redone.
        seed: seed of the permutations.
        groups: optional (N,) labels: permute only within groups (see :func:`permutations`).
    """
    alpha, base = check_alpha(alpha), check_base(base)
    kx, ky = as_tensor(kx, "kx"), as_tensor(ky, "ky")
    check_gram(kx, "kx")
    check_gram(ky, "ky")
    if ky.ndim != 2:
        raise ValueError(f"ky must be one (N, N) Gram matrix; got shape {tuple(ky.shape)}")
    if kx.ndim not in (2, 3):
        raise ValueError(f"kx must be (N, N) or (L, N, N); got shape {tuple(kx.shape)}")
    if kx.shape[-1] != ky.shape[-1]:
        raise ValueError(
            f"X and Y have different sample counts ({kx.shape[-1]} vs {ky.shape[-1]}); "
            "pass the same N samples in the same order"
        )
    return _information(kx, ky, alpha, base, n_permutations, seed, groups=groups)


def _information(
    kx: Tensor, ky: Tensor, alpha: float, base: float, n_permutations: int, seed: int, *,
    scratch_kx: bool = False, groups=None,
) -> InformationEstimate:
    """information_from_grams on Gram matrices already validated (or built from checked samples).

    scratch_kx: kx is a temporary of ours; without permutations the joint is formed in it.
    groups: (N,) labels of a stratified null, or None.
    """
    if n_permutations < 0:
        raise ValueError(f"n_permutations must be >= 0; got {n_permutations}")
    stacked = kx.ndim == 3
    kx3 = kx if stacked else kx.unsqueeze(0)
    ky = ky.to(device=kx3.device, dtype=kx3.dtype)
    tx, ty = _trace(kx3), _trace(ky)
    dx, dy = kx3.diagonal(dim1=-2, dim2=-1), ky.diagonal()
    perms = permutations(ky.shape[-1], n_permutations, seed, ky.device, groups=groups)
    if alpha == 2.0:
        # S_2 needs only sums of squares: sum((Kx o Ky)^2) = <Kx^2, Ky^2>, one mat-vec per
        # permutation on the squared Grams instead of a new (L, N, N) product each time.
        log_b = math.log(base)
        kx_sq = kx3.square().reshape(kx3.shape[0], -1)
        ky_sq = ky.square()
        hx = -torch.log(kx_sq.sum(-1) / tx.square()) / log_b
        hy = -torch.log(ky_sq.sum() / ty.square()) / log_b

        def joint_entropy_of(ky_sq_p: Tensor, dy_p: Tensor) -> Tensor:
            return -torch.log((kx_sq @ ky_sq_p.reshape(-1)) / (dx * dy_p).sum(-1).square()) / log_b
    else:
        hx = _entropy(kx3, alpha, base, tx)
        hy = _entropy(ky, alpha, base, ty)
        ky_sq = ky

        def joint_entropy_of(ky_p: Tensor, dy_p: Tensor) -> Tensor:
            tr = (dx * dy_p).sum(-1)  # before an in-place product changes dx's storage
            joint = kx3.mul_(ky_p) if scratch_kx and n_permutations == 0 else kx3 * ky_p
            return _entropy(joint, alpha, base, tr)

    hxy = joint_entropy_of(ky_sq, dy)
    null = torch.empty(n_permutations, kx3.shape[0], dtype=hx.dtype, device=hx.device)
    for i, p in enumerate(perms):
        null[i] = hx + hy - joint_entropy_of(ky_sq[p][:, p], dy[p])
    mi = hx + hy - hxy
    est = InformationEstimate(
        mi=mi, null=null, entropy_x=hx, entropy_y=hy, joint=hxy, alpha=alpha, base=base,
        n_samples=int(ky.shape[-1]),
    )
    if not stacked:
        est = InformationEstimate(
            mi=mi[0], null=null[:, 0], entropy_x=hx[0], entropy_y=hy, joint=hxy[0],
            alpha=alpha, base=base, n_samples=est.n_samples,
        )
    return est


def _grams(x, y, kernel, kernel_kw) -> tuple[Tensor, Tensor]:
    x, y = check_pair(x, y)
    return gram_matrix(x, kernel, **kernel_kw), gram_matrix(y, kernel, **kernel_kw)


@numpy_io("x", "y", "groups")
def estimate_information(
    x,
    y,
    *,
    alpha: float = 1.0,
    base: float = 2.0,
    kernel: str = "gaussian",
    n_permutations: int = 20,
    seed: int = 0,
    groups=None,
    **kernel_kw,
) -> InformationEstimate:
    """Raw MI, its permutation null and the corrected value in one pass over the Grams.

    x: (N, D) or a stack of layers (L, N, D); y: (N, E). ``kernel_kw`` goes to
    :func:`gram_matrix` (sigma, gamma, degree, coef0, normalize) for both x and y.
    groups: optional (N,) labels; the null then permutes y only within groups (e.g. prompts
    of equal length, when y's embedding carries the position).
    """
    alpha, base = check_alpha(alpha), check_base(base)
    kx, ky = _grams(x, y, kernel, kernel_kw)
    return _information(kx, ky, alpha, base, n_permutations, seed, scratch_kx=True, groups=groups)


@numpy_io("x", "y")
def mutual_information(
    x, y, *, alpha: float = 1.0, base: float = 2.0, kernel: str = "gaussian", **kernel_kw
) -> float | Tensor:
    """Matrix-based Renyi mutual information I_alpha(X; Y) = S(A) + S(B) - S(A, B).

    Args:
        x: (N, D) samples, or a stack of layers (L, N, D).
        y: (N, E) target samples (its Gram and entropy are computed once for all layers).
        alpha, base: Renyi order and logarithm base (bits by default).
        kernel, **kernel_kw: see :func:`gram_matrix` (sigma=1.0 Gaussian by default).

    Returns:
        A float for (N, D) input; a tensor of shape (L,) for a stack. Not interpretable alone:
        compare with :func:`mutual_information_null` (the estimator is biased by spread).
    """
    est = estimate_information(
        x, y, alpha=alpha, base=base, kernel=kernel, n_permutations=0, **kernel_kw
    )
    return est.mi if est.mi.ndim else float(est.mi)


@numpy_io("x", "y")
def mutual_information_null(
    x,
    y,
    *,
    n_permutations: int = 20,
    seed: int = 0,
    alpha: float = 1.0,
    base: float = 2.0,
    kernel: str = "gaussian",
    **kernel_kw,
) -> Tensor:
    """Permutation null of :func:`mutual_information`: the MI with y's samples shuffled.

    Returns shape (n_permutations,) for (N, D) input or (n_permutations, L) for a stack.
    The Gram matrices are built once; each permutation reorders Y's Gram (P K P^T).
    """
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1; got {n_permutations}")
    return estimate_information(
        x, y, alpha=alpha, base=base, kernel=kernel, n_permutations=n_permutations,
        seed=seed, **kernel_kw,
    ).null
