"""A permutation null drawn within groups (e.g. prompts of equal length)."""

import pytest
import torch

from inforidge.info import estimate_information
from inforidge.info.entropy import permutations


def test_permutations_stay_within_their_groups_and_are_seeded():
    groups = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2, 1, 0])
    perms = permutations(10, 25, seed=3, groups=groups)
    assert perms.shape == (25, 10)
    for row in perms:
        assert sorted(row.tolist()) == list(range(10))
        assert torch.equal(groups[row], groups), "a sample is only swapped with its own group"
    assert torch.equal(perms, permutations(10, 25, seed=3, groups=groups.numpy()))
    assert not torch.equal(perms, permutations(10, 25, seed=4, groups=groups))
    assert torch.equal(permutations(10, 4, seed=3), permutations(10, 4, seed=3, groups=None))


def test_groups_must_label_every_sample():
    with pytest.raises(ValueError, match="one label per sample"):
        permutations(5, 2, seed=0, groups=[0, 1])


def _length_leak(n=120, signal=0.0, seed=0):
    """States and labels that both carry the prompt length; labels carry the class too, and the
    states carry it with weight ``signal``."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(4, 13, (n,), generator=g)
    classes = torch.randint(0, 13, (n,), generator=g)
    position = torch.randn(13, 16, generator=g, dtype=torch.float64)
    word = torch.randn(13, 16, generator=g, dtype=torch.float64)
    x = torch.randn(3, n, 16, generator=g, dtype=torch.float64) * 0.5 + position[lengths] + signal * word[classes]
    y = word[classes] + position[lengths]
    return x, y, lengths


def test_plain_null_reads_the_shared_length_as_information_and_the_stratified_null_does_not():
    x, y, lengths = _length_leak()
    plain = estimate_information(x, y, n_permutations=20, seed=0)
    stratified = estimate_information(x, y, n_permutations=20, seed=0, groups=lengths)
    assert torch.equal(plain.mi, stratified.mi), "the raw MI does not depend on the null"
    assert (plain.corrected > 0.3).all(), "length alone looks like 'predictive information'"
    assert stratified.corrected.abs().max() < 0.05


def test_the_stratified_null_keeps_real_dependence():
    x, y, lengths = _length_leak(signal=2.0)
    stratified = estimate_information(x, y, n_permutations=20, seed=0, groups=lengths)
    assert (stratified.corrected > 0.2).all()
