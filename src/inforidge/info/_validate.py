"""Input checks shared by the estimators: clear errors that say what is wrong and how to fix it."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

F = TypeVar("F", bound=Callable[..., Any])


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


# --------------------------------------------------------------------------------------------
# Numpy in, numpy out (the rule is stated in the docstring of inforidge.info)
# --------------------------------------------------------------------------------------------


def to_numpy(obj: Any) -> Any:
    """Every tensor in ``obj`` as numpy on the host: tensors, tuples, lists, dicts, dataclasses.

    A 0-d tensor becomes a numpy scalar of its dtype (``np.float64`` is a Python float);
    anything else (floats, ints, strings, None) is returned as is.
    """
    if isinstance(obj, Tensor):
        t = obj.detach().cpu()
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds it exactly
            t = t.float()
        a = t.numpy()
        return a[()] if a.ndim == 0 else a
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            new = to_numpy(value)
            if new is not value:
                changes[f.name] = new
        return dataclasses.replace(obj, **changes) if changes else obj
    if isinstance(obj, tuple | list):
        items = [to_numpy(v) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    if isinstance(obj, dict):
        return {k: to_numpy(v) for k, v in obj.items()}
    return obj


def wants_numpy(arrays: Sequence[Any], others: Sequence[Any] = ()) -> bool:
    """True when some array argument is numpy (or a list/tuple) and no argument is a tensor.

    arrays: the values of the array parameters; others: the remaining argument values, which
    count only as a tensor (e.g. a per-batch ``sigma``) or a numpy array.
    """
    if any(isinstance(v, Tensor) for v in (*arrays, *others)):
        return False
    return any(isinstance(v, np.ndarray | list | tuple) for v in arrays) or any(
        isinstance(v, np.ndarray) for v in others
    )


def numpy_io(*array_params: str) -> Callable[[F], F]:
    """Decorator: the function returns numpy when its array inputs were numpy (see wants_numpy).

    array_params: names of the parameters that take arrays (where a list means an array, too).
    With any tensor argument the result is returned untouched, so the tensor path (device,
    dtype, identity of the objects) is exactly the undecorated function's.
    """

    def wrap(fn: F) -> F:
        params = list(inspect.signature(fn).parameters.values())
        position = {p.name: i for i, p in enumerate(params)
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)}
        unknown = [name for name in array_params if name not in {p.name for p in params}]
        if unknown:
            raise TypeError(f"{fn.__name__} has no parameter(s) {unknown}")

        @functools.wraps(fn)
        def run(*args, **kwargs):
            arrays = [args[position[n]] if position.get(n, len(args)) < len(args) else kwargs.get(n)
                      for n in array_params]
            out = fn(*args, **kwargs)
            return to_numpy(out) if wants_numpy(arrays, [*args, *kwargs.values()]) else out

        return run

    return wrap


def on_tensors(fn: F) -> F:
    """For a method or property of a result dataclass: run it on tensors, answer in numpy.

    A result built from numpy inputs holds numpy fields (see :func:`to_numpy`). Rather than
    writing every method twice (torch and numpy differ, e.g. std's default ddof), the body
    stays torch: it runs on a copy whose numpy fields are tensors again (zero-copy views), and
    its result goes back through :func:`to_numpy`. A result holding tensors runs unchanged.
    """

    @functools.wraps(fn)
    def run(self, *args, **kwargs):
        numpy_fields = {f.name: torch.as_tensor(v) for f in dataclasses.fields(self)
                        if isinstance(v := getattr(self, f.name), np.ndarray | np.generic)}
        if not numpy_fields:
            return fn(self, *args, **kwargs)
        return to_numpy(fn(dataclasses.replace(self, **numpy_fields), *args, **kwargs))

    return run
