"""Extraction: one forward pass per batch gives every layer's state at the last real position.

Layers are indexed 0..L (0 = embedding output, l = output of block l). Two views of layer L:
"pre"  - the raw residual stream entering the final norm (like every other layer);
"post" - the output of the final norm, as Hugging Face returns ``hidden_states[-1]`` (for
         OPT-style models that project after the norm, the state before that projection).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from inforidge.config.settings import FINAL_NORM_VIEWS
from inforidge.extract.batching import BatchSizer, eval_mode, last_positions
from inforidge.models.forward import capture_positions
from inforidge.models.parts import ModelParts, context_length


@dataclass
class LayerStates:
    """States of B samples at their last non-padding position.

    hidden: (L+1, B, D) raw residual stream, layer L before the final norm ("pre" view).
    final_normed: (B, D) layer L after the final norm ("post" view).
    labels: {label view: (B, D)} embedding of the true next token.
    early_exit: (L+1, B) arg-max token of final norm + LM head applied to each layer.
    target_ids: (B,) true next-token ids.
    label_tokens: (B, T, D) input-token embeddings of every token of the whole target, padded,
        and label_mask: (B, T) True at its real tokens; only for the ``whole`` multi-token
        policy (set by the Evaluator; None otherwise, and :meth:`concat` does not carry them).
    """

    hidden: Tensor
    final_normed: Tensor
    labels: dict[str, Tensor]
    early_exit: Tensor
    target_ids: Tensor
    label_tokens: Tensor | None = None
    label_mask: Tensor | None = None

    def stack(self, final_norm: str = "post") -> Tensor:
        """(L+1, B, D) layers 0..L in the chosen final-norm view."""
        if final_norm == "pre":
            return self.hidden
        if final_norm == "post":
            return torch.cat([self.hidden[:-1], self.final_normed[None]], 0)
        raise ValueError(f"final_norm must be one of {FINAL_NORM_VIEWS}; got {final_norm!r}")

    def views_stacked(self, views: Sequence[str], deltas: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
        """All requested final-norm views in one stack, sharing layers 0..L-1.

        Returns (M, B, D) and, per view, the indices (L+1 for states, L for deltas) into it,
        so an estimator runs once on the shared layers instead of once per view.
        """
        n = self.hidden.shape[0] - 1  # L
        last = {"post": self.final_normed, "pre": self.hidden[-1]}
        shared = self.hidden[1:n] - self.hidden[: n - 1] if deltas else self.hidden[:n]
        tails = [last[v] - self.hidden[n - 1] if deltas else last[v] for v in views]
        stack = torch.cat([shared, torch.stack(tails)], 0)
        k = shared.shape[0]
        index = {v: torch.cat([torch.arange(k), torch.tensor([k + i])]) for i, v in enumerate(views)}
        return stack, index

    @staticmethod
    def concat(parts: Sequence[LayerStates]) -> LayerStates:
        return LayerStates(
            hidden=torch.cat([p.hidden for p in parts], 1),
            final_normed=torch.cat([p.final_normed for p in parts], 0),
            labels={k: torch.cat([p.labels[k] for p in parts], 0) for k in parts[0].labels},
            early_exit=torch.cat([p.early_exit for p in parts], 1),
            target_ids=torch.cat([p.target_ids for p in parts], 0),
        )


def append_targets(input_ids: Tensor, attention_mask: Tensor, target_ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """[prompt; target] per row: each target goes right after its prompt's last real token.

    input_ids, attention_mask: (B, T), left or right padded; target_ids: (B,).
    Returns ids and mask (B, T+1) and the prompt's last real position (B,). The extra
    column is padding for right-padded rows; for left-padded rows it holds the target.
    """
    b = input_ids.shape[0]
    last = last_positions(attention_mask)
    if (last < 0).any():
        raise ValueError("a prompt tokenised to no tokens; every prompt needs at least one token")
    ids = torch.cat([input_ids, input_ids.new_zeros((b, 1))], 1)
    mask = torch.cat([attention_mask, attention_mask.new_zeros((b, 1))], 1)
    rows = torch.arange(b, device=input_ids.device)
    ids[rows, last + 1] = target_ids.to(ids.device)
    mask[rows, last + 1] = 1
    return ids, mask, last


def _check_length(parts: ModelParts, attention_mask: Tensor) -> None:
    limit = context_length(parts.model.config)
    longest = int(attention_mask.sum(1).max()) + 1  # + the appended target
    if limit is not None and longest > limit:
        raise ValueError(
            f"a prompt of {longest - 1} tokens plus its target exceeds the model's {limit} positions; "
            "shorten the prompts"
        )


@torch.no_grad()
def extract_states(parts: ModelParts, input_ids: Tensor, attention_mask: Tensor, target_ids: Tensor) -> LayerStates:
    """Run ONE forward pass on a batch and read all layers at the last real prompt position.

    input_ids, attention_mask: (B, T), left or right padded. target_ids: (B,).
    The pass runs on [prompt; target]: a causal model's states at the prompt's positions
    do not see the appended token, and the embedding output (``hidden_states[0]``) at the
    target's position is the paper's label view "embedding_output" (token + absolute
    position embedding for GPT-2 / OPT, the scaled token embedding for Gemma, the token
    embedding for rotary models) for every architecture without per-model code.
    "token_embedding" is the input-embedding module applied to the target.
    States are returned as float32 on the CPU (with device_map, gathered from every device).
    Each layer is kept at the two positions only, as the pass runs
    (:func:`~inforidge.models.forward.capture_positions`), so a long prompt costs no
    (L+1) x B x T x D of held states.
    """
    _check_length(parts, attention_mask)
    ids, mask, last = append_targets(input_ids, attention_mask, target_ids)
    # Only the prompt's last position and the target's are kept from each layer (not B x T x D).
    cap = capture_positions(parts, ids, mask, torch.stack([last, last + 1], 1))
    raw = [h[:, 0] for h in cap.layers]
    early = torch.stack([parts.early_exit_logits(h).argmax(-1).cpu() for h in raw])
    f32 = lambda t: t.detach().float().cpu()  # noqa: E731
    token = parts.token_embedding(target_ids.to(parts.device))
    return LayerStates(
        hidden=torch.stack([f32(h) for h in raw]),
        final_normed=f32(cap.post_norm[:, 0]),
        labels={"token_embedding": f32(token), "embedding_output": f32(cap.layers[0][:, 1])},
        early_exit=early,
        target_ids=target_ids.cpu(),
    )


def extract_batched(
    parts: ModelParts, tokenizer, prompts: Sequence[str], target_ids: Tensor, batch_size: int | str | BatchSizer = 64
) -> LayerStates:
    """Tokenise ``prompts`` (the tokenizer's padding side is respected) and extract in batches
    of ``batch_size`` (a number, "auto", or a :class:`~inforidge.extract.batching.BatchSizer`
    that remembers the size found across calls)."""
    if len(prompts) == 0:
        raise ValueError("no prompts to extract; the evaluation split is empty")
    sizer = batch_size if isinstance(batch_size, BatchSizer) else BatchSizer(batch_size)

    def chunk(i: int, j: int) -> LayerStates:
        enc = tokenizer(list(prompts[i:j]), return_tensors="pt", padding=True)
        return extract_states(parts, enc["input_ids"], enc["attention_mask"], target_ids[i:j])

    with eval_mode(parts.model):
        return LayerStates.concat(sizer.run(len(prompts), chunk, what="extraction batch"))
