"""Input checks shared by the estimators: clear errors that say what is wrong and how to fix it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


def as_tensor(x: Any, name: str, dtype: torch.dtype | None = None) -> Tensor:
    """Return ``x`` (a torch tensor, numpy array or nested list) as a floating tensor.

    Keeps the device of a tensor; numpy input lands on the CPU.
    """
    if isinstance(x, Tensor):
        t = x
    elif isinstance(x, np.ndarray | list | tuple):
        t = torch.as_tensor(np.asarray(x))
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if not (t.is_floating_point() or t.is_complex()):
        t = t.to(torch.get_default_dtype())
    if dtype is not None:
        t = t.to(dtype)
    return t


def check_finite(t: Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise ValueError(
            f"{name} contains {bad} NaN/inf value(s); check the model's dtype (fp16 overflow?) "
            "or drop the affected samples before estimating"
        )


def check_samples(x: Tensor, name: str, *, min_dim: int = 2, max_dim: int | None = None) -> None:
    """Validate a sample matrix of shape (..., N, D): rank, N >= 2, D >= 1, finite."""
    if x.ndim < min_dim or (max_dim is not None and x.ndim > max_dim):
        want = f"{min_dim}" if max_dim == min_dim else f"{min_dim}..{max_dim or 'any'}"
        raise ValueError(
            f"{name} must have shape (N, D) or a batch (..., N, D) with rank {want}; "
            f"got shape {tuple(x.shape)}. Reshape a single vector per sample into (N, 1)."
        )
    n, d = x.shape[-2], x.shape[-1]
    if n < 2:
        raise ValueError(f"{name} has N={n} samples; at least 2 are needed (use more samples)")
    if d < 1:
        raise ValueError(f"{name} has feature dimension D={d}; at least 1 is needed")
    check_finite(x, name)


def check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a finite number > 0 (Renyi order); got {alpha}")
    return alpha


def check_base(base: float) -> float:
    base = float(base)
    if not np.isfinite(base) or base <= 0 or base == 1:
        raise ValueError(f"base must be > 0 and != 1 (2 for bits, e for nats); got {base}")
    return base


def check_gram(k: Tensor, name: str) -> None:
    if k.ndim < 2 or k.shape[-1] != k.shape[-2]:
        raise ValueError(
            f"{name} must be a square Gram matrix (..., N, N); got shape {tuple(k.shape)}. "
            "Build one with gram_matrix(x)."
        )
    if k.shape[-1] < 2:
        raise ValueError(f"{name} is {k.shape[-1]}x{k.shape[-1]}; at least 2 samples are needed")
    check_finite(k, name)


def check_pair(x, y) -> tuple:
    """(x, y) as tensors: layer states (N, D) or (L, N, D) and a target (N, E) with the same N."""
    x, y = as_tensor(x, "x"), as_tensor(y, "y")
    check_samples(x, "x", max_dim=3)
    check_samples(y, "y", max_dim=2)
    if x.shape[-2] != y.shape[-2]:
        raise ValueError(
            f"x has N={x.shape[-2]} samples but y has N={y.shape[-2]}; "
            "pass one target row per sample, in the same order"
        )
    return x, y
