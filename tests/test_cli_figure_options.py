"""--figure-format, --dpi and --figure-style: on every command that writes figures, checked before
the command runs, and reaching the figures section of its config."""

import re

import pytest
from typer.testing import CliRunner

from inforidge.cli import app, figure_flags, figure_overrides
from inforidge.config.loading import load_command_config, load_config
from inforidge.config.schema import GenerateConfig, LayersConfig

runner = CliRunner()
COMMANDS = [["demo"], ["run"], ["paper"], ["sweep"], ["analyze"], ["layers"], ["generate-info"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_every_figure_writing_command_takes_the_figure_options(command, monkeypatch):
    import typer.rich_utils

    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 400)
    res = runner.invoke(app, [*command, "--help"])
    assert res.exit_code == 0, res.output
    text = re.sub(r"[\s│]+", "", res.output)
    assert "--figure-format" in text and "--dpi" in text and "--figure-style<notebook|paper>" in text


@pytest.mark.parametrize(("args", "option", "message"), [
    (["layers", "m", "--figure-format", "png,jpg"], "'--figure-format'", "'jpg' is not one of png, pdf, svg"),
    (["run", "c.yaml", "--dpi", "5"], "'--dpi'", "greater than or equal to 20"),
    (["demo", "--figure-style", "poster"], "'--figure-style'", "'poster' is not one of"),
])
def test_a_bad_figure_option_names_itself(args, option, message):
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.replace("│", " ").split())
    assert f"Invalid value for {option}" in text and message in text, text


def test_the_options_become_the_figures_section():
    assert figure_flags(None, None, None) == {} and figure_overrides(None, None, None) == []
    config = load_config(None, figure_overrides("png, pdf,svg", 300, "paper"))
    assert (config.figures.formats, config.figures.dpi, config.figures.style) == (["png", "pdf", "svg"], 300, "paper")
    for cls in (LayersConfig, GenerateConfig):
        cfg = load_command_config(cls, {"figures": figure_flags("svg", None, None)})
        assert cfg.figures.formats == ["svg"] and cfg.figures.dpi == 150 and cfg.figures.style == "notebook"
    assert load_config(None).figures.formats == ["png"]


def test_layers_passes_the_figure_settings_to_the_pipeline(monkeypatch, tmp_path):
    import inforidge.pipelines.layers as layers

    seen = {}

    def fake(*args, **kwargs):
        seen.update(kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(layers, "run_layers", fake)
    res = runner.invoke(app, ["layers", "m", "--out", str(tmp_path), "--figure-format", "pdf,png", "--dpi", "200",
                              "--figure-style", "paper"])
    assert res.exit_code == 2 and "stop here" in res.output
    fs = seen["figure_settings"]
    assert (fs.formats, fs.dpi, fs.style) == (["pdf", "png"], 200, "paper")
