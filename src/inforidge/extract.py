"""Extraction: one forward pass per batch gives every layer's state at the last real position.

Layers are indexed 0..L (0 = embedding output, l = output of block l). Two views of layer L:
"pre"  - the raw residual stream entering the final norm (like every other layer);
"post" - after the final norm, as Hugging Face returns ``hidden_states[-1]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .model import ModelParts

LABEL_VIEWS = ("embedding_output", "token_embedding")
FINAL_NORM_VIEWS = ("post", "pre")


@dataclass
class LayerStates:
    """States of B samples at their last non-padding position.

    hidden: (L+1, B, D) raw residual stream, layer L before the final norm ("pre" view).
    final_normed: (B, D) layer L after the final norm ("post" view).
    labels: {label view: (B, D)} embedding of the true next token.
    early_exit: (L+1, B) arg-max token of final norm + LM head applied to each layer.
    target_ids: (B,) true next-token ids.
    """

    hidden: Tensor
    final_normed: Tensor
    labels: dict[str, Tensor]
    early_exit: Tensor
    target_ids: Tensor

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


def last_positions(attention_mask: Tensor) -> Tensor:
    """(B,) index of the last non-padding position, for left or right padding."""
    t = attention_mask.shape[1]
    idx = torch.arange(t, device=attention_mask.device).expand_as(attention_mask)
    return torch.where(attention_mask.bool(), idx, -1).max(1).values


def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """Position ids that count only real tokens, so left padding does not shift positions."""
    return (attention_mask.long().cumsum(1) - 1).clamp_min(0)


def label_embeddings(parts: ModelParts, target_ids: Tensor, positions: Tensor) -> dict[str, Tensor]:
    """Both label views of METHOD §2 without a second forward pass.

    token_embedding: the token-embedding row of the target.
    embedding_output: what the embedding layer would output for the target appended after
    the prompt (token embedding + absolute position embedding at ``positions``, if the model
    has one; rotary models have none, so it equals the token embedding).
    """
    tok = parts.token_embedding(target_ids)
    emb = tok
    if parts.position_embedding is not None:
        emb = tok + parts.position_embedding(positions)
    return {"token_embedding": tok, "embedding_output": emb}


@torch.no_grad()
def extract_states(parts: ModelParts, input_ids: Tensor, attention_mask: Tensor, target_ids: Tensor) -> LayerStates:
    """Run ONE forward pass on a batch and read all layers at the last real position.

    input_ids, attention_mask: (B, T), left or right padded. target_ids: (B,).
    States are returned as float32 on the CPU.
    """
    model = parts.model
    device = parts.device
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    target_ids = target_ids.to(device)
    captured: dict[str, Tensor] = {}

    def grab_norm_input(_module, args, kwargs):
        captured["pre_norm"] = args[0] if args else kwargs["hidden_states"]

    handle = parts.final_norm.register_forward_pre_hook(grab_norm_input, with_kwargs=True)
    try:
        out = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            output_hidden_states=True,
            use_cache=False,
        )
    finally:
        handle.remove()
    hs = out.hidden_states
    if len(hs) != parts.num_layers + 1:
        raise ValueError(
            f"the model returned {len(hs)} hidden states for {parts.num_layers} blocks; "
            "expected L+1 (embeddings + one per block). Check block_path."
        )
    if "pre_norm" not in captured:
        raise ValueError(f"the final norm {parts.final_norm_path} was not called; check final_norm_path")
    b = torch.arange(input_ids.shape[0], device=device)
    last = last_positions(attention_mask)
    raw = torch.stack([h[b, last] for h in hs[:-1]] + [captured["pre_norm"][b, last]])
    post = hs[-1][b, last]
    # Early exit: final norm + LM head on each layer's raw state (layer L equals the logits).
    early = torch.stack([parts.lm_head(parts.final_norm(h)).argmax(-1) for h in raw])
    n_real = attention_mask.long().sum(1)
    labels = label_embeddings(parts, target_ids, n_real)
    f32 = lambda t: t.detach().float().cpu()  # noqa: E731
    return LayerStates(
        hidden=f32(raw),
        final_normed=f32(post),
        labels={k: f32(v) for k, v in labels.items()},
        early_exit=early.cpu(),
        target_ids=target_ids.cpu(),
    )


def extract_batched(
    parts: ModelParts, tokenizer, prompts: Sequence[str], target_ids: Tensor, batch_size: int = 64
) -> LayerStates:
    """Tokenise ``prompts`` (the tokenizer's padding side is respected) and extract in batches."""
    if len(prompts) == 0:
        raise ValueError("no prompts to extract; the evaluation split is empty")
    was_training = parts.model.training
    parts.model.eval()
    try:
        chunks = []
        for i in range(0, len(prompts), batch_size):
            enc = tokenizer(list(prompts[i : i + batch_size]), return_tensors="pt", padding=True)
            chunks.append(
                extract_states(parts, enc["input_ids"], enc["attention_mask"], target_ids[i : i + batch_size])
            )
    finally:
        parts.model.train(was_training)
    return LayerStates.concat(chunks)
