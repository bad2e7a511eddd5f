import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_task():
    from inforidge.tasks import ArithmeticSpec, build_arithmetic_task

    return build_arithmetic_task(ArithmeticSpec(n_train=256, n_validation=32, n_test=48, seed=3))


@pytest.fixture(scope="session")
def word_tokenizer(tiny_task):
    from inforidge.tasks.tokenize import build_word_tokenizer

    return build_word_tokenizer(tiny_task.vocabulary)


@pytest.fixture(scope="session")
def tiny_gpt2(word_tokenizer, tmp_path_factory):
    """A 2-layer GPT-2 saved with save_pretrained and loaded back from disk (the user path)."""
    from inforidge.models.loading import default_gpt2, load_causal_lm

    model = default_gpt2(len(word_tokenizer), n_layer=2, n_embd=32, n_head=2, seed=1)
    path = tmp_path_factory.mktemp("tiny_gpt2")
    model.save_pretrained(path)
    word_tokenizer.save_pretrained(path)
    return load_causal_lm(path)


def _tiny_overrides(out_dir, name="tiny", **extra) -> list[str]:
    """CLI-style overrides for a run that takes seconds."""
    base = {
        "output_dir": str(out_dir), "name": name, "model.n_layer": 2, "model.n_embd": 32, "model.n_head": 2,
        "task.n_train": 256, "task.n_validation": 32, "task.n_test": 48, "training.epochs": 1,
        "training.batch_size": 32, "training.save_steps": 2, "tracking.steps": "[0,2,4,6,8]",
        "tracking.measure.n_samples": 24, "tracking.measure.seeds": "[0,1]",
        "tracking.measure.n_permutations": 3,
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="session")
def tiny_overrides():
    """`tiny_overrides(out_dir, name, **extra)`: CLI-style overrides for a run that takes seconds."""
    return _tiny_overrides
