"""Task registry: ``task.name`` -> a builder of :class:`~inforidge.tasks.base.TaskData`."""

from __future__ import annotations

from inforidge.config.schema import RunConfig
from inforidge.tasks import ArithmeticSpec, TaskData, build_arithmetic_task, load_jsonl_task
from inforidge.tasks.clutrr import build_clutrr_task
from inforidge.tasks.ecqa import build_ecqa_task


def build_task(config: RunConfig) -> TaskData:
    t = config.task
    if t.name == "arithmetic":
        return build_arithmetic_task(ArithmeticSpec(
            train_modulus=t.train_modulus, ood_moduli=tuple(t.ood_moduli), n_train=t.n_train,
            n_validation=t.n_validation, n_test=t.n_test, seed=t.seed,
        ))
    if t.name == "jsonl":
        if not t.path:
            raise ValueError("task.name=jsonl needs task.path, the JSONL file (see README: Bring your own model and data)")
        return load_jsonl_task(
            t.path, seed=t.seed, validation_fraction=t.validation_fraction, test_fraction=t.test_fraction
        )
    if t.name == "clutrr":

        return build_clutrr_task(t)
    if t.name == "ecqa":

        return build_ecqa_task(t)
    raise ValueError(f"unknown task {t.name!r}; tasks: arithmetic, jsonl, clutrr, ecqa")
