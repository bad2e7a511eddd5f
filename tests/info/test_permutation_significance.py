"""Permutation p-value and z of the MI: checked against permuting the samples by hand."""

import math

import pytest
import torch

from inforidge.info import estimate_information, mutual_information
from inforidge.info.entropy import permutations


def _data(n=40, signal=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 2, generator=g, dtype=torch.float64)
    x = torch.stack([signal * y @ torch.randn(2, 5, generator=g, dtype=torch.float64)
                     + torch.randn(n, 5, generator=g, dtype=torch.float64) for _ in range(3)])
    return x, y  # (3, n, 5), (n, 2)


@pytest.mark.parametrize("groups", [None, torch.arange(40) % 3], ids=["plain", "stratified"])
@pytest.mark.parametrize("signal", [0.0, 1.0])
def test_p_value_and_z_equal_a_count_over_samples_permuted_by_hand(groups, signal):
    x, y = _data(signal=signal)
    n_perm, seed = 19, 5
    est = estimate_information(x, y, n_permutations=n_perm, seed=seed, groups=groups, sigma=2.0)
    # independent path: shuffle y's rows (not its Gram) with the same permutations and re-estimate
    perms = permutations(40, n_perm, seed, groups=groups)
    null = torch.stack([mutual_information(x, y[p], sigma=2.0) for p in perms])  # (P, 3)
    raw = mutual_information(x, y, sigma=2.0)
    torch.testing.assert_close(est.null, null)
    expected_p = (1 + (null >= raw).sum(0)) / (1 + n_perm)
    torch.testing.assert_close(est.p_value, expected_p.to(est.p_value.dtype))
    z = (raw - null.mean(0)) / null.std(0)
    torch.testing.assert_close(est.z, z)
    assert est.p_resolution == pytest.approx(1 / 20)
    assert bool((est.p_value >= est.p_resolution).all()) and bool((est.p_value <= 1).all())
    if signal:  # a strong dependence beats every permutation: the smallest p the null allows
        assert torch.equal(est.p_value, torch.full((3,), 1 / 20, dtype=est.p_value.dtype))


def test_p_value_and_z_are_nan_without_a_null_and_z_is_nan_for_a_null_without_spread():
    x, y = _data()
    none = estimate_information(x, y, n_permutations=0)
    assert bool(none.p_value.isnan().all()) and bool(none.z.isnan().all()) and math.isnan(none.p_resolution)
    const = estimate_information(torch.ones(40, 3, dtype=torch.float64), y, n_permutations=5)
    assert bool(const.z.isnan()) and float(const.p_value) == 1.0  # every permutation ties the raw MI
