"""Attention weights of the last position, per layer and head (eager attention),
and the mask of signal tokens in a padded batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from inforidge.extract.batching import relative_positions
from inforidge.models.forward import accepts_argument, position_ids_from_mask
from inforidge.models.parts import ModelParts


def signal_token_mask(attention_mask: Tensor, signal_positions: Sequence[Sequence[int]],
                      offsets: Sequence[int] | None = None) -> Tensor:
    """(B, T) True at the columns holding each row's signal tokens.

    signal_positions[b]: positions among the prompt's own tokens; offsets[b]: special tokens
    before them (default 0). Padding (left or right) is accounted for.
    """
    rel = relative_positions(attention_mask)
    lengths = attention_mask.long().sum(1)
    out = torch.zeros_like(attention_mask, dtype=torch.bool)
    for b, positions in enumerate(signal_positions):
        shift = 0 if offsets is None else int(offsets[b])
        wanted = torch.tensor([int(p) + shift for p in positions], dtype=torch.long)
        if len(wanted) and (int(wanted.min()) < 0 or int(wanted.max()) >= int(lengths[b])):
            raise ValueError(f"row {b}: signal positions {list(positions)} (+{shift}) fall outside its "
                             f"{int(lengths[b])} tokens")
        out[b] = torch.isin(rel[b], wanted) & attention_mask[b].bool()
    return out


@torch.no_grad()
def last_position_attention(parts: ModelParts, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """(L, B, T) attention of each row's last real position, averaged over heads (float32, CPU).

    The model must already run eager attention (see :func:`eager_attention`).
    """
    model = parts.model
    device = parts.device
    ids, mask = input_ids.to(device), attention_mask.to(device)
    kwargs = {}
    if accepts_argument(model, "position_ids"):
        kwargs["position_ids"] = position_ids_from_mask(mask)
    out = model(input_ids=ids, attention_mask=mask, output_attentions=True, use_cache=False, **kwargs)
    attentions = getattr(out, "attentions", None)
    if not attentions or attentions[0] is None:
        raise RuntimeError(f"{type(model).__name__} returned no attention weights; it needs eager attention")
    if len(attentions) != parts.num_layers:
        raise RuntimeError(f"got {len(attentions)} attention maps for {parts.num_layers} blocks")
    last = torch.where(mask.bool(), torch.arange(mask.shape[1], device=device), -1).max(1).values
    rows = torch.arange(ids.shape[0], device=device)
    picked = []
    for a in attentions:  # (B, H, T, T)
        a = a.to(device)
        picked.append(a[rows, :, last, :].float().mean(1).cpu())  # (B, T)
    return torch.stack(picked)
