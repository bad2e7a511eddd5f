"""Layer-by-Layer metrics (METHOD §7) against hand-computed values and independent numpy code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from inforidge.info import (
    PromptEntropy,
    curvature,
    dataset_entropy,
    dime,
    effective_rank,
    infonce,
    lidar,
    prompt_entropy,
)
from inforidge.info.entropy import permutations

LOG2 = math.log(2.0)


# ---------------------------------------------------------------- independent numpy references


def np_prep(x, center=True, unit=True):
    x = np.asarray(x, dtype=np.float64)
    if center:
        x = x - x.mean(0)
    if unit:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x


def np_spectrum_entropy(lam, alpha, base=2.0):
    lam = np.clip(np.asarray(lam, dtype=np.float64), 0.0, None)
    lam = lam / lam.sum()
    if alpha == 1.0:
        nz = lam[lam > 0]
        h = -(nz * np.log(nz)).sum()
    else:
        h = np.log((lam**alpha).sum()) / (1.0 - alpha)
    return h / math.log(base)


def np_gram_entropy(x, alpha=1.0, base=2.0):
    return np_spectrum_entropy(np.linalg.eigvalsh(x @ x.T), alpha, base)


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- curvature


def test_curvature_straight_line_is_zero():
    r = rng(1)
    u, z0 = r.normal(size=7), r.normal(size=7)
    steps = np.cumsum(r.uniform(0.1, 3.0, size=12))  # uneven speed, same direction
    z = z0 + steps[:, None] * u
    assert float(curvature(z)) == pytest.approx(0.0, abs=1e-9)


def test_curvature_right_angle_zigzag_is_half_pi():
    # steps alternate (1, 0) and (0, 2): every turn is 90 degrees
    steps = np.array([[1.0, 0.0], [0.0, 2.0]] * 5)
    z = np.vstack([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    assert float(curvature(z)) == pytest.approx(math.pi / 2, abs=1e-12)


def test_curvature_reversal_paper_vs_reference_absolute():
    # back and forth along a line: the paper's angle is pi, the reference's arccos|cos| is 0
    z = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    assert float(curvature(z)) == pytest.approx(math.pi, abs=1e-12)
    assert float(curvature(z, absolute=True)) == pytest.approx(0.0, abs=1e-12)


def np_curvature(z):
    v = np.diff(np.asarray(z, dtype=np.float64), axis=0)
    cos = [
        v[k + 1] @ v[k] / (np.linalg.norm(v[k + 1]) * np.linalg.norm(v[k]))
        for k in range(len(v) - 1)
    ]
    return float(np.mean(np.arccos(np.clip(cos, -1, 1))))


def test_curvature_matches_numpy_and_mask_drops_padding():
    r = rng(2)
    lengths, t_max, d = [4, 9, 6], 9, 5
    prompts = [r.normal(size=(t, d)) for t in lengths]
    z = np.full((3, t_max, d), np.nan)  # garbage in the padding
    mask = np.zeros((3, t_max), dtype=np.int64)
    z[0, -4:], mask[0, -4:] = prompts[0], 1  # left padding
    z[1], mask[1] = prompts[1], 1
    z[2, :6], mask[2, :6] = prompts[2], 1  # right padding
    z[2, 6:] = 1e30
    got = curvature(z, mask)
    assert got.shape == (3,)
    for i, p in enumerate(prompts):
        assert float(got[i]) == pytest.approx(np_curvature(p), abs=1e-10)
        assert float(curvature(p)) == pytest.approx(np_curvature(p), abs=1e-10)


def test_curvature_skips_zero_length_steps_and_nan_without_angles():
    # a repeated token makes one zero step; the remaining angle is the right angle
    z = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    # angles: (v1=0, v0) undefined, (v2, v1=0) undefined -> no angle at all
    assert math.isnan(float(curvature(z)))
    z = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    assert float(curvature(z)) == pytest.approx(math.pi / 2)


# ---------------------------------------------------------------- effective rank


def test_effective_rank_of_k_orthogonal_equal_norm_vectors_is_k():
    r = rng(3)
    for k in (1, 2, 5):
        q, _ = np.linalg.qr(r.normal(size=(8, k)))
        z = 3.0 * q.T  # k orthogonal rows of norm 3 in R^8
        assert float(effective_rank(z)) == pytest.approx(k, rel=1e-12)


def test_effective_rank_of_rank_one_matrix_is_one():
    r = rng(4)
    z = np.outer(r.normal(size=6), r.normal(size=9))
    assert float(effective_rank(z)) == pytest.approx(1.0, abs=1e-9)


def test_effective_rank_matches_numpy_svd_and_batches():
    r = rng(5)
    z = r.normal(size=(3, 10, 4)) * np.array([5.0, 2.0, 1.0, 0.1])
    got = effective_rank(z)
    for i in range(3):
        s = np.linalg.svd(z[i], compute_uv=False)
        p = s / s.sum()
        assert float(got[i]) == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-12)
    # preprocessing switches act like np_prep
    s = np.linalg.svd(np_prep(z[0]), compute_uv=False)
    p = s / s.sum()
    want = math.exp(-(p * np.log(p)).sum())
    assert float(effective_rank(z[0], center=True, unit_norm=True)) == pytest.approx(want)


def _exp_s1(z):
    return math.exp(float(dataset_entropy(z, base=math.e, center=False, unit_norm=False)))


def test_effective_rank_upper_bounds_exp_s1_paper_direction_is_wrong():
    # sigma = (2, 1): p = (2/3, 1/3) vs q = (4/5, 1/5)
    z = np.diag([2.0, 1.0])
    er, es = float(effective_rank(z)), _exp_s1(z)
    assert er == pytest.approx(math.exp(-(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)))
    assert es == pytest.approx(math.exp(-0.8 * math.log(0.8) - 0.2 * math.log(0.2)))
    assert er > es + 0.2  # so "erank <= exp(S_1)" (paper Thm 1, METHOD §7) does not hold


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 12),
    d=st.integers(1, 12),
    decay=st.floats(0.0, 3.0),
)
def test_effective_rank_ge_exp_s1_property(seed, n, d, decay):
    r = rng(seed)
    z = r.normal(size=(n, d)) * np.arange(1, d + 1) ** -decay
    assert float(effective_rank(z)) >= _exp_s1(z) * (1 - 1e-9)


def test_effective_rank_equals_exp_s1_for_equal_singular_values():
    q, _ = np.linalg.qr(rng(6).normal(size=(7, 4)))
    assert float(effective_rank(q.T)) == pytest.approx(_exp_s1(q.T), rel=1e-9)


# ---------------------------------------------------------------- prompt entropy


def test_prompt_entropy_of_identical_tokens_is_zero():
    z = np.tile(rng(7).normal(size=5), (7, 1))
    zt = torch.from_numpy(z)
    assert float((zt - zt.mean(0)).abs().max()) > 0  # centring leaves round-off to ignore
    for center in (True, False):
        pe = prompt_entropy(z, center=center)
        assert float(pe.raw) == pytest.approx(0.0, abs=1e-12)
        assert float(pe.normalized) == pytest.approx(0.0, abs=1e-12)
    batch = np.stack([z, rng(8).normal(size=(7, 5))])
    pe = prompt_entropy(batch)
    assert float(pe.raw[0]) == pytest.approx(0.0, abs=1e-12) and float(pe.raw[1]) > 0.5


def test_prompt_entropy_token_at_the_mean_counts_as_zero_row():
    # centred rows: (a-b)/2, (b-a)/2 and round-off, whose direction must not add entropy
    r = rng(0)
    a, b = r.normal(size=4), r.normal(size=4)
    z = torch.from_numpy(np.stack([a, b, (a + b) / 2]))
    assert float((z - z.mean(0))[2].abs().max()) > 0  # the round-off is there
    assert float(prompt_entropy(z).raw) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 3.0])
def test_prompt_entropy_matches_numpy(alpha):
    r = rng(9)
    z = r.normal(size=(4, 7, 10))
    pe = prompt_entropy(z, alpha=alpha)
    assert isinstance(pe, PromptEntropy) and pe.raw.shape == (4,)
    for i in range(4):
        want = np_gram_entropy(np_prep(z[i]), alpha)
        assert float(pe.raw[i]) == pytest.approx(want, rel=1e-7, abs=1e-9)
        assert float(pe.normalized[i]) == pytest.approx(want / math.log2(7), rel=1e-7)
    assert pe.n_tokens.tolist() == [7] * 4


def test_prompt_entropy_of_orthonormal_tokens_is_log_t():
    z = np.eye(6)[:, :] * 2.5  # 6 orthogonal tokens of equal norm, no centring
    pe = prompt_entropy(z, center=False)
    assert float(pe.raw) == pytest.approx(math.log2(6))
    assert float(pe.normalized) == pytest.approx(1.0)
    assert float(prompt_entropy(z, center=False, base=math.e).raw) == pytest.approx(math.log(6))


def test_prompt_entropy_mask_excludes_padding_exactly():
    r = rng(10)
    lengths, t_max, d = [3, 11, 7], 11, 6
    prompts = [r.normal(size=(t, d)) for t in lengths]
    z = r.normal(size=(3, t_max, d)) * 1e6  # huge garbage
    mask = np.zeros((3, t_max))
    z[0, -3:], mask[0, -3:] = prompts[0], 1  # left padding
    z[0, 0] = np.inf
    z[1], mask[1] = prompts[1], 1
    z[2, :7], mask[2, :7] = prompts[2], 1  # right padding
    z[2, 9] = np.nan
    pe = prompt_entropy(torch.from_numpy(z), torch.from_numpy(mask))
    for i, p in enumerate(prompts):
        single = prompt_entropy(p)
        assert float(pe.raw[i]) == pytest.approx(float(single.raw), abs=1e-10)
        assert float(pe.normalized[i]) == pytest.approx(float(single.normalized), abs=1e-10)
        assert float(pe.normalized[i]) == pytest.approx(float(single.raw) / math.log2(lengths[i]))
    assert pe.n_tokens.tolist() == lengths
    # a 1-D mask for one prompt, boolean dtype
    m = torch.zeros(t_max, dtype=torch.bool)
    m[-3:] = True
    assert float(prompt_entropy(z[0], m).raw) == pytest.approx(float(pe.raw[0]), abs=1e-10)


def test_normalized_prompt_entropy_in_unit_interval():
    r = rng(11)
    for t, d in [(5, 20), (30, 4), (12, 12)]:  # T < D (Gram) and T > D (covariance)
        z = r.normal(size=(8, t, d)) * r.uniform(0.01, 10, size=(8, 1, d))
        for center in (True, False):
            hn = prompt_entropy(z, center=center).normalized
            assert bool(((hn >= 0) & (hn <= 1 + 1e-12)).all())
            assert float(hn.max()) > 0.1


def test_prompt_entropy_gram_and_covariance_agree():
    z = rng(12).normal(size=(3, 25, 6))  # T > D: "auto" uses the D x D covariance
    for alpha in (1.0, 2.0, 0.7):
        g = prompt_entropy(z, alpha=alpha, method="gram").raw
        c = prompt_entropy(z, alpha=alpha, method="covariance").raw
        a = prompt_entropy(z, alpha=alpha).raw
        np.testing.assert_allclose(g, c, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(a, c)


def test_prompt_entropy_clamp_negative_reproduces_reference():
    z = rng(13).normal(size=(9, 12))
    k = np_prep(z) @ np_prep(z).T
    lam = np.linalg.eigvalsh(np.clip(k, 0, None))
    lam = lam[lam > 0]
    want = np_spectrum_entropy(lam / lam.sum(), 1.0, math.e)
    got = prompt_entropy(z, base=math.e, clamp_negative=True).raw
    assert float(got) == pytest.approx(want, rel=1e-9)
    assert abs(float(got) - float(prompt_entropy(z, base=math.e).raw)) > 1e-3


# ---------------------------------------------------------------- dataset entropy


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("center,unit", [(True, True), (False, False)])
def test_dataset_entropy_primal_equals_dual(alpha, center, unit):
    r = rng(14)
    for n, d in [(40, 6), (5, 9)]:
        z = r.normal(size=(n, d)) + 0.3
        kw = dict(alpha=alpha, center=center, unit_norm=unit)
        g = float(dataset_entropy(z, method="gram", **kw))
        c = float(dataset_entropy(z, method="covariance", **kw))
        # alpha < 1 amplifies the ~1e-17 round-off eigenvalues of the Gram's null space
        # (lambda^0.5 ~ 3e-9 each), which the D x D dual does not have.
        rel = 1e-9 if alpha >= 1 else 1e-6
        assert g == pytest.approx(c, rel=rel, abs=1e-12)
        assert c == pytest.approx(np_gram_entropy(np_prep(z, center, unit), alpha), rel=rel)


def test_dataset_entropy_stack_normalization_and_identical_rows():
    r = rng(15)
    z = r.normal(size=(3, 20, 5))
    got = dataset_entropy(z)
    assert got.shape == (3,)
    for i in range(3):
        assert float(got[i]) == pytest.approx(float(dataset_entropy(z[i])), rel=1e-12)
    normed = dataset_entropy(z[0], normalized=True)
    assert float(normed) == pytest.approx(float(got[0]) / math.log2(5))
    same = np.tile(r.normal(size=5), (10, 1))
    assert float(dataset_entropy(same)) == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 15), d=st.integers(2, 10))
def test_dataset_entropy_permutation_invariant(seed, n, d):
    r = rng(seed)
    z = r.normal(size=(n, d))
    perm = r.permutation(n)
    assert float(dataset_entropy(z[perm])) == pytest.approx(
        float(dataset_entropy(z)), rel=1e-9, abs=1e-9
    )


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(1e-3, 1e3),
    center=st.booleans(),
    unit=st.booleans(),
)
def test_scale_invariance(seed, scale, center, unit):
    r = rng(seed)
    z = r.normal(size=(9, 6))
    kw = dict(center=center, unit_norm=unit)
    assert float(dataset_entropy(scale * z, **kw)) == pytest.approx(
        float(dataset_entropy(z, **kw)), rel=1e-9, abs=1e-9
    )
    assert float(effective_rank(scale * z, **kw)) == pytest.approx(
        float(effective_rank(z, **kw)), rel=1e-9
    )
    assert float(curvature(scale * z)) == pytest.approx(float(curvature(z)), rel=1e-9)


# ---------------------------------------------------------------- InfoNCE


def np_infonce(a, b, tau):
    logits = a @ b.T / tau
    m = logits.max(1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(1, keepdims=True)))[:, 0]
    return float(np.mean(lse - np.diag(logits)))


def test_infonce_hand_computed_orthonormal_views():
    n, tau = 6, 0.1
    z = np.eye(n)
    want = math.log(1 + (n - 1) * math.exp(-1 / tau))  # diag logit 1/tau, others 0
    assert float(infonce(z, z, tau, center=False)) == pytest.approx(want, rel=1e-12)


def test_infonce_matches_numpy_and_identical_views_are_best():
    r = rng(16)
    a = r.normal(size=(30, 12))
    noisy = a + 0.7 * r.normal(size=a.shape)
    for tau in (0.1, 0.5):
        want = np_infonce(np_prep(a), np_prep(noisy), tau)
        assert float(infonce(a, noisy, tau)) == pytest.approx(want, rel=1e-10)
    sym = 0.5 * (np_infonce(np_prep(a), np_prep(noisy), 0.1) + np_infonce(np_prep(noisy), np_prep(a), 0.1))
    assert float(infonce(a, noisy, symmetric=True)) == pytest.approx(sym, rel=1e-10)
    very_noisy = a + 3.0 * r.normal(size=a.shape)
    same, mid, bad = (float(infonce(a, b)) for b in (a, noisy, very_noisy))
    assert same < mid < bad
    assert bad < math.log(30) * 1.5  # independent views sit near log N


# ---------------------------------------------------------------- LiDAR


def np_lidar(z, delta=1e-4, alpha=1.0, base=2.0):
    """Loop version of the reference compute_LDA_matrix (outer-product sums)."""
    z = np.stack([np_prep(z[:, j]) for j in range(z.shape[1])], axis=1)
    n, a, d = z.shape
    mu_c, mu = z.mean(1), z.mean((0, 1))
    s_b = sum(np.outer(mu_c[i] - mu, mu_c[i] - mu) for i in range(n)) / n
    s_w = sum(np.outer(z[i, j] - mu_c[i], z[i, j] - mu_c[i]) for i in range(n) for j in range(a))
    s_w = s_w / (n * a) + delta * np.eye(d)
    e, v = np.linalg.eigh(s_w)
    w = v @ np.diag(e**-0.5) @ v.T
    return np_spectrum_entropy(np.linalg.eigvalsh(w @ s_b @ w), alpha, base)


def test_lidar_matches_reference_loop():
    z = rng(17).normal(size=(12, 3, 5))
    z[:, 1:] = z[:, :1] + 0.3 * rng(18).normal(size=(12, 2, 5))
    for alpha in (1.0, 2.0):
        assert float(lidar(z, alpha=alpha)) == pytest.approx(np_lidar(z, alpha=alpha), rel=1e-7)


def test_lidar_identical_augmentations_are_best():
    n, d = 8, 11
    means = np.zeros((n, d))
    means[:, :n] = np.eye(n)  # regular simplex after centring: S_b uniform on n-1 directions
    identical = np.repeat(means[:, None], 3, axis=1)
    best = float(lidar(identical))
    assert best == pytest.approx(math.log2(n - 1), rel=1e-9)  # the maximum for rank n-1
    noise = np.zeros((n, 3, d))
    noise[..., :3] = 0.4 * rng(19).normal(size=(n, 3, 3))  # anisotropic within-class noise
    assert float(lidar(identical + noise)) < best - 0.05
    assert float(lidar(identical, normalized=True)) == pytest.approx(best / math.log2(n))


# ---------------------------------------------------------------- DiME


def np_dime(a, b, n_perm, seed, alpha=1.0, base=2.0):
    k1, k2 = np_prep(a) @ np_prep(a).T, np_prep(b) @ np_prep(b).T

    def h(k):
        return np_spectrum_entropy(np.linalg.eigvalsh(k / np.trace(k)), alpha, base)

    perms = permutations(len(a), n_perm, seed).numpy()
    return float(np.mean([h(k1 * k2[np.ix_(p, p)]) for p in perms]) - h(k1 * k2))


def test_dime_matches_numpy_with_same_permutations():
    r = rng(20)
    a = r.normal(size=(15, 7))
    b = a + 0.5 * r.normal(size=a.shape)
    for alpha in (1.0, 2.0):
        got = float(dime(a, b, alpha, n_permutations=4, seed=3))
        assert got == pytest.approx(np_dime(a, b, 4, 3, alpha), rel=1e-8)


def test_dime_identical_views_are_best():
    r = rng(21)
    a = r.normal(size=(40, 16))
    same = float(dime(a, a))
    noisy = float(dime(a, a + 0.8 * r.normal(size=a.shape)))
    indep = float(dime(a, r.normal(size=a.shape)))
    assert same > noisy > indep
    assert abs(indep) < 0.2 * same
    # orthonormal views: every pairing looks the same, DiME = 0 exactly
    assert float(dime(np.eye(6), np.eye(6), center=False)) == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------- validation, devices


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: prompt_entropy(np.ones(5)), "shape"),
        (lambda: prompt_entropy(np.ones((2, 2, 2, 2))), "shape"),
        (lambda: prompt_entropy(np.ones((1, 4))), "at least 2"),
        (lambda: prompt_entropy(np.ones((3, 4)), mask=np.ones(4)), "mask must have shape"),
        (lambda: prompt_entropy(np.ones((3, 4)), mask=np.array([1, 2, 0])), "0/1"),
        (lambda: prompt_entropy(np.ones((2, 3, 4)), mask=np.array([[1, 1, 1], [1, 0, 0]])), "batch element 1"),
        (lambda: prompt_entropy(np.full((3, 4), np.nan)), "NaN"),
        (lambda: prompt_entropy(np.ones((3, 4)), method="svd"), "method"),
        (lambda: dataset_entropy(np.ones((1, 4))), "at least 2"),
        (lambda: dataset_entropy(np.array([[1.0, np.inf], [0.0, 1.0]])), "NaN/inf"),
        (lambda: effective_rank(np.ones((3, 4)), center=True), "all-zero"),
        (lambda: curvature(np.ones((2, 4))), "at least 3"),
        (lambda: infonce(np.ones((4, 3)), np.ones((5, 3))), "same shape"),
        (lambda: infonce(np.ones((4, 3)), np.ones((4, 3)), temperature=0), "temperature"),
        (lambda: infonce(np.ones(4), np.ones(4)), r"\(N, D\)"),
        (lambda: dime(np.ones((1, 3)), np.ones((1, 3))), "at least 2"),
        (lambda: dime(np.eye(3), np.eye(3), n_permutations=0), "n_permutations"),
        (lambda: lidar(np.ones((4, 3))), r"\(N, A, D\)"),
        (lambda: lidar(np.ones((4, 1, 3))), "augmentation"),
        (lambda: lidar(np.ones((1, 2, 3))), "prompts"),
        (lambda: lidar(np.ones((4, 2, 3)), delta=0), "delta"),
        (lambda: lidar(np.full((4, 2, 3), np.nan)), "NaN"),
        (lambda: prompt_entropy(np.eye(3), alpha=0), "alpha"),
    ],
)
def test_invalid_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_numpy_and_torch_inputs_agree():
    z = rng(22).normal(size=(6, 4)).astype(np.float32)
    for f in (dataset_entropy, effective_rank, curvature):
        out_np, out_t = f(z), f(torch.from_numpy(z))
        assert isinstance(out_np, np.float64) and out_t.dtype == torch.float64  # numpy in, numpy out
        assert out_np == out_t.item()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_inputs_stay_on_device():
    r = rng(23)
    z = torch.from_numpy(r.normal(size=(3, 8, 5))).cuda()
    mask = torch.ones(3, 8, device="cuda")
    a = torch.from_numpy(r.normal(size=(10, 5))).cuda()
    b = a + 0.1 * torch.randn_like(a)
    outs = [
        prompt_entropy(z, mask).raw,
        dataset_entropy(z[:, 0]),
        effective_rank(z),
        curvature(z, mask),
        infonce(a, b),
        lidar(torch.stack([a, b], 1)),
        dime(a, b),
    ]
    for o in outs:
        assert o.device.type == "cuda"
    cpu = prompt_entropy(z.cpu(), mask.cpu()).raw
    np.testing.assert_allclose(outs[0].cpu().numpy(), cpu.numpy(), rtol=1e-9)
    np.testing.assert_allclose(float(outs[6]), float(dime(a.cpu(), b.cpu())), rtol=1e-9)
