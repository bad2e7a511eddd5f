"""Train-step time of the demo's default model with 1 vs 2 torch threads (how the default was chosen).

Usage: python benchmarks/bench_threads.py [--steps 15] [--n-layer 12] [--n-embd 128]
Prints a table and writes benchmarks/results/bench_threads.{md,json}. Timings only; no asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from inforidge.models.loading import default_gpt2

RESULTS = Path(__file__).parent / "results"


def time_steps(threads: int, args) -> float:
    torch.set_num_threads(threads)
    model = default_gpt2(124, n_layer=args.n_layer, n_embd=args.n_embd, n_head=4, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(3, 124, (args.batch, 20), generator=torch.Generator().manual_seed(0))
    labels = torch.full_like(ids, -100)
    labels[:, -1] = ids[:, -1]
    times = []
    for i in range(args.steps + 2):
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if i >= 2:  # warm-up steps excluded
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--n-layer", type=int, default=12)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    res = {t: time_steps(t, args) for t in (1, 2)}
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    lines = [
        f"# train step, GPT-2 L{args.n_layer} d{args.n_embd}, batch {args.batch}x20 tokens "
        f"({datetime.now(timezone.utc):%Y-%m-%d}, torch {torch.__version__}, load avg {load})",
        "",
        "| threads | median step (s) | steps/s |",
        "|---|---|---|",
        *[f"| {t} | {s:.3f} | {1 / s:.2f} |" for t, s in res.items()],
        "",
        f"2 threads / 1 thread time ratio: {res[2] / res[1]:.2f} (<1 means 2 threads are faster)",
    ]
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_threads.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "bench_threads.json").write_text(json.dumps({"args": vars(args), "load": load, "seconds": res}, indent=2))


if __name__ == "__main__":
    main()
