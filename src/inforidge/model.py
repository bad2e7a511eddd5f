"""Models: the default GPT-2, loading any HF causal LM, and one naming of its parts.

Layers are indexed 0..L everywhere: 0 is the embedding output, l is the output of block l.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, PreTrainedModel

# Known attribute paths; the first that resolves wins. Overrides take precedence.
BLOCK_PATHS = ("transformer.h", "model.layers", "gpt_neox.layers", "model.decoder.layers",
               "transformer.layers", "transformer.blocks", "layers")
FINAL_NORM_PATHS = ("transformer.ln_f", "model.norm", "gpt_neox.final_layer_norm",
                    "model.decoder.final_layer_norm", "transformer.norm_f", "transformer.norm", "norm")
# Absolute learned position embeddings added at the embedding layer (rotary models have none).
POSITION_EMBEDDING_PATHS = ("transformer.wpe",)


def _resolve(model: nn.Module, path: str) -> nn.Module | None:
    obj = model
    for part in path.split("."):
        if not hasattr(obj, part):
            return None
        obj = getattr(obj, part)
    return obj


@dataclass
class ModelParts:
    """The pieces InfoRidge reads from a causal LM, found once and validated."""

    model: PreTrainedModel
    blocks: nn.ModuleList
    final_norm: nn.Module
    lm_head: nn.Module
    token_embedding: nn.Embedding
    position_embedding: nn.Embedding | None
    block_path: str
    final_norm_path: str

    @property
    def num_layers(self) -> int:
        """L, the number of blocks; hidden states are indexed 0..L."""
        return len(self.blocks)

    @property
    def device(self) -> torch.device:
        return self.token_embedding.weight.device


def locate_parts(
    model: PreTrainedModel, *, block_path: str | None = None, final_norm_path: str | None = None
) -> ModelParts:
    """Find the blocks, the final norm and the LM head of ``model``.

    Raises a ValueError naming what was not found and the override to pass.
    """
    def find(paths, override, what, flag):
        for p in ([override] if override else paths):
            m = _resolve(model, p)
            if m is not None:
                return m, p
        raise ValueError(
            f"could not find the {what} of {type(model).__name__} (tried {', '.join(paths)}); "
            f"pass {flag}='attribute.path' naming it (see print(model))"
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
    pos = next((m for p in POSITION_EMBEDDING_PATHS if (m := _resolve(model, p)) is not None), None)
    return ModelParts(model, blocks, norm, head, model.get_input_embeddings(), pos, bpath, npath)


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


def load_causal_lm(name_or_path: str | Path, **kwargs) -> PreTrainedModel:
    """``AutoModelForCausalLM.from_pretrained`` with InfoRidge's defaults (eval mode).

    kwargs (revision, dtype, device_map, attn_implementation, trust_remote_code...) pass through.
    """
    model = AutoModelForCausalLM.from_pretrained(str(name_or_path), **kwargs)
    return model.eval()
