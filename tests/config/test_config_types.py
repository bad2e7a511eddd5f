"""Config values are checked against their types at load, before any run folder exists."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from inforidge.cli import app
from inforidge.config.loading import ConfigError, load_config, load_paper_config


def test_scientific_notation_is_a_float():
    config = load_config(None, ["training.learning_rate=1e-3", "training.weight_decay=2E-2"])
    assert isinstance(config.training.learning_rate, float) and config.training.learning_rate == 0.001
    assert config.training.weight_decay == 0.02


def test_lax_numbers_and_strings():
    config = load_config(None, ["model.n_layer='3'", "training.epochs=2", "name=2024", "task.seed=4.0"])
    assert config.model.n_layer == 3 and isinstance(config.model.n_layer, int)
    assert config.training.epochs == 2.0 and isinstance(config.training.epochs, float)
    assert config.name == "2024" and config.task.seed == 4


@pytest.mark.parametrize(("override", "key", "expected"), [
    ("training.epochs=abc", "training.epochs", "float"),
    ("model.n_layer=two", "model.n_layer", "int"),
    ("analyses.attention=maybe", "analyses.attention", "bool"),
    ("training.batch_size=3.5", "training.batch_size", "int"),
    ("tracking.measure.n_permutations=many", "tracking.measure.n_permutations", "int"),
    ("tracking.steps=[0,x]", "tracking.steps", "list[int]"),
])
def test_bad_values_name_key_value_and_type(override, key, expected):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    msg = str(info.value)
    assert key in msg and expected in msg and override.split("=", 1)[1].strip("[]").split(",")[-1] in msg
    assert isinstance(info.value, ValueError)


def test_unknown_keys_and_post_init_checks_still_work():
    with pytest.raises(ValueError, match="training.nonsense"):
        load_config(None, ["training.nonsense=1"])
    with pytest.raises(ValueError, match="model.dtype"):
        load_config(None, ["model.dtype=float8"])
    with pytest.raises(ValueError, match="tracking.measure.*n_samples"):
        load_config(None, ["tracking.measure.n_samples=1"])


def test_paper_section_is_typed():
    _, paper = load_paper_config(None, ["paper.overfit_epochs_factor=4"])
    assert paper.overfit_epochs_factor == 4.0
    with pytest.raises(ConfigError, match=r"paper\.depths"):
        load_paper_config(None, ["paper.depths=[2,four]"])


def test_yaml_file_scientific_notation(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("training:\n  learning_rate: 5e-4\n")
    assert load_config(p).training.learning_rate == 5e-4


@pytest.mark.parametrize("command", ["run", "demo"])
def test_cli_bad_value_fails_before_the_run_folder(tmp_path, command):
    args = ["--set", f"output_dir={tmp_path}", "--set", "name=bad", "--set", "training.epochs=abc"]
    if command == "run":
        cfg = tmp_path / "c.yaml"
        cfg.write_text("name: bad\n")
        args = [str(cfg), *args]
    res = CliRunner().invoke(app, [command, *args])
    assert res.exit_code == 2, res.output
    assert "training.epochs" in res.output and "float" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "bad").exists()


def test_config_package_is_light():
    code = ("import sys, inforidge.config, inforidge.config.loading, inforidge.config.schema; "
            "from inforidge.config.loading import load_config; load_config(None, ['training.epochs=2']); "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_config_command_does_not_import_torch():
    code = ("import sys; from typer.testing import CliRunner; from inforidge.cli import app; "
            "r = CliRunner().invoke(app, ['config']); assert r.exit_code == 0 and 'training.epochs' in r.output; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
