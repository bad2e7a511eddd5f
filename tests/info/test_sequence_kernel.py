"""The sequence kernel of the multi-token extension (METHOD §5) against independent computations."""

import math

import pytest
import torch

from inforidge.info import gram_matrix, information_from_grams, sequence_gram
from inforidge.info.sequence_kernel import check_positive_semidefinite, sequence_gram_reference


def _padded(n=9, t_max=6, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, t_max, d, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, t_max + 1, (n,), generator=g)
    mask = torch.arange(t_max)[None] < lengths[:, None]
    return emb, mask


@pytest.mark.parametrize("sigma", [1.0, 0.4, 2.5])
@pytest.mark.parametrize("max_elements", [1, 17, 1 << 24])  # chunks of one sample, a few samples, all
def test_matches_double_loop(sigma, max_elements):
    emb, mask = _padded()
    fast = sequence_gram(emb, mask, sigma=sigma, max_elements=max_elements)
    slow = sequence_gram_reference(emb, mask, sigma=sigma)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-12)


def test_without_normalisation_matches_double_loop():
    emb, mask = _padded(seed=1)
    torch.testing.assert_close(sequence_gram(emb, mask, sigma=3.0, normalize=False),
                               sequence_gram_reference(emb, mask, sigma=3.0, normalize=False), rtol=0, atol=1e-12)


def test_positive_semidefinite_and_symmetric():
    emb, mask = _padded(n=40, t_max=12, d=3, seed=2)  # low dimension: many near-duplicate tokens
    k = sequence_gram(emb, mask, sigma=0.3)
    assert torch.equal(k, k.T)
    assert float(torch.linalg.eigvalsh(k)[0]) >= -1e-10
    assert float(k.min()) >= 0 and float(k.max()) <= 1 + 1e-12


def test_padding_is_ignored_even_if_not_finite():
    emb, mask = _padded(seed=3)
    k = sequence_gram(emb, mask)
    emb2 = emb.clone()
    emb2[~mask] = float("nan")
    torch.testing.assert_close(sequence_gram(emb2, mask), k, rtol=0, atol=0)


def test_single_token_targets_reduce_to_the_gaussian_gram():
    emb, _ = _padded(n=8, t_max=1, seed=4)
    mask = torch.ones(8, 1, dtype=torch.bool)
    torch.testing.assert_close(sequence_gram(emb, mask, sigma=0.7), gram_matrix(emb[:, 0], sigma=0.7),
                               rtol=0, atol=1e-12)


def test_token_order_and_repetition_do_not_matter():
    """A mean embedding: permuting a target's tokens changes nothing; a target repeated twice
    equals itself."""
    emb, mask = _padded(n=5, t_max=4, seed=5)
    mask[:] = True
    k = sequence_gram(emb, mask)
    perm = emb[:, torch.tensor([2, 0, 3, 1])]
    torch.testing.assert_close(sequence_gram(perm, mask), k, rtol=0, atol=1e-12)
    doubled = torch.cat([emb, emb], 1)
    torch.testing.assert_close(sequence_gram(doubled, torch.ones(5, 8, dtype=torch.bool)), k, rtol=0, atol=1e-12)


def test_median_bandwidth_runs_and_differs_from_fixed():
    emb, mask = _padded(seed=6)
    k = sequence_gram(emb, mask, sigma="median")
    assert k.shape == (9, 9) and not torch.allclose(k, sequence_gram(emb, mask, sigma=1.0))


def test_usable_by_the_estimators_with_the_null():
    """As ky in information_from_grams: a representation that encodes the target's mean embedding
    carries information well above the permutation null; independent noise does not."""
    emb, mask = _padded(n=30, t_max=5, d=4, seed=7)
    ky = sequence_gram(emb, mask)
    mean = (emb * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    noise = torch.randn(30, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    kx = gram_matrix(torch.stack([mean, noise]), sigma=0.5)
    est = information_from_grams(kx, ky, n_permutations=30, seed=0)
    assert est.null.shape == (30, 2)
    assert math.isfinite(float(est.entropy_y)) and float(est.entropy_y) > 0
    assert float(est.corrected[0]) > 5 * float(est.null_std[0])
    assert abs(float(est.corrected[1])) < 3 * float(est.null_std[1]) + 1e-3


def test_bad_input_errors():
    emb, mask = _padded()
    with pytest.raises(ValueError, match=r"\(N, T_max, D\)"):
        sequence_gram(emb[0], mask[0])
    with pytest.raises(ValueError, match="mask must have shape"):
        sequence_gram(emb, mask[:, :2])
    empty = mask.clone()
    empty[3] = False
    with pytest.raises(ValueError, match=r"target\(s\) \[3\] have no tokens"):
        sequence_gram(emb, empty)
    with pytest.raises(ValueError, match="at least 2 targets"):
        sequence_gram(emb[:1], mask[:1])
    bad = emb.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN/inf"):
        sequence_gram(bad, mask)
    with pytest.raises(ValueError, match="sigma"):
        sequence_gram(emb, mask, sigma=0.0)


def test_psd_check_rejects_an_indefinite_matrix():
    with pytest.raises(ValueError, match="not positive semi-definite"):
        check_positive_semidefinite(torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64))
