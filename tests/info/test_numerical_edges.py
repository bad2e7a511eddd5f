"""Numerical edges of the estimators, each against an independent computation.

- l2_normalize / gram_matrix / the MI at row norms from 1e-300 to 1e300 (numpy on rescaled
  copies; exact hand values);
- Renyi entropy for alpha within 1e-3 .. 1e-15 of 1 against a 60-digit mpmath reference;
- prompt_entropy(clamp_negative=True) against a numpy transcription of the reference
  compute_entropy, for T > D and T < D;
- infonce(loss="nt_xent") against a double loop over anchors and negatives.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch

from inforidge.info import (
    entropy_from_spectrum,
    gram_matrix,
    infonce,
    l2_normalize,
    matrix_entropy,
    median_bandwidth,
    mutual_information,
    prompt_entropy,
)

SCALES = (1e-300, 1e-200, 1e-160, 1e-20, 1e-13, 1e-12, 1.0, 1e12, 1e154, 1e200, 1e300)


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- scale-free normalisation


def test_l2_normalize_is_bitwise_the_plain_formula_in_the_ordinary_range():
    x = torch.as_tensor(rng(1).normal(size=(3, 40, 17)))
    x[0, 3] *= 1e-5
    x[1, 7] *= 1e6
    torch.testing.assert_close(l2_normalize(x), x / x.norm(dim=-1, keepdim=True), rtol=0, atol=0)
    x32 = x.float()
    torch.testing.assert_close(l2_normalize(x32), x32 / x32.norm(dim=-1, keepdim=True), rtol=0, atol=0)


@pytest.mark.parametrize("scale", SCALES + (1e-310, 1e307))
def test_l2_normalize_gives_unit_rows_at_every_scale(scale):
    x = rng(2).normal(size=(9, 6))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)  # at scale 1: the independent answer
    got = l2_normalize(torch.as_tensor(x) * scale).numpy()
    # x * scale is rounded (and subnormal at 1e-310), so compare to what it represents
    tol = 1e-15 if scale > 1e-300 else 1e-9
    np.testing.assert_allclose(got, unit, rtol=0, atol=tol)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=0, atol=tol)


def test_l2_normalize_zero_rows_stay_zero_and_rows_are_independent():
    x = torch.tensor([[0.0, 0.0, 0.0], [3e-300, 4e-300, 0.0], [0.0, 3e300, 4e300], [-6.0, 8.0, 0.0]],
                     dtype=torch.float64)
    want = torch.tensor([[0, 0, 0], [0.6, 0.8, 0], [0, 0.6, 0.8], [-0.6, 0.8, 0]], dtype=torch.float64)
    torch.testing.assert_close(l2_normalize(x), want, rtol=0, atol=2e-16)


@pytest.mark.parametrize("scale", SCALES)
def test_information_and_grams_are_scale_free(scale):
    r = rng(3)
    x = r.normal(size=(24, 8))
    y = x[:, :3] + 0.3 * r.normal(size=(24, 3))
    want = mutual_information(x, y)
    assert want > 1.0  # a real dependence, not a degenerate 0
    assert mutual_information(x * scale, y) == pytest.approx(want, abs=1e-12)
    assert mutual_information(x, y * scale) == pytest.approx(want, abs=1e-12)
    np.testing.assert_allclose(gram_matrix(x * scale, "laplacian"),
                               gram_matrix(x, "laplacian"), rtol=0, atol=1e-13)
    assert float(median_bandwidth(x * scale)) == pytest.approx(float(median_bandwidth(x)), rel=1e-13)


def test_information_with_rows_of_mixed_scales():
    # Each sample at its own magnitude: normalisation removes all of it.
    r = rng(4)
    x = r.normal(size=(16, 5))
    y = x[:, :2] + 0.2 * r.normal(size=(16, 2))
    mags = 10.0 ** r.uniform(-300, 300, size=(16, 1))
    assert mutual_information(x * mags, y) == pytest.approx(mutual_information(x, y), abs=1e-12)


# ---------------------------------------------------------------- Renyi order near 1

mpmath.mp.dps = 60


def mp_renyi_bits(lam, alpha) -> float:
    """60-digit S_alpha of the float spectrum lam, renormalised exactly, zeros dropped."""
    p = [mpmath.mpf(float(v)) for v in lam if float(v) > 0]
    s = mpmath.fsum(p)
    p = [v / s for v in p]
    a = mpmath.mpf(alpha)  # the float alpha, exactly
    if a == 1:
        h = -mpmath.fsum(v * mpmath.log(v) for v in p)
    else:
        h = mpmath.log(mpmath.fsum(v**a for v in p)) / (1 - a)
    return float(h / mpmath.log(2))


def spectra():
    r = rng(5)
    flat = np.full(64, 1 / 64)
    geometric = 0.5 ** np.arange(1, 40)
    geometric[-1] *= 2  # sums to 1 exactly
    with_zeros = np.concatenate([r.dirichlet(np.ones(10)), np.zeros(6)])
    wide = 10.0 ** r.uniform(-12, 0, size=200)
    wide /= wide.sum()
    gram = r.normal(size=(30, 5))
    lam_gram = np.linalg.eigvalsh(gram @ gram.T)  # 25 round-off "zeros", some negative
    lam_gram /= lam_gram.sum()
    return {"flat": flat, "geometric": geometric, "with_zeros": with_zeros, "wide": wide,
            "gram_rank5": lam_gram}


NEAR_ONE = [1 + s * d for d in (1e-3, 1e-5, 1e-7, 1e-9, 1e-11, 1e-12, 1e-13, 1e-14, 1e-15)
            for s in (1, -1)]


@pytest.mark.parametrize("name", sorted(spectra()))
def test_renyi_near_alpha_one_matches_high_precision(name):
    lam = spectra()[name]
    t = torch.as_tensor(lam)
    # the estimator drops eigenvalues below N eps max (round-off zeros): so does the reference
    tol_lam = len(lam) * np.finfo(float).eps * lam.max()
    ref_lam = np.where(lam > tol_lam, lam, 0.0)
    for alpha in NEAR_ONE + [0.5, 0.74, 0.76, 1.24, 1.26, 2.0, 3.0]:
        got = float(entropy_from_spectrum(t, alpha))
        assert got == pytest.approx(mp_renyi_bits(ref_lam, alpha), abs=1e-10), alpha
    assert float(entropy_from_spectrum(t, 1.0)) == pytest.approx(mp_renyi_bits(ref_lam, 1.0), abs=1e-12)


def test_renyi_alpha_one_is_unchanged_and_the_limit_is_continuous():
    lam = torch.as_tensor(spectra()["with_zeros"])
    vn = -torch.special.xlogy(lam, lam).sum() / math.log(2)
    assert float(entropy_from_spectrum(lam, 1.0)) == float(vn)  # exactly the von Neumann form
    for d in (1e-15, 1e-12, 1e-9):
        for a in (1 + d, 1 - d):
            assert float(entropy_from_spectrum(lam, a)) == pytest.approx(float(vn), abs=5 * d + 1e-13)


def test_matrix_entropy_near_alpha_one_on_a_gram():
    x = rng(6).normal(size=(20, 4))
    k = gram_matrix(x)
    lam = np.linalg.eigvalsh(k) / np.trace(k)
    tol_lam = len(lam) * np.finfo(float).eps * lam.max()
    lam = np.where(lam > tol_lam, lam, 0.0)
    for alpha in (1 + 1e-14, 1 - 1e-14, 1 + 1e-8):
        # the eigensolver itself differs from numpy's by ~1e-15 per eigenvalue
        assert float(matrix_entropy(k, alpha)) == pytest.approx(mp_renyi_bits(lam, alpha), abs=1e-10)


# ---------------------------------------------------------------- prompt entropy, clamped


def np_reference_clamped_entropy(z, alpha=1.0, base=2.0, smaller=True, use_cov=None):
    """numpy transcription of the reference compute_entropy on one prompt's (T, D) states."""
    z = np.asarray(z, dtype=np.float64)
    z = z - z.mean(0)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    t, d = z.shape
    cov = (t > d) if use_cov is None else use_cov
    k = z.T @ z if cov else z @ z.T
    k = np.clip(k, 0.0, None)
    k = k / np.trace(k)
    lam = np.linalg.eigvalsh(k)
    lam = lam[lam > 0]
    lam = lam / lam.sum()
    if alpha == 1.0:
        h = -(lam * np.log(lam)).sum()
    else:
        h = np.log((lam**alpha).sum()) / (1.0 - alpha)
    return h / math.log(base)


@pytest.mark.parametrize("t,d", [(25, 6), (6, 25), (12, 12)])
def test_prompt_entropy_clamp_follows_the_reference_choice_of_gram(t, d):
    z = rng(7).normal(size=(t, d)) + 0.2
    for alpha in (1.0, 2.0, 0.5):
        got = float(prompt_entropy(z, alpha=alpha, clamp_negative=True).raw)
        assert got == pytest.approx(np_reference_clamped_entropy(z, alpha), rel=1e-10), alpha
        # method pins either Gram explicitly
        for method, cov in (("gram", False), ("covariance", True)):
            got = float(prompt_entropy(z, alpha=alpha, clamp_negative=True, method=method).raw)
            want = np_reference_clamped_entropy(z, alpha, use_cov=cov)
            assert got == pytest.approx(want, rel=1e-10), (alpha, method)
    # the two choices really differ (so the test pins one of them)
    g = float(prompt_entropy(z, clamp_negative=True, method="gram").raw)
    c = float(prompt_entropy(z, clamp_negative=True, method="covariance").raw)
    assert abs(g - c) > 1e-2


def test_prompt_entropy_clamp_chooses_per_prompt_in_a_masked_batch():
    r = rng(8)
    d, t_max = 6, 14
    lengths = [14, 4, 9, 6, 7]  # T > D, T < D, T > D, T = D, T > D
    z = r.normal(size=(len(lengths), t_max, d))
    mask = np.zeros((len(lengths), t_max), dtype=bool)
    for i, n in enumerate(lengths):
        mask[i, t_max - n:] = True  # left padding
    z[~mask] = np.nan
    got = prompt_entropy(z, mask, clamp_negative=True).raw
    for i, n in enumerate(lengths):
        want = np_reference_clamped_entropy(z[i][mask[i]])
        assert float(got[i]) == pytest.approx(want, rel=1e-10), n


def test_prompt_entropy_clamp_single_feature_is_zero():
    # D = 1 < T: the reference's 1 x 1 "covariance" has one eigenvalue
    z = rng(9).normal(size=(5, 1))
    assert float(prompt_entropy(z, clamp_negative=True, center=False).raw) == 0.0


# ---------------------------------------------------------------- NT-Xent


def loop_nt_xent(a, b, tau):
    """NT-Xent by a double loop: 2N anchors, each with 2N - 2 negatives."""
    u = np.concatenate([a, b])
    n2 = len(u)
    total = 0.0
    for k in range(n2):
        pos = (k + n2 // 2) % n2
        denom = 0.0
        for m in range(n2):
            if m != k:
                denom += math.exp(float(u[k] @ u[m]) / tau)
        total += -(float(u[k] @ u[pos]) / tau - math.log(denom))
    return total / n2


def loop_infonce(a, b, tau):
    total = 0.0
    for i in range(len(a)):
        denom = sum(math.exp(float(a[i] @ b[j]) / tau) for j in range(len(b)))
        total += -(float(a[i] @ b[i]) / tau - math.log(denom))
    return total / len(a)


def prep(x):
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(0)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_nt_xent_matches_a_double_loop_and_differs_from_the_two_way_average():
    r = rng(10)
    a = r.normal(size=(12, 7))
    b = a + 0.8 * r.normal(size=a.shape)
    pa, pb = prep(a), prep(b)
    for tau in (0.1, 0.5, 1.0):
        got = float(infonce(a, b, tau, loss="nt_xent"))
        assert got == pytest.approx(loop_nt_xent(pa, pb, tau), rel=1e-12), tau
        # the default and symmetric=True keep their meaning (one / two directions, N - 1 negatives)
        assert float(infonce(a, b, tau)) == pytest.approx(loop_infonce(pa, pb, tau), rel=1e-12)
        two_way = 0.5 * (loop_infonce(pa, pb, tau) + loop_infonce(pb, pa, tau))
        assert float(infonce(a, b, tau, symmetric=True)) == pytest.approx(two_way, rel=1e-12)
        assert abs(got - two_way) > 1e-3  # the negatives of the own view count


def test_nt_xent_hand_value_and_argument_checks():
    # orthonormal identical views, no centring: positive logit 1/tau, the other 2N - 2 are 0
    n, tau = 5, 0.2
    z = np.eye(n)
    want = -(1 / tau - math.log(math.exp(1 / tau) + 2 * n - 2))
    assert float(infonce(z, z, tau, center=False, loss="nt_xent")) == pytest.approx(want, rel=1e-13)
    with pytest.raises(ValueError, match="symmetric"):
        infonce(z, z, loss="nt_xent", symmetric=True)
    with pytest.raises(ValueError, match="loss must be"):
        infonce(z, z, loss="simclr")


# ---------------------------------------------------------------- median bandwidth without normalisation


def np_median_distance(x):
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    return float(np.median(d[np.triu_indices(len(x), 1)]))


@pytest.mark.parametrize("scale", SCALES)
def test_median_bandwidth_unnormalised_scales_with_the_data(scale):
    x = rng(11).normal(size=(15, 4)) * 2.0
    want = np_median_distance(x)
    assert float(median_bandwidth(x * scale, normalize=False)) == pytest.approx(want * scale, rel=1e-13)
    np.testing.assert_allclose(gram_matrix(x * scale, sigma="median", normalize=False),
                               gram_matrix(x, sigma="median", normalize=False), rtol=0, atol=1e-13)


def test_median_bandwidth_collapsed_threshold_is_relative():
    r = rng(12)
    # distinct points at scale 1e-10: a real spread, not a collapsed set (was: fell back to 1)
    x = r.normal(size=(10, 3)) * 1e-10
    assert float(median_bandwidth(x, normalize=False)) == pytest.approx(np_median_distance(x), rel=1e-13)
    # a collapsed set at scale 1e10 (round-off spread 1e-7 relative) falls back to its row norm
    c = np.ones((10, 3)) * 1e10 + r.normal(size=(10, 3)) * 1e-3
    r_max = float(np.linalg.norm(c, axis=1).max())
    assert float(median_bandwidth(c, normalize=False)) == pytest.approx(r_max, rel=1e-13)
    assert float(median_bandwidth(np.zeros((4, 2)), normalize=False)) == 1.0


@pytest.mark.parametrize("scale", (1e-300, 1e-10, 1e200))
def test_sequence_gram_median_unnormalised_is_scale_free(scale):
    from inforidge.info import sequence_gram
    from inforidge.info.sequence_kernel import sequence_gram_reference

    r = rng(13)
    emb = r.normal(size=(6, 4, 5))
    mask = np.ones((6, 4), dtype=bool)
    mask[1, 2:] = mask[4, 1:] = False
    want = sequence_gram(emb, mask, sigma="median", normalize=False)
    # independent: the double loop at scale 1 with the numpy median of the valid tokens
    sigma = np_median_distance(emb[mask])
    ref = sequence_gram_reference(emb, mask, sigma=sigma, normalize=False)
    np.testing.assert_allclose(want, ref.numpy(), rtol=0, atol=1e-12)
    got = sequence_gram(emb * scale, mask, sigma="median", normalize=False)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- layer metrics at any magnitude


def np_gram_entropy_bits(z):
    lam = np.linalg.eigvalsh(z @ z.T)
    lam = np.clip(lam, 0, None) / np.clip(lam, 0, None).sum()
    lam = lam[lam > len(lam) * np.finfo(float).eps * lam.max()]
    return float(-(lam * np.log2(lam)).sum())


@pytest.mark.parametrize("scale", SCALES)
def test_layer_metrics_are_scale_free(scale):
    from inforidge.info import curvature, dataset_entropy, dime, effective_rank, lidar

    r = rng(14)
    z = r.normal(size=(12, 5))
    z2 = z + 0.5 * r.normal(size=z.shape)
    za = np.stack([z, z2], 1)
    # independent values at scale 1 (numpy), then every metric at scale vs scale 1
    assert float(prompt_entropy(z * scale).raw) == pytest.approx(np_gram_entropy_bits(prep(z)), abs=1e-12)
    assert float(dataset_entropy(z * scale, center=False, unit_norm=False)) == pytest.approx(
        np_gram_entropy_bits(z), abs=1e-12)
    for f in (lambda s: prompt_entropy(z * s, clamp_negative=True).raw,
              lambda s: dataset_entropy(z * s, alpha=0.5),
              lambda s: effective_rank(z * s, center=True),
              lambda s: curvature(z * s),
              lambda s: infonce(z * s, z2 * s),
              lambda s: lidar(za * s),
              lambda s: dime(z * s, z2 * s),
              lambda s: dime(z * s, z2 * s, center=False, unit_norm=False)):
        assert float(f(scale)) == pytest.approx(float(f(1.0)), abs=1e-12)
    # without unit_norm the centred states keep their units (infonce logits depend on them)
    assert float(infonce(z * 0.5, z2 * 0.5, unit_norm=False)) == pytest.approx(
        loop_infonce((z - z.mean(0)) * 0.5, (z2 - z2.mean(0)) * 0.5, 0.1), rel=1e-12)


@pytest.mark.parametrize("scale", (1e-300, 1e-170, 1e160, 1e300))
def test_gaussian_gram_unnormalised_fixed_sigma_at_extreme_magnitudes(scale):
    # sigma = 1 in the data's units: tiny data -> all ones; huge data -> 1 only on equal rows
    x = rng(15).normal(size=(7, 3))
    x[6] = x[5]
    k = gram_matrix(x * scale, normalize=False)
    if scale < 1:
        want = np.ones((7, 7))
    else:
        want = np.eye(7)
        want[5, 6] = want[6, 5] = 1.0
    np.testing.assert_array_equal(k, want)


def test_gaussian_gram_unnormalised_matches_numpy_in_the_ordinary_range():
    x = rng(16).normal(size=(2, 9, 4)) * 3
    for sigma in (0.5, 2.0):
        d2 = ((x[:, :, None, :] - x[:, None, :, :]) ** 2).sum(-1)
        np.testing.assert_allclose(gram_matrix(x, sigma=sigma, normalize=False),
                                   np.exp(-d2 / (2 * sigma**2)), rtol=1e-12, atol=1e-14)
