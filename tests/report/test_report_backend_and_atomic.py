"""Report modules leave matplotlib's backend alone; reports are written from the table alone,
atomically."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import inforidge.results.table as table_module
from inforidge.config.loading import load_config
from inforidge.config.settings import MeasureSettings
from inforidge.measure.predictive import Evaluator
from inforidge.models.parts import locate_parts
from inforidge.report.run import write_report
from inforidge.report.run_figures import save_figures
from inforidge.report.sweep import checkpoint_section

IMPORT_EVERY_REPORT_MODULE = """
import importlib, pkgutil, sys
import matplotlib
matplotlib.use("svg")
import inforidge.report as report
names = [m.name for m in pkgutil.iter_modules(report.__path__, "inforidge.report.")]
for name in names:
    importlib.import_module(name)
assert len(names) >= 8, names
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""


def test_importing_every_report_module_keeps_the_backend_and_pyplot_unloaded():
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", IMPORT_EVERY_REPORT_MODULE], capture_output=True, text=True,
                         env=env, check=True)
    assert out.stdout.split() == ["svg", "False"]


@pytest.fixture(scope="module")
def measured_table(tiny_task, word_tokenizer, tiny_gpt2):
    ev = Evaluator(word_tokenizer, {"id": tiny_task.splits["test_id"], "ood": tiny_task.splits["test_ood"]},
                   MeasureSettings(n_samples=8, seeds=[0, 1], n_permutations=2))
    parts = locate_parts(tiny_gpt2)
    return pd.DataFrame(ev.measure(parts, 0) + ev.measure(parts, 4))


def test_report_and_figures_come_from_the_table_and_config(measured_table, tmp_path, tiny_overrides):
    config = load_config(None, tiny_overrides(tmp_path, "rep"))
    figures = save_figures(measured_table, tmp_path / "figures")
    path, summary = write_report(measured_table, tmp_path, config, figures, ["## Extra", "text", ""])
    text = path.read_text()
    assert summary["final_step"] == 4 and "## Verdict" in text and "## Extra" in text
    assert text.index("## Extra") < text.index("## Figures")
    assert all(p.exists() for p in figures.values()) and "information_heatmap" in figures


def test_a_failed_report_write_leaves_the_old_report(measured_table, tmp_path, monkeypatch, tiny_overrides):
    config = load_config(None, tiny_overrides(tmp_path, "rep"))
    (tmp_path / "report.md").write_text("old report")

    def fail(*args):
        raise OSError("no space left")

    monkeypatch.setattr(table_module.os, "replace", fail)
    with pytest.raises(OSError, match="no space"):
        write_report(measured_table, tmp_path, config, {})
    assert (tmp_path / "report.md").read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_checkpoint_section_lists_each_checkpoint_and_the_warnings(measured_table):
    df = measured_table.assign(checkpoint=measured_table["step"].map({0: "a", 4: "b"}), weight_hash="h")
    lines = checkpoint_section(df, ["identical weights"])
    text = "\n".join(lines)
    assert lines[0] == "## Checkpoints" and "| 0 | a | h |" in text and "| 4 | b | h |" in text
    assert "- identical weights" in text
