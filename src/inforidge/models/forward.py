"""One forward pass with every hidden state and the final norm's input captured."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from inforidge.models.parts import ModelParts
from inforidge.tasks.tokenize import position_ids_from_mask  # noqa: F401 (one definition, re-exported)


def pad_id(tokenizer, model: nn.Module | None = None) -> int:
    """The id that fills padding: the tokenizer's pad token, else its eos, else its unk, else the
    model config's pad id, else 0. Which id it is changes nothing (padding is masked); it only
    has to be a valid token."""
    config = getattr(model, "config", None)
    for v in (getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None),
              getattr(tokenizer, "unk_token_id", None), getattr(config, "pad_token_id", None)):
        if isinstance(v, int):
            return v
    return 0


@dataclass
class ForwardCapture:
    """One forward pass. hidden_states: L+1 tensors (B, T, D) as HF returns them;
    pre_norm / post_norm: (B, T, D) input and output of the final norm; logits: (B, T', V)."""

    hidden_states: tuple[Tensor, ...]
    pre_norm: Tensor | None
    post_norm: Tensor | None
    logits: Tensor | None


def accepts_argument(model: nn.Module, name: str) -> bool:
    """Whether ``model.forward`` takes ``name`` (False when its signature cannot be read)."""
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


@torch.no_grad()
def forward_with_final_norm(
    parts: ModelParts, input_ids: Tensor, attention_mask: Tensor, *, all_logits: bool = False
) -> ForwardCapture:
    """Run the model once with hidden states on, hooking the final norm's input and output.

    input_ids, attention_mask: (B, T) on any device; they are moved to the embedding's
    device. Position ids count real tokens only (left padding does not shift them); models
    whose forward takes no ``position_ids`` derive them from the mask themselves.
    ``all_logits=False`` asks the model for the last position's logits only
    (``logits_to_keep=1``), which saves a (B, T, V) tensor where the model supports it.
    """
    model = parts.model
    device = parts.device
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    captured: dict[str, Tensor] = {}

    def grab(_module, args, kwargs, output):
        captured["pre"] = args[0] if args else kwargs["hidden_states"]
        captured["post"] = output[0] if isinstance(output, tuple) else output

    kwargs = {}
    if accepts_argument(model, "position_ids"):
        kwargs["position_ids"] = position_ids_from_mask(attention_mask)
    if not all_logits and accepts_argument(model, "logits_to_keep"):
        kwargs["logits_to_keep"] = 1
    handle = parts.final_norm.register_forward_hook(grab, with_kwargs=True)
    try:
        out = model(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
            use_cache=False, **kwargs,
        )
    finally:
        handle.remove()
    return ForwardCapture(tuple(out.hidden_states), captured.get("pre"), captured.get("post"), out.logits)
