"""Batching helpers shared by every extraction path: positions in padded batches."""

from __future__ import annotations

import torch
from torch import Tensor


def special_prefix_length(tokenizer, prompt: str) -> int:
    """Number of special tokens the tokenizer puts before the prompt's own tokens (e.g. BOS)."""
    plain = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full = tokenizer(prompt)["input_ids"]
    n = len(plain)
    for k in range(len(full) - n + 1):
        if full[k : k + n] == plain:
            return k
    raise ValueError(f"could not find the prompt's tokens inside its tokenisation with special tokens: {prompt!r}")


def relative_positions(attention_mask: Tensor) -> Tensor:
    """(B, T) position of each column among the real tokens of its row (-1 on padding)."""
    rank = attention_mask.long().cumsum(1) - 1
    return torch.where(attention_mask.bool(), rank, torch.full_like(rank, -1))


def last_positions(attention_mask: Tensor) -> Tensor:
    """(B,) index of the last non-padding position, for left or right padding."""
    t = attention_mask.shape[1]
    idx = torch.arange(t, device=attention_mask.device).expand_as(attention_mask)
    return torch.where(attention_mask.bool(), idx, -1).max(1).values
