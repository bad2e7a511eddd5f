"""An encoder (BERT-like, no LM head) saved with save_pretrained loads as kind "encoder"."""

import torch

from inforidge.models.loading import load
from inforidge.models.parts import detect_kind


def test_a_saved_encoder_loads_as_an_encoder_with_its_weights(tiny_bert):
    loaded = load(tiny_bert.path)
    model, tok, kind = loaded.model, loaded.tokenizer, loaded.kind
    assert kind == "encoder" and detect_kind(model.config) == "encoder"
    assert type(model) is type(tiny_bert.model) and not model.training
    for (name, a), (_, b) in zip(model.state_dict().items(), tiny_bert.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    enc = tok([" ".join(tiny_bert.words[:5])], return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc, output_hidden_states=True).hidden_states
    assert len(hidden) == model.config.num_hidden_layers + 1 and hidden[-1].shape == (1, 5, 32)
