"""The README's catalogue "Bad input and what it gets", one test per row.

Each row of the table carries an id (B01, B02 ...); the test of a row has that id in its name
(``test_b07_...``), and :func:`test_every_catalogue_row_has_a_test` keeps the two in sync. Each
test gives the bad input as a user would (the CLI through typer's CliRunner, or the Python API
on tiny models) and checks the error type and a phrase of its message that names the problem;
where a folder already holds results, that its files are unchanged afterwards.
"""

import copy
import json
import logging
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from inforidge.cli import app
from inforidge.config.loading import ConfigError, load_config, save_config
from inforidge.config.settings import KERNELS, MeasureSettings
from inforidge.measure.predictive import CONSTANT_STATES, Evaluator
from inforidge.models.loading import default_gpt2, load, prepare_tokenizer
from inforidge.models.parts import locate_parts
from inforidge.tasks.tokenize import build_word_tokenizer

README = Path(__file__).resolve().parents[1] / "README.md"
WORDS = [f"w{i}" for i in range(40)]
runner = CliRunner()


def cli(*args: str):
    """Invoke the CLI; returns (exit code, stdout + stderr)."""
    res = runner.invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # a traceback is a failure of the catalogue, not an answer
    return res.exit_code, res.output


def refused(*args: str, match: str) -> str:
    """The CLI ends with exit code 2 and ``Error: ...`` matching ``match`` (no traceback)."""
    code, out = cli(*args)
    assert code == 2, out
    assert re.search(match, out, re.S), out
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tok():
    return build_word_tokenizer(WORDS)


@pytest.fixture(scope="module")
def model_dir(tok, tmp_path_factory) -> Path:
    """A 2-block GPT-2 over the words w0..w39, saved with its tokenizer."""
    path = tmp_path_factory.mktemp("gpt2")
    default_gpt2(len(tok), n_layer=2, n_embd=32, n_head=2, seed=1).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("texts") / "texts.txt"
    path.write_text("\n".join(" ".join(WORDS[i : i + 8]) for i in range(20)) + "\n")
    return path


def layers_args(model, source, out, *extra):
    return ["layers", model, "--source", source, "--out", out, "--quiet", "--no-augment", "--no-figures",
            "--n-samples", "8", "--max-prompts", "8", "--batch-size", "4", *extra]


def gen_args(model, data, out, *extra):
    return ["generate-info", "--model", model, "--task", "jsonl", "--data", data, "--out", out, "--quiet",
            "--n-permutations", "2", "--max-new-tokens", "3", *extra]


def demo_args(tmp_path, name="r", **extra):
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import _tiny_overrides

    return ["demo", "--quiet", *[a for o in _tiny_overrides(tmp_path, name, **extra) for a in ("--set", o)]]


def records(n=10, **over):
    return [{"prompt": f"w{i} w{i + 1} w{i + 2}", "target": f"w{10 + i % 3}", **over} for i in range(n)]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


# ---------------------------------------------------------------- samples and splits


def test_b01_empty_split(tok):
    with pytest.raises(ValueError, match="split 'id' has 0 samples but n_samples=4; lower n_samples or add data"):
        Evaluator(tok, {"id": []}, MeasureSettings(n_samples=4, seeds=[0]))


def test_b02_one_sample_split(model_dir, tmp_path):
    data = write_jsonl(tmp_path / "g.jsonl", [{"prompt": "w1 w2", "target": "w3 w4"}] * 3)
    refused(*gen_args(model_dir, data, tmp_path / "out", "--n", "1"), match="1 record.*at least 2 samples")
    assert not (tmp_path / "out").exists()


def test_b03_one_sample_to_an_estimator():
    from inforidge.info import mutual_information

    with pytest.raises(ValueError, match="x has N=1 samples; at least 2 are needed"):
        mutual_information(torch.randn(1, 4), torch.randn(1, 3))


def test_b04_n_samples_below_two(tmp_path):
    refused(*demo_args(tmp_path, **{"tracking.measure.n_samples": 1}),
            match="tracking.measure: n_samples must be >= 2")
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------- targets


def test_b05_multi_token_target(tok):
    bad = records(8, target="w1 w2")
    with pytest.raises(ValueError, match="target 'w1 w2' is 2 tokens.*multi_token_target=first"):
        Evaluator(tok, {"id": bad}, MeasureSettings(n_samples=4, seeds=[0]), multi_token_target="error")


def test_b06_first_token_collisions(tok):
    bad = [{**r, "target": "w1 w2" if i % 2 else "w1 w3"} for i, r in enumerate(records(8))]
    with pytest.raises(ValueError, match="shared by distinct targets.*first_allow_collisions"):
        Evaluator(tok, {"id": bad}, MeasureSettings(n_samples=4, seeds=[0]), multi_token_target="first")


def test_b07_target_is_the_unknown_token(tok):
    with pytest.raises(ValueError, match="target 'paris' is the unknown token; add it to the vocabulary"):
        Evaluator(tok, {"id": records(8, target="paris")}, MeasureSettings(n_samples=4, seeds=[0]))


def test_b08_record_without_target(tok):
    bad = [{"prompt": r["prompt"]} for r in records(8)]
    with pytest.raises(ValueError, match="record 0: every record needs a 'prompt' and a 'target' string"):
        Evaluator(tok, {"id": bad}, MeasureSettings(n_samples=4, seeds=[0]))


def test_b08_record_without_target_generate_info(model_dir, tok):
    from inforidge.pipelines.generate_info import generate_info

    model = load(model_dir, tokenizer=tok).model
    with pytest.raises(ValueError, match="record 1 has no prompt or target string"):
        generate_info(model, tok, [{"prompt": "w1", "target": "w2"}, {"prompt": "w3"}], progress=False)


def test_b09_target_missing_from_a_jsonl_line(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"prompt": "w1 w2", "split": "id"}] * 3)
    refused(*demo_args(tmp_path, **{"task.name": "jsonl", "task.path": str(path)}),
            match=r"t.jsonl:1: missing key\(s\) target")
    assert not (tmp_path / "r").exists()


def test_b10_one_class_target(tok, model_dir):
    """All targets the same token: label entropy 0, so every MI would be 0 by construction; the
    Evaluator refuses to write such rows as numbers."""
    model = load(model_dir, tokenizer=tok).model
    ev = Evaluator(tok, {"id": records(8, target="w5")}, MeasureSettings(n_samples=8, seeds=[0], n_permutations=2))
    with pytest.raises(ValueError, match="fewer than two classes"):
        ev.measure(locate_parts(model), step=0)


# ---------------------------------------------------------------- prompts and texts


def test_b11_empty_prompt_in_a_jsonl_task(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"prompt": "  ", "target": "w1"}])
    refused(*demo_args(tmp_path, **{"task.name": "jsonl", "task.path": str(path)}),
            match="t.jsonl:1: prompt must be a non-empty string")


def test_b12_empty_prompt_through_the_python_api(tok):
    with pytest.raises(ValueError, match="prompt '' tokenises to no token; give every record a non-empty prompt"):
        Evaluator(tok, {"id": records(8, prompt="")}, MeasureSettings(n_samples=4, seeds=[0]))


def test_b13_empty_text_source(model_dir, tmp_path):
    (tmp_path / "empty.txt").write_text("\n \n")
    refused(*layers_args(model_dir, tmp_path / "empty.txt", tmp_path / "out"), match="holds no non-empty prompts")


def test_b14_one_prompt_text_source(model_dir, tmp_path):
    (tmp_path / "one.txt").write_text("w1 w2 w3 w4\n")
    refused(*layers_args(model_dir, tmp_path / "one.txt", tmp_path / "out"), match="1 prompt; the suite needs at least 2")


def test_b15_texts_mostly_unknown_tokens_layers(model_dir, tmp_path):
    """Part 4: refused before measuring; allowed with the flag (or allow_unknown_tokens in the config),
    and the report states the share of each source."""
    refused(*layers_args(model_dir, "builtin", tmp_path / "a"), match=r"text source builtin:pydoc: \d+ of \d+ tokens "
            r"\(100%\) are the unknown token '\[UNK\]'.*--allow-unknown-tokens")
    assert not (tmp_path / "a" / "results.parquet").exists()
    for out, extra in ((tmp_path / "b", ["--allow-unknown-tokens"]), (tmp_path / "c", ["--set", "allow_unknown_tokens=true"])):
        code, text = cli(*layers_args(model_dir, "builtin", out, *extra))
        assert code == 0, text
        assert re.search(r"of the text source builtin:pydoc are the unknown token '\[UNK\]'", (out / "report.md").read_text())
        assert "(100.0%)" in text


def test_b15_unknown_share_is_reported_when_low(model_dir, texts, tmp_path):
    code, out = cli(*layers_args(model_dir, texts, tmp_path / "out"))
    assert code == 0, out
    assert re.search(r"0 of \d+ tokens \(0.0%\) of the text source texts are the unknown token",
                     (tmp_path / "out" / "report.md").read_text())


def test_b16_prompts_or_targets_mostly_unknown_generate_info(model_dir, tmp_path, caplog):
    """Part 4: generate-info checks prompts and gold targets before generating; the override
    reaches it from the flag and the config; summary and report carry the shares."""
    unk_prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": f"foo bar{i} w1", "target": "w2 w3"} for i in range(6)])
    unk_targets = write_jsonl(tmp_path / "t.jsonl", [{"prompt": "w1 w2 w3", "target": f"paris{i} rome"} for i in range(6)])
    refused(*gen_args(model_dir, unk_prompts, tmp_path / "a"), match=r"prompts: 12 of 18 tokens \(67%\) are the unknown token")
    refused(*gen_args(model_dir, unk_targets, tmp_path / "a"), match=r"gold targets: 12 of 12 tokens \(100%\)")
    assert not (tmp_path / "a").exists()
    code, out = cli(*gen_args(model_dir, unk_prompts, tmp_path / "b", "--allow-unknown-tokens"))
    assert code == 0, out
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["unknown_tokens"]["prompts"] == {"n_unknown": 12, "n_tokens": 18, "share": round(12 / 18, 4)}
    assert summary["unknown_tokens"]["gold targets"]["n_unknown"] == 0
    assert "Unknown tokens in the prompts: 12 of 18 (66.7%" in (tmp_path / "b" / "report.md").read_text()
    code, out = cli(*gen_args(model_dir, unk_targets, tmp_path / "c", "--set", "allow_unknown_tokens=true"))
    assert code == 0, out


def test_b17_a_few_unknown_tokens_warn(tok, caplog):
    from inforidge.measure.layer_suite import measure_layers

    model = default_gpt2(len(tok), n_layer=2, n_embd=32, n_head=2)
    with caplog.at_level(logging.WARNING):
        measure_layers(model, tok, ["w1 w2 w3 w4 w5 w6 w7 w8 w9 paris"] * 4, split="texts")
    assert "texts: 4 of 40 tokens (10%) are the unknown token" in caplog.text


# ---------------------------------------------------------------- states


def _nan_model(model_dir, tok):
    model = copy.deepcopy(load(model_dir, tokenizer=tok).model)
    with torch.no_grad():
        model.transformer.h[1].mlp.c_proj.weight.fill_(float("nan"))
    return model


def test_b18_nan_states(model_dir, tok):
    model = _nan_model(model_dir, tok)
    ev = Evaluator(tok, {"id": records(8)}, MeasureSettings(n_samples=8, seeds=[0], n_permutations=2))
    with pytest.raises(ValueError, match=r"the states of layer\(s\) 2, 2 \(after the final norm\) are not finite"):
        ev.measure(locate_parts(model), step=0)


def test_b19_fp16_overflow(model_dir, tok):
    model = copy.deepcopy(load(model_dir, tokenizer=tok).model).half()
    torch.manual_seed(0)
    with torch.no_grad():  # a block whose MLP output passes float16's largest number, 65504
        model.transformer.h[0].mlp.c_fc.weight.normal_(0, 300.0)
        model.transformer.h[0].mlp.c_proj.weight.normal_(0, 300.0)
    ev = Evaluator(tok, {"id": records(8)}, MeasureSettings(n_samples=8, seeds=[0], n_permutations=2))
    with pytest.raises(ValueError, match="not finite.*half-precision overflow.*model.dtype=float32"):
        ev.measure(locate_parts(model), step=0)


def test_b20_duplicate_samples_constant_states(model_dir, tok):
    """Every sample the same prompt: the states are identical, every MI is 0 by construction,
    and the rows say so (flag = constant_states) instead of passing for a measurement."""
    model = load(model_dir, tokenizer=tok).model
    same = [{"prompt": "w1 w2 w3", "target": f"w{10 + i % 3}"} for i in range(8)]
    ev = Evaluator(tok, {"id": same}, MeasureSettings(n_samples=8, seeds=[0], n_permutations=2))
    rows = pd.DataFrame(ev.measure(locate_parts(model), step=0))
    info = rows[rows["metric"] == "predictive_information"]
    assert (info["flag"] == CONSTANT_STATES).all() and info["value"].abs().max() < 1e-9


def test_b21_duplicate_lines_in_a_jsonl_task(tmp_path, caplog):
    from inforidge.tasks.jsonl import load_jsonl_task

    lines = [{"prompt": f"a{i} b", "target": "c"} for i in range(10)] + [{"prompt": "a3 b", "target": "c"}]
    lines += [{"prompt": "x y", "target": "z", "split": "ood"}]
    with caplog.at_level(logging.WARNING):
        task = load_jsonl_task(write_jsonl(tmp_path / "t.jsonl", lines))
    assert "1 line(s) repeat the prompt and target of an earlier line (e.g. line 11 repeats line 4)" in caplog.text
    assert sum(len(v) for v in task.splits.values()) == 12  # kept


# ---------------------------------------------------------------- models


def test_b22_model_source_that_does_not_exist(tmp_path, texts):
    refused(*layers_args(tmp_path / "no-model", texts, tmp_path / "out"),
            match="no-model is not a folder here and could not be loaded from the hub")
    refused(*demo_args(tmp_path, **{"model.name_or_path": str(tmp_path / "no-model")}), match="is not a folder here")
    assert not (tmp_path / "r").exists()  # a corrected rerun is not taken for another config


def test_b23_checkpoint_folder_without_weights(model_dir, texts, tmp_path):
    folder = tmp_path / "checkpoint-5"
    folder.mkdir()
    for f in model_dir.iterdir():
        if f.suffix != ".safetensors":
            (folder / f.name).write_bytes(f.read_bytes())
    refused(*layers_args(folder, texts, tmp_path / "out"), match="has a config.json but its weights could not be read")


def test_b24_unknown_architecture(tmp_path, texts, tok):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "no_such_arch", "architectures": ["NoSuchForCausalLM"]}))
    tok.save_pretrained(folder)
    refused(*layers_args(folder, texts, tmp_path / "out"), match="no_such_arch.*does not recognize this architecture")


def test_b25_layer_out_of_range(model_dir, tok):
    from inforidge.models.surgery import truncate_blocks

    with pytest.raises(ValueError, match="cannot keep the first 5 blocks of a 2-block model; choose 1 <= k <= 2"):
        truncate_blocks(load(model_dir, tokenizer=tok).model, 5)


def test_b26_checkpoints_naming_a_missing_step(model_dir, texts, tmp_path):
    refused(*layers_args(model_dir, texts, tmp_path / "out", "--checkpoints", "checkpoint-999"),
            match="checkpoint 'checkpoint-999' is not a model folder")


def test_b27_tokenizer_without_pad_token():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token=None))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # Documented handling: a tokenizer without a pad token pads with its eos token.
    assert prepare_tokenizer(PreTrainedTokenizerFast(tokenizer_object=core, eos_token="w0")).pad_token == "w0"
    with pytest.raises(ValueError, match="has no pad, eos or unk token to pad batches with"):
        prepare_tokenizer(PreTrainedTokenizerFast(tokenizer_object=core))


def test_b28_unknown_dtype(model_dir, texts, tmp_path):
    # Refused by the option's choices (listed in --help) before anything loads.
    refused(*layers_args(model_dir, texts, tmp_path / "out", "--dtype", "float8"),
            match=r"Invalid value for '--dtype'.*'float8' is not one of 'auto',\W+'float32'")


def test_b29_unknown_model_kind(model_dir, texts, tmp_path):
    refused(*layers_args(model_dir, texts, tmp_path / "out", "--kind", "decoder"),
            match=r"Invalid value for '--kind'.*'decoder' is not one of 'auto',\W+'causal'")


# ---------------------------------------------------------------- config


def test_b30_corrupt_yaml(tmp_path):
    (tmp_path / "bad.yaml").write_text("task:\n  name: [arithmetic\n")
    refused("run", tmp_path / "bad.yaml", match=r"config file .*bad.yaml is not valid YAML at line 3, column 1")
    refused("sweep", tmp_path, "--config", tmp_path / "bad.yaml", match=r"bad.yaml is not valid YAML at line 3")


def test_b31_corrupt_yaml_in_a_set_value(tmp_path):
    refused(*demo_args(tmp_path), "--set", "tracking.steps=[0,1", match="the value of --set 'tracking.steps=\\[0,1' is not valid YAML")


def test_b32_yaml_that_is_not_a_mapping(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    refused("run", tmp_path / "list.yaml", match="must hold a YAML mapping of sections")


def test_b33_missing_config_file(tmp_path):
    refused("run", tmp_path / "nope.yaml", match="config file .*nope.yaml does not exist")


def test_b34_unknown_set_key(tmp_path):
    refused(*demo_args(tmp_path), "--set", "training.epochz=3",
            match=r"unknown config key\(s\) training.epochz; valid keys under training: adam_beta2")


def test_b35_wrong_value_type_via_set(tmp_path, model_dir, texts):
    refused(*demo_args(tmp_path), "--set", "training.epochs=three", match="training.epochs: expected float, got 'three'")
    refused(*layers_args(model_dir, texts, tmp_path / "out", "--set", "suite.batch_size=many"),
            match="suite.batch_size: expected int, got 'many'")


def test_b36_unknown_task_name(tmp_path):
    refused(*demo_args(tmp_path, **{"task.name": "sums"}), match="unknown task 'sums'; tasks: arithmetic, jsonl")
    assert not (tmp_path / "r").exists()


def test_b37_unknown_multi_token_task(model_dir, tmp_path):
    refused("generate-info", "--model", model_dir, "--task", "summaries", "--out", tmp_path / "out",
            match=r"Invalid value for '--task'.*'summaries' is not one of\W+'synthetic',\W+'continuation',\W+'cnn_dailymail',\W+'jsonl'")


def test_b38_unknown_kernel(tmp_path):
    refused(*demo_args(tmp_path, **{"tracking.measure.kernel": "cosine"}),
            match="tracking.measure: kernel must be one of gaussian, laplacian, polynomial, linear; got 'cosine'")
    assert not (tmp_path / "r").exists()


def test_b38_config_kernels_are_the_estimator_kernels():
    from inforidge.info.kernels import KERNELS as ESTIMATOR_KERNELS

    assert KERNELS == ESTIMATOR_KERNELS


@pytest.mark.parametrize("value", ["0", "-1", ".inf", "wide"])
def test_b39_sigma_not_positive(tmp_path, value):
    refused(*demo_args(tmp_path, **{"tracking.measure.sigma": value}),
            match="tracking.measure: sigma .*must be a positive")
    assert not (tmp_path / "r").exists()


def test_b40_sigma_flag_not_a_number(model_dir, tmp_path):
    data = write_jsonl(tmp_path / "g.jsonl", records(6))
    refused(*gen_args(model_dir, data, tmp_path / "out", "--sigma", "wide"),
            match="--sigma must be a positive number or 'median'; got 'wide'")
    refused(*gen_args(model_dir, data, tmp_path / "out", "--sigma", "-1"), match="info: sigma .*must be a positive")
    assert not (tmp_path / "out").exists()


def test_b41_alpha_not_positive(tmp_path, model_dir, texts):
    refused(*demo_args(tmp_path, **{"tracking.measure.alpha": 0}), match=r"alpha \(the Renyi order\) must be a finite number > 0")
    refused(*layers_args(model_dir, texts, tmp_path / "out", "--alpha", "-1"), match=r"alpha \(the Renyi order\)")
    assert not (tmp_path / "r").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["1", "0", "-2"])
def test_b42_bad_log_base(tmp_path, model_dir, texts, value):
    refused(*demo_args(tmp_path, **{"tracking.measure.base": value}), match=r"base \(of the logarithm\) must be > 0 and != 1")
    refused(*layers_args(model_dir, texts, tmp_path / "out", "--base", value), match=r"base \(of the logarithm\)")
    assert not (tmp_path / "out").exists()


def test_b43_negative_permutations(tmp_path, model_dir):
    refused(*demo_args(tmp_path, **{"tracking.measure.n_permutations": -1}), match="n_permutations must be >= 0")
    data = write_jsonl(tmp_path / "g.jsonl", records(6))
    refused(*gen_args(model_dir, data, tmp_path / "out", "--n-permutations", "-3"), match="n_permutations must be >= 0")


def test_b44_zero_new_tokens(model_dir, tmp_path):
    data = write_jsonl(tmp_path / "g.jsonl", records(6))
    refused(*gen_args(model_dir, data, tmp_path / "out", "--max-new-tokens", "0"), match="max_new_tokens must be >= 1")


# ---------------------------------------------------------------- files and folders


def test_b45_missing_data_file(model_dir, tmp_path):
    refused(*layers_args(model_dir, tmp_path / "nope.txt", tmp_path / "out"), match="text source .*nope.txt' is not a file")
    refused(*gen_args(model_dir, tmp_path / "nope.jsonl", tmp_path / "out"), match="nope.jsonl does not exist")


def test_b46_wrong_field_in_a_jsonl_text_source(model_dir, tmp_path):
    src = write_jsonl(tmp_path / "t.jsonl", [{"body": "w1 w2 w3"}] * 4)
    refused(*layers_args(model_dir, src, tmp_path / "out"), match="t.jsonl:1 has no field 'text' \\(it has: body\\); pass text_field")


def test_b47_wrong_columns_in_a_csv_probe_file(model_dir, texts, tmp_path):
    probe = tmp_path / "probe.csv"
    probe.write_text("sentence,y\n" + "".join(f"w{i} w{i + 1} w{i + 2},{i % 2}\n" for i in range(10)))
    refused(*layers_args(model_dir, texts, tmp_path / "out", "--probe-data", probe),
            match="probe.csv:2: no field 'text' \\(fields: sentence, y\\)")


def test_b48_one_class_probe_label(model_dir, texts, tmp_path):
    probe = tmp_path / "probe.csv"
    probe.write_text("text,label\n" + "".join(f"w{i} w{i + 1} w{i + 2},1\n" for i in range(10)))
    refused(*layers_args(model_dir, texts, tmp_path / "out", "--probe-data", probe),
            match=r"labels hold only one class \(1\); a probe needs at least two classes")


def test_b49_malformed_jsonl_line(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", ['{"prompt": "w1", "target": "w2"', '{"prompt": "w1", "target": "w2"}'])
    refused(*demo_args(tmp_path, **{"task.name": "jsonl", "task.path": str(path)}), match="t.jsonl:1: not valid JSON")


@pytest.mark.parametrize("command", ["run", "layers", "generate-info", "sweep"])
def test_b50_output_folder_is_a_file(command, model_dir, texts, tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("keep me")
    if command == "run":
        args = ["demo", "--set", f"output_dir={blocker}", "--set", "name=x"]
    elif command == "sweep":
        sys.path.insert(0, str(Path(__file__).parent))
        from conftest import _tiny_overrides

        ckpt = tmp_path / "run" / "checkpoints" / "checkpoint-4"
        ckpt.mkdir(parents=True)
        for f in model_dir.iterdir():
            (ckpt / f.name).write_bytes(f.read_bytes())
        save_config(load_config(None, _tiny_overrides(tmp_path, "run")), tmp_path / "run" / "config.yaml")
        args = ["sweep", tmp_path / "run", "--out", blocker / "sweep", "--quiet"]
    elif command == "layers":
        args = layers_args(model_dir, texts, blocker / "sub")
    else:
        args = gen_args(model_dir, write_jsonl(tmp_path / "g.jsonl", records(6)), blocker)
    refused(*args, match="taken is a file.*choose another output folder")
    assert blocker.read_text() == "keep me"


def test_b51_different_config_in_an_existing_run_folder(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import _tiny_overrides

    run_dir = tmp_path / "r"
    run_dir.mkdir()
    save_config(load_config(None, _tiny_overrides(tmp_path, "r")), run_dir / "config.yaml")
    (run_dir / "results.csv").write_text("step,value\n0,1.5\n")
    before = snapshot(run_dir)
    refused(*demo_args(tmp_path, **{"training.epochs": 2}), match="holds a run with a different config; resume it "
            "with the same config")
    assert snapshot(run_dir) == before


def test_b52_different_settings_in_an_existing_layers_folder(model_dir, texts, tmp_path):
    out = tmp_path / "out"
    assert cli(*layers_args(model_dir, texts, out))[0] == 0
    before = snapshot(out)
    refused(*layers_args(model_dir, texts, out, "--seed", "3"),
            match=r"holds a layers run with other settings \(differing: settings\); its tables are kept")
    assert snapshot(out) == before


def test_b53_generate_info_into_another_commands_folder(model_dir, texts, tmp_path):
    out = tmp_path / "out"
    assert cli(*layers_args(model_dir, texts, out))[0] == 0
    before = snapshot(out)
    refused(*gen_args(model_dir, write_jsonl(tmp_path / "g.jsonl", records(6)), out),
            match=r"holds another command's results \(layers.json\).*Choose another --out")
    assert snapshot(out) == before


def test_b54_interrupted_layers_run_resumes(model_dir, texts, tmp_path, tok):
    """A run that stops after its first model (here: the second is missing) keeps the first's
    rows; the same command again measures only what is missing."""
    out, second = tmp_path / "out", tmp_path / "second"
    refused(*layers_args(model_dir, texts, out)[:2], second, *layers_args(model_dir, texts, out)[2:],
            match="second is not a folder here")
    first = pd.read_parquet(out / "results.parquet")
    assert set(first["model"]) == {model_dir.name}
    default_gpt2(len(tok), n_layer=2, n_embd=32, n_head=2, seed=7).save_pretrained(second)
    tok.save_pretrained(second)
    code, text = cli(*layers_args(model_dir, texts, out)[:2], second, *layers_args(model_dir, texts, out)[2:])
    assert code == 0 and "resumed: 1 of 2" in text, text
    again = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(again[again["model"] == model_dir.name].reset_index(drop=True), first)
    assert set(again["model"]) == {model_dir.name, "second"}


# ---------------------------------------------------------------- the catalogue and its tests


def catalogue_ids() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Bad input and what it gets")
    section = text[start : text.index("\n## ", start + 1)]
    return re.findall(r"^\| (B\d\d) \|", section, re.M)


def test_every_catalogue_row_has_a_test():
    ids = catalogue_ids()
    assert len(ids) >= 25 and len(ids) == len(set(ids)), ids
    tested = {m.group(1).upper() for name in globals() if (m := re.match(r"test_(b\d\d)_", name))}
    assert set(ids) == tested, (sorted(set(ids) - tested), sorted(tested - set(ids)))


def test_the_catalogue_follows_no_silent_wrong_numbers():
    text = README.read_text(encoding="utf-8")
    assert text.index("**No silent wrong numbers.**") < text.index("## Bad input and what it gets") < text.index(
        "## What `make demo` does")


def test_configerror_is_a_valueerror():
    """The CLI boundary catches ValueError: every config error reaches the user as a message."""
    assert issubclass(ConfigError, ValueError)
