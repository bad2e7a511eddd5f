"""Task data: prompts with single-token targets, split into in- and out-of-distribution."""

from .base import TaskData, make_record
from .clutrr import ClutrrGeneratorSpec, generate_clutrr_sets, load_clutrr_task, write_clutrr_files
from .ecqa import load_ecqa_task
from .jsonl import load_jsonl_task
from .synthetic import ArithmeticSpec, build_arithmetic_task

__all__ = ["ArithmeticSpec", "ClutrrGeneratorSpec", "TaskData", "build_arithmetic_task", "generate_clutrr_sets",
           "load_clutrr_task", "load_ecqa_task", "load_jsonl_task", "make_record", "write_clutrr_files"]
