"""Depth threshold on a pretrained model: keep its first k blocks, its final norm and its head."""

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from inforidge.config.loading import load_config
from inforidge.config.schema import PaperConfig
from inforidge.models.loading import default_gpt2
from inforidge.models.parts import config_num_layers, locate_parts
from inforidge.models.surgery import truncate_blocks
from inforidge.pipelines.paper import depth_config, main_depth
from inforidge.pipelines.run import run
from inforidge.report.paper import write_paper_report


def _llama(vocab: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False))


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_truncation_keeps_final_norm_and_head_and_equals_early_exit(arch, tmp_path):
    full = default_gpt2(50, n_layer=3, n_embd=32, n_head=2, seed=4) if arch == "gpt2" else _llama(50)
    full.eval()
    ids = torch.randint(3, 50, (2, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        hidden = full(ids, output_hidden_states=True).hidden_states
        parts = locate_parts(full)
        expected = parts.early_exit_logits(hidden[2])  # read block 2's output through the model's read-out
    norm, head, blocks = parts.final_norm, parts.lm_head, list(parts.blocks)

    short = truncate_blocks(full, 2)
    p = locate_parts(short)
    assert p.final_norm is norm and p.lm_head is head, "the final norm and LM head are the model's own"
    assert p.num_layers == 2 and all(a is b for a, b in zip(p.blocks, blocks[:2], strict=True))
    assert config_num_layers(short.config) == 2
    with torch.no_grad():
        torch.testing.assert_close(short(ids).logits, expected, rtol=1e-5, atol=1e-5)

    # The truncated model round-trips through save_pretrained / from_pretrained.
    short.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert locate_parts(loaded).num_layers == 2
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, expected, rtol=1e-5, atol=1e-5)


def test_truncation_rejects_depths_out_of_range():
    model = default_gpt2(20, n_layer=2, n_embd=16, n_head=2)
    for k in (0, 3):
        with pytest.raises(ValueError, match="1 <= k <= 2"):
            truncate_blocks(model, k)
    with pytest.raises(ValueError, match="keep_blocks must be >= 1"):
        load_config(None, ["model.keep_blocks=0", "model.name_or_path=some/lm"])
    with pytest.raises(ValueError, match="set model.n_layer instead"):
        load_config(None, ["model.keep_blocks=2"])


@pytest.mark.slow
def test_depth_run_fine_tunes_a_truncated_pretrained_model(tiny_overrides, word_tokenizer, tmp_path):
    path = tmp_path / "pretrained"
    pretrained = default_gpt2(len(word_tokenizer), n_layer=3, n_embd=32, n_head=2, seed=1)
    pretrained.save_pretrained(path)
    word_tokenizer.save_pretrained(path)
    base = load_config(None, tiny_overrides(tmp_path, "depth", **{
        "model.name_or_path": str(path), "tracking.steps": "[0,4]", "tracking.ridge_bootstrap": 0,
        "analyses.attention": "false", "analyses.residual_scaling": "false"}))
    assert main_depth(base) == 3
    cfg = depth_config(base, PaperConfig(depths=[1, 3]), 1)
    assert cfg.model.keep_blocks == 1 and cfg.model.n_layer == base.model.n_layer
    out = run(cfg, progress=False)
    layers = out.table.frame.query("metric == 'predictive_information'")["layer"]
    assert sorted(layers.unique()) == [0, 1]
    assert load_config(out.run_dir / "config.yaml").model.keep_blocks == 1
    # The combined report says what the depth runs are.
    report, _ = write_paper_report(tmp_path, {"main": out.run_dir, "overfit": out.run_dir}, {1: out.run_dir})
    assert f"`{path}` cut to its first k blocks (its final norm and LM head kept)" in report.read_text()
