"""Load-time checks of the located parts against the model's own forward pass."""

from __future__ import annotations

import torch
from torch import Tensor

from inforidge.models.forward import capture_positions, forward_with_final_norm, pad_id
from inforidge.models.parts import ModelParts
from inforidge.models.surgery import eval_mode


def _max_abs_diff(a: Tensor, b: Tensor) -> float:
    return float((a.float().cpu() - b.float().cpu()).abs().max())


def validate_parts(parts: ModelParts, tokenizer=None, *, seed: int = 0) -> None:
    """Check on a tiny input that ``parts`` describe the model; raise ValueError if not.

    Checks: (1) the model returns L+1 hidden states for the L blocks found; (2) the final
    norm is called; (3) early exit at the last layer (final norm + LM head, and any logit
    scaling or softcap, on the raw pre-norm state) reproduces the model's logits;
    (4) left padding with the position ids the extractor passes leaves the states of
    real tokens unchanged; (5) the per-block hooks that extraction reads through
    (:func:`~inforidge.models.forward.capture_positions`) see the model's own hidden states.
    ``tokenizer`` only supplies the pad id
    (:func:`~inforidge.models.forward.pad_id`).
    """
    model = parts.model
    name = type(model).__name__
    vocab = getattr(parts.token_embedding, "num_embeddings", None) or model.config.get_text_config().vocab_size
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (2, 6), generator=g)
    ids[0, :2] = pad_id(tokenizer, model)
    mask = torch.ones_like(ids)
    mask[0, :2] = 0  # row 0 is left-padded by two tokens
    with eval_mode(model):
        cap = forward_with_final_norm(parts, ids, mask, all_logits=True)
        alone = forward_with_final_norm(parts, ids[:1, 2:], mask[:1, 2:], all_logits=True)

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
    with eval_mode(model):
        positions = torch.tensor([[2, 5], [0, 5]])
        hooked = capture_positions(parts, ids, mask, positions)
    rows = torch.arange(2)[:, None]
    own = list(cap.hidden_states[:-1]) + [cap.pre_norm]
    for layer, (got, ref) in enumerate(zip(hooked.layers, own, strict=True)):
        ref = ref[rows.to(ref.device), positions.to(ref.device)]
        d = _max_abs_diff(got, ref)
        if not d <= rtol * (float(ref.float().abs().max()) + 1.0):
            raise ValueError(
                f"layer {layer} as read by hooks on {parts.block_path} differs from {name}'s own hidden "
                f"state {layer} (by {d:.3g}); the model does something between its blocks that InfoRidge does not "
                "read. Pass block_path naming the list of transformer blocks (model.block_path)"
            )
