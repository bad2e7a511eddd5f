"""Batching shared by every extraction path: one pad, one pad id, one special-token template,
one eval mode, and the positions of real tokens in padded batches.

``pad_id`` and ``eval_mode`` are defined in :mod:`inforidge.models` (the load-time validation
needs them too) and re-exported here, so extraction code takes every batching helper from here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import Tensor

from inforidge.models.forward import pad_id
from inforidge.models.surgery import eval_mode

log = logging.getLogger(__name__)

T = TypeVar("T")

# First size tried by batch_size "auto"; halved on every out-of-memory error.
AUTO_BATCH_START = 256

__all__ = [
    "AUTO_BATCH_START",
    "BatchSizer",
    "eval_mode",
    "last_positions",
    "pad",
    "pad_id",
    "relative_positions",
    "special_prefix_length",
    "special_template",
]


def pad(seqs: Sequence[Sequence[int]], pad_token_id: int, side: str = "left") -> tuple[Tensor, Tensor]:
    """Token-id lists of different lengths -> input_ids, attention_mask, both (B, T) int64,
    T the longest list; the shorter ones filled with ``pad_token_id`` on ``side`` ("left" /
    "right"), where the mask is 0."""
    if side not in ("left", "right"):
        raise ValueError(f"padding side must be 'left' or 'right'; got {side!r}")
    if len(seqs) == 0:
        raise ValueError("nothing to pad: no sequences")
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        cols = slice(width - len(s), width) if side == "left" else slice(0, len(s))
        ids[row, cols] = torch.tensor(list(s), dtype=torch.long)
        mask[row, cols] = 1
    return ids, mask


def special_template(tokenizer, text: str = "a") -> tuple[list[int], list[int]]:
    """(prefix, suffix): the special-token ids the tokenizer puts around ``text`` (BOS;
    [CLS] ... [SEP]), read off ``text`` tokenized with and without special tokens.

    Raises ValueError when ``text``'s own tokens are not one contiguous run of its
    tokenization with special tokens (the specials change the text's tokens).
    """
    plain = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    full = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    n = len(plain)
    for k in range(len(full) - n + 1):
        if full[k : k + n] == plain:
            return full[:k], full[k + n :]
    raise ValueError(f"could not find the text's tokens inside its tokenisation with special tokens: {text!r}")


def special_prefix_length(tokenizer, prompt: str) -> int:
    """Number of special tokens the tokenizer puts before the prompt's own tokens (e.g. BOS)."""
    return len(special_template(tokenizer, prompt)[0])


def relative_positions(attention_mask: Tensor) -> Tensor:
    """(B, T) position of each column among the real tokens of its row (-1 on padding)."""
    rank = attention_mask.long().cumsum(1) - 1
    return torch.where(attention_mask.bool(), rank, torch.full_like(rank, -1))


def last_positions(attention_mask: Tensor) -> Tensor:
    """(B,) index of the last non-padding position, for left or right padding."""
    t = attention_mask.shape[1]
    idx = torch.arange(t, device=attention_mask.device).expand_as(attention_mask)
    return torch.where(attention_mask.bool(), idx, -1).max(1).values


class BatchSizer:
    """Runs work in consecutive chunks of a fixed size, or with ``setting="auto"`` of the largest
    size that fits: it starts at :data:`AUTO_BATCH_START` (or the size found by an earlier call:
    the sizer remembers it across checkpoints), halves on out-of-memory and goes on from the
    chunk that failed. ``size`` is the size in use (logged; runs record it in env.json).

    accelerate's ``find_executable_batch_size`` restarts the whole function after an OOM (the
    batches already done are redone) and shrinks by 0.9; this keeps the finished chunks and
    halves, and uses accelerate's own test of what counts as out-of-memory.
    """

    def __init__(self, setting: int | str):
        if setting == "auto":
            self.auto, self.size = True, AUTO_BATCH_START
        elif isinstance(setting, int) and not isinstance(setting, bool) and setting >= 1:
            self.auto, self.size = False, setting
        else:
            raise ValueError(f"batch_size must be a positive integer or 'auto'; got {setting!r}")
        self.halvings = 0

    def run(self, n: int, work: Callable[[int, int], T], *, what: str = "batch") -> list[T]:
        """``[work(start, stop) for consecutive chunks of 0..n]`` (at least one item each)."""
        from accelerate.utils.memory import clear_device_cache, should_reduce_batch_size

        out, start = [], 0
        while start < n:
            stop = min(n, start + self.size)
            try:
                out.append(work(start, stop))
            except Exception as e:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
                oom = isinstance(e, torch.OutOfMemoryError) or should_reduce_batch_size(e)
                if not (self.auto and oom):
                    raise
                if self.size == 1:
                    raise RuntimeError(f"out of memory with a {what} of 1: the model does not fit; use a smaller "
                                       "dtype (model.dtype) or a device with more memory") from e
                clear_device_cache(garbage_collection=True)
                self.size = max(1, (stop - start) // 2)
                self.halvings += 1
                log.info("batch_size auto: out of memory with a %s of %d, trying %d", what, stop - start, self.size)
                continue
            start = stop
        return out
