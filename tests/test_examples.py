"""The three worked examples in examples/ run end to end and print what they promise."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(script, *args, timeout=600):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], capture_output=True, text=True,
                         timeout=timeout, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_own_trainer_example_writes_the_table_and_tensorboard(tmp_path):
    stdout = _run("own_trainer.py", "--out", str(tmp_path), "--steps", "12")
    assert (tmp_path / "table" / "results.parquet").exists()
    assert any(tmp_path.rglob("events.out.tfevents.*"))
    assert "ood" in stdout and "id" in stdout


def test_activations_you_have_finds_the_planted_peak():
    stdout = _run("activations_you_have.py")
    assert "corrected MI peaks at layer 2" in stdout or "corrected MI peaks at layer 3" in stdout


def test_checkpoint_sweep_example_measures_every_checkpoint(tmp_path):
    stdout = _run("checkpoint_sweep.py", "--out", str(tmp_path))
    assert "checkpoint-8" in stdout and "checkpoint-24" in stdout
    assert (tmp_path / "sweep" / "results.parquet").exists()
