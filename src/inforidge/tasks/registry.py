"""Task registry: ``task.name`` -> a builder of :class:`~inforidge.tasks.base.TaskData` from the task config."""

from __future__ import annotations

from collections.abc import Callable

from inforidge.config.schema import RunConfig
from inforidge.tasks import ArithmeticSpec, TaskData, build_arithmetic_task, load_jsonl_task
from inforidge.tasks.clutrr import build_clutrr_task
from inforidge.tasks.ecqa import build_ecqa_task


def _arithmetic(t) -> TaskData:
    return build_arithmetic_task(ArithmeticSpec(
        train_modulus=t.train_modulus, ood_moduli=tuple(t.ood_moduli), n_train=t.n_train,
        n_validation=t.n_validation, n_test=t.n_test, seed=t.seed,
    ))


def _jsonl(t) -> TaskData:
    if not t.path:
        raise ValueError("task.name=jsonl needs task.path, the JSONL file (see README: Bring your own model and data)")
    return load_jsonl_task(t.path, seed=t.seed, validation_fraction=t.validation_fraction,
                           test_fraction=t.test_fraction)


TASKS: dict[str, Callable[..., TaskData]] = {
    "arithmetic": _arithmetic, "jsonl": _jsonl, "clutrr": build_clutrr_task, "ecqa": build_ecqa_task,
}
"""Task name -> builder taking the task section of the config (``config.task``)."""


def build_task(config: RunConfig) -> TaskData:
    """The task named by ``config.task.name`` (one of :data:`TASKS`)."""
    name = config.task.name
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    return TASKS[name](config.task)
