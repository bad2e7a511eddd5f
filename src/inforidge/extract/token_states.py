"""Per-token hidden states of every layer for the Layer-by-Layer suite
(:class:`StateReader`: tokenise, add special tokens, pad, run, mask).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from inforidge.config.settings import FINAL_NORM_CHOICES, KINDS
from inforidge.extract.batching import eval_mode, pad, pad_id, special_template
from inforidge.models.forward import forward_with_final_norm
from inforidge.models.parts import (
    ModelParts,
    _model_kind,
    config_num_layers,
    context_length,
    locate_parts,
)


class StateReader:
    """Runs batches of token-id sequences through a model and returns every layer's states.

    Causal LMs pad on the tokenizer's side and get position ids that count real tokens only
    (:func:`~inforidge.models.forward.position_ids_from_mask`), so left padding shifts nothing.
    Encoders always pad on the right (absolute position embeddings start at the first token;
    RoBERTa-style models derive positions from the ids themselves). The model runs in eval
    mode; its training flag is left as it was.

    parts: a causal LM's located parts (as :func:`~inforidge.models.loading.load` returns
    them, with any overrides); default: located here without overrides.
    """

    def __init__(self, model, tokenizer, *, kind: str = "auto", final_norm: str = "pre",
                 max_length: int = 128, model_name: str | None = None, parts: ModelParts | None = None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.kind = _model_kind(model) if kind == "auto" else kind
        if final_norm not in FINAL_NORM_CHOICES:
            raise ValueError(f"final_norm must be one of {FINAL_NORM_CHOICES}; got {final_norm!r}")
        self.final_norm = final_norm if self.kind == "causal" else "none"
        self.model_name = model_name or getattr(model.config, "name_or_path", None) or type(model).__name__
        self.parts = None
        if self.kind == "causal":
            self.parts = parts if parts is not None else locate_parts(model)
            self.n_layers = self.parts.num_layers
        else:
            self.n_layers = config_num_layers(model.config)
        limit = self._position_limit()
        self.max_length = int(min(max_length, limit)) if limit else int(max_length)
        self.pad_id = pad_id(tokenizer, model)
        self.left_pad = self.kind == "causal" and getattr(tokenizer, "padding_side", "right") == "left"

    def _position_limit(self) -> int | None:
        lim = context_length(self.model.config)
        if lim and getattr(self.model.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
            lim -= 2  # positions start at padding_idx + 1
        return int(lim) if lim else None

    @property
    def device(self) -> torch.device:
        if self.parts is not None:
            return self.parts.device
        return self.model.get_input_embeddings().weight.device

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text with the tokenizer's special tokens, truncated to max_length."""
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, add_special_tokens=True)
        return [list(map(int, ids)) for ids in enc["input_ids"]]

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids WITHOUT special tokens (for stress perturbations), not truncated."""
        enc = self.tokenizer(list(texts), add_special_tokens=False)
        return [list(map(int, ids)) for ids in enc["input_ids"]]

    def special_template(self) -> tuple[list[int], list[int]]:
        """(prefix, suffix) ids the tokenizer puts around one text ([CLS] / [SEP], BOS...),
        read off a probe text (see :func:`~inforidge.extract.batching.special_template`)."""
        if getattr(self, "_template", None) is None:
            try:
                self._template = special_template(self.tokenizer)
            except ValueError:  # specials that change the probe's own tokens: wrap in nothing
                self._template = ([], [])
        return self._template

    def with_specials(self, ids: Sequence[int]) -> list[int]:
        """Content ids wrapped in the tokenizer's special tokens, truncated to max_length."""
        pre, post = self.special_template()
        room = max(self.max_length - len(pre) - len(post), 1)
        return [*pre, *list(ids)[:room], *post]

    def pad(self, seqs: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
        """input_ids, attention_mask (B, T) padded on this reader's side."""
        return pad(seqs, self.pad_id, "left" if self.left_pad else "right")

    @torch.no_grad()
    def states(self, seqs: Sequence[Sequence[int]]) -> tuple[list[Tensor], Tensor]:
        """(L+1 tensors (B, T, D) on the model's device, mask (B, T) on the same device).

        Raises ValueError when a real token's state is NaN or infinite.
        """
        if any(len(s) == 0 for s in seqs):
            raise ValueError("a prompt tokenised to no tokens; drop empty prompts")
        ids, mask = self.pad(seqs)
        device = self.device
        ids, mask = ids.to(device), mask.to(device)
        if self.kind == "causal":
            with eval_mode(self.model):
                cap = forward_with_final_norm(self.parts, ids, mask)
            last = cap.pre_norm if self.final_norm == "pre" else cap.post_norm
            if last is None:
                raise ValueError(f"the final norm {self.parts.final_norm_path} was not called; use final_norm='post'")
            hs = list(cap.hidden_states[:-1]) + [last]
        else:
            with eval_mode(self.model):
                out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            hs = list(out.hidden_states)
        if len(hs) != self.n_layers + 1:
            raise ValueError(f"{self.model_name} returned {len(hs)} hidden states for {self.n_layers} layers; expected L+1")
        real = mask.bool()
        for layer, h in enumerate(hs):
            if not bool(torch.isfinite(h[real.to(h.device)]).all()):
                raise ValueError(
                    f"layer {layer} of {self.model_name} has NaN or infinite hidden states on real tokens; "
                    "load the model in float32 (dtype='float32') or check its weights"
                )
        return [h.to(device) for h in hs], mask


def _pool(h: Tensor, mask: Tensor) -> Tensor:
    """(B, T, D), (B, T) -> (B, D) float64 mean over real tokens."""
    m = mask.to(torch.float64).unsqueeze(-1)
    return (h.to(torch.float64) * m).sum(1) / m.sum(1)
