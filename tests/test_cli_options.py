"""CLI options: fixed sets of values listed in --help and refused before any heavy import;
comma-separated lists checked item by item (the error names the option); --log-level."""

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inforidge.cli import app, boundary

SRC = str(Path(__file__).resolve().parents[1] / "src")
runner = CliRunner()


def flat(text: str) -> str:
    """The output without the help boxes' borders and line breaks (rich wraps long metavars)."""
    return re.sub(r"[\s│]+", "", text)


@pytest.mark.parametrize(("command", "listed"), [
    ([], "--log-level<debug|info|warning|error|critical>"),
    (["config"], "<run|layers|generate-info>"),
    (["layers"], "<pre|post>"),
    (["layers"], "<auto|causal|encoder>"),
    (["layers"], "<line|paragraph>"),
    (["layers"], "<auto|float32|bfloat16|float16>"),
    (["generate-info"], "<synthetic|continuation|cnn_dailymail|jsonl>"),
    (["generate-info"], "<id|ood|test|validation|train>"),
    (["generate-info"], "<1.0.0|2.0.0|3.0.0>"),
    (["generate-info"], "<auto|float32|bfloat16|float16>"),
])
def test_help_lists_the_choices(command, listed, monkeypatch):
    import typer.rich_utils

    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 400)  # no wrapping inside the metavars
    res = runner.invoke(app, [*command, "--help"])
    assert res.exit_code == 0, res.output
    assert listed in flat(res.output)


BAD = {
    "final_norm": (["layers", "m", "--final-norm", "middle"], "'--final-norm'", "'middle' is not one of"),
    "kind": (["layers", "m", "--kind", "decoder"], "'--kind'", "'decoder' is not one of"),
    "unit": (["layers", "m", "--unit", "page"], "'--unit'", "'page' is not one of"),
    "dtype": (["layers", "m", "--dtype", "float8"], "'--dtype'", "'float8' is not one of"),
    "task": (["generate-info", "--task", "summaries"], "'--task'", "'summaries' is not one of"),
    "split": (["generate-info", "--split", "dev"], "'--split'", "'dev' is not one of"),
    "cnn_config": (["generate-info", "--cnn-config", "4.0.0"], "'--cnn-config'", "'4.0.0' is not one of"),
    "what": (["analyze", "r", "--what", "ridge,nope"], "'--what'", "'nope' is not one of ridge, attention"),
    "command": (["config", "--command", "nope"], "'--command'", "'nope' is not one of"),
    "repetition": (["layers", "m", "--repetition", "0,0.5,lots"], "'--repetition'", "'lots' is not a number"),
    "randomness": (["layers", "m", "--randomness", "x"], "'--randomness'", "'x' is not a number"),
    "lengths": (["layers", "m", "--lengths", "8,16.5"], "'--lengths'", "'16.5' is not a whole number"),
    "plot_steps": (["generate-info", "--plot-steps", "1,two"], "'--plot-steps'", "'two' is not a whole number"),
    "log_level": (["--log-level", "loud", "env"], "'--log-level'", "'loud' is not one of"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_names_its_option(name):
    args, option, message = BAD[name]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.replace("│", " ").split())
    assert f"Invalid value for {option}" in text and message in text, text


def test_bad_values_are_refused_before_heavy_imports():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom inforidge.cli import app\n"
            f"for args in {[v[0] for v in BAD.values()]!r}:\n"
            "    assert CliRunner().invoke(app, args).exit_code == 2, args\n"
            "print(sorted(m for m in ('torch', 'transformers', 'pandas', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_good_lists_pass_through_unchanged():
    from inforidge.cli import _numbers, _whole_numbers, comma_list

    assert _numbers("0, 0.5,1") == "0, 0.5,1" and _whole_numbers("8,16.0") == "8,16.0"
    assert comma_list(("a", "b"))("a,b,") == "a,b," and _numbers(None) is None


def test_log_level_reaches_boundary():
    seen = []

    @app.command("probe-log-level")
    def probe() -> None:
        with boundary():
            seen.append(logging.getLogger("inforidge.measure").getEffectiveLevel())

    before = logging.getLogger("inforidge").level
    try:
        assert runner.invoke(app, ["--log-level", "DEBUG", "probe-log-level"]).exit_code == 0
        assert runner.invoke(app, ["--log-level", "error", "probe-log-level"]).exit_code == 0
    finally:
        app.registered_commands.pop()
        runner.invoke(app, ["env"])  # (the app callback resets the level to None)
    assert seen == [logging.DEBUG, logging.ERROR]
    assert logging.getLogger("inforidge").level == before  # restored after the command


def test_the_cnn_versions_are_the_loaders():
    from inforidge.cli import CNN_VERSIONS
    from inforidge.tasks.multitoken import CNN_DM_CONFIGS

    assert set(CNN_VERSIONS) == set(CNN_DM_CONFIGS)
