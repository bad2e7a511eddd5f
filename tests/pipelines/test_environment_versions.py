"""`inforidge env` / env.json: package versions and the GPU facts (pipelines/environment.py)."""

import json
from importlib import metadata
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from inforidge.cli import app
from inforidge.pipelines import environment as env_module
from inforidge.pipelines.environment import PACKAGES, environment


def test_versions_of_the_pipeline_packages():
    env = environment()
    for name in ("datasets", "accelerate", "tokenizers", "pandas", "pyarrow", "matplotlib"):
        assert name in PACKAGES and env[name] == metadata.version(name)
    if not torch.cuda.is_available():
        assert env["gpu"] is None and env["device"] == "cpu"


def test_a_package_not_installed_is_none(monkeypatch):
    monkeypatch.setattr(env_module, "PACKAGES", ("no-such-distribution-inforidge",))
    assert environment()["no-such-distribution-inforidge"] is None


def test_gpu_name_memory_and_driver(monkeypatch):
    props = SimpleNamespace(name="Fake GPU", total_memory=80 * 2**30)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: props.name)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i=0: props)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(env_module, "_driver_version", lambda torch: "550.54.15")
    env = environment()
    assert env["gpu"] == {"name": "Fake GPU", "memory_gib": 80.0, "driver": "550.54.15", "count": 2}


def test_env_command_prints_them():
    res = CliRunner().invoke(app, ["env"])
    assert res.exit_code == 0, res.output
    env = json.loads(res.output)
    assert {"datasets", "accelerate", "tokenizers", "pandas", "pyarrow", "matplotlib", "gpu"} <= set(env)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_facts_on_a_real_device():
    gpu = environment()["gpu"]
    assert gpu["name"] and gpu["memory_gib"] > 0 and gpu["driver"] and gpu["count"] >= 1
