"""Prompt augmentations for the augmentation-invariance metrics (InfoNCE, LiDAR, DiME).

Follows "Layer by Layer" (Skean et al. 2025, App. D): an ``nlpaug`` pipeline of three
augmenters with the library's default settings, applied in sequence,

    SplitAug        (words split in two by a space, aug_p = 0.3)
    RandomCharAug   (random character edits; action "substitute" by default, aug_char_p = aug_word_p = 0.3)
    KeyboardAug     (QWERTY-neighbour typos, aug_char_p = aug_word_p = 0.3)

and TWO augmented copies of every prompt (the metrics compare copy A with copy B, never
with the original). Everything runs offline (nlpaug bundles its keyboard maps).

Two deliberate deviations from nlpaug's defaults (research/DATA.md §9):

- ``tokenizer=str.split`` and ``reverse_tokenizer=" ".join``: nlpaug's default tokenizer
  splits punctuation and re-joins with spaces, which rewrites text even where nothing was
  augmented (``[Lillian]`` -> ``[ Lillian]``, ``Lillian's`` -> ``Lillian ' s``). With the
  whitespace tokenizer only augmented words change; runs of whitespace (newlines) collapse
  to one space.
- Seeding: nlpaug draws from Python's ``random`` and NumPy's global state. Each prompt is
  augmented under its own seed derived from ``(seed, index of the prompt, copy)``, inside
  :func:`seeded` which restores both global states afterwards, so the augmentations are
  reproducible, independent of batching, and leave the caller's random state untouched.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

AUGMENTERS = ("split", "random_char", "keyboard")


RANDOM_CHAR_ACTIONS = ("substitute", "insert", "swap", "delete")


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python's ``random`` and NumPy's global RNG; restore both states on exit."""
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002 (nlpaug uses the global state)
    random.seed(int(seed))
    np.random.seed(int(seed) % (2**32))  # noqa: NPY002
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002


def build_augmenter(
    augmenters: Sequence[str] = AUGMENTERS,
    *,
    p: float = 0.3,
    random_char_action: str = "substitute",
    stopwords: Sequence[str] | None = None,
):
    """The nlpaug pipeline (``nlpaug.flow.Sequential``) of the paper's augmenters.

    Args:
        augmenters: any of "split", "random_char", "keyboard", applied in this order.
        p: the augmenters' probabilities (nlpaug's default 0.3 for aug_p, aug_char_p and
            aug_word_p; the paper uses the defaults).
        random_char_action: RandomCharAug's edit: substitute (nlpaug's default), insert,
            swap or delete.
        stopwords: words never augmented (e.g. names or answer words).
    """
    from inforidge._optional import require

    require("nlpaug", "the augmentations (InfoNCE, LiDAR, DiME)")
    import nlpaug.augmenter.char as nac
    import nlpaug.augmenter.word as naw
    import nlpaug.flow as naf

    unknown = [a for a in augmenters if a not in AUGMENTERS]
    if unknown or not augmenters:
        raise ValueError(f"augmenters must be a non-empty subset of {AUGMENTERS}; got {list(augmenters)}")
    if random_char_action not in RANDOM_CHAR_ACTIONS:
        raise ValueError(f"random_char_action must be one of {RANDOM_CHAR_ACTIONS}; got {random_char_action!r}")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1]; got {p}")
    common = {"tokenizer": str.split, "reverse_tokenizer": " ".join,
              "stopwords": list(stopwords) if stopwords else None}
    steps = []
    for name in augmenters:
        if name == "split":
            steps.append(naw.SplitAug(aug_p=p, **common))
        elif name == "random_char":
            steps.append(nac.RandomCharAug(action=random_char_action, aug_char_p=p, aug_word_p=p, **common))
        else:
            steps.append(nac.KeyboardAug(aug_char_p=p, aug_word_p=p, **common))
    return naf.Sequential(steps)


def _prompt_seed(seed: int, index: int, copy: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(index), int(copy)]).generate_state(1)[0])


def augment_pairs(
    texts: Sequence[str],
    *,
    seed: int = 0,
    n_copies: int = 2,
    augmenter=None,
    start_index: int = 0,
) -> list[list[str]]:
    """``n_copies`` augmented versions of every text: a list of ``n_copies`` lists, each
    aligned with ``texts`` (``out[0][i]`` and ``out[1][i]`` are two augmentations of
    ``texts[i]``).

    Prompt i (``start_index + i``) copy c is augmented under the seed derived from
    ``(seed, start_index + i, c)``, so the result depends only on the seed and the prompt's
    position, not on batching. ``augmenter`` defaults to :func:`build_augmenter`'s paper
    pipeline. A copy that nlpaug cannot change (e.g. a prompt of short words) equals the text.
    """
    if int(n_copies) != n_copies or n_copies < 1:
        raise ValueError(f"n_copies must be an integer >= 1; got {n_copies}")
    aug = augmenter if augmenter is not None else build_augmenter()
    out: list[list[str]] = [[] for _ in range(n_copies)]
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
        for c in range(n_copies):
            with seeded(_prompt_seed(seed, start_index + i, c)):
                res = aug.augment(text) if text.strip() else [text]
            out[c].append(res[0] if isinstance(res, list) and res else (res if isinstance(res, str) else text))
    return out


__all__ = ["AUGMENTERS", "augment_pairs", "build_augmenter", "seeded"]
