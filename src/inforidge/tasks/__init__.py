"""Task data: prompts with single-token targets, split into in- and out-of-distribution."""

from .base import TaskData, make_record
from .jsonl import load_jsonl_task
from .synthetic import ArithmeticSpec, build_arithmetic_task

__all__ = ["ArithmeticSpec", "TaskData", "build_arithmetic_task", "load_jsonl_task", "make_record"]
