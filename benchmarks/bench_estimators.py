"""Benchmark: all-layer matrix-based Renyi mutual information, baseline vs InfoRidge vs floor.

Measures, in one run and on one machine, the time to compute I_alpha(X_l; Y) for every layer
l of an (L, N, D) stack against one target y of shape (N, E), for three variants:

  (a) baseline   the way public matrix-entropy code does it (the Layer-by-Layer code's
                 ``repitl`` library, Shujian Yu's matrix-MI code): a Python loop over layers;
                 each layer builds BOTH Gram matrices (x's and y's) from scratch and calls a
                 full symmetric eigendecomposition with eigenvectors (``torch.linalg.eigh``)
                 three times, for S(A), S(B) and S(A o B); also for alpha = 2.
  (b) inforidge  ``inforidge.info.mutual_information(x_stack, y, alpha=...)``.
  (c) floor      only the work InfoRidge cannot avoid, timed alone:
                   alpha != 2: ``torch.linalg.eigvalsh`` on the L x-Grams, the one y-Gram and
                               the L joint matrices (all precomputed before timing);
                   alpha == 2: no eigendecomposition is needed (sum lambda^2 = ||A||_F^2), so
                               the floor is the Gram construction itself: the matmuls
                               X_l X_l^T (l = 1..L) and Y Y^T on L2-normalised rows.

Data: Gaussian, fixed seed, float64; Gaussian kernel sigma = 1 on L2-normalised rows; entropies
in bits. Each timing is the median of ``--repeats`` runs after ``--warmup`` warm-up runs; the
three variants are timed round-robin so that load changes on a shared machine hit all alike.
(a) and (b) are checked to agree (max abs diff < 1e-8) outside the timed region. Timings are
only printed and written, never asserted.

Usage:
    python benchmarks/bench_estimators.py            # full size: L=24 N=1024 D=768 E=768
    python benchmarks/bench_estimators.py --quick    # tiny sizes, runs in seconds
    python benchmarks/bench_estimators.py --layers 12 --samples 512 --alphas 1 2 --repeats 5

Writes <out>.md (header line with the machine + markdown tables) and <out>.json; <out> is
benchmarks/results/bench_estimators (benchmarks/results/bench_estimators_quick with --quick).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from inforidge.info import gram_matrix, mutual_information
from inforidge.info.entropy import eigvalsh

RESULTS_DIR = Path(__file__).resolve().parent / "results"
FULL = {"layers": 24, "samples": 1024, "dim": 768, "target_dim": 768, "repeats": 3}
QUICK = {"layers": 4, "samples": 128, "dim": 32, "target_dim": 16, "repeats": 3}
# Targets: (a)/(b) at least this much faster per alpha; (b)/(c) at most this much overhead.
SPEEDUP_TARGET = {1.0: 2.5, 2.0: 50.0}
OVERHEAD_TARGET = 1.3
AGREE_TOL = 1e-8
FLOOR_DEF = {
    "eig": "the eigvalsh calls InfoRidge makes, on the L x-Grams + 1 y-Gram + L joint matrices "
    "(precomputed), with InfoRidge's scheme (inforidge.info.entropy.eigvalsh: one matrix per "
    "thread); (c') times the same calls as plain sequential torch.linalg.eigvalsh",
    "gram": "Gram construction only: matmuls X_l X_l^T (l=1..L) and Y Y^T on L2-normalised rows "
    "(alpha=2 needs no eigendecomposition)",
}


# --------------------------------------------------------------------------------------------
# (a) Baseline: self-contained, in the style of public matrix-entropy code (repitl / Yu et al.)
# --------------------------------------------------------------------------------------------
def baseline_gram(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian Gram exp(-||xi - xj||^2 / (2 sigma^2)) of L2-normalised rows of x (N, D)."""
    x = x / x.norm(dim=1, keepdim=True)
    sq = torch.sum(x**2, dim=1).reshape(-1, 1)
    dist = (sq + sq.t() - 2.0 * torch.mm(x, x.t())).clamp_min(0.0)
    return torch.exp(-dist / (2.0 * sigma**2))


def baseline_entropy(k: torch.Tensor, alpha: float) -> torch.Tensor:
    """S_alpha(K / tr K) in bits from a full eigendecomposition (eigenvectors discarded)."""
    k = k / torch.trace(k)
    ek, _ = torch.linalg.eigh(k)
    mek = ek[torch.gt(ek, 0.0)]
    mek = mek / torch.sum(mek)
    if alpha == 1.0:
        h = -torch.sum(mek * torch.log(mek))
    else:
        h = (1.0 / (1.0 - alpha)) * torch.log(torch.sum(torch.exp(alpha * torch.log(mek))))
    return h / math.log(2.0)


def baseline_mi(xs: torch.Tensor, y: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
    """I(X_l; Y) = S(Kx) + S(Ky) - S(Kx o Ky) for every layer, one layer at a time."""
    out = []
    for layer in range(xs.shape[0]):
        kx = baseline_gram(xs[layer], sigma)
        ky = baseline_gram(y, sigma)
        hx = baseline_entropy(kx, alpha)
        hy = baseline_entropy(ky, alpha)
        hxy = baseline_entropy(kx * ky, alpha)
        out.append(hx + hy - hxy)
    return torch.stack(out)


# --------------------------------------------------------------------------------------------
# (c) Floor
# --------------------------------------------------------------------------------------------
def _unit_trace(k: torch.Tensor) -> torch.Tensor:
    return k / k.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None]


def make_floor(
    xs: torch.Tensor, y: torch.Tensor, alpha: float, sigma: float
) -> tuple[str, Callable[[], object], Callable[[object], torch.Tensor] | None, Callable | None]:
    """Return (kind, timed function, optional check turning its output into the MI in bits)."""
    if alpha == 2.0:
        xn = xs / xs.norm(dim=-1, keepdim=True)
        yn = y / y.norm(dim=-1, keepdim=True)

        def gram_floor():
            return torch.matmul(xn, xn.transpose(-1, -2)), yn @ yn.t()

        return "gram", gram_floor, None, None

    ax = _unit_trace(gram_matrix(xs, sigma=sigma))
    ay = _unit_trace(gram_matrix(y, sigma=sigma))
    axy = _unit_trace(ax * ay)

    def eig_floor():
        # The same eigvalsh calls with InfoRidge's own scheme (one matrix per thread).
        return eigvalsh(ax), eigvalsh(ay), eigvalsh(axy)

    def eig_floor_sequential():
        return (
            torch.linalg.eigvalsh(ax),
            torch.linalg.eigvalsh(ay),
            torch.linalg.eigvalsh(axy),
        )

    def to_mi(out) -> torch.Tensor:
        def h(lam):
            lam = lam.clamp_min(0.0)
            if alpha == 1.0:
                return -torch.special.xlogy(lam, lam).sum(-1) / math.log(2.0)
            return torch.log((lam**alpha).sum(-1)) / (1.0 - alpha) / math.log(2.0)

        lx, ly, lxy = out
        return h(lx) + h(ly) - h(lxy)

    return "eig", eig_floor, to_mi, eig_floor_sequential


# --------------------------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------------------------
def time_interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int
) -> tuple[dict[str, list[float]], dict[str, object]]:
    """Time several functions round-robin (a, b, c, a, b, c, ...) after warm-ups.

    Interleaving spreads any change in machine load over all variants alike, so the ratios
    stay meaningful on a shared machine. Returns per-name times and each function's last output.
    """
    outs: dict[str, object] = {}
    for _ in range(warmup):
        for name, fn in fns.items():
            outs[name] = fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            outs[name] = None  # free the previous output before timing
            gc.collect()
            t0 = time.perf_counter()
            outs[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return times, outs


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine_info(threads: int) -> dict:
    load = loadavg()
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "threads": threads,
        "python": platform.python_version(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "loadavg_at_start": load,
    }


def fmt_alpha(a: float) -> str:
    return f"{a:g}"


def status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def render_markdown(res: dict) -> str:
    m, c = res["machine"], res["config"]
    lines = [
        f"Machine: {m['cpu']} ({m['logical_cpus']} logical CPUs), torch {m['torch']}, "
        f"{m['threads']} threads, {m['date']} (load average at start: {m['loadavg_at_start']}, "
        f"at end: {m.get('loadavg_at_end')})",
        "",
        f"All-layer MI: L={c['layers']} layers, N={c['samples']} samples, D={c['dim']}, "
        f"y of E={c['target_dim']}; Gaussian kernel sigma={c['sigma']:g} on L2-normalised rows, "
        f"float64, bits. Median of {c['repeats']} runs after {c['warmup']} warm-up; the "
        "variants are timed round-robin (a, b, c, a, b, c, ...).",
        "",
        "| alpha | variant | median (s) | min (s) | max (s) | runs (s) |",
        "|---:|---|---:|---:|---:|---|",
    ]
    for r in res["runs"]:
        for key, label in (
            ("baseline", "(a) baseline"),
            ("inforidge", "(b) InfoRidge"),
            ("floor", f"(c) floor [{r['floor_kind']}]"),
            ("floor_sequential", "(c') same eigvalsh, sequential"),
        ):
            if key not in r["times"]:
                continue
            t = r["times"][key]
            lines.append(
                f"| {fmt_alpha(r['alpha'])} | {label} | {t['median']:.4f} | {t['min']:.4f} | "
                f"{t['max']:.4f} | {', '.join(f'{v:.4f}' for v in t['runs'])} |"
            )
    lines += [
        "",
        "Ratios of medians (PASS/MISS); ratios of minima in parentheses (less load-sensitive).",
        "",
        "| alpha | (a)/(b) | target | status | (b)/(c) | target | status | max abs diff (a) vs (b) |",
        "|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    for r in res["runs"]:
        tgt = r["speedup_target"]
        lines.append(
            f"| {fmt_alpha(r['alpha'])} | {r['speedup']:.2f}x ({r['speedup_from_min']:.2f}x) | "
            f"{'>= ' + format(tgt, 'g') if tgt is not None else 'n/a'} | "
            f"{status(r['speedup_pass'])} | {r['overhead']:.3f} ({r['overhead_from_min']:.3f}) | "
            f"<= {OVERHEAD_TARGET:g} | "
            f"{status(r['overhead_pass'])} | {r['max_abs_diff']:.2e} |"
        )
    lines += ["", "Floor definitions:"]
    kinds = sorted({r["floor_kind"] for r in res["runs"]})
    lines += [f"- [{k}] {FLOOR_DEF[k]}" for k in kinds]
    lines += [
        "- (a) baseline: Python loop over layers; per layer both Grams rebuilt and 3 x "
        "torch.linalg.eigh (with eigenvectors), also at alpha=2.",
        "- (b) InfoRidge: inforidge.info.mutual_information(x_stack, y, alpha=...).",
        "- Timings are informational; they depend on the machine and its load.",
    ]
    start, end = m.get("loadavg_at_start"), m.get("loadavg_at_end")
    busy = (start is not None and start[0] > 0.5) or (
        end is not None and end[0] > m["threads"] + 0.5
    )
    if busy:
        lines.append(
            "- WARNING: other processes were using the CPUs (see load averages); with "
            "oversubscribed cores, multi-threaded LAPACK (eigh/eigvalsh) slows down several-fold, "
            "so these timings and ratios are unreliable."
        )
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Time all-layer matrix-based Renyi MI: baseline vs InfoRidge vs floor.",
    )
    p.add_argument(
        "-L",
        "--layers",
        type=int,
        default=None,
        help=f"number of layers (default {FULL['layers']}; {QUICK['layers']} with --quick)",
    )
    p.add_argument(
        "-N",
        "--samples",
        type=int,
        default=None,
        help=f"samples (default {FULL['samples']}; {QUICK['samples']} with --quick)",
    )
    p.add_argument(
        "-D",
        "--dim",
        type=int,
        default=None,
        help=f"layer width (default {FULL['dim']}; {QUICK['dim']} with --quick)",
    )
    p.add_argument(
        "-E",
        "--target-dim",
        type=int,
        default=None,
        help=f"dimension of y (default {FULL['target_dim']}; {QUICK['target_dim']} with --quick)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed runs per measurement, median reported (default {FULL['repeats']})",
    )
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs (default 1)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument(
        "--alphas", type=float, nargs="+", default=[1.0, 2.0], help="Renyi orders (default 1 2)"
    )
    p.add_argument(
        "--sigma", type=float, default=1.0, help="Gaussian kernel bandwidth (default 1.0)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random data (default 0)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds), for smoke tests")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output path without suffix (.md and .json are written); default "
        "benchmarks/results/bench_estimators[_quick]",
    )
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, val in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, val)
    if (
        min(args.layers, args.samples, args.dim, args.target_dim, args.repeats) < 1
        or args.samples < 2
    ):
        p.error("sizes and --repeats must be positive (and N >= 2)")
    if args.warmup < 0 or args.threads < 1 or args.sigma <= 0 or any(a <= 0 for a in args.alphas):
        p.error("--warmup >= 0, --threads >= 1, --sigma > 0 and alphas > 0 are required")
    if args.out is None:
        args.out = RESULTS_DIR / ("bench_estimators_quick" if args.quick else "bench_estimators")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    machine = machine_info(torch.get_num_threads())

    g = torch.Generator().manual_seed(args.seed)
    xs = torch.randn(args.layers, args.samples, args.dim, generator=g, dtype=torch.float64)
    y = torch.randn(args.samples, args.target_dim, generator=g, dtype=torch.float64)
    config = {
        "layers": args.layers,
        "samples": args.samples,
        "dim": args.dim,
        "target_dim": args.target_dim,
        "sigma": args.sigma,
        "dtype": "float64",
        "repeats": args.repeats,
        "warmup": args.warmup,
        "seed": args.seed,
        "alphas": args.alphas,
        "quick": args.quick,
    }
    print(
        f"# {machine['cpu']} | torch {machine['torch']} | {machine['threads']} threads | "
        f"L={args.layers} N={args.samples} D={args.dim} E={args.target_dim}",
        flush=True,
    )

    runs = []
    for alpha in args.alphas:
        kind, floor_fn, floor_mi, floor_seq = make_floor(xs, y, alpha, args.sigma)
        fns = {
            "baseline": lambda a=alpha: baseline_mi(xs, y, a, args.sigma),
            "inforidge": lambda a=alpha: mutual_information(xs, y, alpha=a, sigma=args.sigma),
            "floor": floor_fn,
        }
        if floor_seq is not None:
            fns["floor_sequential"] = floor_seq
        times, outs = time_interleaved(
            fns,
            args.repeats,
            args.warmup,
        )
        out_a, out_b, out_c = outs["baseline"], outs["inforidge"], outs["floor"]
        for key, label in (
            ("baseline", "(a) baseline"),
            ("inforidge", "(b) InfoRidge"),
            ("floor", f"(c) floor[{kind}]"),
            ("floor_sequential", "(c') eigvalsh seq."),
        ):
            if key not in times:
                continue
            print(
                f"alpha={fmt_alpha(alpha)} {label:<18} median {statistics.median(times[key]):.4f} s"
                f"  min {min(times[key]):.4f} s",
                flush=True,
            )

        # Correctness, outside the timed region: same numbers, so the comparison is fair.
        diff = float((out_a - out_b).abs().max())
        assert diff < AGREE_TOL, f"baseline and InfoRidge disagree at alpha={alpha}: {diff:.3e}"
        if floor_mi is not None:
            fdiff = float((floor_mi(out_c) - out_b).abs().max())
            assert fdiff < AGREE_TOL, f"floor spectra do not reproduce the MI: {fdiff:.3e}"
        del out_a, out_b, out_c, outs, floor_fn, floor_mi
        gc.collect()

        med = {k: statistics.median(v) for k, v in times.items()}
        speedup = med["baseline"] / med["inforidge"]
        overhead = med["inforidge"] / med["floor"]
        tgt = SPEEDUP_TARGET.get(float(alpha))
        runs.append(
            {
                "alpha": alpha,
                "floor_kind": kind,
                "floor_definition": FLOOR_DEF[kind],
                "times": {
                    k: {"median": med[k], "min": min(v), "max": max(v), "runs": v}
                    for k, v in times.items()
                },
                "speedup": speedup,
                "speedup_target": tgt,
                "speedup_pass": None if tgt is None else speedup >= tgt,
                "overhead": overhead,
                "overhead_target": OVERHEAD_TARGET,
                "overhead_pass": overhead <= OVERHEAD_TARGET,
                "speedup_from_min": min(times["baseline"]) / min(times["inforidge"]),
                "overhead_from_min": min(times["inforidge"]) / min(times["floor"]),
                "max_abs_diff": diff,
            }
        )

    machine["loadavg_at_end"] = loadavg()
    res = {"machine": machine, "config": config, "runs": runs}
    md = render_markdown(res)
    print()
    print(md, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(md)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nwrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
