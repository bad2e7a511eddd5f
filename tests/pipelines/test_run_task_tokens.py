"""End-to-end runs where the tokenizer decides the task: the arithmetic task written for a
pretrained model's tokenizer, and whole multi-token targets."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from inforidge.config.loading import load_config
from inforidge.pipelines.run import run
from inforidge.tasks.synthetic import LETTERS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny_task.jsonl"


@pytest.fixture(scope="module")
def digit_llama_folder(tmp_path_factory):
    """A 2-layer Llama whose tokenizer splits digits, as BPE does ('S6' -> 'S' '6')."""
    words = ["[PAD]", "[UNK]", "[BOS]", *LETTERS, *"0123456789", "?"]
    core = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                  pre_tokenizers.Digits(individual_digits=True)])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]",
                                  eos_token="[BOS]", padding_side="left")
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                         pad_token_id=0, bos_token_id=2, eos_token_id=2)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("digit_llama")
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.mark.slow
def test_arithmetic_run_on_a_pretrained_tokenizer_uses_single_token_targets(tiny_overrides, digit_llama_folder,
                                                                           tmp_path):
    overrides = tiny_overrides(tmp_path, "letters", **{
        "model.name_or_path": str(digit_llama_folder), "tracking.steps": "[0,4]", "task.multi_token_target": "error",
    })
    out = run(load_config(None, overrides), progress=False)  # 'error': a split target would stop the run
    df = pd.read_parquet(out.run_dir / "results.parquet")
    label = df[(df.metric == "label_entropy") & (df.step == 0)]
    assert (label["value"] > 1.0).all(), "13+ classes, not one"
    # the attention analysis found the letters at the signal positions of this tokenizer
    assert {"attention_signal"} <= set(df["metric"])


@pytest.mark.slow
def test_run_with_whole_targets(tiny_overrides, tmp_path):
    lines = [json.loads(x) for x in EXAMPLE.read_text().splitlines()]
    for i, r in enumerate(lines):  # targets of one to three words that share first words
        r["target"] = " ".join([r["target"]] + ["is", "so"][: i % 3])
    path = tmp_path / "task.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    overrides = tiny_overrides(tmp_path, "whole", **{
        "task.name": "jsonl", "task.path": str(path), "task.multi_token_target": "whole",
        "tracking.measure.label_view": "token_embedding", "training.batch_size": 8, "tracking.steps": "[0,3]",
        "tracking.measure.n_samples": 4,
    })
    out = run(load_config(None, overrides), progress=False)
    df = pd.read_parquet(out.run_dir / "results.parquet")
    pi = df[df.metric == "predictive_information"]
    assert set(pi["target_kernel"]) == {"sequence_mean_gaussian"} and pi["value"].notna().all()
    assert "label embedding y: token_embedding of every token of the whole target" in out.report_path.read_text()
