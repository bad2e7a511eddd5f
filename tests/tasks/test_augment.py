import random

import numpy as np
import pytest

from inforidge.tasks.augment import augment_pairs, build_augmenter, seeded

TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Lillian's brother [Robert] travelled to Amsterdam yesterday evening.",
    "Matrix entropy measures how spread the representations of a layer are.",
]


def test_reproducible_under_a_seed_and_different_under_another():
    a = augment_pairs(TEXTS, seed=0)
    b = augment_pairs(TEXTS, seed=0)
    c = augment_pairs(TEXTS, seed=1)
    assert a == b
    assert a != c
    assert len(a) == 2 and all(len(copy) == len(TEXTS) for copy in a)
    # two copies of the same prompt differ from each other and from the original
    assert all(x != y for x, y in zip(a[0], a[1], strict=True))
    assert all(x != t for x, t in zip(a[0], TEXTS, strict=True))


def test_independent_of_batching_and_restores_global_random_state():
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002
    before = (random.random(), np.random.random())  # noqa: NPY002
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002
    whole = augment_pairs(TEXTS, seed=5)
    after = (random.random(), np.random.random())  # noqa: NPY002
    assert before == after  # the caller's random streams are untouched
    one_by_one = [augment_pairs([t], seed=5, start_index=i) for i, t in enumerate(TEXTS)]
    assert [o[0][0] for o in one_by_one] == whole[0]
    assert [o[1][0] for o in one_by_one] == whole[1]


def test_whitespace_tokenizer_keeps_formatting_of_protected_words():
    aug = build_augmenter(stopwords=["[Robert]", "Lillian's"])
    out = augment_pairs([TEXTS[1]] * 6, seed=0, augmenter=aug)
    for copy in out:
        for text in copy:
            assert "[Robert]" in text and "Lillian's" in text
            assert "[ Robert" not in text and "Lillian ' s" not in text


def test_seeded_context_restores_state():
    random.seed(7)
    with seeded(1):
        x = random.random()
    with seeded(1):
        assert random.random() == x
    random.seed(7)
    y = random.random()
    random.seed(7)
    with seeded(2):
        pass
    assert random.random() == y


def test_bad_arguments():
    with pytest.raises(ValueError, match="augmenters"):
        build_augmenter(["shuffle"])
    with pytest.raises(ValueError, match="probability"):
        build_augmenter(p=1.5)
    with pytest.raises(ValueError, match="n_copies"):
        augment_pairs(TEXTS, n_copies=0)
    with pytest.raises(TypeError, match="not str"):
        augment_pairs([1])
