"""Attention from the last prompt position to the signal tokens (METHOD §4, paper Table 2).

Per block l = 1..L: the attention weights of the LAST real prompt position (the query word the
measurements read) to every earlier position, averaged over heads, then summarised per sample
and averaged over samples:

- ``attention_all``: mean weight over all real positions except position 0;
- ``attention_signal``: mean weight over the signal positions except position 0;
- ``attention_last``: the weight on the last position itself;
- ``attention_sink``: the weight on position 0 (reported so the choice below can be undone).

Position 0 is the first REAL token of the sequence as the model sees it (the BOS token when
the tokenizer adds one; with left padding it is not column 0 of the batch). It is left out as
the paper does (attention sink). The remaining weights are NOT renormalised: they are the
model's own softmax weights (each full row sums to 1 over positions 0..t), so a value reads
"share of the last position's attention", comparable to the paper's Table 2. Renormalising
over positions 1..t is ``value / (1 - attention_sink)``.

Eager attention is required: SDPA and flash kernels do not return weights. The model is switched
with ``set_attn_implementation("eager")`` for the pass and switched back afterwards
(:func:`eager_attention`); a model that cannot switch must be loaded with
``attn_implementation="eager"``. Padding is masked: padded keys get weight 0 from the model's
own mask, and positions are counted over real tokens only.

Signal positions: the records' ``signal_positions`` index the prompt's tokens as
``tokenizer(prompt, add_special_tokens=False)`` gives them; leading special tokens added by
the tokenizer (BOS) are detected per prompt and shifted over. Tasks without the field are
skipped by the run with a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from inforidge.extract.attention import last_position_attention, signal_token_mask
from inforidge.extract.batching import eval_mode, relative_positions, special_prefix_length
from inforidge.models.parts import ModelParts
from inforidge.models.surgery import eager_attention

METRICS = ("attention_all", "attention_signal", "attention_last", "attention_sink")


@dataclass
class AttentionProfile:
    """Per block (L) and sample (B): attention of the last real position, mean over heads.

    all / signal / last / sink: (L, B), see the module docstring (signal is NaN for a sample
    without signal tokens after position 0). row_sums: (L, B) sum of the full row over every
    key (1 up to round-off for a softmax). implementation: the attention implementation the
    model had before the pass (it ran eager).
    """

    all: Tensor
    signal: Tensor
    last: Tensor
    sink: Tensor
    row_sums: Tensor
    implementation: str | None = None

    def means(self) -> dict[str, Tensor]:
        """{metric: (L,)} averages over samples (NaN samples ignored)."""
        return {name: torch.nanmean(getattr(self, name.removeprefix("attention_")), 1) for name in METRICS}

    @staticmethod
    def concat(parts: Sequence[AttentionProfile]) -> AttentionProfile:
        cat = lambda name: torch.cat([getattr(p, name) for p in parts], 1)  # noqa: E731
        return AttentionProfile(cat("all"), cat("signal"), cat("last"), cat("sink"), cat("row_sums"),
                                parts[0].implementation)


def summarize_last_row(weights: Tensor, attention_mask: Tensor, signal: Tensor) -> AttentionProfile:
    """Summaries of the last real position's attention.

    weights: (L, B, T) attention of each row's last real position to every column, heads
    averaged; attention_mask: (B, T); signal: (B, T) bool signal columns.
    """
    mask = attention_mask.bool().to(weights.device)
    rel = relative_positions(attention_mask).to(weights.device)
    last_rel = rel.max(1).values
    keys = mask & (rel >= 1)  # every real position except position 0
    sig = signal.to(weights.device) & keys
    is_last = mask & (rel == last_rel[:, None])
    is_sink = mask & (rel == 0)
    w = weights.float()

    def mean_over(sel: Tensor) -> Tensor:
        n = sel.sum(1).to(w.dtype)
        total = (w * sel).sum(-1)
        return torch.where(n > 0, total / n.clamp_min(1), torch.full_like(total, float("nan")))

    return AttentionProfile(
        all=mean_over(keys), signal=mean_over(sig), last=(w * is_last).sum(-1), sink=(w * is_sink).sum(-1),
        row_sums=w.sum(-1),
    )


def attention_profile(parts: ModelParts, tokenizer, prompts: Sequence[str],
                      signal_positions: Sequence[Sequence[int]], *, batch_size: int = 32,
                      signal_prefix: str | None = None) -> AttentionProfile:
    """Attention of the last prompt position to all / signal tokens for every block.

    prompts and signal_positions: one entry per sample. ``signal_prefix``: when given, every
    signal token must start with it (a check that the positions point at the right tokens).
    The model is switched to eager attention for the pass and restored afterwards.
    """
    if len(prompts) != len(signal_positions) or not prompts:
        raise ValueError("need one list of signal positions per prompt, and at least one prompt")
    model = parts.model
    chunks = []
    with eval_mode(model), eager_attention(model) as previous:
        for i in range(0, len(prompts), batch_size):
            batch = list(prompts[i : i + batch_size])
            enc = tokenizer(batch, return_tensors="pt", padding=True)
            offsets = [special_prefix_length(tokenizer, p) for p in batch]
            signal = signal_token_mask(enc["attention_mask"], signal_positions[i : i + batch_size], offsets)
            if signal_prefix is not None:
                tokens = [tokenizer.convert_ids_to_tokens(int(t)) for t in enc["input_ids"][signal]]
                wrong = [t for t in tokens if not str(t).lstrip("Ġ▁ ").startswith(signal_prefix)]
                if wrong:
                    raise ValueError(f"signal positions point at tokens {wrong[:5]} that do not start with "
                                     f"{signal_prefix!r}; they do not index this tokenizer's tokens")
            weights = last_position_attention(parts, enc["input_ids"], enc["attention_mask"])
            chunks.append(summarize_last_row(weights, enc["attention_mask"], signal))
    profile = AttentionProfile.concat(chunks)
    profile.implementation = previous
    return profile


def attention_rows(profile: AttentionProfile, *, split: str, step: int, seed: int) -> list[dict]:
    """Tidy rows: metric in :data:`METRICS`, layer l = 1..L (block l), value = mean over samples.

    ``n_samples`` counts the samples; the Rényi settings do not apply (None); ``final_norm``
    is None. Extra column ``attention_implementation`` records the implementation the model
    had before it was switched to eager for the pass.
    """
    n = int(profile.all.shape[1])
    common = {"step": int(step), "split": split, "seed": int(seed), "n_samples": n, "alpha": None,
              "kernel": None, "sigma": None, "base": None, "final_norm": None, "label_view": None,
              "n_permutations": None, "attention_implementation": f"eager (model had {profile.implementation})"}
    rows = []
    for metric, values in profile.means().items():
        rows += [{**common, "metric": metric, "layer": layer, "value": float(v)}
                 for layer, v in enumerate(values.tolist(), start=1)]
    return rows
