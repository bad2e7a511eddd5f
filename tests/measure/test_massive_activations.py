"""A token that dominates the norms (attention-sink "massive activation") is found, reported
per layer, flagged, and the suite's curves are also given without the first token."""

import numpy as np
import pandas as pd
import pytest
import torch

from inforidge.config.settings import LayerSuiteSettings
from inforidge.info.layer_metrics import dominant_tokens, prompt_entropy
from inforidge.measure.layer_suite import WITHOUT_FIRST, exclude_positions, measure_layers


def test_dominant_tokens_equal_a_direct_computation():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 7, 5, generator=g, dtype=torch.float64)
    mask = torch.ones(4, 7, dtype=torch.long)
    mask[1, :3] = 0  # left padding
    mask[2, 5:] = 0  # right padding
    z[1, :3] = 1e6  # padding holds anything
    z[3, 4, 2] = 80.0  # a dominant token in prompt 3
    d = dominant_tokens(z, mask)
    for b in range(4):
        real = [t for t in range(7) if mask[b, t]]
        norms = np.array([float(z[b, t].norm()) for t in real])
        top = int(np.argmax(norms))
        assert d.ratio[b] == pytest.approx(norms[top] / np.median(norms))
        assert int(d.position[b]) == top
        token = z[b, real[top]].numpy()
        dim = int(np.argmax(np.abs(token)))
        assert int(d.dimension[b]) == dim
        assert d.share[b] == pytest.approx(token[dim] ** 2 / (token ** 2).sum())
    assert int(d.position[3]) == 4 and int(d.dimension[3]) == 2 and d.ratio[3] > 10 and d.share[3] > 0.99


def test_excluded_positions_masks():
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]])
    assert exclude_positions(mask, "none").tolist() == mask.tolist()
    assert exclude_positions(mask, "first").tolist() == [[0, 0, 0, 1, 1, 1], [0, 1, 1, 1, 1, 0]]
    assert exclude_positions(mask, "special", prefix=1, suffix=1).tolist() == [[0, 0, 0, 1, 1, 0], [0, 1, 1, 1, 0, 0]]
    with pytest.raises(ValueError, match="exclude_positions"):
        exclude_positions(mask, "last")
    with pytest.raises(ValueError, match="exclude_positions"):
        LayerSuiteSettings(exclude_positions="bos").validate()


@pytest.fixture(scope="module")
def sink_model(family_tokenizer):
    """A tiny Llama whose first word (w0) has a huge embedding in dimension 5: every prompt
    starting with w0 carries a massive first token through the residual stream."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(family_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                         pad_token_id=family_tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    w0 = family_tokenizer.convert_tokens_to_ids("w0")
    with torch.no_grad():
        model.model.embed_tokens.weight[w0] = 0.0
        model.model.embed_tokens.weight[w0, 5] = 500.0
    return model


def _texts(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return ["w0 " + " ".join(f"w{int(i)}" for i in rng.integers(1, 40, size=4 + k % 4)) for k in range(n)]


def test_suite_reports_flags_and_compares_without_the_first_token(sink_model, family_tokenizer):
    texts = _texts()
    s = LayerSuiteSettings(batch_size=3, augment=False, n_samples=64)
    f = measure_layers(sink_model, family_tokenizer, texts, s, split="sink").frame
    share = f[f["metric"] == "massive_token_share"].set_index("layer")["value"]
    assert (share == 1.0).all()  # every prompt, every layer
    for m, expected in (("massive_token_position", 0), ("massive_dimension", 5)):
        assert (f[f["metric"] == m]["value"] == expected).all()
    main = f[f["metric"] == "prompt_entropy"]
    assert (main["flag"] == "massive_activation").all() and (main["excluded_positions"] == "none").all()
    alt = f[f["metric"] == "prompt_entropy" + WITHOUT_FIRST]
    assert (alt["excluded_positions"] == "first").all() and alt["flag"].isna().all()
    # By hand: each prompt's states without its first token, unpadded, averaged over prompts.
    by_hand = []
    for text in texts:
        ids = torch.tensor([family_tokenizer(text)["input_ids"]])
        with torch.no_grad():
            out = sink_model(input_ids=ids, output_hidden_states=True)
        hs = [out.hidden_states[0], out.hidden_states[1]]
        by_hand.append([float(prompt_entropy(h[0, 1:].double()).raw) for h in hs])
    np.testing.assert_allclose(alt.sort_values("layer")["value"].to_numpy()[:2], np.mean(by_hand, 0), rtol=1e-6)
    # The dominant token collapses the full-prompt entropy; without it the entropy recovers.
    assert (alt.sort_values("layer")["value"].to_numpy() > main.sort_values("layer")["value"].to_numpy() + 0.5).all()


def test_no_dominant_token_no_flag_and_exclusion_setting(sink_model, family_tokenizer):
    texts = [t.replace("w0 ", "w1 ", 1) for t in _texts(seed=1)]
    s = LayerSuiteSettings(batch_size=4, augment=False)
    f = measure_layers(sink_model, family_tokenizer, texts, s, split="plain").frame
    assert (f[f["metric"] == "massive_token_share"]["value"] == 0).all()
    assert "massive_token_position" not in set(f["metric"]) and f["flag"].isna().all()
    # exclude_positions="first" measures without the first token (no comparison rows then).
    first = measure_layers(sink_model, family_tokenizer, texts,
                           LayerSuiteSettings(batch_size=4, augment=False, exclude_positions="first")).frame
    assert not any(str(m).endswith(WITHOUT_FIRST) for m in first["metric"])
    a = f[f["metric"] == "prompt_entropy" + WITHOUT_FIRST].sort_values("layer")["value"].to_numpy()
    b = first[first["metric"] == "prompt_entropy"].sort_values("layer")["value"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-10)
    assert (pd.unique(first["excluded_positions"].dropna()) == ["first"]).all()


def test_report_says_so_and_shows_both_curves(sink_model, family_tokenizer, tmp_path):
    from inforidge.report.layers import save_layer_figures, write_layers_report

    s = LayerSuiteSettings(batch_size=5, augment=False)
    f = measure_layers(sink_model, family_tokenizer, _texts(), s, split="sink", model_name="sink").frame
    figures = save_layer_figures(f, tmp_path / "figures")
    assert "depth_massive_token_share" not in figures and "depth_prompt_entropy" in figures
    text = write_layers_report(f, tmp_path, figures, settings=s, source="toy", n_prompts=10).read_text()
    assert "A single token dominates the norms" in text and "position 0, dimension 5" in text
    assert "Without the first token the curves change" in text and "prompt_entropy_without_first" in text
    plain = measure_layers(sink_model, family_tokenizer, [t.replace("w0 ", "w1 ", 1) for t in _texts()], s,
                           split="plain", model_name="plain").frame
    quiet = write_layers_report(plain, tmp_path, {}, settings=s, source="toy", n_prompts=10).read_text()
    assert "No token dominates the norms" in quiet and "without_first" not in quiet
