"""Targets drawn independently of the prompts carry no predictive information, whatever the
label view, architecture and mix of prompt lengths (GPT-2's embedding_output = wte + wpe ties
the label to the prompt length; the within-length null takes that link out)."""

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import inforidge.measure.predictive as predictive
from inforidge.config.settings import MeasureSettings
from inforidge.measure.predictive import (
    NULL_PLAIN,
    NULL_WITHIN_LENGTH,
    Evaluator,
    label_carries_position,
)
from inforidge.models.loading import default_gpt2
from inforidge.models.parts import locate_parts
from inforidge.tasks.tokenize import build_word_tokenizer

WORDS = [f"w{i}" for i in range(30)]


@pytest.fixture(scope="module")
def tok():
    return build_word_tokenizer(WORDS)


@pytest.fixture(scope="module")
def models(tok, tmp_path_factory):
    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=64))
    out = {}
    for name, model in {"gpt2": default_gpt2(len(tok), n_layer=2, n_embd=32, n_head=2, seed=1),
                        "llama": llama}.items():
        path = tmp_path_factory.mktemp(name)
        model.save_pretrained(path)
        out[name] = type(model).from_pretrained(path)
    return out


def _independent_records(lengths, n=100, seed=0):
    rng = np.random.default_rng(seed)
    return [{"prompt": " ".join(rng.choice(WORDS[:20], rng.choice(lengths))), "target": str(rng.choice(WORDS[20:]))}
            for _ in range(n)]


def _corrected(tok, model, records, view):
    settings = MeasureSettings(n_samples=len(records), seeds=[0], label_view=view, final_norm_views=["post"])
    rows = Evaluator(tok, {"id": records}, settings).measure(locate_parts(model), 0)
    pick = lambda m: np.array([r["value"] for r in rows if r["metric"] == m])  # noqa: E731
    nulls = {r["null"] for r in rows if r["metric"] == "predictive_information_corrected"}
    return pick("predictive_information_corrected"), pick("predictive_information_null_std"), nulls


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("view", ["embedding_output", "token_embedding"])
@pytest.mark.parametrize("lengths", [range(4, 13), [8]], ids=["lengths 4-12", "one length"])
def test_independent_targets_give_no_corrected_information(tok, models, arch, view, lengths):
    corrected, null_std, nulls = _corrected(tok, models[arch], _independent_records(list(lengths)), view)
    assert (np.abs(corrected) < 4 * null_std + 0.01).all(), (corrected, null_std)
    position_in_label = arch == "gpt2" and view == "embedding_output"
    varying = len(list(lengths)) > 1
    assert nulls == {NULL_WITHIN_LENGTH if position_in_label and varying else NULL_PLAIN}


def test_the_plain_null_would_read_the_length_as_information(tok, models, monkeypatch):
    """The check above can fail: without the within-length null, GPT-2's embedding_output label
    reports 'predictive information' that is only the prompt length."""
    monkeypatch.setattr(predictive, "label_carries_position", lambda *a: False)
    corrected, null_std, _ = _corrected(tok, models["gpt2"], _independent_records(list(range(4, 13))),
                                        "embedding_output")
    assert (corrected > 0.1).all() and (corrected > 4 * null_std).all()


def test_position_in_the_label_is_detected_from_the_embeddings():
    ids = torch.tensor([3, 3, 5, 5])
    lengths = torch.tensor([4, 7, 4, 7])
    word = torch.randn(6, 8)
    position = torch.randn(10, 8)
    assert label_carries_position(word[ids] + position[lengths], ids, lengths)
    assert not label_carries_position(word[ids], ids, lengths)
    assert label_carries_position(word[ids], ids, torch.tensor([4, 4, 7, 7])), "undecidable: the safe side"
