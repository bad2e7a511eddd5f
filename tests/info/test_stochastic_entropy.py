"""The matrix-free estimator (info.stochastic) against the exact one on the same data.

The oracle is the exact eigendecomposition path (matrix_entropy, joint_entropy,
estimate_information on dense float64 Grams) and closed forms; the stochastic result must
lie within its own reported error: |est - exact| < 4 se + a small tolerance for the
Lanczos quadrature error, which se does not include.
"""

from __future__ import annotations

import math

import pytest
import torch

import inforidge.info.stochastic as stochastic
from inforidge.info import (
    estimate_information,
    gram_matrix,
    joint_entropy,
    l2_normalize,
    matrix_entropy,
)
from inforidge.info.entropy import permutations
from inforidge.info.kernels import median_bandwidth
from inforidge.info.stochastic import (
    EXACT_MAX_N,
    _GaussianSweep,
    _lanczos_quadrature,
    choose_estimator,
    information,
    stochastic_entropy,
    stochastic_information,
    stochastic_joint_entropy,
)


def _data(n: int = 300, d: int = 48, e: int = 12, seed: int = 0):
    """Low-rank-plus-noise x (N, D) and a y (N, E) sharing part of x's signal."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 6, generator=g, dtype=torch.float64)
    x = z @ torch.randn(6, d, generator=g, dtype=torch.float64)
    x = x + 0.6 * torch.randn(n, d, generator=g, dtype=torch.float64)
    y = z[:, :3] @ torch.randn(3, e, generator=g, dtype=torch.float64)
    y = y + 0.6 * torch.randn(n, e, generator=g, dtype=torch.float64)
    return x, y


def _close(est: float, se: float, exact: float, rel: float = 2e-3) -> bool:
    return abs(est - exact) < 4.0 * se + rel * abs(exact) + 1e-6


@pytest.mark.parametrize("alpha", [1.0, 3.0, 1.5])
@pytest.mark.parametrize("sigma", [1.0, 0.5])
@pytest.mark.parametrize("deflation", [0, 16, 128])
def test_entropy_matches_exact_within_reported_error(alpha, sigma, deflation):
    x, _ = _data()
    exact = float(matrix_entropy(gram_matrix(x, sigma=sigma), alpha))
    st = stochastic_entropy(x, alpha, sigma=sigma, deflation=deflation, seed=1)
    assert float(st.se) > 0
    if deflation:  # the check below is not vacuous (without deflation se is 3-10 %)
        assert float(st.se) < 0.02 * exact
    assert _close(float(st.value), float(st.se), exact), (float(st.value), float(st.se), exact)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_alpha_two_is_exact_in_blocks(dtype, tol):
    x, y = _data(n=257)
    st = stochastic_entropy(x, 2.0, block_size=40, dtype=dtype)
    assert float(st.se) == 0.0
    assert float(st.value) == pytest.approx(float(matrix_entropy(gram_matrix(x), 2.0)), rel=tol)
    sj = stochastic_joint_entropy(x, y, 2.0, block_size=40, dtype=dtype)
    exact = float(joint_entropy(gram_matrix(x), gram_matrix(y), 2.0))
    assert float(sj.value) == pytest.approx(exact, rel=tol)


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_joint_entropy_matches_exact(alpha):
    x, y = _data(seed=2)
    exact = float(joint_entropy(gram_matrix(x), gram_matrix(y), alpha))
    st = stochastic_joint_entropy(x, y, alpha, seed=3)
    assert _close(float(st.value), float(st.se), exact), (float(st.value), float(st.se), exact)


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_information_and_null_match_exact(alpha):
    x, y = _data(n=240, seed=4)
    xs = torch.stack([x, x + 0.8 * torch.randn_like(x, dtype=torch.float64)])  # (2, N, D)
    exact = estimate_information(xs, y, alpha=alpha, n_permutations=3, seed=7)
    st = stochastic_information(xs, y, alpha=alpha, n_permutations=3, seed=7)
    assert st.estimator == "slq" and exact.estimator == "exact"
    assert st.mi.shape == exact.mi.shape == (2,) and st.null.shape == exact.null.shape == (3, 2)
    pairs = [
        (st.entropy_x, st.entropy_x_se, exact.entropy_x),
        (st.entropy_y, st.entropy_y_se, exact.entropy_y),
        (st.joint, st.joint_se, exact.joint),
        (st.mi, st.mi_se, exact.mi),
        (st.null, st.null_se, exact.null),  # same seed -> the same permutations
    ]
    for est, se, ref in pairs:
        for e_, s_, r_ in zip(est.flatten().tolist(), se.flatten().tolist(),
                              ref.flatten().tolist(), strict=True):
            assert _close(e_, s_, r_, rel=5e-3), (e_, s_, r_)
    chunked = stochastic_information(xs, y, alpha=alpha, n_permutations=3, seed=7, layer_chunk=1)
    assert chunked.mi.shape == (2,) and chunked.null.shape == (3, 2)
    for i in range(2):  # other probes (drawn per chunk), the same quantity
        assert _close(float(chunked.mi[i]), float(chunked.mi_se[i]), float(exact.mi[i]), rel=5e-3)
        assert _close(float(chunked.null[2, i]), float(chunked.null_se[2, i]),
                      float(exact.null[2, i]), rel=5e-3)
    # MI values are O(0.1-1) bits while entropies are O(5): check the corrected MI absolutely
    assert torch.all((st.corrected - exact.corrected).abs() < 4 * st.mi_se.max() + 2e-2)


def test_single_layer_shapes():
    x, y = _data(n=120)
    st = stochastic_information(x, y, n_permutations=2)
    assert st.mi.shape == () and st.null.shape == (2,) and st.null_se.shape == (2,)
    assert st.joint.shape == () and st.entropy_x.shape == ()


@pytest.mark.parametrize("sigma", [0.4, 1.0, 2.5])
def test_hadamard_of_grams_is_gram_of_concatenated_rows(sigma):
    x, y = _data(n=80)
    x[3] = 0.0  # a zero row stays zero under l2_normalize: the identity still holds
    hadamard = gram_matrix(x, sigma=sigma) * gram_matrix(y, sigma=sigma)
    z = torch.cat([l2_normalize(x), l2_normalize(y)], -1)
    concat = gram_matrix(z, sigma=sigma, normalize=False)
    torch.testing.assert_close(hadamard, concat, rtol=1e-12, atol=1e-14)


def test_blocked_products_equal_dense_grams():
    x, y = _data(n=101)
    xs = torch.stack([x, 2 * x + 1])
    perms = torch.stack([torch.randperm(101, generator=torch.Generator().manual_seed(0))])
    scale = 1 / (0.8 * math.sqrt(2))
    sweep = _GaussianSweep(l2_normalize(xs) * scale, l2_normalize(y) * scale, perms, block_size=17)
    v = torch.randn(sweep.n_ops, 101, 3, dtype=torch.float64)
    out = sweep.matmul(v)
    kx = gram_matrix(xs, sigma=0.8)
    ky = gram_matrix(y, sigma=0.8)
    kyp = ky[perms[0]][:, perms[0]]
    dense = [kx[0], kx[1], ky, kx[0] * ky, kx[1] * ky, kx[0] * kyp, kx[1] * kyp]
    for g, k in enumerate(dense):
        torch.testing.assert_close(out[g], k @ v[g] / 101, rtol=1e-10, atol=1e-12)
    fro = sweep.frobenius()
    torch.testing.assert_close(fro, torch.stack([k.square().sum() / 101**2 for k in dense]))


def test_lanczos_quadrature_is_exact_with_n_steps():
    g = torch.Generator().manual_seed(0)
    b = torch.randn(12, 12, generator=g, dtype=torch.float64)
    a = b @ b.T / 50 + 0.01 * torch.eye(12, dtype=torch.float64)
    lam, vecs = torch.linalg.eigh(a)
    u = torch.randn(1, 12, 2, generator=g, dtype=torch.float64)
    for f in (lambda t: -torch.special.xlogy(t, t), lambda t: t**0.5):
        got = _lanczos_quadrature(lambda v: a @ v, u, 12, f)
        fa = vecs @ torch.diag(f(lam)) @ vecs.T
        want = torch.einsum("nc,nm,mc->c", u[0], fa, u[0])
        torch.testing.assert_close(got[0], want, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("alpha", [1.0, 3.0])
def test_closed_forms(alpha):
    # identical rows: K = 1 1^T, A has one eigenvalue 1 -> S = 0
    x = torch.ones(64, 5)
    assert abs(float(stochastic_entropy(x, alpha).value)) < 1e-6
    # far-apart rows at a tiny sigma: K = I -> S = log2 N for every alpha. Without deflation
    # every Rademacher probe gives z^T f(I / N) z = N f(1 / N) exactly (se 0).
    x = torch.eye(64)
    st = stochastic_entropy(x, alpha, sigma=0.05, deflation=0)
    assert float(st.value) == pytest.approx(6.0, abs=1e-6) and float(st.se) < 1e-6
    # with deflation the probes see P = I - Q Q^T; still within the reported error
    st = stochastic_entropy(x, alpha, sigma=0.05, deflation=8)
    assert _close(float(st.value), float(st.se), 6.0, rel=0.0)


def test_same_seed_same_numbers_and_other_seed_differs():
    x, y = _data(n=150)
    a = stochastic_information(x, y, n_permutations=2, seed=5)
    b = stochastic_information(x, y, n_permutations=2, seed=5)
    c = stochastic_information(x, y, n_permutations=2, seed=6)
    assert torch.equal(a.mi, b.mi) and torch.equal(a.null, b.null) and torch.equal(a.mi_se, b.mi_se)
    assert not torch.equal(a.mi, c.mi)


def test_error_estimate_shrinks_with_probes_and_is_calibrated():
    x, _ = _data(n=300)
    exact = float(matrix_entropy(gram_matrix(x)))
    few = [stochastic_entropy(x, n_probes=6, deflation=0, seed=s) for s in range(12)]
    many = stochastic_entropy(x, n_probes=96, deflation=0, seed=0)
    se_few = sum(float(r.se) for r in few) / len(few)
    assert float(many.se) < 0.5 * se_few  # ~ sqrt(6 / 96) = 0.25 expected
    # the reported se matches the actual spread of the estimates over seeds (within ~2x)
    spread = float(torch.tensor([float(r.value) for r in few]).std())
    assert 0.4 < spread / se_few < 2.5
    assert abs(float(many.value) - exact) < 4 * float(many.se) + 2e-3 * exact
    # deflation (Hutch++) removes most of the probe noise at the same probe count
    assert float(stochastic_entropy(x, n_probes=6, deflation=20, seed=0).se) < se_few


def test_dispatcher():
    assert choose_estimator(EXACT_MAX_N) == "exact"
    assert choose_estimator(EXACT_MAX_N + 1) == "stochastic"
    assert choose_estimator(10, "stochastic") == "stochastic"
    with pytest.raises(ValueError, match="estimator must be one of"):
        choose_estimator(10, "fast")
    x, y = _data(n=100)
    exact = information(x, y, estimator="auto", n_permutations=2)
    ref = estimate_information(x, y, n_permutations=2)
    assert exact.estimator == "exact" and torch.equal(exact.mi, ref.mi)
    st = information(x, y, estimator="auto", exact_max_n=50, n_permutations=2, n_probes=8)
    assert st.estimator == "slq" and st.n_probes == 8
    assert _close(float(st.mi), float(st.mi_se), float(ref.mi), rel=2e-2)


def test_clear_errors():
    x, y = _data(n=50)
    with pytest.raises(ValueError, match="gaussian"):
        stochastic_entropy(x, kernel="laplacian")
    with pytest.raises(ValueError, match="'median'"):
        stochastic_entropy(x, sigma="mean")
    with pytest.raises(ValueError, match="numeric sigma"):
        stochastic_joint_entropy(x, y, sigma="median")
    with pytest.raises(ValueError, match="n_probes"):
        stochastic_entropy(x, n_probes=1)
    with pytest.raises(ValueError, match="N=49"):
        stochastic_information(x, y[:49])


def test_float32_products_cost_far_less_than_the_probe_error():
    # the module's reason for float32 kernel products: same seed, same probes, so the only
    # difference is rounding; it must be negligible next to the reported standard error
    x, y = _data(n=300)
    f32 = stochastic_information(x, y, seed=3)
    f64 = stochastic_information(x, y, seed=3, dtype=torch.float64)
    assert abs(float(f32.mi) - float(f64.mi)) < 0.15 * float(f64.mi_se)  # measured: 0.05
    assert abs(float(f32.joint) - float(f64.joint)) < 0.15 * float(f64.joint_se)


def test_median_sigma_is_the_exact_estimators_per_layer_and_for_y():
    # each layer and y get their own median bandwidth, as gram_matrix(sigma="median") gives them
    x, y = _data(n=200, seed=2)
    xs = torch.stack([x, 3 * x + torch.randn_like(x)])
    exact = estimate_information(xs, y, sigma="median", n_permutations=3, seed=1)
    st = stochastic_information(xs, y, sigma="median", n_permutations=3, seed=1, deflation=16)
    for est, se, ref in ((st.entropy_x, st.entropy_x_se, exact.entropy_x), (st.mi, st.mi_se, exact.mi),
                         (st.null, st.null_se, exact.null)):
        for e_, s_, r_ in zip(est.flatten().tolist(), se.flatten().tolist(), ref.flatten().tolist(), strict=True):
            assert _close(e_, s_, r_, rel=5e-3), (e_, s_, r_)
    h = stochastic_entropy(xs[1], sigma="median", deflation=16)
    h_ref = float(matrix_entropy(gram_matrix(xs[1], sigma="median")))
    assert _close(float(h.value), float(h.se), h_ref)


def test_median_sigma_above_the_row_cap_comes_from_a_seeded_subsample(monkeypatch):
    x, _ = _data(n=300, seed=3)
    monkeypatch.setattr(stochastic, "MEDIAN_MAX_ROWS", 100)
    unit = l2_normalize(x)
    got = stochastic._median_sigma(unit, seed=4)
    assert got == stochastic._median_sigma(unit, seed=4) != stochastic._median_sigma(unit, seed=5)
    full = float(median_bandwidth(unit, normalize=False))
    assert abs(got - full) < 0.03 * full


def test_grouped_null_uses_the_same_stratified_permutations_as_the_exact_estimator():
    x, y = _data(n=160, seed=5)
    groups = torch.arange(160) % 4
    kw = dict(n_permutations=4, seed=2, groups=groups)
    exact = estimate_information(x, y, **kw)
    st = stochastic_information(x, y, deflation=16, **kw)
    plain = estimate_information(x, y, n_permutations=4, seed=2)
    for i in range(4):
        assert _close(float(st.null[i]), float(st.null_se[i]), float(exact.null[i]), rel=5e-3)
    # the check can fail: the grouped permutations are not the plain ones
    assert not torch.equal(permutations(160, 4, 2, groups=groups), permutations(160, 4, 2))
    assert not torch.allclose(exact.null, plain.null)


def test_standard_errors_of_the_null_mean_and_the_corrected_value():
    x, y = _data(n=120, seed=6)
    st = stochastic_information(x, y, n_permutations=3, seed=0, deflation=8, n_probes=16)
    p = 3
    jn = st.joint_null_se.square().sum(0) / p**2
    want = (st.entropy_x_se.square() + st.entropy_y_se.square() + jn).sqrt()
    torch.testing.assert_close(st.null_mean_se, want)
    # S(X) and S(Y) cancel in mi - null mean: only the joints' errors remain
    torch.testing.assert_close(st.corrected_se, (st.joint_se.square() + jn).sqrt())
    assert float(st.corrected_se) < float(st.mi_se) + float(st.null_mean_se)
    # joint_null_se is what null_se was built from
    torch.testing.assert_close(st.null_se.square(),
                               st.entropy_x_se.square() + st.entropy_y_se.square() + st.joint_null_se.square())
    none = stochastic_information(x, y, n_permutations=0, deflation=8, n_probes=16)
    assert torch.isnan(none.corrected_se) and torch.isnan(none.null_mean_se)


def test_auto_reads_the_threshold_at_call_time(monkeypatch):
    monkeypatch.setattr(stochastic, "EXACT_MAX_N", 10)
    assert choose_estimator(11) == "stochastic" and choose_estimator(10) == "exact"


def test_long_estimates_show_progress(caplog):
    """Every sweep over the kernel blocks is logged (INFO from PROGRESS_MIN_N on, DEBUG below)."""
    import logging

    from inforidge.info import stochastic

    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    with caplog.at_level(logging.DEBUG, logger="inforidge.info.stochastic"):
        stochastic.stochastic_entropy(x, n_probes=4, deflation=4, lanczos_steps=5)
    sweeps = [r for r in caplog.records if "sweep" in r.getMessage()]
    assert [r.getMessage().split("sweep ")[1].split(" ")[0] for r in sweeps] == [f"{i}/7" for i in range(1, 8)]
    assert {r.levelno for r in sweeps} == {logging.DEBUG}  # N = 64 < PROGRESS_MIN_N
