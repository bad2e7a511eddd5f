"""Every extraction path and estimator on CUDA tensors equals the CPU path (the cuda cases skip
without CUDA; `python benchmarks/gpu_check.py` runs them on a GPU machine). The same tests also run
with a second CPU copy, so their code is exercised on every machine."""

import pytest
import torch

from inforidge.config.settings import GenerationSettings, LayerSuiteSettings
from inforidge.extract.generated import generate_with_states
from inforidge.extract.last_position import extract_batched
from inforidge.info import estimate_information
from inforidge.info.ridge import ridge_statistics
from inforidge.measure.layer_suite import measure_layers
from inforidge.models.parts import locate_parts
from inforidge.tasks.tokenize import target_token_ids

DEVICES = [pytest.param("cpu", id="cpu"),
           pytest.param("cuda", id="cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
               not torch.cuda.is_available(), reason="needs a CUDA device")])]


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture
def both(tiny_lm, device):
    """(cpu parts, parts of a deep copy on ``device``, the tiny model)."""
    import copy

    cpu = locate_parts(tiny_lm.model.eval())
    gpu = locate_parts(copy.deepcopy(tiny_lm.model).to(device).eval())
    return cpu, gpu, tiny_lm


def _prompts(tiny_lm, n=9):
    words = tiny_lm.words
    prompts = [" ".join(words[(3 * i + j) % len(words)] for j in range(2 + i % 5)) for i in range(n)]
    targets = target_token_ids(tiny_lm.tokenizer, [words[(7 * i) % len(words)] for i in range(n)])
    return prompts, targets


def test_last_position_extraction_on_cuda(both):
    cpu, gpu, lm = both
    prompts, targets = _prompts(lm)
    a = extract_batched(cpu, lm.tokenizer, prompts, targets, 4)
    b = extract_batched(gpu, lm.tokenizer, prompts, targets, 4)
    assert b.hidden.device.type == "cpu"  # states come back to the CPU for the estimators
    torch.testing.assert_close(b.hidden, a.hidden, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(b.labels["embedding_output"], a.labels["embedding_output"], rtol=1e-4, atol=1e-4)


def test_generation_on_cuda(both):
    cpu, gpu, lm = both
    prompts, _ = _prompts(lm, 6)
    gen = GenerationSettings(max_new_tokens=3, batch_size=3)
    a = generate_with_states(cpu, lm.tokenizer, prompts, gen)
    b = generate_with_states(gpu, lm.tokenizer, prompts, gen)
    assert torch.equal(a.generated_ids, b.generated_ids)
    torch.testing.assert_close(b.hidden, a.hidden, rtol=1e-4, atol=1e-4)


def test_layer_suite_on_cuda(both):
    cpu, gpu, lm = both
    prompts, _ = _prompts(lm, 8)
    s = LayerSuiteSettings(batch_size=4, augment=False)
    a = measure_layers(cpu.model, lm.tokenizer, prompts, s).frame
    b = measure_layers(gpu.model, lm.tokenizer, prompts, s).frame
    torch.testing.assert_close(torch.tensor(b["value"].to_numpy()), torch.tensor(a["value"].to_numpy()),
                               rtol=1e-3, atol=1e-4, equal_nan=True)


def test_estimators_and_ridge_bootstrap_on_cuda(device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 60, 8, generator=g, dtype=torch.float64)
    y = torch.randn(60, 3, generator=g, dtype=torch.float64)
    a = estimate_information(x, y, n_permutations=5, seed=1)
    b = estimate_information(x.to(device), y.to(device), n_permutations=5, seed=1)
    assert b.mi.device.type == device
    torch.testing.assert_close(b.mi.cpu(), a.mi, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(b.null.cpu(), a.null, rtol=1e-9, atol=1e-10)
    ra = ridge_statistics(x, y, n_boot=20, seed=2, n_permutations=3)
    rb = ridge_statistics(x.to(device), y.to(device), n_boot=20, seed=2, n_permutations=3)
    torch.testing.assert_close(rb.raw.draws.cpu(), ra.raw.draws, rtol=1e-8, atol=1e-9)
