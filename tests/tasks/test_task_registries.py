"""Task registries: names -> builders, with errors that list the names."""

from types import SimpleNamespace

import pytest

from inforidge.config.loading import load_config
from inforidge.tasks import ArithmeticSpec, build_arithmetic_task
from inforidge.tasks.multitoken import TASKS as MULTITOKEN_TASKS
from inforidge.tasks.multitoken import load_multitoken_task
from inforidge.tasks.registry import TASKS, build_task


def test_task_registry_names_and_error():
    assert list(TASKS) == ["arithmetic", "jsonl", "clutrr", "ecqa"]
    with pytest.raises(ValueError, match="unknown task 'nope'; tasks: arithmetic, jsonl, clutrr, ecqa"):
        build_task(SimpleNamespace(task=SimpleNamespace(name="nope")))


def test_arithmetic_is_built_from_the_task_config():
    config = load_config(None, ["task.n_train=64", "task.n_validation=8", "task.n_test=16", "task.seed=5"])
    got = build_task(config)
    want = build_arithmetic_task(ArithmeticSpec(n_train=64, n_validation=8, n_test=16, seed=5))
    assert got.splits == want.splits


def test_multitoken_registry_names_and_error():
    assert list(MULTITOKEN_TASKS) == ["synthetic", "continuation", "cnn_dailymail", "jsonl"]
    with pytest.raises(ValueError, match="unknown multi-token task 'wiki'; choose one of synthetic, continuation, cnn_dailymail, jsonl"):
        load_multitoken_task("wiki")
    with pytest.raises(ValueError, match="needs a data path"):
        load_multitoken_task("jsonl")
    assert len(load_multitoken_task("synthetic", n=4, k=3)) == 4
