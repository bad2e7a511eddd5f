"""Any HF causal LM: tiny random models of several families, saved and loaded from disk.

For each family: the parts are found, validation passes, early exit at the last layer is the
model's logits, both label views equal a direct second forward pass on [prompt; target],
left and right padding give the same states, and a wrong override is reported by name.
"""

import pytest
import torch
from torch import nn

from inforidge.extract.last_position import extract_states
from inforidge.models.forward import forward_with_final_norm
from inforidge.models.loading import load
from inforidge.models.parts import locate_parts
from inforidge.models.validate import validate_parts
from inforidge.tasks.tokenize import target_token_ids

# family (conftest's tiny_lm) -> (block path, final norm path,
#                                 label view "embedding_output" differs from "token_embedding")
FAMILIES = {
    "gpt2": ("transformer.h", "transformer.ln_f", True),
    "gpt_neox": ("gpt_neox.layers", "gpt_neox.final_layer_norm", False),
    "llama": ("model.layers", "model.norm", False),
    "qwen2": ("model.layers", "model.norm", False),
    "mistral": ("model.layers", "model.norm", False),
    "gemma": ("model.layers", "model.norm", False),
    "gemma2": ("model.layers", "model.norm", False),
    "opt": ("model.decoder.layers", "model.decoder.final_layer_norm", True),
    "opt_projected": ("model.decoder.layers", "model.decoder.final_layer_norm", True),
}
WORDS = [f"w{i}" for i in range(40)]


@pytest.fixture
def family(tiny_lm):
    """(name, model, tokenizer, folder) of conftest's tiny_lm: one tiny model per family."""
    assert tiny_lm.name in FAMILIES and tiny_lm.words == WORDS
    return tiny_lm.name, tiny_lm.model, tiny_lm.tokenizer, tiny_lm.path


def _batch(tok, side, n=6, seed=0):
    """Prompts of 2..7 words (so padding happens) and their single-word targets."""
    g = torch.Generator().manual_seed(seed)
    prompts = [" ".join(WORDS[j] for j in torch.randint(0, 40, (2 + i,), generator=g)) for i in range(n)]
    targets = [WORDS[j] for j in torch.randint(0, 40, (n,), generator=g)]
    tok.padding_side = side
    enc = tok(prompts, return_tensors="pt", padding=True)
    tok.padding_side = "left"
    return prompts, enc, target_token_ids(tok, targets)


def test_parts_are_found_and_validated(family):
    name, model, tok, _ = family
    block_path, norm_path, _ = FAMILIES[name]
    parts = locate_parts(model)
    assert (parts.block_path, parts.final_norm_path) == (block_path, norm_path)
    assert parts.num_layers == 2 and parts.lm_head is model.get_output_embeddings()
    assert (parts.head_projection is not None) == (name == "opt_projected")
    assert parts.logit_transform.softcap == (1.0 if name == "gemma2" else None)
    validate_parts(parts, tok)
    _, enc, _ = _batch(tok, "left")
    cap = forward_with_final_norm(parts, enc["input_ids"], enc["attention_mask"])
    assert len(cap.hidden_states) == parts.num_layers + 1


def test_early_exit_at_the_last_layer_is_the_models_logits(family):
    name, model, tok, _ = family
    parts = locate_parts(model)
    _, enc, targets = _batch(tok, "left")
    assert (enc["attention_mask"] == 0).any(), "the batch must contain padding"
    s = extract_states(parts, enc["input_ids"], enc["attention_mask"], targets)
    with torch.no_grad():
        positions = (enc["attention_mask"].cumsum(1) - 1).clamp_min(0)
        own = model(**enc, position_ids=positions).logits[:, -1]
        lens = parts.early_exit_logits(s.hidden[-1])
    torch.testing.assert_close(lens, own, atol=1e-5, rtol=1e-5)
    assert torch.equal(s.early_exit[-1], own.argmax(-1))
    if name == "gemma2":  # without the softcap the logits differ
        raw = parts.lm_head(parts.final_norm(s.hidden[-1]))
        assert not torch.allclose(raw, own, atol=1e-3)


def test_label_views_equal_a_second_forward_pass(family):
    name, model, tok, _ = family
    parts = locate_parts(model)
    prompts, enc, targets = _batch(tok, "left")
    s = extract_states(parts, enc["input_ids"], enc["attention_mask"], targets)
    for i, p in enumerate(prompts):
        ids = torch.cat([tok([p], return_tensors="pt")["input_ids"], targets[i].view(1, 1)], 1)
        with torch.no_grad():
            h0 = model(input_ids=ids, output_hidden_states=True).hidden_states[0][0, -1]
            token = model.get_input_embeddings()(targets[i])
        torch.testing.assert_close(s.labels["embedding_output"][i], h0)
        torch.testing.assert_close(s.labels["token_embedding"][i], token)
    emb, tok_view = s.labels["embedding_output"], s.labels["token_embedding"]
    # OPT with project_in: the token embedding is narrower (16) than the stream (32).
    differs = emb.shape != tok_view.shape or not torch.allclose(emb, tok_view)
    assert differs == FAMILIES[name][2], "absolute positions (GPT-2, OPT) and only they change the label"
    if name == "gemma":
        row = model.get_input_embeddings().weight[targets]
        torch.testing.assert_close(s.labels["token_embedding"], row.detach() * 32**0.5)


def test_left_and_right_padding_give_the_same_states(family):
    _, model, tok, _ = family
    parts = locate_parts(model)
    _, left, targets = _batch(tok, "left")
    _, right, _ = _batch(tok, "right")
    a = extract_states(parts, left["input_ids"], left["attention_mask"], targets)
    b = extract_states(parts, right["input_ids"], right["attention_mask"], targets)
    close = dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.hidden, b.hidden, **close)
    torch.testing.assert_close(a.final_normed, b.final_normed, **close)
    for k in a.labels:
        torch.testing.assert_close(a.labels[k], b.labels[k], **close)
    assert torch.equal(a.early_exit, b.early_exit)


def test_wrong_overrides_are_named(family):
    name, model, tok, _ = family
    parts = locate_parts(model)
    # A norm inside the last block is called during the pass but is not the final norm.
    inner = next(n for n, m in parts.blocks[-1].named_modules() if "norm" in type(m).__name__.lower())
    wrong_norm = locate_parts(model, final_norm_path=f"{parts.block_path}.{parts.num_layers - 1}.{inner}")
    with pytest.raises(ValueError, match="final_norm_path"):
        validate_parts(wrong_norm, tok)
    model.decoy_blocks = nn.ModuleList(list(parts.blocks)[:1])  # one block of two
    try:
        with pytest.raises(ValueError, match=r"3 hidden states.*block_path"):
            validate_parts(locate_parts(model, block_path="decoy_blocks"), tok)
    finally:
        del model.decoy_blocks
    with pytest.raises(ValueError, match="block_path='attribute.path'"):
        locate_parts(model, block_path="no.such.blocks")


def test_half_precision_validates_and_agrees_with_the_model(family):
    name, _, tok, path = family
    model = load(path, tokenizer=tok, dtype="bfloat16", validate=False).model
    parts = locate_parts(model)
    validate_parts(parts, tok)  # tolerances follow the dtype
    _, enc, targets = _batch(tok, "left")
    s = extract_states(parts, enc["input_ids"], enc["attention_mask"], targets)
    assert s.hidden.dtype == torch.float32, "states leave extraction in float32"
    with torch.no_grad():
        positions = (enc["attention_mask"].cumsum(1) - 1).clamp_min(0)
        own = model(**enc, position_ids=positions).logits[:, -1]
    torch.testing.assert_close(parts.early_exit_logits(s.hidden[-1]).float(), own.float(), atol=0.05, rtol=0.05)
