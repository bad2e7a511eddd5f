"""Cost of one append to a large results table: the old way (rewrite the whole Parquet + CSV on
every append) vs part files (write the new rows only; compact at the end).

Usage: python benchmarks/bench_table_append.py [--rows 95000] [--append 650] [--repeats 5]
Prints a table and writes benchmarks/results/bench_table_append.{md,json}. Timings only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from inforidge.results.table import ResultsTable

RESULTS = Path(__file__).parent / "results"


def rows(n: int, step: int, rng) -> list[dict]:
    metrics = ["predictive_information", "predictive_information_null", "predictive_information_null_std",
               "predictive_information_corrected", "early_exit_accuracy"]
    return [{"step": step, "split": ("id", "ood")[i % 2], "metric": metrics[i % 5], "layer": i % 34,
             "value": float(rng.random()), "seed": i % 5, "n_samples": 100, "alpha": 1.0, "kernel": "gaussian",
             "sigma": 1.0, "base": 2.0, "final_norm": "post", "label_view": "embedding_output",
             "n_permutations": 20, "checkpoint": f"checkpoint-{step}"} for i in range(n)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=95_000)
    p.add_argument("--append", type=int, default=650)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    base = rows(args.rows, 0, rng)
    res = {}
    for way in ("rewrite", "parts"):
        with tempfile.TemporaryDirectory() as d:
            t = ResultsTable(d)
            t.append(base)
            t.compact()
            times = []
            for k in range(args.repeats):
                new = rows(args.append, k + 1, rng)
                t0 = time.perf_counter()
                t.append(new)
                if way == "rewrite":
                    t.compact()  # what every append did before
                times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            t.compact()
            res[way] = {"append_seconds": statistics.median(times), "final_compact_seconds": time.perf_counter() - t0}
    ratio = res["rewrite"]["append_seconds"] / res["parts"]["append_seconds"]
    lines = [f"# One append of {args.append} rows to a {args.rows:,}-row table "
             f"({datetime.now(timezone.utc):%Y-%m-%d}, median of {args.repeats})", "",
             "| way | append (s) | final compaction (s) |", "|---|---|---|",
             *[f"| {w} | {r['append_seconds']:.3f} | {r['final_compact_seconds']:.3f} |" for w, r in res.items()],
             "", f"rewrite / parts per append: {ratio:.0f}x; a 150-checkpoint sweep spends about "
             f"{150 * res['rewrite']['append_seconds']:.0f} s the old way, "
             f"{150 * res['parts']['append_seconds'] + 6 * res['parts']['final_compact_seconds']:.0f} s with parts "
             "(compacting every 25 parts)"]
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_table_append.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "bench_table_append.json").write_text(json.dumps({"args": vars(args), **res, "ratio": ratio}, indent=2) + "\n")


if __name__ == "__main__":
    main()
