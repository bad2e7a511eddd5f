"""batch_size "auto": the largest batch that fits, halved on out-of-memory, results unchanged."""

import pytest
import torch

import inforidge.extract.last_position as last_position
from inforidge.config.settings import GenerationSettings, MeasureSettings
from inforidge.extract.batching import AUTO_BATCH_START, BatchSizer
from inforidge.extract.generated import generate_with_states
from inforidge.extract.last_position import extract_batched
from inforidge.models.parts import locate_parts
from inforidge.tasks.tokenize import target_token_ids


def _oom_above(limit, real):
    """``real`` that raises out-of-memory when its batch has more than ``limit`` rows."""
    calls = []

    def fake(parts, ids, *args, **kwargs):
        calls.append(ids.shape[0])
        if ids.shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(parts, ids, *args, **kwargs)
    return fake, calls


def test_sizer_halves_keeps_finished_chunks_and_remembers():
    seen = []

    def work(i, j):
        if j - i > 24:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes.")
        seen.append((i, j))
        return list(range(i, j))

    sizer = BatchSizer("auto")
    out = sizer.run(100, work)
    assert sum(out, []) == list(range(100))
    # 256 is cut to the 100 items, then the failed chunk is halved: 100 -> 50 -> 25 -> 12
    assert AUTO_BATCH_START >= 100 and sizer.size == 12 and sizer.halvings == 3
    seen.clear()
    sizer.run(40, work)  # the next call starts at the size found
    assert seen == [(0, 12), (12, 24), (24, 36), (36, 40)] and sizer.halvings == 3


def test_fixed_size_and_other_errors_are_not_caught():
    def oom(i, j):
        raise torch.OutOfMemoryError("CUDA out of memory.")

    with pytest.raises(torch.OutOfMemoryError):
        BatchSizer(8).run(10, oom)
    with pytest.raises(ValueError, match="boom"):
        BatchSizer("auto").run(10, lambda i, j: (_ for _ in ()).throw(ValueError("boom")))
    with pytest.raises(RuntimeError, match="out of memory with a batch of 1"):
        BatchSizer("auto").run(3, oom)
    for bad in (0, -2, "big", 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            BatchSizer(bad)
    with pytest.raises(ValueError, match="batch_size"):
        MeasureSettings(batch_size="huge")
    with pytest.raises(ValueError, match="batch_size"):
        GenerationSettings(batch_size=0)


def test_auto_extraction_equals_a_fixed_size(tiny_llama, word_tokenizer, tiny_task, monkeypatch):
    parts = locate_parts(tiny_llama)
    recs = tiny_task.splits["test_id"][:40]
    prompts = [r["prompt"] for r in recs]
    targets = target_token_ids(word_tokenizer, [r["target"] for r in recs])
    fixed = extract_batched(parts, word_tokenizer, prompts, targets, 10)
    fake, calls = _oom_above(10, last_position.extract_states)
    monkeypatch.setattr(last_position, "extract_states", fake)
    sizer = BatchSizer("auto")
    auto = extract_batched(parts, word_tokenizer, prompts, targets, sizer)
    assert sizer.size == 10 and calls[:3] == [40, 20, 10]  # 256 is cut to the 40 prompts, then halved
    torch.testing.assert_close(auto.hidden, fixed.hidden, rtol=0, atol=0)
    torch.testing.assert_close(auto.labels["embedding_output"], fixed.labels["embedding_output"], rtol=0, atol=0)
    assert torch.equal(auto.early_exit, fixed.early_exit)


def test_auto_generation_equals_a_fixed_size(tiny_gpt2, word_tokenizer, tiny_task, monkeypatch):
    import inforidge.extract.generated as generated

    parts = locate_parts(tiny_gpt2)
    prompts = [r["prompt"] for r in tiny_task.splits["test_id"][:12]]
    fixed = generate_with_states(parts, word_tokenizer, prompts, GenerationSettings(max_new_tokens=3, batch_size=3))
    fake, calls = _oom_above(3, generated._generate_batch)
    monkeypatch.setattr(generated, "_generate_batch", fake)
    sizer = BatchSizer("auto")
    auto = generate_with_states(parts, word_tokenizer, prompts, GenerationSettings(max_new_tokens=3, batch_size="auto"),
                                batch_size=sizer)
    assert sizer.size == 3
    torch.testing.assert_close(auto.hidden, fixed.hidden, rtol=1e-5, atol=1e-6)
    assert torch.equal(auto.generated_ids, fixed.generated_ids)
