"""The step of a run's final model comes from the Trainer's records and the config, not the results table."""

import json
import logging

import pandas as pd
import pytest

from inforidge.models.checkpoints import discover_checkpoints


def _folder(path, state=None):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    if state is not None:
        (path / "trainer_state.json").write_text(json.dumps(state))


def test_final_model_step_from_the_last_checkpoint_not_the_table(tmp_path):
    run = tmp_path / "run"
    _folder(run / "checkpoints" / "checkpoint-4", {"global_step": 4, "max_steps": 6})
    _folder(run / "model")
    pd.DataFrame({"step": [0, 99]}).to_parquet(run / "results.parquet")  # not read
    found = discover_checkpoints(run)
    assert [(c.step, c.source.endswith("model")) for c in found] == [(4, False), (6, True)]


def test_final_model_step_from_the_config_without_checkpoints(tmp_path, caplog):
    run = tmp_path / "run"
    _folder(run / "model")
    (run / "config.yaml").write_text("training:\n  max_steps: 12\n")
    assert [c.step for c in discover_checkpoints(run)] == [12]
    # Unknown step (no records, max_steps unset): left out with a warning, even beside a results table.
    (run / "config.yaml").write_text("training:\n  max_steps: -1\n")
    pd.DataFrame({"step": [0, 8]}).to_parquet(run / "results.parquet")
    with caplog.at_level(logging.WARNING), pytest.raises(FileNotFoundError, match="no checkpoints"):
        discover_checkpoints(run)
    assert "step of model/ is unknown" in caplog.text
