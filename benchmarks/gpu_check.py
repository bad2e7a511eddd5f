"""One-command GPU check (about 5 minutes on one H100/H200-class GPU):

1. the CUDA tests (``pytest -m cuda``: every estimator and extraction path on CUDA equals the CPU);
2. the exact estimator on the GPU (batched eigvalsh) at N up to 8,192, and the stochastic
   estimator (``inforidge.info.stochastic``, where present) up to 16,384, against the exact one;
3. extraction from a randomly initialised 1B-class Llama in bfloat16 with batch_size "auto"
   (prompts of 512 tokens): time, peak GPU memory, the batch size found.

Usage: python benchmarks/gpu_check.py [--quick]
Prints a table and writes benchmarks/results/gpu_check.{md,json}. Needs CUDA; the project never does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
EXACT_MAX_N = 8192
ROOT = Path(__file__).parent.parent


def cuda_tests() -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True)
    tail = (proc.stdout or "").strip().splitlines()[-1:] or [""]
    return {"exit_code": proc.returncode, "summary": tail[0], "seconds": round(time.perf_counter() - t0, 1)}


def _layers(n: int, layers: int, width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-rank-plus-noise 'layers' (L, N, D) and a 13-class one-hot target (N, 13) on the GPU."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    labels = torch.randint(0, 13, (n,), generator=g, device="cuda")
    y = torch.nn.functional.one_hot(labels, 13).double()
    basis = torch.randn(13, width, generator=g, device="cuda", dtype=torch.float64)
    x = torch.stack([y @ basis * (0.5 + layer / layers) + torch.randn(n, width, generator=g, device="cuda",
                                                                   dtype=torch.float64) for layer in range(layers)])
    return x, y


def estimator_timings(sizes, layers: int, width: int) -> list[dict]:
    from inforidge.info import estimate_information

    out = []
    for n in sizes:
        x, y = _layers(n, layers, width)
        row = {"n": n, "layers": layers, "width": width}
        exact = None
        if n <= EXACT_MAX_N:  # above it float64 eigvalsh of N x N alone takes minutes per layer
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            exact = estimate_information(x, y, n_permutations=2, seed=0)
            torch.cuda.synchronize()
            row.update(exact_seconds=round(time.perf_counter() - t0, 2),
                       exact_peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2),
                       exact_mi_mean=float(exact.mi.mean()))
        try:
            from inforidge.info import stochastic
        except ImportError:
            stochastic = None
        if stochastic is not None and hasattr(stochastic, "stochastic_information"):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            est = stochastic.stochastic_information(x, y, n_permutations=2, seed=0)
            torch.cuda.synchronize()
            row["stochastic_seconds"] = round(time.perf_counter() - t0, 2)
            mi = est.mi if hasattr(est, "mi") else est[0]
            if exact is not None:
                row["stochastic_max_rel_error"] = float(((mi - exact.mi).abs() / exact.mi.abs().clamp_min(1e-12)).max())
        out.append(row)
        del x, y, exact
        torch.cuda.empty_cache()
    return out


def extraction_check(n_prompts: int, tokens: int) -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM

    from inforidge.extract.batching import BatchSizer
    from inforidge.extract.last_position import extract_batched
    from inforidge.models.parts import locate_parts
    from inforidge.models.validate import validate_parts

    config = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                         num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=tokens + 2)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    params = sum(p.numel() for p in model.parameters())
    parts = locate_parts(model)
    validate_parts(parts)

    class Tok:  # fixed-length random prompts: the tokenizer only pads and returns ids
        padding_side = "left"

        def __call__(self, prompts, return_tensors="pt", padding=True):
            ids = torch.stack([torch.randint(3, 32000, (tokens,), generator=torch.Generator().manual_seed(int(p)))
                               for p in prompts])
            return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    sizer = BatchSizer("auto")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    states = extract_batched(parts, Tok(), [str(i) for i in range(n_prompts)], torch.randint(3, 32000, (n_prompts,)),
                             sizer)
    torch.cuda.synchronize()
    return {"params_billion": round(params / 1e9, 2), "prompts": n_prompts, "tokens": tokens,
            "seconds": round(time.perf_counter() - t0, 1), "batch_size_found": sizer.size,
            "oom_halvings": sizer.halvings, "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "finite": bool(torch.isfinite(states.hidden).all()), "states_shape": list(states.hidden.shape)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller sizes (a minute)")
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_check needs a CUDA device")
    sizes = (1024, 4096) if args.quick else (1024, 4096, 8192, 16384)
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "date": f"{datetime.now(timezone.utc):%Y-%m-%d}", "cuda_tests": cuda_tests(),
           "estimators": estimator_timings(sizes, layers=4 if not args.quick else 2, width=768),
           "extraction": extraction_check(64 if args.quick else 256, 512)}
    lines = [f"# GPU check on {res['device']} ({res['date']}, torch {res['torch']})", "",
             f"CUDA tests: {res['cuda_tests']['summary']} (exit {res['cuda_tests']['exit_code']}, "
             f"{res['cuda_tests']['seconds']} s)", "",
             "| N | layers | exact (s) | exact peak (GiB) | stochastic (s) | stochastic max rel. error |",
             "|---|---|---|---|---|---|"]
    for r in res["estimators"]:
        lines.append(f"| {r['n']} | {r['layers']} | {r.get('exact_seconds', '—')} | {r.get('exact_peak_gib', '—')} | "
                     f"{r.get('stochastic_seconds', '—')} | {r.get('stochastic_max_rel_error', '—')} |")
    e = res["extraction"]
    lines += ["", f"Extraction, random {e['params_billion']}B Llama in bf16, {e['prompts']} prompts x {e['tokens']} "
              f"tokens: {e['seconds']} s, batch size found {e['batch_size_found']} ({e['oom_halvings']} halvings), "
              f"peak {e['peak_gib']} GiB, states finite: {e['finite']}"]
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gpu_check.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "gpu_check.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
