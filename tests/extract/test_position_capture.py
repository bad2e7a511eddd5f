"""Position capture (hooks that keep only the needed positions) equals the model's own
``output_hidden_states`` read at those positions, for every tiny family, left and right padded."""

import pytest
import torch

from inforidge.extract.last_position import append_targets, extract_states
from inforidge.models.forward import capture_positions, forward_with_final_norm
from inforidge.models.parts import locate_parts
from inforidge.tasks.tokenize import target_token_ids


def _batch(tiny_lm, side, n=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    words = tiny_lm.words
    prompts = [" ".join(words[j] for j in torch.randint(0, len(words), (2 + 2 * i,), generator=g)) for i in range(n)]
    targets = [words[j] for j in torch.randint(0, len(words), (n,), generator=g)]
    tok = tiny_lm.tokenizer
    saved, tok.padding_side = tok.padding_side, side
    try:
        enc = tok(prompts, return_tensors="pt", padding=True)
    finally:
        tok.padding_side = saved
    return enc, target_token_ids(tok, targets)


@pytest.mark.parametrize("side", ["left", "right"])
def test_capture_equals_full_hidden_states(tiny_lm, side):
    parts = locate_parts(tiny_lm.model)
    enc, targets = _batch(tiny_lm, side)
    ids, mask, last = append_targets(enc["input_ids"], enc["attention_mask"], targets)
    positions = torch.stack([last, last + 1, torch.zeros_like(last)], 1)  # (B, 3)
    tiny_lm.model.eval()
    cap = capture_positions(parts, ids, mask, positions)
    full = forward_with_final_norm(parts, ids, mask)
    rows = torch.arange(ids.shape[0])[:, None]
    expected = list(full.hidden_states[:-1]) + [full.pre_norm]
    assert len(cap.layers) == parts.num_layers + 1 == len(expected)
    for layer, (got, ref) in enumerate(zip(cap.layers, expected, strict=True)):
        assert got.shape == (ids.shape[0], 3, ref.shape[-1]), layer
        torch.testing.assert_close(got, ref[rows, positions], rtol=0, atol=0, msg=f"layer {layer}")
    torch.testing.assert_close(cap.post_norm, full.post_norm[rows, positions], rtol=0, atol=0)
    if parts.head_projection is None:  # OPT's project_out comes after the norm
        # The model's own last hidden state is the final norm's output (post view).
        torch.testing.assert_close(cap.post_norm, full.hidden_states[-1][rows, positions], rtol=1e-6, atol=1e-6)


def test_extract_states_reads_the_model_forward(tiny_lm):
    """extract_states (position capture) against the full forward: every layer, both views,
    both label views and the early exit at layer L (= the model's own arg-max)."""
    parts = locate_parts(tiny_lm.model)
    enc, targets = _batch(tiny_lm, "left", seed=3)
    tiny_lm.model.eval()
    s = extract_states(parts, enc["input_ids"], enc["attention_mask"], targets)
    ids, mask, last = append_targets(enc["input_ids"], enc["attention_mask"], targets)
    full = forward_with_final_norm(parts, ids, mask, all_logits=True)
    rows = torch.arange(ids.shape[0])
    ref = torch.stack([h[rows, last] for h in full.hidden_states[:-1]] + [full.pre_norm[rows, last]])
    torch.testing.assert_close(s.hidden, ref.float(), rtol=0, atol=0)
    torch.testing.assert_close(s.final_normed, full.post_norm[rows, last].float(), rtol=0, atol=0)
    torch.testing.assert_close(s.labels["embedding_output"], full.hidden_states[0][rows, last + 1].float(), rtol=0, atol=0)
    assert torch.equal(s.early_exit[-1], full.logits[rows, last].argmax(-1))


def test_capture_refuses_a_block_list_the_forward_does_not_use(tiny_llama):
    """Hooks on blocks that the forward pass never calls cannot be read as layers."""
    from torch import nn

    from inforidge.models.parts import ModelParts

    parts = locate_parts(tiny_llama)
    stray = nn.ModuleList([nn.Identity(), nn.Identity()])
    wrong = ModelParts(**{**parts.__dict__, "blocks": stray})
    ids = torch.tensor([[3, 4, 5]])
    with pytest.raises(ValueError, match="block_path"):
        capture_positions(wrong, ids, torch.ones_like(ids), torch.tensor([[2]]))
