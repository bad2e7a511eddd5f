"""Bootstrap ridge statistics (inforidge.info.ridge) on constructed layer stacks."""

import pytest
import torch

from inforidge.info import estimate_information, gram_matrix
from inforidge.info.ridge import (
    MIN_SAMPLES,
    bandwidth_check,
    jackknife_scale,
    leave_one_out_information,
    min_draws,
    resampled_information,
    ridge_statistics,
    ridge_test,
)

N_BOOT = 200


def layer_stack(noise, n=60, classes=6, dim=4, seed=0):
    """Layers 0..L: a random linear map of y plus Gaussian noise of the given scale per layer.

    Returns x (L+1, n, dim) and y (n, dim), y a random code per class. Less noise means more
    information about y; dim=4 keeps the raw MI's spread bias small (see F2 and the last test).
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(classes, (n,), generator=g)
    y = torch.randn(classes, dim, generator=g)[labels]
    layers = [y @ torch.randn(dim, dim, generator=g) + s * torch.randn(n, dim, generator=g) for s in noise]
    return torch.stack(layers), y


# Information rises to layer 2, then falls; the last layer is almost pure noise.
PEAKED = [4.0, 1.5, 0.3, 1.5, 4.0, 40.0]
TRUE_PEAK = 2
# Information rises with depth.
MONOTONE = [40.0, 4.0, 2.0, 1.0, 0.5, 0.25]


@pytest.fixture(scope="module")
def peaked():
    return layer_stack(PEAKED)


@pytest.fixture(scope="module")
def peaked_stats(peaked):
    return ridge_statistics(*peaked, n_boot=N_BOOT, seed=0)


def test_peaked_curve_is_a_significant_ridge(peaked_stats):
    for test in (peaked_stats.raw, peaked_stats.corrected):
        assert test.peak_layer == TRUE_PEAK and test.last_layer == len(PEAKED) - 1
        assert test.p_value < 0.05 and test.is_ridge()
        lo, hi = test.ridge_layer_ci
        assert lo <= TRUE_PEAK <= hi and hi < test.last_layer
        assert test.share_before_last == 1.0
        assert test.drop > 0 and test.drop_draws.shape == (N_BOOT,)
        assert test.draws.shape == (N_BOOT, len(PEAKED)) and test.ridge_layers.shape == (N_BOOT,)
    assert peaked_stats.indices.shape == (N_BOOT, 60)
    summary = peaked_stats.summary()
    assert summary["raw_ridge"] and summary["corrected_ridge"] and summary["n_boot"] == N_BOOT


def test_monotone_curve_is_not_a_ridge():
    stats = ridge_statistics(*layer_stack(MONOTONE), n_boot=N_BOOT, seed=0)
    for test in (stats.raw, stats.corrected):
        assert test.peak_layer == test.last_layer
        assert test.p_value > 0.5 and not test.is_ridge()


def test_identity_resample_reproduces_estimate_information(peaked):
    x, y = peaked
    est = estimate_information(x, y, n_permutations=3, seed=7)
    kx, ky = gram_matrix(x), gram_matrix(y)
    boot = resampled_information(kx, ky, torch.arange(x.shape[1])[None], n_permutations=3, seed=7)
    assert torch.equal(boot.mi[0], est.mi)
    assert torch.equal(boot.null[0], est.null)
    assert torch.equal(boot.entropy_x[0], est.entropy_x)
    assert torch.equal(boot.entropy_y[0], est.entropy_y)
    # The full-sample curves of ridge_statistics are estimate_information's, bit for bit.
    stats = ridge_statistics(x, y, n_boot=5, n_permutations=3, seed=7)
    assert torch.equal(stats.raw.curve, est.mi)
    assert torch.equal(stats.corrected.curve, est.corrected)


def test_resampling_the_gram_matches_resampling_the_samples(peaked):
    """K[idx][:, idx] is the Gram of the resampled samples, duplicates included."""
    x, y = peaked
    idx = torch.randint(x.shape[1], (1, x.shape[1]), generator=torch.Generator().manual_seed(3))
    assert len(idx[0].unique()) < x.shape[1]  # there are duplicates
    boot = resampled_information(gram_matrix(x), gram_matrix(y), idx)
    direct = estimate_information(x[:, idx[0]], y[idx[0]], n_permutations=0)
    torch.testing.assert_close(boot.mi[0], direct.mi, rtol=0, atol=1e-9)


def test_same_seed_same_result(peaked):
    a = ridge_statistics(*peaked, n_boot=30, seed=4)
    b = ridge_statistics(*peaked, n_boot=30, seed=4)
    c = ridge_statistics(*peaked, n_boot=30, seed=5)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.raw.draws, b.raw.draws)
    assert torch.equal(a.corrected.draws, b.corrected.draws) and a.summary() == b.summary()
    assert not torch.equal(a.indices, c.indices)


def test_p_value_and_interval_by_hand():
    curve = torch.tensor([0.0, 1.0, 0.5])
    # drops peak - last per draw: 0.5, -0.1, 0.0, 0.3 -> 2 draws with drop <= 0 (naive p 3/5).
    # T = 0.5; drops centred at their mean 0.175: 0.325, -0.275, -0.175, 0.125: none >= T -> p = 1/5.
    draws = torch.tensor([[0, 1.0, 0.5], [0, 0.5, 0.6], [0, 0.7, 0.7], [0, 0.9, 0.6]])
    t = ridge_test(curve, draws, confidence=0.5)
    assert t.peak_layer == 1 and t.naive_p_value == pytest.approx(3 / 5)
    assert t.statistic == pytest.approx(0.5) and t.p_value == pytest.approx(1 / 5)
    assert t.ridge_layers.tolist() == [1, 2, 1, 1] and t.share_before_last == 0.75
    assert t.ridge_layer_ci == (1, 2)
    flat = ridge_test(torch.tensor([0.0, 1.0]), torch.tensor([[0.0, 1.0], [0.0, 2.0]]))
    assert flat.peak_layer == flat.last_layer and flat.p_value == 1.0 and not flat.is_ridge()


def test_max_statistic_by_hand_over_several_layers():
    """T and p against a direct loop over draws and layers (4 layers, 2 intermediate tested)."""
    g = torch.Generator().manual_seed(0)
    curve = torch.tensor([0.1, 0.8, 0.9, 0.6], dtype=torch.float64)
    draws = curve + 0.2 * torch.randn(50, 4, generator=g, dtype=torch.float64)
    t = ridge_test(curve, draws)
    obs = [float(curve[layer] - curve[3]) for layer in (1, 2)]
    mean = [float((draws[:, layer] - draws[:, 3]).mean()) for layer in (1, 2)]
    big = sum(max(float(draws[b, layer] - draws[b, 3]) - mean[i] for i, layer in enumerate((1, 2))) >= max(obs)
              for b in range(50))
    assert t.statistic == pytest.approx(max(obs)) and t.p_value == pytest.approx((big + 1) / 51)
    assert 0 < t.p_value <= 1


def test_jackknife_scale_by_hand():
    g = torch.Generator().manual_seed(1)
    curve = torch.tensor([0.0, 1.0, 0.7, 0.5], dtype=torch.float64)
    draws = curve + 0.1 * torch.randn(40, 4, generator=g, dtype=torch.float64)
    jack = curve + 0.01 * torch.randn(30, 4, generator=g, dtype=torch.float64)
    scale = jackknife_scale(curve, draws, jack)
    for i, layer in enumerate((1, 2)):
        d = (jack[:, layer] - jack[:, 3]).numpy()
        se = ((29 / 30) * ((d - d.mean()) ** 2).sum()) ** 0.5
        assert float(scale[i]) == pytest.approx(se / float((draws[:, layer] - draws[:, 3]).std()))
    assert torch.equal(jackknife_scale(curve, draws, None), torch.ones(2, dtype=torch.float64))


def test_leave_one_out_matches_dropping_the_sample(peaked):
    """Replicate i is the estimate without sample i; its null drops the pair (x_i, y_perm(i)) of the
    full-sample permutations."""
    from inforidge.info.entropy import permutations
    x, y = peaked
    kx, ky = gram_matrix(x), gram_matrix(y)
    mi, null = leave_one_out_information(kx, ky, n_permutations=2, seed=5)
    assert mi.shape == null.shape == (60, len(PEAKED))
    keep = torch.arange(60) != 7
    torch.testing.assert_close(mi[7], estimate_information(x[:, keep], y[keep], n_permutations=0).mi, rtol=0, atol=1e-9)
    perms = permutations(60, 2, 5)
    nulls = [estimate_information(x[:, keep], y[p][keep], n_permutations=0).mi for p in perms]
    torch.testing.assert_close(null[7], torch.stack(nulls).mean(0), rtol=0, atol=1e-9)


def test_identical_intermediate_and_last_layers_give_p_one():
    """Layers 1..L the same states: every drop is 0 on every draw, T = 0 and p = 1, no ridge."""
    x, y = layer_stack([3.0, 1.0, 1.0, 1.0])
    x[2:] = x[1]
    stats = ridge_statistics(x, y, n_boot=60, seed=0)
    for test in (stats.raw, stats.corrected):
        assert test.statistic == pytest.approx(0.0, abs=1e-9) and test.p_value == 1.0
        assert test.verdict() is False and test.flag() is None


def test_peak_at_the_embedding_is_not_a_ridge():
    curve = torch.tensor([1.0, 0.2, 0.1, 0.0])
    draws = curve + torch.zeros(60, 4)
    t = ridge_test(curve, draws, n_samples=100)
    assert t.peak_layer == 0 and t.p_value < 0.05 and t.verdict() is False


def test_no_verdict_when_it_would_not_mean_anything(peaked):
    x, y = peaked
    assert min_draws(0.05) == 39 and min_draws(0.01) == 199
    few = ridge_statistics(x[:, :MIN_SAMPLES - 1], y[:MIN_SAMPLES - 1], n_boot=50, seed=0)
    assert few.raw.flag() == "too_few_samples" and few.raw.verdict() is None and not few.raw.is_ridge()
    assert few.summary()["raw_ridge"] is None and few.summary()["raw_flag"] == "too_few_samples"
    draws = ridge_statistics(x, y, n_boot=20, seed=0)  # smallest p 1/21 > 0.025
    assert draws.corrected.flag() == "too_few_draws" and draws.corrected.verdict() is None
    assert draws.corrected.flag(level=0.2) is None and draws.corrected.verdict(level=0.2) is True
    one_class = ridge_statistics(x, torch.ones(60, 4), n_boot=50, seed=0)  # every MI is 0
    for test in (one_class.raw, one_class.corrected):
        assert test.peak_layer is None and test.flag() == "flat_curve" and test.verdict() is None
        summary = test.summary()
        assert summary["peak_layer"] != summary["peak_layer"]  # NaN: no peak is named


def test_corrected_curve_removes_a_spread_only_ridge():
    """F2: with less noise the states spread less, and the raw MI falls although the
    information rises; the raw curve shows a 'ridge', the null-corrected one does not."""
    x, y = layer_stack([30.0, 3.0, 1.5, 0.8, 0.4, 0.2], dim=8)
    stats = ridge_statistics(x, y, n_boot=N_BOOT, seed=0)
    # The raw curve peaks before the last layer; the old peak-only p called it a ridge, the
    # max-statistic test (whose draws show the 0.03-bit drop as bootstrap bias) does not.
    assert stats.raw.peak_layer < stats.raw.last_layer and stats.raw.naive_p_value < 0.05
    assert not stats.raw.is_ridge()
    assert stats.corrected.peak_layer == stats.corrected.last_layer and not stats.corrected.is_ridge()


def test_bandwidth_check_pairs_the_draws(peaked):
    check = bandwidth_check(*peaked, n_boot=50, seed=0)
    assert list(check.results) == ["1.0", "median"]
    one, median = check.results.values()
    assert torch.equal(one.indices, median.indices)
    assert not torch.equal(one.raw.curve, median.raw.curve)
    assert check.verdicts() == {"1.0": True, "median": True} and check.agree()
    assert [row["sigma"] for row in check.table()] == ["1.0", "median"]


def test_bad_inputs_are_rejected(peaked):
    x, y = peaked
    with pytest.raises(ValueError, match="layer stack"):
        ridge_statistics(x[0], y, n_boot=5)
    with pytest.raises(ValueError, match="n_permutations >= 1"):
        ridge_statistics(x, y, n_boot=5, n_permutations=0)
    raw_only = ridge_statistics(x, y, n_boot=5, n_permutations=0, draw_permutations=0)
    assert raw_only.corrected is None and "corrected_ridge" not in raw_only.summary()
    with pytest.raises(ValueError, match="sigmas"):
        bandwidth_check(x, y, sigma=1.0)


def test_the_drop_interval_holds_the_drop_when_the_draws_are_biased():
    """Bootstrap draws repeat samples and shift the drops; the reported interval is centred on
    the full-sample drop (and scaled like the test), so it cannot miss it."""
    g = torch.Generator().manual_seed(0)
    curve = torch.tensor([0.0, 0.2, 0.5, 0.3])  # peak at 2, drop 0.2
    noise = 0.01 * torch.randn(400, 4, generator=g)
    biased = curve + torch.tensor([0.0, 0.0, 0.08, 0.0]) + noise  # every draw's drop ~0.28
    test = ridge_test(curve, biased)
    s = test.summary()
    plain = (float(torch.quantile(test.drop_draws, 0.025)), float(torch.quantile(test.drop_draws, 0.975)))
    assert plain[0] > test.drop  # the plain percentiles miss the drop: the defect this guards
    assert s["drop_ci_low"] < test.drop < s["drop_ci_high"]
    # width from the draws' own spread (no jackknife: scale 1)
    assert s["drop_ci_high"] - s["drop_ci_low"] == pytest.approx(plain[1] - plain[0], rel=1e-6)


def test_the_drop_interval_is_scaled_like_the_test():
    g = torch.Generator().manual_seed(1)
    curve = torch.tensor([0.0, 0.2, 0.5, 0.3])
    draws = curve + 0.01 * torch.randn(300, 4, generator=g)
    jack = curve + 0.05 * torch.randn(40, 4, generator=g)  # a wider jackknife spread
    wide, plain = ridge_test(curve, draws, jackknife=jack), ridge_test(curve, draws)
    assert wide.drop_scale > 1 and plain.drop_scale == 1.0
    width = lambda t: t.summary()["drop_ci_high"] - t.summary()["drop_ci_low"]  # noqa: E731
    assert width(wide) == pytest.approx(wide.drop_scale * width(plain), rel=1e-6)
