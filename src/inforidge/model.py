"""Models: the default GPT-2, loading any HF causal LM, and one naming of its parts.

Layers are indexed 0..L everywhere: 0 is the embedding output, l is the output of block l.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, PreTrainedModel

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


def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """Position ids that count only real tokens, so left padding does not shift positions."""
    return (attention_mask.long().cumsum(1) - 1).clamp_min(0)


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


def _max_abs_diff(a: Tensor, b: Tensor) -> float:
    return float((a.float().cpu() - b.float().cpu()).abs().max())


def validate_parts(parts: ModelParts, tokenizer=None, *, seed: int = 0) -> None:
    """Check on a tiny input that ``parts`` describe the model; raise ValueError if not.

    Checks: (1) the model returns L+1 hidden states for the L blocks found; (2) the final
    norm is called; (3) early exit at the last layer (final norm + LM head, and any logit
    scaling or softcap, on the raw pre-norm state) reproduces the model's logits;
    (4) left padding with the position ids the extractor passes leaves the states of
    real tokens unchanged. ``tokenizer`` only supplies the pad id.
    """
    model = parts.model
    name = type(model).__name__
    vocab = getattr(parts.token_embedding, "num_embeddings", None) or model.config.get_text_config().vocab_size
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (2, 6), generator=g)
    pad = getattr(tokenizer, "pad_token_id", None)
    pad = 0 if pad is None else pad
    ids[0, :2] = pad
    mask = torch.ones_like(ids)
    mask[0, :2] = 0  # row 0 is left-padded by two tokens
    was_training = model.training
    model.eval()
    try:
        cap = forward_with_final_norm(parts, ids, mask, all_logits=True)
        alone = forward_with_final_norm(parts, ids[:1, 2:], mask[:1, 2:], all_logits=True)
    finally:
        model.train(was_training)

    n = len(cap.hidden_states)
    if n != parts.num_layers + 1:
        raise ValueError(
            f"{name} returned {n} hidden states, but {parts.block_path} holds {parts.num_layers} blocks; "
            f"expected L+1 = {parts.num_layers + 1} (embeddings + one per block). "
            "Pass block_path naming the list of transformer blocks (model.block_path in a config)"
        )
    if cap.pre_norm is None:
        raise ValueError(
            f"the final norm {parts.final_norm_path} of {name} was not called in a forward pass; "
            "pass final_norm_path naming the norm applied before the LM head (model.final_norm_path)"
        )
    half = cap.logits.dtype in (torch.float16, torch.bfloat16)
    rtol = 2e-2 if half else 1e-4
    real = mask.bool()
    with torch.no_grad():
        lens = parts.early_exit_logits(cap.pre_norm)
    scale = float(cap.logits.float().abs().max()) + 1.0
    diff = _max_abs_diff(lens[real.to(lens.device)], cap.logits[real.to(cap.logits.device)])
    if not diff <= rtol * scale:
        raise ValueError(
            f"early exit at the last layer of {name} (final norm {parts.final_norm_path} + LM head "
            f"on the raw pre-norm state) differs from the model's logits by {diff:.3g} "
            f"(max |logit| {scale - 1:.3g}). The final norm is probably the wrong module: pass "
            "final_norm_path naming the norm applied right before the LM head (model.final_norm_path), "
            "or the model post-processes its logits in a way InfoRidge does not know"
        )
    for layer, (padded, single) in enumerate(zip(cap.hidden_states[:-1], alone.hidden_states[:-1], strict=True)):
        d = _max_abs_diff(padded[0, 2:], single[0])
        if not d <= 10 * rtol * (float(single.float().abs().max()) + 1.0):
            raise ValueError(
                f"left padding changes the layer-{layer} states of {name} (by {d:.3g}): the model "
                "does not honour attention_mask / position_ids as InfoRidge passes them, so states "
                "of padded batches would be wrong"
            )


def default_gpt2(
    vocab_size: int,
    *,
    n_layer: int = 12,
    n_embd: int = 128,
    n_head: int = 4,
    n_positions: int = 64,
    pad_token_id: int = 0,
    bos_token_id: int = 2,
    eos_token_id: int = 2,
    seed: int = 0,
) -> GPT2LMHeadModel:
    """A small randomly initialised GPT-2 (dropout off, tied embeddings), seeded."""
    config = GPT2Config(
        vocab_size=vocab_size, n_layer=n_layer, n_embd=n_embd, n_head=n_head,
        n_positions=n_positions, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


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


def load_causal_lm(name_or_path: str | Path, **kwargs) -> PreTrainedModel:
    """``AutoModelForCausalLM.from_pretrained`` with InfoRidge's defaults (eval mode).

    kwargs (revision, dtype, device_map, attn_implementation, trust_remote_code...) pass through.
    """
    model = AutoModelForCausalLM.from_pretrained(str(name_or_path), **kwargs)
    return model.eval()
