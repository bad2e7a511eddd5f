"""Reversible and explicit edits of a model: eval mode and eager attention for a while,
residual scaling hooks, truncation to the first k blocks.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle
from transformers import PreTrainedModel

from inforidge.models.parts import (
    _DEPTH_FIELDS,
    _PER_LAYER_FIELDS,
    ModelParts,
    _resolve,
    _text_config,
    locate_parts,
)


@contextmanager
def eval_mode(model: nn.Module):
    """``model`` in eval mode (dropout off) inside the block; its training flag is restored
    afterwards, also when the block raises. Yields the model."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextmanager
def eager_attention(model):
    """Switch ``model`` to eager attention inside the block (restored afterwards).

    Yields the implementation that was in force before ("eager" when nothing changed).
    """
    config = model.config
    previous = getattr(config, "_attn_implementation", None)
    if previous == "eager":
        yield "eager"
        return
    try:
        model.set_attn_implementation("eager")
    except Exception as e:  # pragma: no cover - depends on the model class
        raise RuntimeError(
            f"{type(model).__name__} cannot switch to eager attention ({e}); load it with "
            "attn_implementation='eager' (model.attn_implementation=eager in a config)"
        ) from e
    if getattr(config, "_attn_implementation", None) != "eager":
        raise RuntimeError(
            f"{type(model).__name__} did not switch to eager attention (still "
            f"{config._attn_implementation!r}); load it with attn_implementation='eager'"
        )
    try:
        yield previous
    finally:
        if previous is not None:
            model.set_attn_implementation(previous)






def truncate_blocks(model: PreTrainedModel, k: int, *, block_path: str | None = None,
                    final_norm_path: str | None = None) -> PreTrainedModel:
    """Keep only the first ``k`` blocks of ``model``, in place, for the depth-threshold analysis.

    The embeddings, the final norm and the LM head are kept as they are, so the truncated
    model reads block k's output through the model's own read-out: its logits equal the full
    model's early exit at layer k. The config's depth field (and per-layer lists such as
    ``layer_types``) is updated, so ``save_pretrained``/``from_pretrained`` round-trip.
    """
    parts = locate_parts(model, block_path=block_path, final_norm_path=final_norm_path)
    n = parts.num_layers
    if not 1 <= int(k) <= n:
        raise ValueError(f"cannot keep the first {k} blocks of a {n}-block model; choose 1 <= k <= {n}")
    k = int(k)
    parent_path, _, attr = parts.block_path.rpartition(".")
    parent = _resolve(model, parent_path) if parent_path else model
    setattr(parent, attr, nn.ModuleList(list(parts.blocks)[:k]))
    for config in {id(c): c for c in (model.config, _text_config(model.config))}.values():
        for name in _DEPTH_FIELDS:
            if isinstance(getattr(config, name, None), int):
                setattr(config, name, k)
        for name in _PER_LAYER_FIELDS:
            value = getattr(config, name, None)
            if isinstance(value, (list, tuple)) and len(value) == n:
                setattr(config, name, list(value)[:k])
    return model


_ATTACHED = "_inforidge_residual_scaling"


class ResidualScaling(nn.Module):
    """Reversible residual scaling of every block of ``parts.blocks``; holds the alphas.

    Args:
        parts: the model's parts (see :func:`inforidge.models.parts.locate_parts`).
        init: initial alphas, a number or a tensor of shape (L,) (default 1: the model is
            unchanged).
        freeze: set ``requires_grad=False`` on every model parameter (restored by
            :meth:`unwrap`), so an optimiser over ``self.parameters()`` trains only alphas.

    Attributes:
        alphas: (L,) float32 parameter on the model's device; alphas[l - 1] scales block l.

    Usable as a context manager (``with ResidualScaling(parts) as scaling: ...``). The
    alphas live in this module, not in the model, so the model's ``state_dict`` and
    ``save_pretrained`` are unaffected.
    """

    def __init__(self, parts: ModelParts, init: float | Tensor = 1.0, *, freeze: bool = True):
        super().__init__()
        if getattr(parts.model, _ATTACHED, None) is not None:
            raise RuntimeError("this model already has a ResidualScaling attached; unwrap() it first")
        n = parts.num_layers
        values = torch.as_tensor(init, dtype=torch.float32).detach().clone()
        if values.ndim == 0:
            values = values.expand(n).clone()
        if values.shape != (n,):
            raise ValueError(f"init must be a number or a tensor of shape ({n},); got {tuple(values.shape)}")
        self.alphas = nn.Parameter(values.to(parts.device))
        self.parts = parts  # a plain dataclass: the model does not become a submodule
        self._requires_grad: list[tuple[nn.Parameter, bool]] = []
        if freeze:
            self._requires_grad = [(p, p.requires_grad) for p in parts.model.parameters()]
            for p, _ in self._requires_grad:
                p.requires_grad_(False)
        self._handles: list[RemovableHandle] = [
            block.register_forward_hook(self._hook(i), with_kwargs=True, prepend=True)
            for i, block in enumerate(parts.blocks)
        ]
        # object.__setattr__: nn.Module's would register the scaling (and its alphas) in the model.
        object.__setattr__(parts.model, _ATTACHED, self)

    def _hook(self, index: int):
        def scale_update(_block, args, kwargs, output):
            if args:
                h_in = args[0]
            elif "hidden_states" in kwargs:
                h_in = kwargs["hidden_states"]
            else:
                raise TypeError(
                    f"block {index + 1} was called without a positional input or hidden_states=...; "
                    "ResidualScaling cannot find the residual stream entering it"
                )
            h_out = output[0] if isinstance(output, tuple) else output
            if not isinstance(h_out, Tensor) or h_out.shape != h_in.shape:
                raise TypeError(
                    f"block {index + 1} returned {type(h_out).__name__} "
                    f"{tuple(getattr(h_out, 'shape', ()))}, not a hidden state shaped like its input "
                    f"{tuple(h_in.shape)}; only residual blocks can be scaled"
                )
            alpha = self.alphas[index].to(device=h_out.device, dtype=h_out.dtype)
            scaled = torch.lerp(h_in, h_out, alpha)  # exact at alpha = 0 and alpha = 1
            # GPT-2 blocks in transformers < 5 return (hidden, present, ...); keep the rest.
            return (scaled, *output[1:]) if isinstance(output, tuple) else scaled

        return scale_update

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def unwrap(self) -> None:
        """Remove the hooks and restore ``requires_grad`` (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        for p, flag in self._requires_grad:
            p.requires_grad_(flag)
        self._requires_grad = []
        if getattr(self.parts.model, _ATTACHED, None) is self:
            object.__delattr__(self.parts.model, _ATTACHED)

    def __enter__(self) -> ResidualScaling:
        return self

    def __exit__(self, *exc) -> None:
        self.unwrap()

    def forward(self, *args, **kwargs):
        """Run the wrapped model (the scaling itself happens in the hooks)."""
        return self.parts.model(*args, **kwargs)
