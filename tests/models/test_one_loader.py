"""models.loading.load: every source kind, the tokenizer set once, part overrides, errors."""

import shutil

import pytest
import torch
from tokenizers import Tokenizer
from transformers import GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from inforidge.config.settings import MeasureSettings
from inforidge.measure.predictive import Evaluator
from inforidge.models.checkpoints import Checkpoint
from inforidge.models.loading import (
    LoadedModel,
    default_gpt2,
    load,
    prepare_tokenizer,
    tokenizer_folder,
)
from inforidge.pipelines.sweep import sweep


@pytest.fixture(scope="module")
def folders(word_tokenizer, tmp_path_factory):
    """Tiny GPT-2 and Llama folders saved with save_pretrained (tokenizer beside them)."""
    root = tmp_path_factory.mktemp("one_loader")
    gpt2 = default_gpt2(len(word_tokenizer), n_layer=2, n_embd=32, n_head=2, seed=1)
    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(word_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
        pad_token_id=word_tokenizer.pad_token_id, bos_token_id=2, eos_token_id=2))
    out = {}
    for name, model in (("gpt2", gpt2), ("llama", llama)):
        model.save_pretrained(root / name)
        word_tokenizer.save_pretrained(root / name)
        out[name] = root / name
    return out


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_model_folder_gives_eval_model_left_padded_tokenizer_and_validated_parts(folders, name):
    loaded = load(folders[name])
    assert isinstance(loaded, LoadedModel) and loaded.kind == "causal"
    model, tokenizer, parts = loaded
    assert not model.training
    assert tokenizer.padding_side == "left" and tokenizer.pad_token == "[PAD]"
    assert parts.model is model and parts.num_layers == 2
    assert parts.block_path == ("transformer.h" if name == "gpt2" else "model.layers")


def test_run_folder_loads_its_model(folders, tmp_path):
    run = tmp_path / "runs" / "demo"
    shutil.copytree(folders["gpt2"], run / "model")
    loaded = load(run)
    assert loaded.model.config._name_or_path == str(run / "model")
    reference = GPT2LMHeadModel.from_pretrained(folders["gpt2"])
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.state_dict().values(),
                                                  reference.state_dict().values(), strict=True))


def test_checkpoint_without_tokenizer_uses_its_runs_tokenizer(folders, word_tokenizer, tmp_path):
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "checkpoint-2"
    GPT2LMHeadModel.from_pretrained(folders["gpt2"]).save_pretrained(ckpt)
    word_tokenizer.save_pretrained(run / "model")
    assert tokenizer_folder(ckpt) == run / "model"
    _, tokenizer, _ = load(ckpt)
    assert tokenizer.get_vocab() == word_tokenizer.get_vocab() and tokenizer.padding_side == "left"
    # A folder not named checkpoint-<N> does not look at its parents.
    plain = tmp_path / "plain"
    shutil.copytree(ckpt, plain)
    assert tokenizer_folder(plain) is None


def test_pad_token_falls_back_to_eos_and_padding_side_is_set(word_tokenizer):
    # A copy of the backend without the padding that earlier tests may have switched on in it.
    backend = Tokenizer.from_str(word_tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    no_pad = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="[BOS]", padding_side="right")
    assert no_pad.pad_token is None
    prepare_tokenizer(no_pad)
    assert no_pad.pad_token == "[BOS]" and no_pad.padding_side == "left"
    assert prepare_tokenizer(no_pad, "right").padding_side == "right"
    with pytest.raises(ValueError, match="padding_side"):
        prepare_tokenizer(no_pad, "middle")


def test_given_tokenizer_object_is_used_and_prepared(folders, word_tokenizer):
    word_tokenizer.padding_side = "right"
    try:
        _, tokenizer, _ = load(folders["llama"], tokenizer=word_tokenizer)
        assert tokenizer is word_tokenizer and tokenizer.padding_side == "left"
    finally:
        word_tokenizer.padding_side = "left"


def test_options_reach_from_pretrained(folders):
    model, _, _ = load(folders["llama"], dtype="bfloat16", attn_implementation="eager", validate=False)
    assert model.dtype == torch.bfloat16 and model.config._attn_implementation == "eager"
    with pytest.raises(ValueError, match="torch dtype name"):
        load(folders["llama"], dtype="float99")
    with pytest.raises(ValueError, match="not both"):
        load(folders["llama"], device="cpu", device_map="cpu")
    with pytest.raises(ValueError, match="kind must be"):
        load(folders["llama"], kind="decoder")


def test_part_overrides_are_used_and_a_wrong_one_is_named(folders):
    loaded = load(folders["llama"], block_path="model.layers", final_norm_path="model.norm")
    assert loaded.parts.block_path == "model.layers" and loaded.parts.final_norm_path == "model.norm"
    with pytest.raises(ValueError, match=r"tried no\.such\.blocks.*block_path="):
        load(folders["llama"], block_path="no.such.blocks")
    # A path that exists but is the wrong module fails validation, naming the override to fix.
    with pytest.raises(ValueError, match="final_norm_path"):
        load(folders["llama"], final_norm_path="model.layers.0.input_layernorm")


def test_unknown_source_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder here"):
        load(str(tmp_path / "no-such-model"))


def test_sweep_pads_on_the_left_even_when_the_checkpoint_saved_right(folders, word_tokenizer, tiny_task, tmp_path,
                                                                    monkeypatch):
    ckpt = tmp_path / "checkpoint-3"
    shutil.copytree(folders["gpt2"], ckpt)
    word_tokenizer.padding_side = "right"
    try:
        word_tokenizer.save_pretrained(ckpt)
    finally:
        word_tokenizer.padding_side = "left"
    sides = []
    monkeypatch.setattr(Evaluator, "measure", lambda self, parts, step: sides.append(self.tokenizer.padding_side) or [])
    sweep([Checkpoint.folder(ckpt)], tiny_task, MeasureSettings(n_samples=8, seeds=[0]), progress=False)
    assert sides == ["left"]
