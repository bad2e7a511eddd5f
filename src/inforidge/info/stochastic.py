"""Matrix-free Renyi entropy and MI for large N (stochastic Lanczos quadrature, Hutch++).

The exact estimators (:mod:`.entropy`) eigendecompose N x N Gram matrices: O(N^3) time and
N^2 memory. Here tr f(A), A = K / tr K, is estimated from products K @ V only, with K built
in blocks of rows from the features and never stored:

* f(l) = -l log l (alpha = 1) or l^alpha (other alpha); S = tr f(A) or log(tr f(A)) / (1 - alpha).
* Hutch++-style split (Meyer et al. 2021): Q = orth(A A G) for a Gaussian G (N, k) holds the
  top of the spectrum, and tr f(A) = tr(Q^T f(A) Q) + tr(P f(A) P), P = I - Q Q^T, exactly.
  Both terms are sums of quadratic forms u^T f(A) u (the columns of Q, and P z for m
  Rademacher probes z), each evaluated by m-step Lanczos quadrature (Golub-Meurant /
  Ubaru et al. 2017). The standard error is the probes' spread, std / sqrt(m); it does not
  include the (small, tested) quadrature error of the Lanczos steps.
* alpha = 2 needs no Lanczos: tr(A^2) = sum K_ij^2 / (tr K)^2, summed exactly over blocks
  (standard error 0).
* Joint entropy: for the Gaussian kernel with one sigma, (Kx o Ky)_ij = exp(-(|xi-xj|^2 +
  |yi-yj|^2) / (2 sigma^2)), the Gaussian Gram of the concatenated rows [xi, yi] (each part
  L2-normalised on its own, the concatenation not re-normalised). So the joint operator is
  matrix-free too; its row blocks are the product of the x and y blocks, which the sweep
  computes anyway. With a sigma per part (sigma="median": each layer's and y's own median
  bandwidth, as gram_matrix) each part is scaled by its own 1 / sigma before concatenating.

All operators (every layer, y, every joint and every permuted joint) advance one Lanczos
step per sweep over the row blocks; y's block is formed once per sweep for all layers.
Memory: the features (L, N, D), O(block * N) per kernel block, and O(N * probes) per operator
for the Lanczos vectors; no N x N matrix.

Products in float32 by default: a K entry exp(-d^2 / 2 sigma^2) with unit rows is in
[exp(-2 / sigma^2), 1] and float32 rounding perturbs it by ~1e-7 relative; through the
Lanczos steps this moves the MI by ~5 % of its reported standard error (same probes,
tests/info/test_stochastic_entropy.py), while the matmuls run twice as fast and blocks take
half the memory. The Lanczos recurrences and quadrature are in float64. Pass
``dtype=torch.float64`` to check.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ._validate import (
    as_tensor,
    check_alpha,
    check_base,
    check_pair,
    check_samples,
    numpy_io,
    on_tensors,
)
from .entropy import InformationEstimate, estimate_information, permutations
from .kernels import l2_normalize, median_bandwidth

Estimator = Literal["auto", "exact", "stochastic"]
ESTIMATORS: tuple[str, ...] = ("auto", "exact", "stochastic")
# "auto" uses the exact estimator up to this N. Measured on the 2-core dev machine, 1 thread
# (benchmarks/results/bench_stochastic_entropy.md), one 768-wide layer, alpha = 1: at N = 4096
# exact is faster (entropy 9 s vs 21 s, MI 31 s vs 56 s) and has no probe noise; at N = 8192
# they are even (MI 136 s exact vs 109 s) but the exact path holds L float64 N x N Grams
# (512 MB each: 12.9 GB for a 24-layer stack), and from there exact time grows as N^3 and
# memory as N^2, the stochastic as N^2 and N.
EXACT_MAX_N = 4096
PROGRESS_MIN_N = 8192
"""From this N on, every sweep over the kernel blocks is logged at INFO (a sweep over 24 layers
at N = 16,384 takes minutes); below it at DEBUG."""
logger = logging.getLogger(__name__)
# sigma="median": the median pairwise distance of at most this many rows (a seeded subsample
# above it; ~2 M distances, whose median moves by well under 1 % between subsamples). Up to this
# N it is gram_matrix's median exactly.
MEDIAN_MAX_ROWS = 2048
_DEFAULT_BLOCK_BYTES = 256 * 2**20  # kernel blocks held at once during a sweep


@dataclass(frozen=True)
class StochasticEntropy:
    """Stochastic estimate of S_alpha(K / tr K). value, se: () or (L,) for a stack."""

    value: Tensor
    se: Tensor
    alpha: float
    base: float
    n_samples: int
    n_probes: int
    lanczos_steps: int
    estimator: str = "slq"


@dataclass(frozen=True)
class StochasticInformationEstimate(InformationEstimate):
    """InformationEstimate from the matrix-free estimator, with the probes' standard errors.

    Shapes as InformationEstimate: mi_se, entropy_x_se, joint_se (L,); entropy_y_se ();
    null_se, joint_null_se (P, L). mi_se combines the three entropies' errors (every operator
    has its own probes, so the errors are independent); null_se likewise for each null draw,
    whose S(X) and S(Y) are those of mi; joint_null_se is the error of each permuted joint alone.
    """

    mi_se: Tensor | None = None
    entropy_x_se: Tensor | None = None
    entropy_y_se: Tensor | None = None
    joint_se: Tensor | None = None
    null_se: Tensor | None = None
    joint_null_se: Tensor | None = None
    n_probes: int = 0
    lanczos_steps: int = 0

    def _joint_null_mean_var(self) -> Tensor:
        """Variance of the mean of the P permuted joints (independent probes): sum se^2 / P^2."""
        p = self.joint_null_se.shape[0]
        return self.joint_null_se.square().sum(0) / p**2

    @property
    @on_tensors
    def null_mean_se(self) -> Tensor:
        """Standard error of null_mean = S(X) + S(Y) - mean_p S_joint,p (NaN without permutations)."""
        if self.null.shape[0] == 0:
            return torch.full_like(self.mi, float("nan"))
        return (self.entropy_x_se.square() + self.entropy_y_se.square() + self._joint_null_mean_var()).sqrt()

    @property
    @on_tensors
    def corrected_se(self) -> Tensor:
        """Standard error of corrected = mean_p S_joint,p - S_joint: S(X) and S(Y) cancel, so only
        the joints' errors count (NaN without permutations)."""
        if self.null.shape[0] == 0:
            return torch.full_like(self.mi, float("nan"))
        return (self.joint_se.square() + self._joint_null_mean_var()).sqrt()


class _GaussianSweep:
    """Products with the Gaussian Grams of x layers, y and their (permuted) joints, in blocks.

    x: (L, N, D) rows already L2-normalised and scaled by 1 / (sigma sqrt 2), so that
    K_ij = exp(-|xi - xj|^2) with the scaled rows; y: (N, E) likewise, or None;
    perms: (P, N) permutations of y's samples (the null's joints). Operators are ordered
    [x_0..x_{L-1}, y, joint_{p, l} for p in (identity, perms...) for l] = G operators.
    """

    def __init__(self, x: Tensor, y: Tensor | None, perms: Tensor, block_size: int | None):
        self.x, self.y, self.perms = x, y, perms
        self.n_layers, self.n = x.shape[0], x.shape[1]
        self.sq_x = (x * x).sum(-1)  # (L, N)
        self.sq_y = None if y is None else (y * y).sum(-1)
        self.n_joint = 0 if y is None else 1 + perms.shape[0]
        n_y_blocks = 0 if y is None else self.n_joint
        if block_size is None:
            per_row = self.n * x.element_size() * (n_y_blocks + 2)
            block_size = max(1, min(self.n, _DEFAULT_BLOCK_BYTES // per_row))
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1; got {block_size}")
        self.block = int(block_size)

    @property
    def n_ops(self) -> int:
        return self.n_layers + (0 if self.y is None else 1 + self.n_joint * self.n_layers)

    def _block(self, z: Tensor, sq: Tensor, rows: slice) -> Tensor:
        """exp(-|zi - zj|^2) for i in rows, all j: (b, N), diagonal exactly 1."""
        k = z[rows] @ z.T
        k.mul_(2.0).sub_(sq[rows, None]).sub_(sq[None, :]).clamp_max_(0.0).exp_()
        k[:, rows].diagonal().fill_(1.0)
        return k

    def _y_blocks(self, rows: slice) -> list[Tensor]:
        """y's block for the identity and each permutation p: Ky[p][:, p] rows."""
        out = [self._block(self.y, self.sq_y, rows)]
        for p in self.perms:
            yp, sqp = self.y[p], self.sq_y[p]
            out.append(self._block(yp, sqp, rows))
        return out

    def matmul(self, v: Tensor) -> Tensor:
        """K_g @ v_g / N for every operator g: v (G, N, c) float64 -> (G, N, c) float64."""
        vv = v.to(self.x.dtype)
        out = torch.empty_like(v)
        L = self.n_layers
        for i0 in range(0, self.n, self.block):
            rows = slice(i0, min(i0 + self.block, self.n))
            ky = None
            if self.y is not None:
                ky = self._y_blocks(rows)
                out[L, rows] = (ky[0] @ vv[L]).to(v.dtype)
            for li in range(L):
                kx = self._block(self.x[li], self.sq_x[li], rows)
                out[li, rows] = (kx @ vv[li]).to(v.dtype)
                for j in range(self.n_joint):
                    g = L + 1 + j * L + li
                    out[g, rows] = ((kx * ky[j]) @ vv[g]).to(v.dtype)
        return out.div_(self.n)  # tr K = N: the Gaussian diagonal is 1

    def frobenius(self) -> Tensor:
        """sum_ij (K_g)_ij^2 / N^2 = tr(A_g^2) for every operator, exactly: (G,) float64."""
        out = torch.zeros(self.n_ops, dtype=torch.float64)
        L = self.n_layers
        for i0 in range(0, self.n, self.block):
            rows = slice(i0, min(i0 + self.block, self.n))
            ky = None
            if self.y is not None:
                ky = [k.square_() for k in self._y_blocks(rows)]
                out[L] += ky[0].sum(dtype=torch.float64).cpu()
            for li in range(L):
                kx = self._block(self.x[li], self.sq_x[li], rows).square_()
                out[li] += kx.sum(dtype=torch.float64).cpu()
                for j in range(self.n_joint):
                    out[L + 1 + j * L + li] += (kx * ky[j]).sum(dtype=torch.float64).cpu()
        return out / float(self.n) ** 2


def _spectral_f(alpha: float):
    if alpha == 1.0:
        return lambda t: -torch.special.xlogy(t, t)
    return lambda t: t**alpha


def _lanczos_quadrature(matmul, u: Tensor, steps: int, f) -> Tensor:
    """u_c^T f(A_g) u_c for each column by `steps`-step Lanczos: u (G, N, c) -> (G, c).

    No reorthogonalisation (Gauss quadrature stays accurate without it; memory O(N c)).
    A column whose Krylov space is exhausted (beta ~ 0) stops: its later steps are 0.
    """
    norm = torch.linalg.vector_norm(u, dim=1, keepdim=True)  # (G, 1, c)
    v = u / torch.where(norm > 0, norm, torch.ones_like(norm))
    v_prev = torch.zeros_like(v)
    beta = torch.zeros_like(norm)
    alphas, betas = [], []
    for _ in range(steps):
        w = matmul(v)
        a = (v * w).sum(1, keepdim=True)
        w.sub_(a * v).sub_(beta * v_prev)
        w.sub_((v * w).sum(1, keepdim=True) * v)  # one local re-projection against round-off
        b = torch.linalg.vector_norm(w, dim=1, keepdim=True)
        live = b > 1e-10
        alphas.append(a[:, 0])
        betas.append(torch.where(live, b, torch.zeros_like(b))[:, 0])
        v_prev, v = v, torch.where(live, w / torch.where(live, b, torch.ones_like(b)), 0.0)
        beta = betas[-1][:, None]
    a = torch.stack(alphas, -1)  # (G, c, m)
    b = torch.stack(betas[:-1], -1) if steps > 1 else a[..., :0]
    t = torch.diag_embed(a) + torch.diag_embed(b, 1) + torch.diag_embed(b, -1)
    theta, vecs = torch.linalg.eigh(t)
    tau = vecs[..., 0, :].square()
    return norm[:, 0].square() * (tau * f(theta.clamp_min(0.0))).sum(-1)


def _logged(matmul, total: int, n: int, n_ops: int):
    """``matmul`` that logs each call as sweep i/total (INFO from N = PROGRESS_MIN_N, else DEBUG)."""
    level = logging.INFO if n >= PROGRESS_MIN_N else logging.DEBUG
    start, done = time.perf_counter(), [0]

    def run(v: Tensor) -> Tensor:
        out = matmul(v)
        done[0] += 1
        if logger.isEnabledFor(level):
            logger.log(level, "stochastic estimator: sweep %d/%d over the kernel blocks (N = %d, %d operators, %.0f s)",
                       done[0], total, n, n_ops, time.perf_counter() - start)
        return out

    return run


def _trace_f(sweep: _GaussianSweep, alpha: float, n_probes: int, deflation: int, steps: int,
             gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Hutch++ + SLQ estimate of tr f(A_g) and its standard error, each (G,) float64."""
    if alpha == 2.0:
        t = sweep.frobenius()
        return t, torch.zeros_like(t)
    g, n = sweep.n_ops, sweep.n
    f = _spectral_f(alpha)
    k = min(deflation, n)
    matmul = _logged(sweep.matmul, steps + (2 if k > 0 else 0), n, g)
    parts = []
    if k > 0:
        s = torch.randn(g, n, k, generator=gen, dtype=torch.float64).to(sweep.x.device)
        q = torch.linalg.qr(matmul(matmul(s))).Q  # one power step sharpens Q
        parts.append(q)
    z = torch.randint(0, 2, (g, n, n_probes), generator=gen).to(torch.float64).mul_(2).sub_(1)
    z = z.to(sweep.x.device)
    if k > 0:
        z = z - q @ (q.transpose(1, 2) @ z)
    parts.append(z)
    quad = _lanczos_quadrature(matmul, torch.cat(parts, -1), steps, f).cpu()
    top, probes = quad[:, :k].sum(-1), quad[:, k:]
    se = probes.std(-1) / math.sqrt(n_probes) if n_probes > 1 else torch.full((g,), math.nan)
    return top + probes.mean(-1), se


def _entropy_of_trace(t: Tensor, se: Tensor, alpha: float, base: float) -> tuple[Tensor, Tensor]:
    """S and its (delta-method) standard error from tr f(A) and its standard error."""
    log_b = math.log(base)
    if alpha == 1.0:
        return t / log_b, se / log_b
    return torch.log(t) / ((1.0 - alpha) * log_b), se / (t * abs(1.0 - alpha) * log_b)


def _median_sigma(x: Tensor, seed: int) -> float:
    """gram_matrix's median bandwidth of the (already normalised) rows x (N, D): exactly that
    for N <= MEDIAN_MAX_ROWS, else that of MEDIAN_MAX_ROWS rows drawn with ``seed``."""
    n = x.shape[0]
    if n > MEDIAN_MAX_ROWS:
        rows = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))[:MEDIAN_MAX_ROWS]
        x = x[rows.to(x.device)]
    return float(median_bandwidth(x, normalize=False))


def _prepare(x: Tensor, sigma: float | str, dtype: torch.dtype, normalize: bool, seed: int = 0) -> Tensor:
    """Rows L2-normalised (as gram_matrix does) and scaled by 1 / (sigma sqrt 2); sigma
    "median": each layer's own median bandwidth (:func:`_median_sigma`), as gram_matrix."""
    median = isinstance(sigma, str) and sigma == "median"
    if not median and (isinstance(sigma, str) or isinstance(sigma, Tensor) and sigma.numel() != 1):
        raise ValueError(f"the stochastic estimator takes one numeric sigma or 'median'; got {sigma!r}")
    if not median:
        sigma = float(sigma)
        if not math.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"sigma must be a positive finite number; got {sigma}")
    if x.ndim == 3:  # one layer at a time: no float64 copy of the whole stack
        return torch.stack([_prepare(layer, sigma, dtype, normalize, seed) for layer in x])
    x = x.to(torch.float64)
    if normalize:
        x = l2_normalize(x)
    if median:
        sigma = _median_sigma(x, seed)
    return (x * (1.0 / (sigma * math.sqrt(2.0)))).to(dtype)


def _check_common(kernel: str, n_probes: int, lanczos_steps: int, deflation: int) -> None:
    if kernel != "gaussian":
        raise ValueError(
            f"the stochastic estimator supports kernel='gaussian' only; got {kernel!r}. "
            "Use estimator='exact' for other kernels"
        )
    if n_probes < 2:
        raise ValueError(f"n_probes must be >= 2 (the error estimate needs two); got {n_probes}")
    if lanczos_steps < 1:
        raise ValueError(f"lanczos_steps must be >= 1; got {lanczos_steps}")
    if deflation < 0:
        raise ValueError(f"deflation must be >= 0; got {deflation}")


@numpy_io("x")
def stochastic_entropy(
    x,
    alpha: float = 1.0,
    base: float = 2.0,
    *,
    sigma: float | str = 1.0,
    kernel: str = "gaussian",
    normalize: bool = True,
    n_probes: int = 128,
    lanczos_steps: int = 20,
    deflation: int = 128,
    block_size: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> StochasticEntropy:
    """Matrix-free estimate of S_alpha(K / tr K), K the Gaussian Gram of x's rows.

    Args:
        x: samples (N, D), or a stack (L, N, D) estimated side by side.
        alpha, base, sigma, kernel, normalize: as :func:`matrix_entropy` of :func:`gram_matrix`;
            sigma "median" is gram_matrix's median bandwidth (per layer of a stack), from a
            seeded subsample of MEDIAN_MAX_ROWS rows when N is larger.
        n_probes: Rademacher probes of the residual trace (error ~ 1 / sqrt(n_probes)).
        lanczos_steps: Lanczos steps per probe (quadrature nodes).
        deflation: k, the top-of-spectrum block Q handled without probe noise (Hutch++).
        block_size: rows per kernel block (memory block_size * N); default: ~256 MB of blocks.
        seed: seeds probes and Q; the same seed gives the same numbers.
        dtype: dtype of features and kernel products (float32; float64 to check).

    Returns:
        StochasticEntropy with value and se of shape () for (N, D) input, (L,) for a stack.
    """
    alpha, base = check_alpha(alpha), check_base(base)
    _check_common(kernel, n_probes, lanczos_steps, deflation)
    x = as_tensor(x, "x")
    check_samples(x, "x", max_dim=3)
    single = x.ndim == 2
    xs = _prepare(x if not single else x[None], sigma, dtype, normalize, seed)
    sweep = _GaussianSweep(xs, None, torch.empty(0, xs.shape[1], dtype=torch.long), block_size)
    gen = torch.Generator().manual_seed(int(seed))
    t, se = _trace_f(sweep, alpha, n_probes, deflation, lanczos_steps, gen)
    h, h_se = _entropy_of_trace(t, se, alpha, base)
    if single:
        h, h_se = h[0], h_se[0]
    return StochasticEntropy(h, h_se, alpha, base, xs.shape[1], n_probes, lanczos_steps)


@numpy_io("x", "y")
def stochastic_joint_entropy(x, y, alpha: float = 1.0, base: float = 2.0, *, sigma: float = 1.0,
                             normalize: bool = True, **kw) -> StochasticEntropy:
    """Matrix-free S_alpha((Kx o Ky) / tr): the Gaussian entropy of the rows [x_i, y_i].

    x: (N, D), y: (N, E); each part is normalised on its own (as for joint_entropy of the two
    Grams), then concatenated and NOT re-normalised; other arguments as stochastic_entropy
    (one numeric sigma: the median of the concatenated rows is not that of either Gram).
    """
    if isinstance(sigma, str):
        raise ValueError(f"stochastic_joint_entropy takes one numeric sigma; got {sigma!r}")
    x, y = as_tensor(x, "x"), as_tensor(y, "y")
    check_samples(x, "x", max_dim=2)
    check_samples(y, "y", max_dim=2)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has N={x.shape[0]} samples but y has N={y.shape[0]}; pass one per sample")
    x, y = x.to(torch.float64), y.to(torch.float64)
    if normalize:
        x, y = l2_normalize(x), l2_normalize(y)
    return stochastic_entropy(torch.cat([x, y], -1), alpha, base, sigma=sigma, normalize=False, **kw)


@numpy_io("x", "y", "groups")
def stochastic_information(
    x,
    y,
    *,
    alpha: float = 1.0,
    base: float = 2.0,
    sigma: float | str = 1.0,
    kernel: str = "gaussian",
    normalize: bool = True,
    n_permutations: int = 0,
    seed: int = 0,
    n_probes: int = 128,
    lanczos_steps: int = 20,
    deflation: int = 128,
    block_size: int | None = None,
    dtype: torch.dtype = torch.float32,
    groups=None,
    layer_chunk: int | None = None,
) -> StochasticInformationEstimate:
    """Matrix-free I(X; Y) = S(Kx) + S(Ky) - S(Kx o Ky) with its permutation null.

    Args:
        x: (N, D) or a stack of layers (L, N, D); y: (N, E).
        n_permutations, seed, groups: the null as in :func:`estimate_information` (the same
            seed draws the same permutations, within the groups' labels when given; probes
            are seeded from seed too).
        sigma: a number, or "median": x's layers and y each get their own median bandwidth,
            as in estimate_information (Kx o Ky stays the Gram of the rows [x_i, y_i], each
            part scaled by its own sigma).
        layer_chunk: layers per sweep (default all): bounds the Lanczos state, about
            4 * 8 bytes * (2 layer_chunk + 1) * N * (deflation + n_probes) without permutations,
            at the cost of rebuilding y's kernel blocks once per chunk. The numbers depend on
            it (each chunk draws its probes from seed + first layer index).
        Other arguments: see :func:`stochastic_entropy`.

    Returns:
        StochasticInformationEstimate: the InformationEstimate fields (mi (L,), null (P, L),
        entropy_x (L,), entropy_y (), joint (L,); no L axis for (N, D) input), their standard
        errors, and estimator="slq".
    """
    alpha, base = check_alpha(alpha), check_base(base)
    _check_common(kernel, n_probes, lanczos_steps, deflation)
    if n_permutations < 0:
        raise ValueError(f"n_permutations must be >= 0; got {n_permutations}")
    x, y = check_pair(x, y)
    single = x.ndim == 2
    xs = _prepare(x[None] if single else x, sigma, dtype, normalize, seed)
    ys = _prepare(y, sigma, dtype, normalize, seed)
    n, L = xs.shape[1], xs.shape[0]
    perms = permutations(n, n_permutations, seed, groups=groups).to(xs.device)
    chunk = L if layer_chunk is None else int(layer_chunk)
    if chunk < 1:
        raise ValueError(f"layer_chunk must be >= 1 (layers per sweep); got {layer_chunk}")
    hx, sx, hj, sj = [], [], [], []
    for c0 in range(0, L, chunk):
        # One sweep per chunk of layers: Lanczos state ~ 4 * (2 chunk + 1) * N * c float64
        # values instead of for all L; y's blocks are rebuilt once per chunk and sweep.
        sweep = _GaussianSweep(xs[c0:c0 + chunk], ys, perms, block_size)
        lc = sweep.n_layers
        gen = torch.Generator().manual_seed(int(seed) + c0)
        t, se = _trace_f(sweep, alpha, n_probes, deflation, lanczos_steps, gen)
        h, h_se = _entropy_of_trace(t, se, alpha, base)
        if c0 == 0:
            hy, sy = h[lc], h_se[lc]  # y's operator is in every sweep; its first estimate counts
        hx.append(h[:lc])
        sx.append(h_se[:lc])
        hj.append(h[lc + 1:].reshape(1 + n_permutations, lc))
        sj.append(h_se[lc + 1:].reshape(1 + n_permutations, lc))
    hx, sx, hj, sj = torch.cat(hx), torch.cat(sx), torch.cat(hj, 1), torch.cat(sj, 1)
    mi = hx + hy - hj[0]
    mi_se = (sx.square() + sy.square() + sj[0].square()).sqrt()
    null = hx + hy - hj[1:]
    null_se = (sx.square() + sy.square() + sj[1:].square()).sqrt()
    if single:
        mi, mi_se, hx, sx = mi[0], mi_se[0], hx[0], sx[0]
        hj, sj, null, null_se = hj[:, 0], sj[:, 0], null[:, 0], null_se[:, 0]
    return StochasticInformationEstimate(
        mi=mi, null=null, entropy_x=hx, entropy_y=hy, joint=hj[0], alpha=alpha, base=base,
        n_samples=n, estimator="slq", mi_se=mi_se, entropy_x_se=sx, entropy_y_se=sy,
        joint_se=sj[0], null_se=null_se, joint_null_se=sj[1:], n_probes=n_probes,
        lanczos_steps=lanczos_steps,
    )


def choose_estimator(n: int, estimator: str = "auto", exact_max_n: int | None = None) -> str:
    """'exact' or 'stochastic' for N samples: auto is exact up to exact_max_n (default: this
    module's EXACT_MAX_N, read at call time)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}; got {estimator!r}")
    if estimator == "auto":
        return "exact" if n <= (EXACT_MAX_N if exact_max_n is None else exact_max_n) else "stochastic"
    return estimator


@numpy_io("x", "y", "groups")
def information(
    x,
    y,
    *,
    estimator: str = "auto",
    exact_max_n: int | None = None,
    alpha: float = 1.0,
    base: float = 2.0,
    kernel: str = "gaussian",
    n_permutations: int = 20,
    seed: int = 0,
    groups=None,
    sigma: float | str = 1.0,
    normalize: bool = True,
    **stochastic_kw,
) -> InformationEstimate:
    """Raw MI, null and corrected value with the exact or the matrix-free estimator.

    estimator: "exact" (:func:`estimate_information`), "stochastic"
    (:func:`stochastic_information`; Gaussian kernel only) or "auto": exact for
    N <= exact_max_n (default EXACT_MAX_N), else stochastic. The result's ``estimator`` field records the choice.
    x: (N, D) or (L, N, D); y: (N, E). ``stochastic_kw``: n_probes, lanczos_steps,
    deflation, block_size, dtype.
    """
    n = as_tensor(x, "x").shape[-2]
    if choose_estimator(n, estimator, exact_max_n) == "exact":
        return estimate_information(
            x, y, alpha=alpha, base=base, kernel=kernel, n_permutations=n_permutations,
            seed=seed, groups=groups, sigma=sigma, normalize=normalize,
        )
    return stochastic_information(
        x, y, alpha=alpha, base=base, sigma=sigma, kernel=kernel, normalize=normalize,
        n_permutations=n_permutations, seed=seed, groups=groups, **stochastic_kw,
    )
