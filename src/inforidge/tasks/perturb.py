"""Stress inputs for the Layer-by-Layer suite (Skean et al. 2025, §5 and App. E).

Each stress is a sweep over one parameter; every value runs the suite (without the
augmentation metrics) on perturbed token sequences and writes rows with two extra columns,
``stress`` and ``stress_value``:

- ``repetition`` (p): the paper's "increasing repetition": each content token is replaced
  with probability p by ONE token drawn per prompt from the prompt itself (App. E.1's
  examples repeat a single word: "Mint records Mint Mint Mint gold dollars ..."). p = 0 is
  the unperturbed prompt; p = 1 repeats one token throughout.
- ``randomness`` (p): each content token is replaced with probability p by a token drawn
  uniformly from the vocabulary, special tokens excluded (App. E.2). The length in tokens
  does not change.
- ``length`` (n): every prompt with at least n content tokens, truncated to its first n
  (plus the tokenizer's special tokens; prompts shorter than n are left out of that value,
  ``n_samples`` says how many remain).

Perturbations act on content tokens only (the tokenizer's special tokens, [CLS]/[SEP] or
BOS, are added back afterwards) and are seeded per (seed, stress, value, prompt index).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STRESSES = ("repetition", "randomness", "length")


def _rng(seed: int, kind: str, value: float, prompt_index: int) -> np.random.Generator:
    """Seeded by (seed, stress, value, prompt): a value's perturbation does not depend on the others swept."""
    return np.random.default_rng([int(seed), STRESSES.index(kind), int(round(value * 1e6)), int(prompt_index)])


def _check_p(p: float, what: str) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{what} probabilities must lie in [0, 1]; got {p}")
    return p


def repeat_tokens(ids: Sequence[int], p: float, rng: np.random.Generator) -> list[int]:
    """Replace each token with probability p by one token drawn from the prompt itself."""
    ids = list(ids)
    if not ids:
        return ids
    token = ids[int(rng.integers(len(ids)))]
    hit = rng.random(len(ids)) < p
    return [token if h else t for t, h in zip(ids, hit, strict=True)]


def randomize_tokens(ids: Sequence[int], p: float, rng: np.random.Generator, vocab: np.ndarray) -> list[int]:
    """Replace each token with probability p by a token drawn uniformly from ``vocab``."""
    ids = list(ids)
    hit = rng.random(len(ids)) < p
    draws = vocab[rng.integers(len(vocab), size=len(ids))]
    return [int(d) if h else t for t, h, d in zip(ids, hit, draws, strict=True)]


def content_vocabulary(tokenizer) -> np.ndarray:
    """Token ids of the tokenizer's vocabulary without its special tokens."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    return np.array([i for i in range(len(tokenizer)) if i not in special], dtype=np.int64)
