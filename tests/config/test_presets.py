"""Every preset of `inforidge demo --preset` loads and says what it measures."""

from __future__ import annotations

import pytest

from inforidge.cli import PRESETS, demo_config_path
from inforidge.config.loading import load_config


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_loads(preset):
    cfg = load_config(demo_config_path(preset), [])
    assert cfg.name and cfg.tracking.measure.n_samples >= 30  # a ridge verdict needs N >= 30


def test_the_pretrained_presets_fine_tune_smollm2_offline():
    arithmetic = load_config(demo_config_path("pretrained"), [])
    clutrr = load_config(demo_config_path("pretrained-clutrr"), [])
    assert arithmetic.model.name_or_path == clutrr.model.name_or_path == "smollm2"
    assert arithmetic.task.name == "arithmetic" and arithmetic.task.rendering == "auto"
    # relation words longer than one token, two sharing a first token: the whole word is the target
    assert clutrr.task.name == "clutrr" and clutrr.task.multi_token_target == "whole"
    assert clutrr.tracking.measure.label_view == "token_embedding" and clutrr.task.clutrr_names == "auto"


def test_the_clutrr_preset_without_data_says_where_to_point_it():
    from inforidge.tasks.clutrr import build_clutrr_task

    cfg = load_config(demo_config_path("pretrained-clutrr"), [])
    with pytest.raises(ValueError, match="needs task.path"):
        build_clutrr_task(cfg.task, pretrained=True)
