"""One forward pass with the layers' states captured: every full hidden state
(:func:`forward_with_final_norm`), or only chosen positions of each layer (:func:`capture_positions`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
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


def _first(output):
    """A block's hidden-state output: the tensor itself, or element 0 of a tuple / ModelOutput."""
    return output if isinstance(output, Tensor) else output[0]


@dataclass
class PositionCapture:
    """One forward pass, each layer kept only at the selected positions.

    layers: L+1 tensors (B, K, D), on the device where each was produced: layer 0 is the input
        of block 0 (the embedding output, ``hidden_states[0]``), layer l (1 <= l < L) the output
        of the l-th block (``blocks[l - 1]``), layer L the final norm's input (the raw residual stream, "pre" view).
    post_norm: (B, K, D) the final norm's output ("post" view).
    """

    layers: list[Tensor]
    post_norm: Tensor


def register_layer_hooks(parts: ModelParts, keep: Callable[[Tensor], Tensor]) -> tuple[dict, list]:
    """Hooks that store ``keep(state)`` for layers 0..L-1 (block 0's input, the outputs of blocks
    0..L-2) and the final norm's input ("pre") and output ("post"), appending one entry per call
    (a generate() loop calls them once per decoding step). Returns (store, handles); the caller
    removes the handles."""
    store: dict = {"layers": [[] for _ in range(parts.num_layers)], "pre": [], "post": []}

    def block_input(_module, args, kwargs):
        store["layers"][0].append(keep(args[0] if args else kwargs["hidden_states"]))

    def block_output(index):
        def hook(_module, _args, output):
            store["layers"][index].append(keep(_first(output)))
        return hook

    def norm(_module, args, kwargs, output):
        store["pre"].append(keep(args[0] if args else kwargs["hidden_states"]))
        store["post"].append(keep(_first(output)))

    handles = [parts.blocks[0].register_forward_pre_hook(block_input, with_kwargs=True)]
    # Block L-1's output is the final norm's input, read there (also right for models that do
    # something between the last block and the norm).
    handles += [block.register_forward_hook(block_output(i + 1)) for i, block in enumerate(parts.blocks[:-1])]
    handles.append(parts.final_norm.register_forward_hook(norm, with_kwargs=True))
    return store, handles


@torch.no_grad()
def capture_positions(parts: ModelParts, input_ids: Tensor, attention_mask: Tensor, positions: Tensor) -> PositionCapture:
    """Run the model once and keep every layer only at ``positions``.

    input_ids, attention_mask: (B, T); positions: (B, K) indices into T.
    Equals ``forward_with_final_norm`` read at those positions, but the (B, T, D) state of a
    layer is dropped as soon as the next block has run: held states are (L+2) x B x K x D
    instead of (L+2) x B x T x D (``benchmarks/bench_extraction_memory.py``). Position ids and
    padding are handled as in :func:`forward_with_final_norm`; no logits are kept.
    """
    model = parts.model
    device = parts.device
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    rows = torch.arange(input_ids.shape[0])[:, None]

    def keep(h: Tensor) -> Tensor:
        return h[rows.to(h.device), positions.to(h.device)]

    kwargs = {}
    if accepts_argument(model, "position_ids"):
        kwargs["position_ids"] = position_ids_from_mask(attention_mask)
    if accepts_argument(model, "logits_to_keep"):
        kwargs["logits_to_keep"] = 1
    store, handles = register_layer_hooks(parts, keep)
    try:
        model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **kwargs)
    finally:
        for h in handles:
            h.remove()
    counts = [len(v) for v in store["layers"]] + [len(store["pre"])]
    if counts != [1] * (parts.num_layers + 1):
        raise ValueError(
            f"one forward pass called the blocks of {parts.block_path} and the final norm {parts.final_norm_path} "
            f"{counts} times (expected once each); pass block_path / final_norm_path naming the list of "
            "transformer blocks and the norm before the LM head"
        )
    return PositionCapture([v[0] for v in store["layers"]] + store["pre"], store["post"][0])
