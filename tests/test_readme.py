"""Every ```python block of README.md runs as written.

Each block is standalone: it runs alone, in a fresh namespace, in a temporary working
directory. The names a block treats as the reader's own objects (`tokenizer`,
`id_records`, `trainer`, `x`, `y`, ...) are bound beforehand by `GIVENS` to tiny stand-ins;
a block that uses any other undefined name fails with a NameError.
"""

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def python_blocks() -> list[tuple[int, str]]:
    """(line number of the fence, code) of every ```python block."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def givens(code: str) -> dict:
    """The reader's objects the README's blocks use, built only when a block needs them."""
    names = {}
    if re.search(r"\b(x|y)\b", code):
        g = torch.Generator().manual_seed(0)
        names["x"] = torch.randn(3, 40, 8, generator=g)
        names["y"] = torch.randn(40, 4, generator=g)
    if "trainer" in code:
        from transformers import Trainer, TrainingArguments

        from inforidge.models.loading import default_gpt2
        from inforidge.tasks import ArithmeticSpec, build_arithmetic_task
        from inforidge.tasks.tokenize import build_word_tokenizer, collator, tokenize_for_next_token

        task = build_arithmetic_task(ArithmeticSpec(n_train=64, n_validation=8, n_test=100, seed=3))
        tokenizer = build_word_tokenizer(task.vocabulary)
        model = default_gpt2(len(tokenizer), n_layer=2, n_embd=32, n_head=2, seed=1)
        args = TrainingArguments(output_dir="trainer", max_steps=2, per_device_train_batch_size=32,
                                 report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True)
        names["tokenizer"] = tokenizer
        names["id_records"], names["ood_records"] = task.splits["test_id"], task.splits["test_ood"]
        names["trainer"] = Trainer(model=model, args=args, data_collator=collator(tokenizer),
                                   train_dataset=tokenize_for_next_token(task.splits["train"], tokenizer))
    return names


def cases() -> list:
    """One case per block; a block that trains (uses `trainer`) is an end-to-end run: slow."""
    return [pytest.param((line, code), id=f"line{line}",
                         marks=[pytest.mark.slow] if "trainer" in code else [])
            for line, code in python_blocks()]


def test_the_readme_has_python_blocks():
    assert len(python_blocks()) >= 2


@pytest.mark.parametrize("block", cases())
def test_readme_block_runs(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line, code = block
    namespace = {"__name__": "__readme__", **givens(code)}
    exec(compile(code, f"README.md:{line}", "exec"), namespace)
