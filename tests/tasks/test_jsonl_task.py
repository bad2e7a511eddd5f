"""Your own task as JSONL: the loader, its errors, the multi-token policy, and a run end to end."""

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from inforidge.config.loading import describe_fields, load_config
from inforidge.config.settings import MeasureSettings
from inforidge.measure.predictive import Evaluator
from inforidge.models.loading import load_for_run
from inforidge.pipelines.run import run
from inforidge.tasks import load_jsonl_task
from inforidge.tasks.registry import build_task
from inforidge.tasks.tokenize import (
    build_word_tokenizer,
    one_multi_token_warning,
    target_token_ids,
    tokenize_for_next_token,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny_task.jsonl"


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def _lines(n_id=10, n_ood=3, **extra):
    return ([{"prompt": f"a b{i}", "target": f"c{i}", **extra} for i in range(n_id)]
            + [{"prompt": f"x y{i}", "target": f"z{i}", "split": "ood", "note": i} for i in range(n_ood)])


def test_the_shipped_example_loads_into_four_seeded_splits():
    task = load_jsonl_task(EXAMPLE, seed=0)
    sizes = {k: len(v) for k, v in task.splits.items()}
    assert sizes == {"train": 19, "validation": 3, "test_id": 6, "test_ood": 12}
    assert {r["split"] for r in task.splits["test_ood"]} == {"ood"}
    assert {r["kind"] for r in task.splits["train"]} == {"weekday"}, "metadata is kept"
    ids = [r["prompt"] for k in ("train", "validation", "test_id") for r in task.splits[k]]
    assert len(set(ids)) == 28, "the id lines are split, not duplicated"
    assert load_jsonl_task(EXAMPLE, seed=0).splits == task.splits
    assert load_jsonl_task(EXAMPLE, seed=1).splits["test_id"] != task.splits["test_id"]
    assert "wednesday" in task.vocabulary and len(task.metadata["sha256"]) == 64


def test_the_shipped_example_config_builds_its_task():
    config = load_config(EXAMPLE.with_suffix(".yaml"), [f"task.path={EXAMPLE}"])
    task = build_task(config)
    assert config.task.name == "jsonl" and len(task.splits["test_id"]) >= config.tracking.measure.n_samples


def test_explicit_sets_are_followed(tmp_path):
    sets = ["train"] * 6 + ["validation"] * 2 + ["test"] * 2
    lines = [{**r, "set": s} for r, s in zip(_lines(), sets + [None] * 3, strict=True)]
    for r in lines[10:]:
        del r["set"]
    task = load_jsonl_task(write_jsonl(tmp_path / "t.jsonl", lines))
    assert [r["target"] for r in task.splits["validation"]] == ["c6", "c7"]
    assert [r["target"] for r in task.splits["test_id"]] == ["c8", "c9"]
    assert len(task.splits["train"]) == 6 and task.metadata["split_from"] == "set field"


@pytest.mark.parametrize("lines, message", [
    ([], "no samples"),
    (["", "   "], "no samples"),
    (_lines()[:5] + ['{"prompt": "a", "target": '], r"t.jsonl:6: not valid JSON"),
    ([{"prompt": "a"}], r"t.jsonl:1: missing key\(s\) target"),
    ([{"prompt": "a", "target": ""}], "target must be a non-empty string"),
    ([{"prompt": "a", "target": "b", "split": "test"}], "split must be 'id' or 'ood'"),
    (["[1, 2]"], "must be a JSON object"),
    (_lines(n_ood=0), "no out-of-distribution lines"),
    (_lines(n_id=0), "no in-distribution lines"),
    (_lines(n_id=2), "cannot be cut into train"),
    ([{**_lines()[0], "set": "train"}] + _lines()[1:], r"t.jsonl:2: this id line has no set"),
    ([{**r, "set": "train"} for r in _lines()[:10]] + _lines()[10:], "no id line has set 'validation'"),
    (_lines()[:10] + [{**_lines()[10], "set": "train"}], r"t.jsonl:11: an ood line is test data"),
])
def test_bad_files_name_the_problem(tmp_path, lines, message):
    with pytest.raises(ValueError, match=message):
        load_jsonl_task(write_jsonl(tmp_path / "t.jsonl", lines))


def test_missing_file_and_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_jsonl_task(tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match="task.path"):
        build_task(load_config(None, ["task.name=jsonl"]))
    with pytest.raises(ValueError, match="multi_token_target"):
        load_config(None, ["task.multi_token_target=last"])
    with pytest.raises(ValueError, match="model.dtype"):
        load_config(None, ["model.dtype=float8"])
    docs = {k: doc for k, _, doc in describe_fields()}
    for key in ("task.path", "task.multi_token_target", "model.revision", "model.dtype", "model.device_map",
                "model.attn_implementation", "model.trust_remote_code"):
        assert docs[key], f"{key} needs a docstring line"


def test_multi_token_policy_keeps_the_first_token_and_warns_once(caplog):
    tok = build_word_tokenizer(["a", "b", "c", "d"])
    a, b, c = tok.convert_tokens_to_ids(["a", "b", "c"])
    with pytest.raises(ValueError, match="multi_token_target=first"):
        target_token_ids(tok, ["a b", "c"])
    with caplog.at_level(logging.WARNING, logger="inforidge.tasks.tokenize"):
        assert target_token_ids(tok, ["a b", "c", "b c d"], "first").tolist() == [a, c, b]
    assert [r.getMessage()[:17] for r in caplog.records] == ["2 of 3 targets ar"]
    assert "'a b' -> 'a'" in caplog.records[0].getMessage()
    caplog.clear()
    records = [{"prompt": "d", "target": "a b"}, {"prompt": "d d", "target": "c"}] * 3
    with caplog.at_level(logging.WARNING, logger="inforidge.tasks.tokenize"), one_multi_token_warning() as tally:
        data = tokenize_for_next_token(records, tok, "first")
        Evaluator(tok, {"id": records}, MeasureSettings(n_samples=6, seeds=[0]), multi_token_target="first")
    # Two tokenisations of the six records (training data, evaluation pool): one warning for both.
    assert len(caplog.records) == 1 and caplog.records[0].getMessage().startswith("6 of 12 targets")
    assert (tally.affected, tally.total) == (6, 12)
    assert data[0]["input_ids"][-1] == a and data[0]["labels"][-1] == a
    with pytest.raises(ValueError, match="unknown token"):
        target_token_ids(tok, ["zzz b"], "first")


@pytest.fixture(scope="module")
def tiny_llama_folder(tmp_path_factory):
    """A 2-layer Llama and a word tokenizer for the example's vocabulary, saved as a user would."""
    tok = build_word_tokenizer(load_jsonl_task(EXAMPLE).vocabulary)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_model_options_reach_from_pretrained(tiny_llama_folder):
    task = load_jsonl_task(EXAMPLE)
    config = load_config(None, [f"model.name_or_path={tiny_llama_folder}", "model.dtype=bfloat16",
                                "model.attn_implementation=eager"])
    model, tok, _ = load_for_run(config.model, task)
    assert model.dtype == torch.bfloat16 and model.config._attn_implementation == "eager"
    assert tok.padding_side == "left" and tok.pad_token == "[PAD]"
    model, _, _ = load_for_run(load_config(None, [f"model.name_or_path={tiny_llama_folder}"]).model, task)
    assert model.dtype == torch.float32, "float32 is the default, whatever the checkpoint holds"


@pytest.mark.slow
def test_run_end_to_end_on_a_jsonl_task_and_a_saved_llama(tiny_overrides, tiny_llama_folder, tmp_path, caplog):
    # Some targets made two words long (every line with that target, so no two distinct targets
    # share a first token), to see the policy and its one warning in a run.
    lines = [json.loads(x) for x in EXAMPLE.read_text().splitlines()]
    extended = {r["target"] for r in lines[::13]}
    for r in lines:
        if r["target"] in extended:
            r["target"] += " is"
    data = write_jsonl(tmp_path / "task.jsonl", lines)
    overrides = tiny_overrides(
        tmp_path, name="byo", **{
            "model.name_or_path": str(tiny_llama_folder), "task.name": "jsonl", "task.path": str(data),
            "training.batch_size": 8, "training.epochs": 2, "tracking.steps": "[0,3]",
            "tracking.measure.n_samples": 4,
        })
    with caplog.at_level(logging.WARNING, logger="inforidge.tasks.tokenize"):
        out = run(load_config(None, overrides), progress=False)
    warnings = [r.getMessage() for r in caplog.records if r.name == "inforidge.tasks.tokenize"]
    assert len(warnings) == 1 and "targets are longer than one token" in warnings[0]
    assert out.report_path.exists() and "task: jsonl" in out.report_path.read_text()
    df = pd.read_parquet(out.run_dir / "results.parquet")
    assert set(df["step"]) == {0, 3, 6} and set(df["split"]) == {"id", "ood", "all"}
    assert set(df[df.metric == "predictive_information"]["layer"]) == {0, 1, 2}
    assert (out.run_dir / "model" / "config.json").exists()
