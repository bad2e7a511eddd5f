"""Versions and hardware facts for bug reports and for every run's env.json."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from inforidge import __version__
from inforidge.results.table import write_text_atomic


def environment() -> dict:
    import numpy
    import torch
    import transformers


    cuda = torch.cuda.is_available()
    return {
        "inforidge": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "cuda": torch.version.cuda if cuda else None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "blas": _blas_summary(torch),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "parallel": _parallel_info(torch),
        # Versions from the installed metadata (nothing imported); None where not installed.
        **{name: _version(name) for name in PACKAGES},
        "gpu": _gpu(torch) if cuda else None,
    }


# Packages of the pipeline besides torch, transformers and numpy (some are optional extras).
PACKAGES = ("datasets", "accelerate", "tokenizers", "pandas", "pyarrow", "matplotlib")


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _gpu(torch) -> dict:
    """Name, memory (GiB) and driver version of CUDA device 0, and the number of devices."""
    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
            "driver": _driver_version(torch), "count": torch.cuda.device_count()}


def _driver_version(torch) -> str | None:
    """The NVIDIA driver version (NVML, else nvidia-smi); else the CUDA driver API version torch
    reports (e.g. "cuda-driver-api 12040"); None where none can be read."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:
        pass
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.split()
        if out:
            return out[0]
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return f"cuda-driver-api {torch._C._cuda_getDriverVersion()}"
    except Exception:
        return None


def record_environment(path, **facts) -> None:
    """Add ``facts`` learnt during a run (e.g. the batch size "auto" found) to its env.json,
    written atomically."""
    path = Path(path)
    env = json.loads(path.read_text()) if path.exists() else {}
    env.update(facts)
    write_text_atomic(path, json.dumps(env, indent=2))


def _parallel_info(torch) -> dict:
    """Thread settings torch reports (ATen, OpenMP, MKL) as key -> value."""
    out = {}
    for line in torch.__config__.parallel_info().splitlines():
        key, sep, value = line.partition(":")
        if sep and "thread" in key.lower():
            out[key.strip()] = value.strip()
    return out


def _blas_summary(torch) -> str:
    cfg = torch.__config__.show()
    for key in ("BLAS_INFO", "LAPACK_INFO"):
        for part in cfg.replace(",", "\n").splitlines():
            if key in part:
                return part.strip().lstrip("- ").split(": ", 1)[-1]
    return "unknown"


def _cpu_times(cpus: set[int]) -> tuple[float, float] | None:
    """(busy, total) jiffies summed over ``cpus`` from /proc/stat; None where it cannot be read."""
    try:
        lines = open("/proc/stat").read().splitlines()
    except OSError:
        return None
    busy = total = 0.0
    for line in lines:
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        values = [float(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        total += sum(values)
        busy += sum(values) - values[3] - values[4]
    return (busy, total) if total else None


def busy_cores(interval: float = 0.3) -> float | None:
    """How many of this process's cores other work keeps busy now (two reads of /proc/stat
    ``interval`` seconds apart, while this process sleeps); None off Linux."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(_cores()))
    first = _cpu_times(cpus)
    if first is None:
        return None
    time.sleep(interval)
    second = _cpu_times(cpus)
    if second is None or second[1] <= first[1]:
        return None
    return len(cpus) * (second[0] - first[0]) / (second[1] - first[1])


@dataclass(frozen=True)
class ThreadChoice:
    """The torch thread count of a run and how it was chosen (recorded in env.json)."""

    torch_threads: int
    threads_setting: int | str
    cores: int
    busy_cores: float | None

    def record(self) -> dict:
        return asdict(self)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def choose_threads(setting: int | str | None, *, busy: float | None = None, cores: int | None = None,
                   limit: int | None = None) -> int:
    """Threads for ``setting``: a positive int as given; 0 / None: torch's current count (all
    cores by default); "auto": the ``cores`` that ``busy`` cores of other work leave free (rounded,
    at least 1), at most ``limit`` (torch's current count). Oversubscribed cores make every thread
    wait (benchmarks/bench_threads.py), so a busy machine gets fewer threads. ``busy`` None
    (not measurable): torch's count."""
    limit = torch.get_num_threads() if limit is None else limit
    if setting in (None, 0):
        return limit
    if setting == "auto":
        if busy is None:
            return limit
        cores = _cores() if cores is None else cores
        return max(1, min(limit, math.floor(cores - busy + 0.5)))
    if isinstance(setting, int) and not isinstance(setting, bool) and setting > 0:
        return setting
    raise ValueError(f"threads must be 'auto', 0 (torch's default) or a positive number; got {setting!r}")


def set_threads(setting: int | str | None) -> ThreadChoice:
    """Set torch's intra-op threads from ``setting`` (see :func:`choose_threads`)."""
    busy = busy_cores() if setting == "auto" else None
    n = choose_threads(setting, busy=busy)
    torch.set_num_threads(n)
    return ThreadChoice(n, setting if setting is not None else 0, _cores(), None if busy is None else round(busy, 2))
