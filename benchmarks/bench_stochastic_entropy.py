"""Matrix-free (SLQ + Hutch++) entropy and MI against the exact estimator, and at N = 16,384.

Usage: python benchmarks/bench_stochastic_entropy.py [--threads 1] [--big-layers 1]
       [--n-probes 128 --deflation 128 --lanczos-steps 20] [--tag NAME]

The knobs apply to parts A and B alike, so part A measures the error of the settings that part B
times; ``--tag`` writes bench_stochastic_entropy_<tag>.{md,json} instead (the defaults' table
stays).

Features: 768-wide low-rank-plus-noise "layers" (a rank-32 signal shared with the 768-wide
target y, whose weight grows with depth, plus a layer-specific rank-32 part and isotropic
noise), mimicking the anisotropic spectra of LM hidden states. Gaussian kernel, sigma = 1,
alpha = 1, bits, no permutations.

Part A: N = 2,048, 4,096 and 8,192, one layer: relative error and time of H(x) and I(x; y),
exact (float64 eigvalsh) vs stochastic (defaults: 128 probes, 20 Lanczos steps, deflation 128).
Part B: N = 16,384, a 24-layer 768-wide stack, the stochastic MI of --big-layers of them
(all 24 if time allows); time, and peak RSS. A run of fewer layers is extrapolated to 24,
labelled as such. Writes benchmarks/results/bench_stochastic_entropy.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import time
from pathlib import Path

import torch

from inforidge.info import estimate_information, gram_matrix, matrix_entropy
from inforidge.info.stochastic import stochastic_entropy, stochastic_information

D = 768
RESULTS = Path(__file__).parent / "results"


def make_stack(n: int, n_layers: int, seed: int = 0, keep: int | None = None):
    """(L, N, 768) float32 layers and (N, 768) y sharing a rank-32 signal.

    keep: build only the first ``keep`` of the n_layers layers (the same values).
    """
    g = torch.Generator().manual_seed(seed)
    shared = torch.randn(n, 32, generator=g)
    y = shared @ torch.randn(32, D, generator=g) + 0.5 * torch.randn(n, D, generator=g)
    layers = []
    for li in range(n_layers if keep is None else keep):
        w = (li + 1) / n_layers
        own = torch.randn(n, 32, generator=g) @ torch.randn(32, D, generator=g)
        layers.append(w * shared @ torch.randn(32, D, generator=g) + own
                      + 0.7 * torch.randn(n, D, generator=g))
    return torch.stack(layers), y


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def part_a(n: int) -> dict:
    xs, y = make_stack(n, 4, seed=n)
    x = xs[2]  # a middle layer
    h_exact, t_he = timed(lambda: float(matrix_entropy(gram_matrix(x))))
    mi_exact, t_me = timed(lambda: float(estimate_information(x, y, n_permutations=0).mi))
    st, t_hs = timed(lambda: stochastic_entropy(x, **KNOBS))
    sm, t_ms = timed(lambda: stochastic_information(x, y, **KNOBS))
    return {
        "n": n,
        "entropy_exact": h_exact, "entropy_stochastic": float(st.value), "entropy_se": float(st.se),
        "entropy_rel_error": abs(float(st.value) - h_exact) / abs(h_exact),
        "mi_exact": mi_exact, "mi_stochastic": float(sm.mi), "mi_se": float(sm.mi_se),
        "mi_rel_error": abs(float(sm.mi) - mi_exact) / abs(mi_exact),
        "time_entropy_exact_s": t_he, "time_entropy_stochastic_s": t_hs,
        "time_mi_exact_s": t_me, "time_mi_stochastic_s": t_ms,
    }


def part_b(n: int, n_run: int) -> dict:
    """Run in a fresh process (see main) so that its peak RSS is its own."""
    torch.set_num_threads(THREADS[0])
    rss_start = peak_rss_mb()
    sub, y = make_stack(n, 24, seed=1, keep=n_run)
    rss_data = peak_rss_mb()
    est, t = timed(lambda: stochastic_information(sub, y, **KNOBS))
    return {
        "n": n, "layers_total": 24, "layers_run": n_run, "time_s": t,
        "time_per_layer_s": t / n_run,
        "time_24_layers_s": t if n_run == 24 else t / n_run * 24,
        "extrapolated": n_run < 24,
        "peak_rss_mb": peak_rss_mb(), "rss_at_start_mb": rss_start, "rss_after_data_mb": rss_data,
        "features_mb_24_layers": 24 * n * D * 4 / 2**20,
        "exact_gram_float64_mb_per_matrix": n * n * 8 / 2**20,
        "mi": est.mi.tolist(), "mi_se": est.mi_se.tolist(),
    }


THREADS = [1]
KNOBS = {"n_probes": 128, "deflation": 128, "lanczos_steps": 20}  # stochastic_information's defaults


def _set_threads(k: int, knobs: dict) -> None:
    THREADS[0] = k
    KNOBS.update(knobs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--big-layers", type=int, default=1)
    ap.add_argument("--big-n", type=int, default=16384)
    ap.add_argument("--sizes", type=int, nargs="*", default=[2048, 4096, 8192])
    ap.add_argument("--n-probes", type=int, default=128)
    ap.add_argument("--deflation", type=int, default=128)
    ap.add_argument("--lanczos-steps", type=int, default=20)
    ap.add_argument("--tag", default="", help="suffix of the result files (default: none)")
    ap.add_argument("--reuse-part-a", action="store_true",
                    help="keep part A from the existing JSON; run only part B")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    THREADS[0] = args.threads
    KNOBS.update(n_probes=args.n_probes, deflation=args.deflation, lanczos_steps=args.lanczos_steps)
    name = "bench_stochastic_entropy" + (f"_{args.tag}" if args.tag else "")
    out = {"torch": torch.__version__, "machine": platform.processor() or platform.machine(),
           "threads": args.threads, "knobs": dict(KNOBS), "part_a": [], "part_b": None}
    if args.reuse_part_a:
        out["part_a"] = json.loads((RESULTS / f"{name}.json").read_text())["part_a"]
    for n in [] if args.reuse_part_a else args.sizes:
        r = part_a(n)
        print(json.dumps(r), flush=True)
        out["part_a"].append(r)
    if args.big_layers > 0:
        # a fresh process: part A's exact N x N Grams must not count in part B's peak RSS
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1, initializer=_set_threads, initargs=(args.threads, dict(KNOBS))) as pool:
            out["part_b"] = pool.apply(part_b, (args.big_n, args.big_layers))
        print(json.dumps(out["part_b"]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        "# Stochastic (SLQ + Hutch++) vs exact matrix entropy",
        "",
        f"torch {out['torch']}, {args.threads} thread(s); Gaussian sigma = 1, alpha = 1, bits; "
        f"{KNOBS['n_probes']} probes, {KNOBS['lanczos_steps']} Lanczos steps, deflation {KNOBS['deflation']} "
        "(defaults: 128, 20, 128), float32 products, no permutations.",
        "",
        "| N | H exact | H stoch. ± se | rel. err | t exact | t stoch. "
        "| I exact | I stoch. ± se | rel. err | t exact | t stoch. |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["part_a"]:
        lines.append(
            f"| {r['n']} | {r['entropy_exact']:.4f} | {r['entropy_stochastic']:.4f} ± "
            f"{r['entropy_se']:.4f} | {100 * r['entropy_rel_error']:.2f} % | "
            f"{r['time_entropy_exact_s']:.1f} s | {r['time_entropy_stochastic_s']:.1f} s | "
            f"{r['mi_exact']:.4f} | {r['mi_stochastic']:.4f} ± {r['mi_se']:.4f} | "
            f"{100 * r['mi_rel_error']:.2f} % | {r['time_mi_exact_s']:.1f} s | "
            f"{r['time_mi_stochastic_s']:.1f} s |"
        )
    b = out["part_b"]
    if b:
        label = (f"**extrapolated** from {b['layers_run']} layer(s) run" if b["extrapolated"]
                 else "measured")
        lines += [
            "",
            f"N = {b['n']}, 768-wide stack: stochastic MI of {b['layers_run']} of 24 layers "
            f"took {b['time_s']:.0f} s ({b['time_per_layer_s']:.0f} s per layer); 24 layers: "
            f"{b['time_24_layers_s'] / 60:.0f} min ({label}). Peak RSS {b['peak_rss_mb']:.0f} MB "
            f"(a fresh process: {b['rss_at_start_mb']:.0f} MB after imports, "
            f"{b['rss_after_data_mb']:.0f} MB with the data; the float32 "
            f"features of 24 layers are {b['features_mb_24_layers']:.0f} MB; one exact float64 "
            f"Gram would be {b['exact_gram_float64_mb_per_matrix']:.0f} MB).",
        ]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
