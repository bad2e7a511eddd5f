"""Models: the default GPT-2, loading any HF causal LM, and one naming of its parts.

Layers are indexed 0..L everywhere: 0 is the embedding output, l is the output of block l.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel

_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def detect_kind(config) -> str:
    """"causal" or "encoder" from a config's ``architectures`` (or ``is_decoder``)."""
    archs = list(getattr(config, "architectures", None) or [])
    if any(a.endswith(_CAUSAL_SUFFIXES) for a in archs) or getattr(config, "is_decoder", False):
        return "causal"
    if archs:
        return "encoder"
    raise ValueError(
        f"cannot tell whether {getattr(config, 'model_type', '?')} is a causal LM or an encoder (the config "
        "lists no architectures); pass kind='causal' or kind='encoder' (--kind)"
    )


def _model_kind(model) -> str:
    """"causal" for ``...ForCausalLM`` / ``...LMHeadModel`` classes, else "encoder"."""
    return "causal" if type(model).__name__.endswith(_CAUSAL_SUFFIXES) else "encoder"


# Known attribute paths, relative to the base model (``model.base_model_prefix``: "model",
# "transformer", "gpt_neox", ...) and then from the root; the first that resolves wins.
# Overrides take precedence. No class whitelist: validate_parts checks whatever was found.
BLOCK_PATHS = ("layers", "h", "decoder.layers", "blocks", "language_model.layers", "encoder.layers")


FINAL_NORM_PATHS = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "norm_f",
                    "decoder.final_layer_norm", "language_model.norm", "encoder.final_layernorm")


# Linear maps between the final norm and the LM head (OPT's project_out when
# word_embed_proj_dim != hidden_size); None where the model has none.
HEAD_PROJECTION_PATHS = ("decoder.project_out",)


def _resolve(model: nn.Module, path: str) -> nn.Module | None:
    obj = model
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _candidate_paths(model: nn.Module, relative: tuple[str, ...]) -> list[str]:
    """Full dotted paths to try: under the base model first, then from the root."""
    prefix = getattr(model, "base_model_prefix", "")
    under_base = [f"{prefix}.{p}" for p in relative] if prefix and hasattr(model, prefix) else []
    return list(dict.fromkeys(under_base + list(relative)))


def _module_device(module: nn.Module) -> torch.device | None:
    p = next(module.parameters(), None)
    return None if p is None else p.device


def _module_dtype(module: nn.Module) -> torch.dtype | None:
    p = next((p for p in module.parameters() if p.is_floating_point()), None)
    return None if p is None else p.dtype


@dataclass
class LogitTransform:
    """What the model does to ``lm_head``'s output before returning logits.

    Read from the config under the names Hugging Face uses: ``logit_scale`` (Cohere,
    multiplies), ``logits_scaling`` (Granite, divides) and ``final_logit_softcapping``
    (Gemma-2 style: cap * tanh(logits / cap)). All identity when absent.
    """

    multiply: float | None = None
    divide: float | None = None
    softcap: float | None = None

    @classmethod
    def from_config(cls, config) -> LogitTransform:
        text = _text_config(config)
        get = lambda name: getattr(text, name, None)  # noqa: E731
        return cls(multiply=get("logit_scale"), divide=get("logits_scaling"), softcap=get("final_logit_softcapping"))

    def __call__(self, logits: Tensor) -> Tensor:
        if self.multiply is not None:
            logits = logits * self.multiply
        if self.divide is not None:
            logits = logits / self.divide
        if self.softcap is not None:
            # tanh in fp32, and kept in fp32: in bf16 the capped logits of close tokens
            # collapse onto one value and the arg-max becomes a tie.
            logits = torch.tanh(logits.float() / self.softcap) * self.softcap
        return logits


@dataclass
class ModelParts:
    """The pieces InfoRidge reads from a causal LM, found by :func:`locate_parts`.

    Early exit at layer l is ``logit_transform(lm_head(head_projection(final_norm(h_l))))``
    (``head_projection`` only where the model has one); see :meth:`early_exit_logits`.
    """

    model: PreTrainedModel
    blocks: nn.ModuleList
    final_norm: nn.Module
    lm_head: nn.Module
    token_embedding: nn.Module
    block_path: str
    final_norm_path: str
    head_projection: nn.Module | None = None
    logit_transform: LogitTransform = field(default_factory=LogitTransform)

    @property
    def num_layers(self) -> int:
        """L, the number of blocks; hidden states are indexed 0..L."""
        return len(self.blocks)

    @property
    def device(self) -> torch.device:
        """Where inputs go: the token embedding's device (with device_map, the first shard)."""
        return self.token_embedding.weight.device

    def early_exit_logits(self, hidden: Tensor) -> Tensor:
        """(..., D) raw residual-stream states -> (..., V) logits of the model's own read-out.

        The final norm recomputes its statistics on each state; with device_map the state
        is moved to the norm's device and cast to its dtype first.
        """
        device, dtype = _module_device(self.final_norm), _module_dtype(self.final_norm)
        h = hidden.to(device=device or hidden.device, dtype=dtype or hidden.dtype)
        h = self.final_norm(h)
        if self.head_projection is not None:
            h = self.head_projection(h.to(_module_device(self.head_projection) or h.device))
        return self.logit_transform(self.lm_head(h.to(_module_device(self.lm_head) or h.device)))


def locate_parts(
    model: PreTrainedModel, *, block_path: str | None = None, final_norm_path: str | None = None
) -> ModelParts:
    """Find the blocks, the final norm and the LM head of ``model`` (by known attribute paths).

    Raises a ValueError naming what was not found and the override to pass. Finding is not
    checking: :func:`validate_parts` runs a tiny forward pass to confirm the parts are right.
    """
    def find(relative, override, what, flag):
        paths = [override] if override else _candidate_paths(model, relative)
        for p in paths:
            m = _resolve(model, p)
            if m is not None:
                return m, p
        raise ValueError(
            f"could not find the {what} of {type(model).__name__} (tried {', '.join(paths)}); "
            f"pass {flag}='attribute.path' naming it (model.{flag} in a config; see print(model))"
        )

    blocks, bpath = find(BLOCK_PATHS, block_path, "transformer blocks", "block_path")
    if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
        raise ValueError(f"{bpath} is not a non-empty nn.ModuleList of blocks; pass block_path")
    norm, npath = find(FINAL_NORM_PATHS, final_norm_path, "final norm", "final_norm_path")
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(
            f"{type(model).__name__} has no output embeddings (LM head); load it with "
            "AutoModelForCausalLM, not AutoModel"
        )
    projection = next(
        (m for p in _candidate_paths(model, HEAD_PROJECTION_PATHS) if (m := _resolve(model, p)) is not None), None
    )
    return ModelParts(
        model, blocks, norm, head, model.get_input_embeddings(), bpath, npath,
        head_projection=projection, logit_transform=LogitTransform.from_config(model.config),
    )


# Config fields that hold the number of blocks, by architecture family.
_DEPTH_FIELDS = ("num_hidden_layers", "n_layer", "num_layers")

# Per-layer config lists (Qwen2/Gemma "layer_types", ...) that must shrink with the blocks.
_PER_LAYER_FIELDS = ("layer_types",)


def _text_config(config):
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def context_length(config) -> int | None:
    """The number of positions a model config allows (n_positions / max_position_embeddings), or None."""
    text = _text_config(config)
    return getattr(text, "n_positions", None) or getattr(text, "max_position_embeddings", None)


def config_num_layers(config) -> int:
    """L, the number of blocks a model config declares (num_hidden_layers / n_layer / num_layers)."""
    text = _text_config(config)
    for name in _DEPTH_FIELDS:
        value = getattr(text, name, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"{type(config).__name__} declares no number of layers ({', '.join(_DEPTH_FIELDS)})")
