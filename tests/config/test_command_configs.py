"""`layers` and `generate-info` take --config / --set like `run`: types checked before anything is
written, and the part overrides (model.block_path, model.final_norm_path) reach the model."""

import pytest
from typer.testing import CliRunner

from inforidge.cli import app


@pytest.fixture(scope="module")
def run_folder(tiny_gpt2, word_tokenizer, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "tiny"
    tiny_gpt2.save_pretrained(run / "model")
    word_tokenizer.save_pretrained(run / "model")
    return run


def _generate(run, out, *extra):
    return CliRunner().invoke(app, ["generate-info", "--model", str(run), "--task", "synthetic", "--n", "8",
                                    "--k", "2", "--n-permutations", "1", "--quiet", "--out", str(out), *extra])


def _layers(run, out, *extra):
    texts = out.parent / "texts.txt"
    texts.write_text("\n".join(["S1 N2 S3 N4 ?", "S5 N6 S7 N8 ?", "S9 N1 S2 N3 ?"] * 2))
    return CliRunner().invoke(app, ["layers", str(run / "model"), "--source", str(texts), "--n-samples", "4",
                                    "--no-augment", "--no-figures", "--quiet", "--out", str(out), *extra])


@pytest.mark.parametrize("command", [_generate, _layers])
def test_a_mistyped_value_names_its_key_and_writes_nothing(run_folder, tmp_path, command):
    key = "generation.max_new_tokens" if command is _generate else "suite.n_samples"
    res = command(run_folder, tmp_path / "out", "--set", f"{key}=abc")
    assert res.exit_code != 0 and key in res.output and "expected int" in res.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [_generate, _layers])
def test_a_wrong_block_path_is_named(run_folder, tmp_path, command):
    res = command(run_folder, tmp_path / "out", "--set", "model.block_path=transformer.no_such_blocks")
    assert res.exit_code != 0 and "transformer.no_such_blocks" in res.output


@pytest.mark.parametrize("command", [_generate, _layers])
def test_the_right_overrides_and_a_yaml_config_are_used(run_folder, tmp_path, command):
    config = tmp_path / "c.yaml"
    config.write_text("model:\n  block_path: transformer.h\n  final_norm_path: transformer.ln_f\n")
    res = command(run_folder, tmp_path / "out", "--config", str(config))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "results.parquet").exists()


def test_config_lists_each_commands_fields():
    res = CliRunner().invoke(app, ["config", "--command", "layers"])
    assert res.exit_code == 0 and "model.block_path" in res.output and "suite.n_samples" in res.output
    res = CliRunner().invoke(app, ["config", "--command", "nope"])
    assert res.exit_code != 0
