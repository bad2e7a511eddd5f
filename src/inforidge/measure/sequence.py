"""Rows of the multi-token analysis: per decoding step and layer, the information
between the generated states and the whole gold target (sequence kernel), and the
content-vs-stopword split.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from inforidge.config.settings import SequenceInfoSettings
from inforidge.extract.generated import GeneratedStates
from inforidge.info import gram_matrix, information_from_grams
from inforidge.measure.rows import NO_STEP, estimate_rows
from inforidge.tasks.stopwords import TYPE_GROUPS

log = logging.getLogger(__name__)

SEQUENCE_METRIC = "sequence_information"
TARGET_ENTROPY = "target_entropy"


def sequence_information_rows(states: GeneratedStates, ky: Tensor, settings: SequenceInfoSettings | None = None,
                              *, split: str = "all", extra: dict | None = None, progress: bool = False) -> list[dict]:
    """Rows of I(h_l^(t); Y) for every step t and layer l (and the content/stopword split).

    ky: (N, N) target Gram (:func:`~inforidge.info.sequence_gram`), samples in the states' order.
    """
    st = settings or SequenceInfoSettings()
    n = states.hidden.shape[2]
    if ky.shape != (n, n):
        raise ValueError(f"ky has shape {tuple(ky.shape)} but there are {n} generated samples")
    if n < 2:
        raise ValueError(f"{n} sample(s): the information needs at least 2 (use more samples)")
    stack, index = states.views_stacked(st.final_norm_views)
    base = {"n_samples": n, **st.row_settings(), **(extra or {})}
    rows: list[dict] = []
    for t in tqdm(range(states.n_steps), desc="information", disable=not progress):
        kx = gram_matrix(stack[t], "gaussian", sigma=st.sigma)
        est = information_from_grams(kx, ky, alpha=st.alpha, base=st.base, n_permutations=st.n_permutations,
                                     seed=st.seed)
        common = {**base, "step": t, "split": split, "seed": st.seed, "token_group": "all"}
        rows += estimate_rows(est, index, common, SEQUENCE_METRIC, entropy_y=TARGET_ENTROPY)
    rows += token_group_rows(states, ky, st, stack=stack, index=index, extra=extra)
    return rows


def token_group_draws(states: GeneratedStates, seed: int, min_samples: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """{group: (sample indices, steps)} of one draw of the content/stopword split (module doc),
    both groups of equal size; None when a group has fewer than ``min_samples`` samples."""
    masks = states.group_mask()
    eligible = {g: np.nonzero(m.any(1))[0] for g, m in masks.items()}
    size = min(len(e) for e in eligible.values())
    if size < max(min_samples, 2):
        return None
    rng = np.random.default_rng(np.random.SeedSequence([seed, 8]))
    out = {}
    for g in TYPE_GROUPS:
        samples = np.sort(rng.choice(eligible[g], size, replace=False))
        steps = np.array([rng.choice(np.nonzero(masks[g][i])[0]) for i in samples])
        out[g] = (samples, steps)
    return out


def token_group_rows(states: GeneratedStates, ky: Tensor, settings: SequenceInfoSettings, *, stack=None,
                     index=None, extra: dict | None = None) -> list[dict]:
    """Content vs stopword(+punctuation) rows (step :data:`~inforidge.measure.rows.NO_STEP`,
    split = group), one set per type seed."""
    st = settings
    if stack is None:
        stack, index = states.views_stacked(st.final_norm_views)
    rows: list[dict] = []
    for seed in st.type_seeds:
        draw = token_group_draws(states, seed, st.min_type_samples)
        if draw is None:
            counts = {g: int(m.any(1).sum()) for g, m in states.group_mask().items()}
            log.warning("content/stopword split skipped: samples with a token of each group %s, need >= %d in both",
                        counts, max(st.min_type_samples, 2))
            return []
        for group, (samples, steps) in draw.items():
            s, i = torch.as_tensor(steps), torch.as_tensor(samples)
            x = stack[s, :, i].transpose(0, 1)  # (M, n, D): sample i's state at its drawn step
            kx = gram_matrix(x, "gaussian", sigma=st.sigma)
            est = information_from_grams(kx, ky[i][:, i], alpha=st.alpha, base=st.base,
                                         n_permutations=st.n_permutations, seed=seed)
            common = {"n_samples": len(samples), **st.row_settings(), **(extra or {}), "step": NO_STEP, "split": group,
                      "seed": seed, "token_group": group}
            rows += estimate_rows(est, index, common, SEQUENCE_METRIC, entropy_y=TARGET_ENTROPY)
    return rows
