"""Task registry: ``task.name`` -> a builder of :class:`~inforidge.tasks.base.TaskData` from the task config."""

from __future__ import annotations

from collections.abc import Callable

from inforidge.config.schema import RunConfig
from inforidge.tasks import ArithmeticSpec, TaskData, build_arithmetic_task, load_jsonl_task
from inforidge.tasks.clutrr import build_clutrr_task
from inforidge.tasks.ecqa import build_ecqa_task


def _arithmetic(t, *, tokenizer=None, **_) -> TaskData:
    return build_arithmetic_task(ArithmeticSpec(
        train_modulus=t.train_modulus, ood_moduli=tuple(t.ood_moduli), n_train=t.n_train,
        n_validation=t.n_validation, n_test=t.n_test, seed=t.seed, rendering=t.rendering,
    ), tokenizer)


def _jsonl(t, **_) -> TaskData:
    if not t.path:
        raise ValueError("task.name=jsonl needs task.path, the JSONL file (see README: Bring your own model and data)")
    return load_jsonl_task(t.path, seed=t.seed, validation_fraction=t.validation_fraction,
                           test_fraction=t.test_fraction)


def _clutrr(t, *, pretrained: bool = False, **_) -> TaskData:
    return build_clutrr_task(t, pretrained=pretrained)


def _ecqa(t, **_) -> TaskData:
    return build_ecqa_task(t)


TASKS: dict[str, Callable[..., TaskData]] = {"arithmetic": _arithmetic, "jsonl": _jsonl, "clutrr": _clutrr, "ecqa": _ecqa}
"""Task name -> builder taking the task section of the config (``config.task``) and the keywords
``tokenizer`` (the model's, or None) and ``pretrained`` (whether model.name_or_path is set)."""


def build_task(config: RunConfig, tokenizer=None) -> TaskData:
    """The task named by ``config.task.name`` (one of :data:`TASKS`).

    ``tokenizer``: the model's tokenizer when it is known; the arithmetic task then writes its
    values as single tokens of it (``task.rendering``). Without it the arithmetic task is
    written for the from-scratch word tokenizer (see :func:`renders_for_tokenizer`).
    """
    name = config.task.name
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    model = getattr(config, "model", None)
    pretrained = bool(getattr(model, "name_or_path", None))
    return TASKS[name](config.task, tokenizer=tokenizer, pretrained=pretrained)


def renders_for_tokenizer(config: RunConfig) -> bool:
    """Whether the task's records depend on a pretrained model's tokenizer, so a pipeline must
    build it again with :func:`build_task` ``(config, tokenizer)`` once the tokenizer is loaded
    (the arithmetic task on a pretrained model; the from-scratch tokenizer is built from the task)."""
    return config.task.name == "arithmetic" and bool(config.model.name_or_path)
