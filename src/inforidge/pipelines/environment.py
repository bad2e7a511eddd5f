"""Versions and hardware facts for bug reports and for every run's env.json."""

from __future__ import annotations

import os
import platform
import sys

import torch

from inforidge import __version__


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
    }


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


def set_threads(n: int | None) -> int:
    """Set torch's intra-op threads (None leaves it); returns the count in force."""
    if n:
        torch.set_num_threads(int(n))
    return torch.get_num_threads()
