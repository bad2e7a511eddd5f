"""Train-step time of the demo's default model with 1 vs 2 torch threads, on the machine as it is
and with other processes keeping its cores busy, and what ``threads: auto`` picks in each case.

Usage: python benchmarks/bench_threads.py [--steps 15] [--n-layer 12] [--n-embd 128] [--spinners 2]
Prints a table and writes benchmarks/results/bench_threads.{md,json}. Timings only; no asserts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from inforidge.models.loading import default_gpt2
from inforidge.pipelines.environment import busy_cores, choose_threads

RESULTS = Path(__file__).parent / "results"


def time_steps(threads: int, steps: int, args) -> float:
    torch.set_num_threads(threads)
    model = default_gpt2(124, n_layer=args.n_layer, n_embd=args.n_embd, n_head=4, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(3, 124, (args.batch, 20), generator=torch.Generator().manual_seed(0))
    labels = torch.full_like(ids, -100)
    labels[:, -1] = ids[:, -1]
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if i >= 2:  # warm-up steps excluded
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _spin(stop) -> None:
    while not stop.is_set():
        pass


def scenario(spinners: int, steps: int, args) -> dict:
    """Step times at 1 and 2 threads and auto's choice while ``spinners`` processes spin."""
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    procs = [ctx.Process(target=_spin, args=(stop,)) for _ in range(spinners)]
    for p in procs:
        p.start()
    try:
        time.sleep(1.0 if spinners else 0.0)
        busy = busy_cores(0.5)
        auto = choose_threads("auto", busy=busy, limit=2)
        seconds = {t: time_steps(t, steps, args) for t in (1, 2)}
    finally:
        stop.set()
        for p in procs:
            p.join()
    return {"spinners": spinners, "busy_cores": busy, "auto_threads": auto, "seconds": seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--busy-steps", type=int, default=5)
    p.add_argument("--n-layer", type=int, default=12)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--spinners", type=int, default=2)
    args = p.parse_args()
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    cases = [scenario(0, args.steps, args)] + [scenario(k, args.busy_steps, args) for k in sorted({1, args.spinners})]
    lines = [
        f"# train step, GPT-2 L{args.n_layer} d{args.n_embd}, batch {args.batch}x20 tokens "
        f"({datetime.now(timezone.utc):%Y-%m-%d}, torch {torch.__version__}, load avg at start {load})",
        "",
        "| other processes spinning | busy cores measured | 1 thread (s/step) | 2 threads (s/step) | faster | auto picks |",
        "|---|---|---|---|---|---|",
    ]
    for c in cases:
        s = c["seconds"]
        best = min(s, key=s.get)
        lines.append(f"| {c['spinners']} | {c['busy_cores']:.2f} | {s[1]:.3f} | {s[2]:.3f} | {best} | "
                     f"{c['auto_threads']}{' ✓' if c['auto_threads'] == best else ''} |")
    lines += ["", "auto = round(cores − busy cores), at least 1, at most torch's count, read from /proc/stat when "
              "the run starts (training.threads: auto, the default; recorded in env.json)."]
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_threads.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "bench_threads.json").write_text(json.dumps({"args": vars(args), "load": load, "cases": cases},
                                                           indent=2) + "\n")


if __name__ == "__main__":
    main()
