"""Rows of the sub-layer view: prompt entropy after attention, MLP and residual adds."""

from __future__ import annotations

import warnings

import torch

from inforidge.extract.batching import eval_mode, pad, pad_id
from inforidge.extract.sublayers import POINTS, _spec_for, capture_sublayers
from inforidge.info.layer_metrics import prompt_entropy
from inforidge.models.forward import accepts_argument, position_ids_from_mask

METRIC = "sublayer_prompt_entropy"


def _encode(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, add_special_tokens=True)
    return [list(ids) for ids in enc["input_ids"]]


def depth_fraction(layer: int, point: str, num_layers: int) -> float:
    """(layer - 1 + k / 4) / L with k = 1..4 the point's rank in :data:`POINTS`.

    Places the sub-layer points of block l evenly in ((l - 1) / L, l / L], so that
    mlp_residual of block l sits at l / L, the depth fraction of layer l in the layer-level
    plots, and the four points of a block are ordered as they are computed.
    """
    return (layer - 1 + (POINTS.index(point) + 1) / 4) / num_layers


@torch.no_grad()
def sublayer_entropy_rows(
    model,
    tokenizer,
    texts: list[str],
    *,
    batch_size: int = 8,
    max_length: int = 128,
    alpha: float = 1.0,
    base: float = 2.0,
    seed: int = 0,
    split: str = "text",
    min_tokens: int = 2,
) -> list[dict]:
    """Prompt entropy at every sub-layer point of every block, averaged over prompts.

    Each text is tokenized (special tokens added, truncated to ``max_length`` tokens),
    batched ``batch_size`` at a time and padded on ``tokenizer.padding_side`` (left or
    right; the pad id is irrelevant, padding is masked). The model runs in eval mode (its
    mode is restored) with ``attention_mask`` and, where its forward takes them, position
    ids counting real tokens only, so padding changes neither positions nor states. Only
    the base model runs (no LM head). For every (B, T, D) sub-layer state,
    :func:`inforidge.info.layer_metrics.prompt_entropy` (padding masked; centred,
    unit-norm tokens; linear kernel) gives one entropy per prompt; the value is the mean
    over prompts. Texts with fewer than ``min_tokens`` tokens (at least 2: prompt entropy
    needs two) are skipped (with a warning); ``n_samples`` counts the prompts used.

    Returns:
        One row per (block l = 1..L, point) with the standard result keys (step 0,
        ``split``, metric "sublayer_prompt_entropy", layer l, value, seed, n_samples, alpha,
        base, kernel "linear", final_norm "pre" ("none" for post-LN encoders): no final norm is applied) plus
        ``sublayer`` (the point name) and ``depth_fraction`` (see :func:`depth_fraction`).
        ``seed`` is recorded only: the computation is deterministic.
    """
    if isinstance(texts, str) or not isinstance(texts, list | tuple):
        raise TypeError(f"texts must be a list of strings; got {type(texts).__name__}")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must be strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
    if not texts:
        raise ValueError("texts is empty; sub-layer entropy needs at least one prompt")
    if batch_size < 1 or max_length < 2 or min_tokens < 2:
        raise ValueError(f"need batch_size >= 1, max_length >= 2 and min_tokens >= 2; got {batch_size}, "
                         f"{max_length}, {min_tokens}")
    side = getattr(tokenizer, "padding_side", "right")
    if side not in ("left", "right"):
        raise ValueError(f"tokenizer.padding_side must be 'left' or 'right'; got {side!r}")

    seqs = _encode(tokenizer, texts, max_length)
    kept = [s for s in seqs if len(s) >= min_tokens]
    if not kept:
        raise ValueError(
            f"none of the {len(texts)} texts has at least {min_tokens} tokens after tokenization; "
            "give longer prompts (or a smaller min_tokens, at least 2)"
        )
    if len(kept) < len(seqs):
        warnings.warn(
            f"skipped {len(seqs) - len(kept)} of {len(seqs)} texts with fewer than {min_tokens} tokens",
            stacklevel=2,
        )
    fill = pad_id(tokenizer, model)

    runner = getattr(model, "base_model", model)  # skips the (B, T, V) LM head
    device = model.get_input_embeddings().weight.device
    extra = {"use_cache": False} if accepts_argument(runner, "use_cache") else {}
    with_positions = accepts_argument(runner, "position_ids")
    sums: dict[tuple[int, str], float] = {}
    with eval_mode(model), capture_sublayers(model) as cap:
        for start in range(0, len(kept), batch_size):
            ids, mask = pad(kept[start : start + batch_size], fill, side)
            ids, mask = ids.to(device), mask.to(device)
            kwargs = dict(extra)
            if with_positions:
                # Positions count real tokens, so left padding does not shift them (for
                # BERT's absolute positions too: 0..n-1 is its default for right padding).
                kwargs["position_ids"] = position_ids_from_mask(mask)
            cap.states.clear()
            runner(input_ids=ids, attention_mask=mask, **kwargs)
            for key, z in cap.states.items():
                h = prompt_entropy(z, mask, alpha, base).raw  # (B,) float64
                sums[key] = sums.get(key, 0.0) + float(h.sum())
        num_layers = cap.num_layers

    n = len(kept)
    capture_style = _spec_for(model).style
    rows = []
    for layer in range(1, num_layers + 1):
        for point in POINTS:
            rows.append({
                "step": 0, "split": split, "metric": METRIC, "layer": layer,
                "value": sums[(layer, point)] / n, "seed": int(seed), "n_samples": n,
                "alpha": float(alpha), "base": float(base), "kernel": "linear", "sigma": None,
                # No final norm is applied; encoders (post-LN) have none to speak of.
                "final_norm": "none" if capture_style == "post_ln" else "pre",
                "label_view": None, "n_permutations": None,
                "sublayer": point, "depth_fraction": depth_fraction(layer, point, num_layers),
            })
    return rows
