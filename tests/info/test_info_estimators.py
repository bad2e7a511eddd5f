"""Tests of the matrix-based Renyi estimators (METHOD §1): kernels, entropy, joint entropy, MI.

Every numeric check compares against a float64 numpy oracle written here (broadcast kernels,
``numpy.linalg.eigvalsh`` spectra), independent of the library code, or against a closed form.

Notes on what is mathematically true (and therefore what is tested):

* Upper bound. If B has a constant unit diagonal and is PSD, X -> X o B is a unital,
  trace-preserving (doubly stochastic) map, so spec(A o B) is majorised by spec(A) and
  S_alpha(A o B / tr) >= max(S_alpha(A), S_alpha(B)) for EVERY alpha: I <= min(H(X), H(Y)).
  This holds for the Gaussian and Laplacian kernels (always unit diagonal) and for every kernel
  on L2-normalised rows (constant diagonal).
* Lower bound. I >= 0 is subadditivity. On discrete labels (0/1 Gram matrices) the matrix
  functional reduces to the classical Renyi entropy of the empirical distribution, and that is
  subadditive only for alpha = 1: ``test_mi_can_be_negative_for_alpha_not_one`` gives a
  4-sample counterexample where I_2 < 0 with the default Gaussian kernel. So I >= 0 is only
  checked at alpha = 1 (von Neumann), where it holds (to round-off) in every case tried.
* I(X; X) = H(X) does NOT hold in general: I(X; X) = 2 S(A) - S(A o A / tr), and for the
  Gaussian kernel A o A is the Gram at sigma / sqrt(2), whose entropy is larger, so
  I(X; X) < H(X). It holds exactly when K o K = K, e.g. the linear kernel on one-hot (discrete)
  labels, where K is a 0/1 "same class" matrix; then H is the Renyi entropy of the class
  frequencies.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inforidge.info.entropy import (
    estimate_information,
    information_from_grams,
    joint_entropy,
    matrix_entropy,
    mutual_information,
    mutual_information_null,
    permutations,
)
from inforidge.info.kernels import gram_matrix, median_bandwidth

ALPHAS = (0.5, 1.0, 1.01, 2.0, 3.0)
# (kernel, kwargs) pairs covering every kernel and option.
KERNEL_CASES = [
    ("gaussian", {"sigma": 1.0}),
    ("gaussian", {"sigma": 0.5}),
    ("gaussian", {"sigma": "median"}),
    ("laplacian", {"gamma": 0.7}),
    ("polynomial", {"degree": 3, "coef0": 0.5}),
    ("polynomial", {}),  # defaults: degree 2, coef0 1
    ("linear", {}),
]
KERNEL_IDS = ["gauss1", "gauss0.5", "gauss-median", "laplacian", "poly3", "poly-default", "linear"]


def tol(alpha: float) -> float:
    """Absolute tolerance of an entropy in bits. For alpha < 1 a round-off eigenvalue of size
    ~eps contributes eps**alpha (sqrt(eps) ~ 1.5e-8 at alpha = 0.5) per eigenvalue."""
    return 1e-5 if alpha < 1 else 1e-9


# --------------------------------------------------------------------------- numpy oracles


def np_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def np_pair_distances(x: np.ndarray) -> np.ndarray:
    """Off-diagonal (i < j) Euclidean distances of one (N, D) sample matrix, by explicit loops."""
    n = len(x)
    return np.array(
        [np.sqrt(np.sum((x[i] - x[j]) ** 2)) for i in range(n) for j in range(i + 1, n)]
    )


def np_gram(x, kernel="gaussian", sigma=1.0, gamma=1.0, degree=2, coef0=1.0, normalize=True):
    """Gram matrix of one (N, D) sample matrix from the kernel definitions (broadcasting)."""
    x = np.asarray(x, dtype=np.float64)
    if normalize:
        x = np_normalize(x)
    diff = x[:, None, :] - x[None, :, :]
    dot = np.einsum("id,jd->ij", x, x)
    if kernel == "gaussian":
        if sigma == "median":
            sigma = float(np.median(np_pair_distances(x)))
        return np.exp(-np.sum(diff**2, axis=-1) / (2.0 * sigma**2))
    if kernel == "laplacian":
        return np.exp(-gamma * np.sum(np.abs(diff), axis=-1))
    if kernel == "polynomial":
        return (dot + coef0) ** degree
    if kernel == "linear":
        return dot
    raise AssertionError(kernel)


def np_entropy(k: np.ndarray, alpha: float, base: float = 2.0) -> float:
    """Renyi entropy of K / tr K from its eigenvalues."""
    lam = np.clip(np.linalg.eigvalsh(k / np.trace(k)), 0.0, None)
    if alpha == 1.0:
        lam = lam[lam > 0]
        h = -np.sum(lam * np.log(lam))
    else:
        h = np.log(np.sum(lam**alpha)) / (1.0 - alpha)
    return float(h / np.log(base))


def np_mi(kx: np.ndarray, ky: np.ndarray, alpha: float, base: float = 2.0) -> float:
    return (
        np_entropy(kx, alpha, base) + np_entropy(ky, alpha, base) - np_entropy(kx * ky, alpha, base)
    )


def np_renyi_discrete(p: np.ndarray, alpha: float) -> float:
    """Classical Renyi entropy (bits) of a probability vector."""
    p = p[p > 0]
    if alpha == 1.0:
        return float(-np.sum(p * np.log2(p)))
    return float(np.log2(np.sum(p**alpha)) / (1.0 - alpha))


# --------------------------------------------------------------------------- data helpers


def rng_data(seed: int, shape, scale: float = 1.0) -> np.ndarray:
    return scale * np.random.default_rng(seed).standard_normal(shape)


def dependent_pair(seed: int, n: int = 30, d: int = 6, e: int = 4, noise: float = 0.5):
    """x and a noisy linear function of it."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = x @ rng.standard_normal((d, e)) + noise * rng.standard_normal((n, e))
    return x, y


def one_hot(labels, n_classes: int) -> np.ndarray:
    return np.eye(n_classes)[np.asarray(labels)]


# --------------------------------------------------------------------------- gram_matrix


@pytest.mark.parametrize("normalize", [True, False], ids=["l2norm", "raw"])
@pytest.mark.parametrize(("kernel", "kw"), KERNEL_CASES, ids=KERNEL_IDS)
def test_gram_matrix_matches_numpy(kernel, kw, normalize):
    x = rng_data(0, (12, 5), scale=0.6)
    k = gram_matrix(torch.as_tensor(x), kernel, normalize=normalize, **kw)
    assert isinstance(k, torch.Tensor)
    assert k.shape == (12, 12) and k.dtype == torch.float64
    np.testing.assert_allclose(
        k.numpy(), np_gram(x, kernel, normalize=normalize, **kw), rtol=1e-10, atol=1e-12
    )
    np.testing.assert_array_equal(k.numpy(), k.numpy().T)


@pytest.mark.parametrize(("kernel", "kw"), KERNEL_CASES, ids=KERNEL_IDS)
def test_gram_matrix_batched_equals_per_slice(kernel, kw):
    x = torch.as_tensor(rng_data(1, (3, 10, 4)))
    kb = gram_matrix(x, kernel, **kw)
    assert kb.shape == (3, 10, 10)
    for i in range(3):
        torch.testing.assert_close(kb[i], gram_matrix(x[i], kernel, **kw), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            kb[i].numpy(), np_gram(x[i].numpy(), kernel, **kw), rtol=1e-10, atol=1e-12
        )


def test_gram_matrix_per_batch_sigma_tensor():
    x = torch.as_tensor(rng_data(2, (3, 8, 4)))
    sig = torch.tensor([0.3, 1.0, 2.5], dtype=torch.float64)
    kb = gram_matrix(x, "gaussian", sigma=sig)
    for i in range(3):
        np.testing.assert_allclose(
            kb[i].numpy(), np_gram(x[i].numpy(), sigma=float(sig[i])), rtol=1e-10, atol=1e-12
        )


def test_gram_matrix_numpy_input_and_dtype():
    x = rng_data(3, (9, 3))
    k_np = gram_matrix(x, "laplacian", gamma=0.5)
    k_t = gram_matrix(torch.as_tensor(x), "laplacian", gamma=0.5)
    assert isinstance(k_np, np.ndarray)  # numpy in, numpy out
    np.testing.assert_array_equal(k_np, k_t.numpy())
    # float32 input is promoted to float64 by default and kept with dtype=None.
    x32 = x.astype(np.float32)
    assert gram_matrix(x32).dtype == np.float64
    assert gram_matrix(torch.as_tensor(x32), dtype=None).dtype == torch.float32
    assert gram_matrix(x32, dtype=None).dtype == np.float32
    np.testing.assert_allclose(gram_matrix(x32, dtype=None), np_gram(x), rtol=1e-5, atol=1e-6)


def test_gram_matrix_l2_normalisation_makes_it_scale_invariant():
    x = rng_data(4, (10, 6))
    row_scales = np.exp(rng_data(5, (10, 1)))
    for kernel, kw in KERNEL_CASES:
        np.testing.assert_allclose(
            gram_matrix(x * row_scales, kernel, **kw),
            gram_matrix(x, kernel, **kw),
            rtol=1e-10,
            atol=1e-12,
        )
    # Without normalisation the Gaussian Gram does depend on the scale.
    assert not np.allclose(gram_matrix(3 * x, normalize=False), gram_matrix(x, normalize=False))


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("n", [9, 10, 2])  # 36 pairs (even), 45 pairs (odd), 1 pair
def test_median_bandwidth_matches_numpy(n, normalize):
    x = rng_data(6, (n, 4), scale=3.0)
    xo = np_normalize(x) if normalize else x
    expected = float(np.median(np_pair_distances(xo)))
    got = median_bandwidth(x, normalize=normalize)
    assert got.ndim == 0
    assert float(got) == pytest.approx(expected, rel=1e-12)
    # Batched: one bandwidth per batch element.
    xb = np.stack([x, 2 * x + 1, rng_data(7, (n, 4))])
    gb = median_bandwidth(torch.as_tensor(xb), normalize=normalize)
    assert gb.shape == (3,)
    for i in range(3):
        xi = np_normalize(xb[i]) if normalize else xb[i]
        assert float(gb[i]) == pytest.approx(float(np.median(np_pair_distances(xi))), rel=1e-12)


# --------------------------------------------------------------------------- matrix_entropy


@pytest.mark.parametrize("base", [2.0, math.e], ids=["bits", "nats"])
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize(("kernel", "kw"), KERNEL_CASES, ids=KERNEL_IDS)
def test_matrix_entropy_matches_eigvalsh_oracle(kernel, kw, alpha, base):
    x = rng_data(8, (3, 15, 6))
    kb = gram_matrix(x, kernel, **kw)
    hb = matrix_entropy(kb, alpha=alpha, base=base)
    assert hb.shape == (3,)
    for i in range(3):
        expected = np_entropy(np_gram(x[i], kernel, **kw), alpha, base)
        h = matrix_entropy(kb[i], alpha=alpha, base=base)
        assert h.ndim == 0
        assert float(h) == pytest.approx(expected, abs=tol(alpha))
        assert float(hb[i]) == pytest.approx(float(h), abs=tol(alpha))


def test_matrix_entropy_accepts_numpy_and_is_trace_invariant():
    k = np_gram(rng_data(9, (12, 5)))
    h = matrix_entropy(k)
    assert float(h) == pytest.approx(np_entropy(k, 1.0), abs=1e-10)
    assert float(matrix_entropy(7.5 * k)) == pytest.approx(float(h), abs=1e-10)


def test_entropy_base_conversion():
    k = gram_matrix(rng_data(10, (20, 4)))
    for alpha in ALPHAS:
        bits = float(matrix_entropy(k, alpha=alpha, base=2))
        nats = float(matrix_entropy(k, alpha=alpha, base=math.e))
        assert nats == pytest.approx(bits * math.log(2), rel=1e-10)


# --------------------------------------------------------------------------- joint / MI


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize(("kernel", "kw"), KERNEL_CASES, ids=KERNEL_IDS)
def test_joint_entropy_matches_oracle(kernel, kw, alpha):
    x, y = dependent_pair(11, n=14)
    kx, ky = gram_matrix(torch.as_tensor(x), kernel, **kw), gram_matrix(torch.as_tensor(y), kernel, **kw)
    expected = np_entropy(np_gram(x, kernel, **kw) * np_gram(y, kernel, **kw), alpha)
    assert float(joint_entropy(kx, ky, alpha=alpha)) == pytest.approx(expected, abs=tol(alpha))
    # Broadcasting a stack (L, N, N) against one (N, N).
    stack = torch.stack([kx, 2 * kx, ky])
    hj = joint_entropy(stack, ky, alpha=alpha)
    assert hj.shape == (3,)
    assert float(hj[1]) == pytest.approx(expected, abs=tol(alpha))
    assert float(hj[2]) == pytest.approx(
        np_entropy(np_gram(y, kernel, **kw) ** 2, alpha), abs=tol(alpha)
    )


@pytest.mark.parametrize("base", [2.0, math.e], ids=["bits", "nats"])
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize(("kernel", "kw"), KERNEL_CASES, ids=KERNEL_IDS)
def test_mutual_information_matches_oracle(kernel, kw, alpha, base):
    rng = np.random.default_rng(12)
    xs = rng.standard_normal((3, 16, 5))
    y = xs[1] @ rng.standard_normal((5, 3)) + 0.3 * rng.standard_normal((16, 3))
    ky_np = np_gram(y, kernel, **kw)
    expected = [np_mi(np_gram(xs[i], kernel, **kw), ky_np, alpha, base) for i in range(3)]

    single = mutual_information(xs[0], y, alpha=alpha, base=base, kernel=kernel, **kw)
    assert type(single) is float
    assert single == pytest.approx(expected[0], abs=3 * tol(alpha))

    stacked = mutual_information(xs, y, alpha=alpha, base=base, kernel=kernel, **kw)
    assert isinstance(stacked, np.ndarray) and stacked.shape == (3,)  # numpy in, numpy out
    for i in range(3):
        assert float(stacked[i]) == pytest.approx(expected[i], abs=3 * tol(alpha))
        per_layer = mutual_information(xs[i], y, alpha=alpha, base=base, kernel=kernel, **kw)
        assert float(stacked[i]) == pytest.approx(per_layer, abs=tol(alpha))


def test_estimate_information_fields_are_consistent():
    x, y = dependent_pair(13, n=20)
    xs, y = torch.as_tensor(np.stack([x, rng_data(14, x.shape)])), torch.as_tensor(y)
    est = estimate_information(xs, y, alpha=2.0, base=math.e, n_permutations=5, seed=3)
    assert est.mi.shape == (2,) and est.null.shape == (5, 2)
    assert est.entropy_x.shape == (2,) and est.entropy_y.shape == () and est.joint.shape == (2,)
    assert (est.alpha, est.base, est.n_samples) == (2.0, math.e, 20)
    kx, ky = gram_matrix(xs), gram_matrix(y)
    torch.testing.assert_close(est.entropy_x, matrix_entropy(kx, 2.0, math.e))
    torch.testing.assert_close(est.entropy_y, matrix_entropy(ky, 2.0, math.e))
    torch.testing.assert_close(est.joint, joint_entropy(kx, ky, 2.0, math.e))
    torch.testing.assert_close(est.mi, est.entropy_x + est.entropy_y - est.joint)
    torch.testing.assert_close(est.null_mean, est.null.mean(0))
    torch.testing.assert_close(est.null_std, est.null.std(0))
    torch.testing.assert_close(est.corrected, est.mi - est.null.mean(0))
    # The same from precomputed Gram matrices.
    from_grams = information_from_grams(kx, ky, alpha=2.0, base=math.e, n_permutations=5, seed=3)
    torch.testing.assert_close(from_grams.mi, est.mi)
    torch.testing.assert_close(from_grams.null, est.null)
    # Without permutations the null statistics are NaN, not an error.
    est0 = estimate_information(x, y, n_permutations=0)
    assert est0.null.shape == (0,)
    assert math.isnan(float(est0.null_mean)) and math.isnan(float(est0.corrected))


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize(("kernel", "kw"), KERNEL_CASES, ids=KERNEL_IDS)
def test_identical_points_have_zero_entropy(kernel, kw, alpha):
    x = np.tile(rng_data(15, (1, 5)), (8, 1))
    h = float(matrix_entropy(gram_matrix(x, kernel, **kw), alpha=alpha))
    assert h == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("n", [2, 5, 16])
def test_orthonormal_points_with_linear_kernel_give_log_n(n, alpha):
    q, _ = np.linalg.qr(rng_data(16, (20, n)))  # 20 x n, orthonormal columns
    x = q.T  # n orthonormal rows
    k = gram_matrix(x, "linear")
    np.testing.assert_allclose(k, np.eye(n), atol=1e-12)
    assert float(matrix_entropy(k, alpha=alpha)) == pytest.approx(math.log2(n), abs=1e-9)
    assert float(matrix_entropy(k, alpha=alpha, base=math.e)) == pytest.approx(
        math.log(n), abs=1e-9
    )


@pytest.mark.parametrize("alpha", ALPHAS)
def test_one_hot_labels_linear_kernel_entropy_is_renyi_of_class_frequencies(alpha):
    labels = np.array([0] * 7 + [1] * 3 + [2] * 5 + [3] * 1)
    y = one_hot(np.random.default_rng(17).permutation(labels), 4)
    p = np.bincount(labels) / len(labels)
    h = float(matrix_entropy(gram_matrix(y, "linear"), alpha=alpha))
    assert h == pytest.approx(np_renyi_discrete(p, alpha), abs=tol(alpha))


@pytest.mark.parametrize("base", [2.0, math.e, 10.0])
@pytest.mark.parametrize(("kernel", "kw"), KERNEL_CASES, ids=KERNEL_IDS)
def test_entropy_between_zero_and_log_n(kernel, kw, base):
    n = 25
    for seed, scale in [(18, 1.0), (19, 1e-3), (20, 1e3)]:
        k = gram_matrix(rng_data(seed, (n, 7), scale=scale), kernel, **kw)
        for alpha in ALPHAS:
            h = float(matrix_entropy(k, alpha=alpha, base=base))
            assert -tol(alpha) <= h <= math.log(n) / math.log(base) + tol(alpha)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("kernel", ["gaussian", "laplacian"])
def test_mi_bounds_infinitely_divisible(kernel, alpha):
    cases = [
        dependent_pair(21, noise=0.1),
        dependent_pair(22, noise=3.0),
        (rng_data(23, (30, 8)), rng_data(24, (30, 3))),
    ]
    for x, y in cases:
        est = estimate_information(x, y, alpha=alpha, kernel=kernel, n_permutations=0)
        mi = float(est.mi)
        assert mi <= min(float(est.entropy_x), float(est.entropy_y)) + tol(alpha)
        if alpha == 1.0:  # subadditivity only holds for alpha = 1, see the module docstring
            assert mi >= -tol(alpha)


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "linear"])
def test_mi_can_be_negative_for_alpha_not_one(kernel):
    # Samples (x, y) = (0,0), (0,0), (0,1), (1,0): the classical Renyi-2 joint entropy exceeds
    # H_2(X) + H_2(Y) (sum p^2 = 0.375 < 0.625^2), and the matrix estimator inherits it.
    x, y = one_hot([0, 0, 0, 1], 2), one_hot([0, 0, 1, 0], 2)
    assert mutual_information(x, y, alpha=1.0, kernel=kernel) > 0
    assert mutual_information(x, y, alpha=2.0, kernel=kernel) < -0.03
    # Linear kernel on one-hot: exactly the classical values (bits).
    if kernel == "linear":
        h2 = np_renyi_discrete(np.array([0.75, 0.25]), 2.0)
        h2_joint = np_renyi_discrete(np.array([0.5, 0.25, 0.25]), 2.0)
        assert mutual_information(x, y, alpha=2.0, kernel=kernel) == pytest.approx(
            2 * h2 - h2_joint, abs=1e-10
        )


@pytest.mark.parametrize("alpha", ALPHAS)
def test_self_information_equals_entropy_for_discrete_labels(alpha):
    # Linear kernel on one-hot rows: K_ij = [label_i == label_j], so K o K = K and the joint
    # entropy equals the marginal one: I(Y; Y) = H(Y) exactly.
    y = one_hot(np.random.default_rng(25).integers(0, 5, size=40), 5)
    k = gram_matrix(y, "linear")
    torch.testing.assert_close(k * k, k)
    est = estimate_information(y, y, alpha=alpha, kernel="linear", n_permutations=0)
    assert float(est.mi) == pytest.approx(float(est.entropy_y), abs=tol(alpha))
    assert float(est.joint) == pytest.approx(float(est.entropy_y), abs=tol(alpha))


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("sigma", [0.5, 1.0])
def test_gaussian_self_information_is_below_entropy(alpha, sigma):
    # For the Gaussian kernel K_sigma o K_sigma = K_{sigma / sqrt 2}, a sharper kernel with a
    # larger entropy, so I(X; X) = 2 S(K_sigma) - S(K_{sigma/sqrt2}) < S(K_sigma) = H(X).
    x = rng_data(26, (25, 6))
    k = gram_matrix(x, sigma=sigma)
    k_half = gram_matrix(x, sigma=sigma / math.sqrt(2))
    torch.testing.assert_close(k * k, k_half, rtol=1e-10, atol=1e-12)
    h, h_half = float(matrix_entropy(k, alpha)), float(matrix_entropy(k_half, alpha))
    mi = mutual_information(x, x, alpha=alpha, sigma=sigma)
    assert mi == pytest.approx(2 * h - h_half, abs=tol(alpha))
    assert 0 < mi < h - 1e-3


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize(("kernel", "kw"), KERNEL_CASES, ids=KERNEL_IDS)
def test_mi_is_symmetric(kernel, kw, alpha):
    x, y = dependent_pair(27)
    a = mutual_information(x, y, alpha=alpha, kernel=kernel, **kw)
    b = mutual_information(y, x, alpha=alpha, kernel=kernel, **kw)
    assert a == pytest.approx(b, abs=tol(alpha))


@pytest.mark.parametrize(("kernel", "kw"), KERNEL_CASES, ids=KERNEL_IDS)
def test_joint_sample_permutation_invariance(kernel, kw):
    x, y = dependent_pair(28, noise=0.2)
    perm = np.random.default_rng(29).permutation(len(x))
    for alpha in ALPHAS:
        a = estimate_information(x, y, alpha=alpha, kernel=kernel, n_permutations=0, **kw)
        b = estimate_information(
            x[perm], y[perm], alpha=alpha, kernel=kernel, n_permutations=0, **kw
        )
        for f in ("mi", "entropy_x", "entropy_y", "joint"):
            assert float(getattr(b, f)) == pytest.approx(float(getattr(a, f)), abs=tol(alpha))
    # Permuting y alone breaks the pairing and changes the MI (so the check above can fail).
    assert (
        abs(
            mutual_information(x, y[perm], kernel=kernel, **kw)
            - mutual_information(x, y, kernel=kernel, **kw)
        )
        > 1e-3
    )


def test_alpha_to_one_continuity_and_monotonicity():
    x, y = dependent_pair(30)
    k = gram_matrix(x)
    h1 = float(matrix_entropy(k, 1.0))
    assert float(matrix_entropy(k, 1.001)) == pytest.approx(h1, abs=5e-3)
    assert float(matrix_entropy(k, 0.999)) == pytest.approx(h1, abs=5e-3)
    assert float(matrix_entropy(k, 0.999)) > h1 > float(matrix_entropy(k, 1.001))
    # Renyi entropy is non-increasing in alpha.
    hs = [float(matrix_entropy(k, a)) for a in (0.5, 0.999, 1.0, 1.001, 1.01, 2.0, 3.0)]
    assert all(a >= b for a, b in zip(hs, hs[1:], strict=False))
    mi1 = mutual_information(x, y, alpha=1.0)
    assert mutual_information(x, y, alpha=1.001) == pytest.approx(mi1, abs=5e-3)


# --------------------------------------------------------------------------- hypothesis


@st.composite
def sample_pairs(draw):
    n = draw(st.integers(2, 40))
    d = draw(st.integers(1, 20))
    e = draw(st.integers(1, 20))
    seed = draw(st.integers(0, 2**31 - 1))
    sx = 10.0 ** draw(st.floats(-3, 3))
    sy = 10.0 ** draw(st.floats(-3, 3))
    mix = draw(st.floats(0, 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = mix * (x @ rng.standard_normal((d, e))) + (1 - mix) * rng.standard_normal((n, e))
    return sx * x, sy * y, rng.permutation(n)


HYP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KERNEL_CHOICE = st.sampled_from(
    [
        ("gaussian", True),
        ("gaussian", False),
        ("laplacian", True),
        ("laplacian", False),
        ("polynomial", True),
        ("linear", True),
    ]
)


@HYP
@given(
    data=sample_pairs(),
    kernel=KERNEL_CHOICE,
    alpha=st.sampled_from([0.5, 0.9, 1.0, 1.01, 2.0, 3.0]),
)
def test_property_bounds_and_finiteness(data, kernel, alpha):
    x, y, _ = data
    kernel, normalize = kernel
    est = estimate_information(
        x, y, alpha=alpha, kernel=kernel, normalize=normalize, n_permutations=0
    )
    n = x.shape[0]
    vals = np.array([est.mi, est.entropy_x, est.entropy_y, est.joint])
    assert bool(np.isfinite(vals).all())
    t = 3 * tol(alpha)
    for h in (est.entropy_x, est.entropy_y, est.joint):
        assert -t <= float(h) <= math.log2(n) + t
    # Upper bound: constant-diagonal PSD kernels (all kernels here, see the module docstring).
    assert float(est.mi) <= min(float(est.entropy_x), float(est.entropy_y)) + t
    assert float(est.joint) >= max(float(est.entropy_x), float(est.entropy_y)) - t
    if alpha == 1.0 and kernel in ("gaussian", "laplacian"):
        assert float(est.mi) >= -t


@HYP
@given(data=sample_pairs(), kernel=KERNEL_CHOICE, alpha=st.sampled_from([0.5, 1.0, 2.0]))
def test_property_joint_permutation_invariance(data, kernel, alpha):
    x, y, perm = data
    kernel, normalize = kernel
    a = mutual_information(x, y, alpha=alpha, kernel=kernel, normalize=normalize)
    b = mutual_information(x[perm], y[perm], alpha=alpha, kernel=kernel, normalize=normalize)
    assert math.isfinite(a)
    assert b == pytest.approx(a, abs=3 * tol(alpha))


# --------------------------------------------------------------------------- permutation null


def test_null_shapes_and_equals_shuffling_by_hand():
    x, y = dependent_pair(31, n=24)
    xs = np.stack([x, rng_data(32, x.shape), x + 0.5 * rng_data(33, x.shape)])
    p, seed = 6, 7
    perms = permutations(24, p, seed)
    assert perms.shape == (p, 24)
    for row in perms:
        assert sorted(row.tolist()) == list(range(24))

    null1 = mutual_information_null(x, y, n_permutations=p, seed=seed, alpha=2.0)
    assert null1.shape == (p,)
    null3 = mutual_information_null(xs, y, n_permutations=p, seed=seed)
    assert null3.shape == (p, 3)
    est = estimate_information(xs, y, n_permutations=p, seed=seed)
    torch.testing.assert_close(est.null, null3)
    for i, perm in enumerate(perms.numpy()):
        assert float(null1[i]) == pytest.approx(
            mutual_information(x, y[perm], alpha=2.0), abs=1e-10
        )
        by_hand = mutual_information(xs, y[perm])
        torch.testing.assert_close(null3[i], by_hand, rtol=0, atol=1e-10)


def test_null_seed_reproducibility():
    x, y = dependent_pair(34, n=30)
    a = mutual_information_null(x, y, n_permutations=5, seed=1)
    b = mutual_information_null(x, y, n_permutations=5, seed=1)
    c = mutual_information_null(x, y, n_permutations=5, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert torch.equal(permutations(30, 5, 1), permutations(30, 5, 1))
    assert not torch.equal(permutations(30, 5, 1), permutations(30, 5, 2))


def _classes(seed: int, n: int = 100, n_classes: int = 13):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, n - n_classes)])
    return rng.permutation(labels), rng


def test_null_correction_removes_bias_for_independent_y():
    labels, rng = _classes(35)
    y = one_hot(labels, 13)
    x = rng.standard_normal((100, 128))  # independent of y
    est = estimate_information(x, y, n_permutations=20, seed=0)
    assert float(est.mi) > 1.0  # the raw estimator is strongly biased (about 2 bits here)
    assert abs(float(est.corrected)) < 0.1


def test_null_correction_keeps_real_dependence():
    labels, rng = _classes(36)
    y = one_hot(labels, 13)
    means = rng.standard_normal((13, 128))
    x = means[labels] + 0.3 * rng.standard_normal((100, 128))  # y is a function of x
    est = estimate_information(x, y, n_permutations=20, seed=0)
    assert float(est.corrected) > 0.5
    assert float(est.mi) > float(est.null.max())


# --------------------------------------------------------------------------- validation


def test_validation_errors():
    x, y = dependent_pair(37, n=10)
    k = gram_matrix(x)
    bad = x.copy()
    bad[3, 1] = np.nan
    inf = x.copy()
    inf[0, 0] = np.inf

    with pytest.raises(ValueError, match="rank"):
        gram_matrix(x[:, 0])
    with pytest.raises(ValueError, match="rank"):
        mutual_information(np.zeros((2, 2, 10, 3)) + 1, y)
    with pytest.raises(ValueError, match=r"y must have shape.*Reshape"):
        mutual_information(x, y[:, 0])
    with pytest.raises(ValueError, match="at least 2"):
        gram_matrix(x[:1])
    with pytest.raises(ValueError, match="at least 2"):
        mutual_information(x[:1], y[:1])
    with pytest.raises(ValueError, match="at least 2"):
        matrix_entropy(np.ones((1, 1)))
    with pytest.raises(ValueError, match="square"):
        matrix_entropy(np.ones((3, 4)))
    with pytest.raises(ValueError, match="NaN/inf"):
        gram_matrix(bad)
    with pytest.raises(ValueError, match="NaN/inf"):
        mutual_information(x, inf[:, :4])
    with pytest.raises(ValueError, match="NaN/inf"):
        matrix_entropy(k * np.where(np.eye(10) > 0, np.nan, 1.0))
    with pytest.raises(ValueError, match=r"x has N=10 samples but y has N=9"):
        mutual_information(x, y[:9])
    with pytest.raises(ValueError, match="same N"):
        joint_entropy(k, k[:9, :9])
    with pytest.raises(ValueError, match="different sample counts"):
        information_from_grams(k, k[:9, :9])
    for alpha in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="alpha must be"):
            matrix_entropy(k, alpha=alpha)
        with pytest.raises(ValueError, match="alpha must be"):
            mutual_information(x, y, alpha=alpha)
    with pytest.raises(ValueError, match="unknown kernel 'rbf'"):
        gram_matrix(x, "rbf")
    with pytest.raises(ValueError, match="unknown kernel"):
        mutual_information(x, y, kernel="cosine")
    for sigma in (0.0, -1.0, float("nan"), "mean"):
        with pytest.raises(ValueError, match="sigma must be"):
            gram_matrix(x, sigma=sigma)
    with pytest.raises(ValueError, match="sigma must be"):
        gram_matrix(np.stack([x, x]), sigma=torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="gamma"):
        gram_matrix(x, "laplacian", gamma=0.0)
    for degree in (0, 1.5):
        with pytest.raises(ValueError, match="degree"):
            gram_matrix(x, "polynomial", degree=degree)
    for base in (1, 1.0, 0, -2.0):
        with pytest.raises(ValueError, match="base must be"):
            matrix_entropy(k, base=base)
        with pytest.raises(ValueError, match="base must be"):
            mutual_information(x, y, base=base)
    with pytest.raises(ValueError, match="n_permutations must be >= 1"):
        mutual_information_null(x, y, n_permutations=0)
    with pytest.raises(ValueError, match="n_permutations must be >= 0"):
        estimate_information(x, y, n_permutations=-1)
    with pytest.raises(ValueError, match="ky must be one"):
        information_from_grams(k, np.stack([k, k]))
    with pytest.raises(ValueError, match="trace <= 0"):
        matrix_entropy(gram_matrix(np.zeros((4, 3)), "linear"))
    with pytest.raises(TypeError, match="numpy array"):
        gram_matrix("not an array")


# --------------------------------------------------------------------------- CUDA


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    x, y = dependent_pair(38, n=40, d=16)
    xs = torch.as_tensor(np.stack([x, rng_data(39, x.shape)]))
    yt = torch.as_tensor(y)
    for kernel, kw in KERNEL_CASES:
        kc = gram_matrix(xs, kernel, **kw)
        kg = gram_matrix(xs.cuda(), kernel, **kw)
        assert kg.is_cuda
        torch.testing.assert_close(kg.cpu(), kc, rtol=1e-9, atol=1e-11)
        for alpha in ALPHAS:
            torch.testing.assert_close(
                matrix_entropy(kg, alpha).cpu(), matrix_entropy(kc, alpha), rtol=0, atol=tol(alpha)
            )
    for kernel, kw in KERNEL_CASES:
        ec = estimate_information(xs, yt, kernel=kernel, n_permutations=4, seed=5, **kw)
        eg = estimate_information(
            xs.cuda(), yt.cuda(), kernel=kernel, n_permutations=4, seed=5, **kw
        )
        assert eg.mi.is_cuda and eg.null.is_cuda
        torch.testing.assert_close(eg.mi.cpu(), ec.mi, rtol=0, atol=1e-8)
        torch.testing.assert_close(eg.null.cpu(), ec.null, rtol=0, atol=1e-8)


def test_median_bandwidth_of_collapsed_states_does_not_invent_information():
    # Every sample has the same state (layer 0 at a fixed query token): no information,
    # whatever the bandwidth rule. A near-zero median must not make the points "distinct".
    x = np.tile(rng_data(1, (1, 16)), (30, 1)) + 1e-13 * rng_data(2, (30, 16))
    y = one_hot(np.arange(30) % 5, 5)
    assert float(median_bandwidth(torch.as_tensor(x))) == 1.0
    assert abs(mutual_information(x, y, sigma="median")) < 1e-9
    # Mostly identical points with a few outliers: the mean distance is used.
    x2 = x.copy()
    x2[:3] = rng_data(3, (3, 16))
    bw = float(median_bandwidth(torch.as_tensor(x2)))
    assert 0.0 < bw < 1.0
