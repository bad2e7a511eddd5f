"""The core install and its extras (pyproject.toml, inforidge/_optional.py): the core imports
none of the optional packages, each optional import fails with the pip command of its extra,
and a run without any extra writes its tables and report (no figures)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inforidge._optional import EXTRA_OF, MissingExtraError, require
from inforidge.tasks.base import TaskData

OPTIONAL = sorted(EXTRA_OF)
SRC = str(Path(__file__).resolve().parents[1] / "src")
# Makes every optional package unimportable in a subprocess (None in sys.modules), as in an
# install without the extras.
BLOCK = f"import sys\nfor m in {OPTIONAL!r}: sys.modules[m] = None\n"


def _python(code: str, tmp_path=None) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)


def test_info_imports_only_torch_and_numpy():
    code = ("import sys, inforidge.info\n"
            "print(sorted({m.split('.')[0] for m in sys.modules}))")
    out = _python(code)
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout.replace("'", '"')))
    heavy = {"pandas", "transformers", "matplotlib", "scipy", "sklearn", "datasets", "nlpaug",
             "pyarrow", "tokenizers", "accelerate", "yaml", "pydantic", "typer", "safetensors"}
    assert {"torch", "numpy"} <= loaded
    assert not loaded & heavy, sorted(loaded & heavy)


def test_core_modules_import_without_the_extras():
    code = BLOCK + ("import inforidge.info, inforidge.pipelines.run, inforidge.pipelines.sweep\n"
                    "import inforidge.pipelines.tracking, inforidge.cli, inforidge.pipelines.layers\n"
                    "from inforidge import InfoRidgeCallback, Evaluator, ResultsTable, run, sweep\n"
                    "print('ok')")
    out = _python(code)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize(("module", "extra"), [("matplotlib", "plots"), ("sklearn", "layers"),
                                               ("scipy.stats", "layers"), ("nlpaug", "layers"),
                                               ("datasets", "data")])
def test_require_names_the_extra(monkeypatch, module, extra):
    top = module.split(".")[0]
    for name in [n for n in sys.modules if n.split(".")[0] == top] + [top]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtraError, match=rf"pip install 'inforidge\[{extra}\]'"):
        require(module)


def test_features_of_the_extras_fail_with_the_extra(monkeypatch):
    from inforidge.measure.probes import metric_score_correlations, probe_scores
    from inforidge.report.figures import new_figure
    from inforidge.tasks.augment import build_augmenter

    # As in an install without them: the packages and their submodules (which other tests may
    # have imported) cannot be imported.
    for name in [n for n in sys.modules if n.split(".")[0] in OPTIONAL] + OPTIONAL:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"inforidge\[layers\]"):
        probe_scores({0: np.zeros((10, 2))}, np.array([0, 1] * 5), folds=2)
    with pytest.raises(ImportError, match=r"inforidge\[layers\]"):
        metric_score_correlations(pd.DataFrame({"a": [1.0, 2.0, 3.0]}), pd.Series([1.0, 2.0, 3.0]))
    with pytest.raises(ImportError, match=r"inforidge\[layers\]"):
        build_augmenter()
    with pytest.raises(ImportError, match=r"inforidge\[plots\]"):
        new_figure()
    task = TaskData("t", {"train": [{"prompt": "a", "target": "b", "split": "id"}]})
    with pytest.raises(ImportError, match=r"inforidge\[data\]"):
        task.dataset("train")


@pytest.mark.slow
def test_a_run_without_the_extras_writes_tables_and_report(tiny_overrides, tmp_path):
    overrides = tiny_overrides(tmp_path, "core")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("name: core\nmodel: {n_layer: 2, n_embd: 32, n_head: 2}\n")
    code = BLOCK + (
        "from typer.testing import CliRunner\nfrom inforidge.cli import app\n"
        f"args = ['run', {str(cfg)!r}, '--quiet'] + sum((['--set', o] for o in {overrides!r}), [])\n"
        "res = CliRunner().invoke(app, args)\nprint(res.output)\n"
        "assert res.exit_code == 0, res.exception\n"
        "assert not any(m in sys.modules and sys.modules[m] for m in "
        f"{OPTIONAL!r}), 'an optional package was imported'\n")
    out = _python(code, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    run_dir = tmp_path / "core"
    assert (run_dir / "results.parquet").exists() and (run_dir / "report.md").exists()
    assert not list(run_dir.glob("figures/*.png"))
    assert "pip install 'inforidge[plots]'" in out.stdout + out.stderr


def test_the_cli_boundary_answers_a_missing_extra_without_a_traceback(monkeypatch, capsys):
    import typer

    from inforidge.cli import boundary

    monkeypatch.setitem(sys.modules, "nlpaug", None)
    with pytest.raises(typer.Exit) as exit_info, boundary():
        require("nlpaug", "the augmentations")
    assert exit_info.value.exit_code == 2
    err = capsys.readouterr().err
    assert "Error: nlpaug is needed for the augmentations" in err and "pip install 'inforidge[layers]'" in err
