"""The wheel: it builds, holds the package data (presets, py.typed), declares the core
requirements and the extras, and installs into a fresh virtual environment whose
``inforidge`` command runs.

Offline and without downloading torch (a multi-GB wheel) again: the wheel is built with
``--no-isolation`` (setuptools and wheel of the running environment) and installed with
``--no-deps``; a .pth file in the fresh environment appends the running environment's
site-packages, so its dependencies (torch, transformers, typer ...) import from there while
``inforidge`` itself comes from the wheel (site-packages of the fresh venv come first)."""

import email
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["HF_HUB_OFFLINE"] = "1"
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    # Build from a copy: setuptools writes build/ and *.egg-info beside the sources.
    project = tmp / "project"
    shutil.copytree(ROOT / "src", project / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp / "dist"),
                    str(project)], check=True, capture_output=True, text=True, env=_env(), timeout=300)
    (built,) = (tmp / "dist").glob("inforidge-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_holds_the_package_data_and_the_extras(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(z.read(meta_name))
    assert {"inforidge/py.typed", "inforidge/config/presets/demo.yaml", "inforidge/info/__init__.py",
            "inforidge/cli.py"} <= names
    assert not any(n.startswith(("tests/", "docs/")) for n in names)
    assert {"plots", "layers", "data", "all", "test", "docs"} <= set(meta.get_all("Provides-Extra"))
    requires = meta.get_all("Requires-Dist")
    core = {r.split(";")[0].split(">")[0].split("=")[0].strip() for r in requires if "extra ==" not in r}
    assert {"torch", "transformers", "accelerate", "numpy", "pandas", "typer"} <= core
    assert not core & {"matplotlib", "nlpaug", "scikit-learn", "scipy", "datasets"}, core


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_runs_the_cli(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, capture_output=True, text=True, env=_env(), timeout=300)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # The dependencies from the environment running the tests (see the module docstring).
    Path(purelib, "zz_outer_site_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    where = subprocess.run([str(python), "-c", "import inforidge; print(inforidge.__file__)"], check=True,
                           capture_output=True, text=True, env=_env(), cwd=tmp_path).stdout.strip()
    assert Path(where).is_relative_to(env_dir), where
    cli = str(env_dir / "bin" / "inforidge")
    helped = subprocess.run([cli, "--help"], capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert "generate-info" in helped.stdout and "--log-level" in helped.stdout
    env = subprocess.run([cli, "env"], capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert env.returncode == 0, env.stderr
    facts = json.loads(env.stdout)
    assert facts["inforidge"] and facts["torch"] and "gpu" in facts
