"""Numpy in, numpy out: every public name of inforidge.info, on numpy, tensor and mixed inputs.

CALLS holds the call arguments of every exported function; a new export without a row (or a
row in NO_ARRAYS / CONSTANTS / RESULTS) fails test_every_export_is_covered.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

import inforidge.info as info

R = np.random.default_rng(0)
N = 12
X = R.normal(size=(N, 4))  # (N, D)
XS = np.stack([X + s * R.normal(size=(N, 4)) for s in (0.3, 1.0, 3.0)])  # (L, N, D)
X2 = X + 0.2 * R.normal(size=(N, 4))  # a second view of X
Y = X[:, :2] + 0.3 * R.normal(size=(N, 2))  # (N, E)
GROUPS = np.arange(N) % 3
Z3 = R.normal(size=(2, 6, 4))  # (B, T, D)
MASK = np.ones((2, 6), dtype=np.int64)
MASK[1, :2] = 0  # left padding
ZA = np.stack([X, X2], 1)  # (N, A, D)
LAM = np.array([[0.5, 0.3, 0.2, 0.0], [0.25, 0.25, 0.25, 0.25]])
EMB = R.normal(size=(N, 3, 4))  # (N, T_max, D) target tokens
SMASK = np.ones((N, 3), dtype=bool)
SMASK[::2, 2] = False
KX = info.gram_matrix(torch.as_tensor(X)).numpy()
KXS = info.gram_matrix(torch.as_tensor(XS)).numpy()
KY = info.gram_matrix(torch.as_tensor(Y)).numpy()
IDX = np.random.default_rng(1).integers(0, N, size=(3, N))
CURVE = np.array([0.2, 0.9, 0.5, 0.1])
DRAWS = CURVE + 0.05 * R.normal(size=(5, 4))
JK = CURVE + 0.01 * R.normal(size=(N, 4))

BOOT = {"n_boot": 3, "n_permutations": 2, "draw_permutations": 1}
SLQ = {"n_probes": 4, "lanczos_steps": 3, "deflation": 2}

# name -> calls; each call gets `a`, which turns one numpy array argument into the kind tested.
Call = Callable[[Callable], object]
CALLS: dict[str, list[Call]] = {
    "entropy_from_spectrum": [lambda a: info.entropy_from_spectrum(a(LAM), 0.9)],
    "estimate_information": [
        lambda a: info.estimate_information(a(XS), a(Y), n_permutations=3),
        lambda a: info.estimate_information(a(X), a(Y), n_permutations=3, groups=a(GROUPS)),
    ],
    "gram_matrix": [
        lambda a: info.gram_matrix(a(X)),
        lambda a: info.gram_matrix(a(XS), sigma="median", normalize=False),
        lambda a: info.gram_matrix(a(XS), sigma=a(np.array([0.5, 1.0, 2.0]))),
        lambda a: info.gram_matrix(a(X.astype(np.float32)), "laplacian", dtype=None),
    ],
    "information_from_grams": [lambda a: info.information_from_grams(a(KXS), a(KY), n_permutations=3)],
    "joint_entropy": [lambda a: info.joint_entropy(a(KX), a(KY))],
    "l2_normalize": [lambda a: info.l2_normalize(a(XS))],
    "matrix_entropy": [lambda a: info.matrix_entropy(a(KX)), lambda a: info.matrix_entropy(a(KXS), 2.0)],
    "median_bandwidth": [lambda a: info.median_bandwidth(a(XS))],
    "mutual_information": [
        lambda a: info.mutual_information(a(X), a(Y)),  # a Python float either way
        lambda a: info.mutual_information(a(XS), a(Y)),
    ],
    "mutual_information_null": [lambda a: info.mutual_information_null(a(XS), a(Y), n_permutations=3)],
    "prompt_entropy": [
        lambda a: info.prompt_entropy(a(Z3), a(MASK)),
        lambda a: info.prompt_entropy(a(Z3[0])),  # one prompt: 0-d fields
    ],
    "curvature": [lambda a: info.curvature(a(Z3), a(MASK))],
    "dataset_entropy": [lambda a: info.dataset_entropy(a(X)), lambda a: info.dataset_entropy(a(XS))],
    "dime": [lambda a: info.dime(a(X), a(X2), n_permutations=2)],
    "effective_rank": [lambda a: info.effective_rank(a(Z3), a(MASK))],
    "infonce": [lambda a: info.infonce(a(X), a(X2))],
    "lidar": [lambda a: info.lidar(a(ZA))],
    "bandwidth_check": [lambda a: info.bandwidth_check(a(XS), a(Y), **BOOT)],
    "resampled_information": [
        lambda a: info.resampled_information(a(KXS), a(KY), a(IDX), n_permutations=2)
    ],
    "ridge_statistics": [lambda a: info.ridge_statistics(a(XS), a(Y), **BOOT)],
    "ridge_statistics_from_grams": [lambda a: info.ridge_statistics_from_grams(a(KXS), a(KY), **BOOT)],
    "ridge_test": [
        lambda a: info.ridge_test(a(CURVE), a(DRAWS), 0.9, N, a(JK)),
        lambda a: info.ridge_test(a(np.zeros(4)), a(DRAWS), 0.9),  # flat: NaN fields
    ],
    "check_positive_semidefinite": [lambda a: info.check_positive_semidefinite(a(KX))],
    "sequence_gram": [lambda a: info.sequence_gram(a(EMB), a(SMASK))],
    "information": [
        lambda a: info.information(a(XS), a(Y), n_permutations=2),
        lambda a: info.information(a(XS), a(Y), estimator="stochastic", n_permutations=2, **SLQ),
    ],
    "stochastic_entropy": [lambda a: info.stochastic_entropy(a(XS), **SLQ)],
    "stochastic_information": [
        lambda a: info.stochastic_information(a(X), a(Y), n_permutations=2, groups=a(GROUPS), **SLQ)
    ],
    "stochastic_joint_entropy": [lambda a: info.stochastic_joint_entropy(a(X), a(Y), **SLQ)],
}
# Functions without an array argument: their output type does not depend on the caller's arrays.
NO_ARRAYS: dict[str, tuple[Callable[[], object], type]] = {
    "bootstrap_indices": (lambda: info.bootstrap_indices(N, 3, 0), torch.Tensor),
    "choose_estimator": (lambda: info.choose_estimator(N), str),
}
CONSTANTS = {"KERNELS", "ESTIMATORS", "EXACT_MAX_N"}
# Result classes -> a function in CALLS that returns one (its fields and properties are checked there).
RESULTS = {
    "InformationEstimate": "estimate_information",
    "StochasticInformationEstimate": "stochastic_information",
    "StochasticEntropy": "stochastic_entropy",
    "PromptEntropy": "prompt_entropy",
    "ResampledInformation": "resampled_information",
    "RidgeTest": "ridge_test",
    "RidgeStatistics": "ridge_statistics",
    "BandwidthCheck": "bandwidth_check",
}


def numpy(v):
    return v


def tensor(v):
    return torch.as_tensor(v)


def mixed():
    """First array numpy, every later one a tensor."""
    seen = []

    def a(v):
        seen.append(v)
        return v if len(seen) == 1 else torch.as_tensor(v)

    return a


def n_arrays(call: Call) -> int:
    seen = []
    call(lambda v: seen.append(v) or v)
    return len(seen)


def derived(obj) -> dict[str, object]:
    """Properties and zero-argument public methods of a result dataclass, by name."""
    out = {}
    for klass in type(obj).__mro__:
        for name, attr in vars(klass).items():
            if name in out or name.startswith("__"):
                continue
            if isinstance(attr, property):
                out[name] = getattr(obj, name)
            elif callable(attr) and not name.startswith("_") and not isinstance(attr, type):
                out[name] = getattr(obj, name)()
    return out


def assert_same(got, want, path="out"):
    """got (numpy path) holds numpy exactly where want (tensor path) holds tensors, same values."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, np.ndarray if want.ndim else np.generic), f"{path}: {type(got)}"
        assert got.dtype == want.cpu().numpy().dtype and got.shape == tuple(want.shape), path
        np.testing.assert_allclose(got, want.cpu().numpy(), rtol=1e-12, atol=1e-15, err_msg=path)
    elif dataclasses.is_dataclass(want):
        assert type(got) is type(want), path
        for f in dataclasses.fields(want):
            assert_same(getattr(got, f.name), getattr(want, f.name), f"{path}.{f.name}")
        got_d, want_d = derived(got), derived(want)
        assert got_d.keys() == want_d.keys(), path
        for name in want_d:
            assert_same(got_d[name], want_d[name], f"{path}.{name}")
    elif isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), path
        for k in want:
            assert_same(got[k], want[k], f"{path}[{k!r}]")
    elif isinstance(want, list | tuple):
        assert type(got) is type(want) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and math.isnan(want):
        assert isinstance(got, float) and math.isnan(got), path
    else:
        assert type(got) is type(want) and got == want, f"{path}: {got!r} != {want!r}"


def kinds(obj, path="out") -> set[str]:
    """Which array kinds ('tensor', 'numpy') appear in obj, its fields and derived values."""
    if isinstance(obj, torch.Tensor):
        return {"tensor"}
    if isinstance(obj, np.ndarray | np.generic):
        return {"numpy"}
    if dataclasses.is_dataclass(obj):
        values = [getattr(obj, f.name) for f in dataclasses.fields(obj)] + list(derived(obj).values())
    elif isinstance(obj, dict):
        values = list(obj.values())
    elif isinstance(obj, list | tuple):
        values = list(obj)
    else:
        return set()
    return set().union(*(kinds(v) for v in values))


def test_every_export_is_covered():
    missing = [n for n in info.__all__ if n not in {*CALLS, *NO_ARRAYS, *CONSTANTS, *RESULTS}]
    assert not missing, f"add a row for {missing} to the tables of tests/info/test_numpy_io.py"
    stale = [n for n in {*CALLS, *NO_ARRAYS, *CONSTANTS, *RESULTS} if n not in info.__all__]
    assert not stale, stale


CASES = [pytest.param(name, i, id=f"{name}-{i}") for name, calls in CALLS.items() for i in range(len(calls))]


@pytest.mark.parametrize(("name", "i"), CASES)
def test_numpy_in_numpy_out(name, i):
    call = CALLS[name][i]
    got, want = call(numpy), call(tensor)
    assert "tensor" not in kinds(got)
    assert_same(got, want)


@pytest.mark.parametrize(("name", "i"), CASES)
def test_tensor_in_tensor_out_unchanged(name, i):
    call = CALLS[name][i]
    fn = getattr(info, name)
    out = call(tensor)
    assert "numpy" not in kinds(out)
    # exactly the undecorated function's result (no conversion, no copy)
    undecorated = getattr(fn, "__wrapped__", None)
    assert undecorated is not None, f"{name} is not wrapped by numpy_io"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(info, name, undecorated)
        plain = call(tensor)
    assert_equal_tensors(out, plain)


def assert_equal_tensors(a, b):
    if isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor) and a.dtype == b.dtype and a.device == b.device
        assert torch.equal(a, b) or bool(torch.isnan(a).all() and torch.isnan(b).all())
    elif dataclasses.is_dataclass(b):
        for f in dataclasses.fields(b):
            assert_equal_tensors(getattr(a, f.name), getattr(b, f.name))
    elif isinstance(b, dict):
        for k in b:
            assert_equal_tensors(a[k], b[k])
    elif isinstance(b, list | tuple):
        for u, v in zip(a, b, strict=True):
            assert_equal_tensors(u, v)
    else:
        assert type(a) is type(b) and (a == b or a != a and b != b)


@pytest.mark.parametrize(("name", "i"), [c for c in CASES if n_arrays(CALLS[c.values[0]][c.values[1]]) > 1])
def test_numpy_mixed_with_tensors_gives_tensors(name, i):
    call = CALLS[name][i]
    out = call(mixed())
    assert "numpy" not in kinds(out)
    assert_same(call(numpy), call(tensor))  # and the same numbers as either path


def test_lists_count_as_numpy():
    np.testing.assert_array_equal(info.gram_matrix(X.tolist()), info.gram_matrix(X))
    assert isinstance(info.l2_normalize(X.tolist()), np.ndarray)


def test_scalars_are_numpy_scalars():
    """The documented rule: a 0-d result is a numpy scalar of its dtype (np.float64 is a float)."""
    h = info.matrix_entropy(KX)
    assert isinstance(h, np.float64) and isinstance(h, float)
    pe = info.prompt_entropy(Z3[0])
    assert isinstance(pe.raw, np.float64) and isinstance(pe.n_tokens, np.int64)
    est = info.estimate_information(X, Y, n_permutations=3)
    for v in (est.mi, est.entropy_y, est.null_mean, est.corrected, est.p_value, est.z):
        assert isinstance(v, np.float64)
    assert type(info.mutual_information(X, Y)) is float  # documented as a float, both paths


def test_result_built_by_hand_from_numpy():
    """A user's own InformationEstimate of numpy arrays answers in numpy, like a computed one."""
    est = info.estimate_information(torch.as_tensor(XS), torch.as_tensor(Y), n_permutations=3)
    fields = {f.name: getattr(est, f.name) for f in dataclasses.fields(est)}
    # .numpy() keeps entropy_y a 0-d array (not a numpy scalar): the properties take both
    by_hand = info.InformationEstimate(**{k: v.numpy() if isinstance(v, torch.Tensor) else v
                                          for k, v in fields.items()})
    got, want = derived(by_hand), derived(est)
    for name in want:
        assert isinstance(got[name], np.ndarray | float), name
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("name", sorted(NO_ARRAYS))
def test_functions_without_arrays(name):
    call, kind = NO_ARRAYS[name]
    assert isinstance(call(), kind)


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_result_classes_come_back_as_numpy(name):
    klass = getattr(info, name)
    outs = [call(numpy) for call in CALLS[RESULTS[name]]]
    found = [o for o in outs if type(o) is klass] + [
        r for o in outs if isinstance(o, info.BandwidthCheck) for r in o.results.values() if type(r) is klass]
    assert found, f"{RESULTS[name]} returns no {name}"
    assert all("tensor" not in kinds(o) and "numpy" in kinds(o) for o in found)


def test_constants_are_plain_values():
    assert isinstance(info.KERNELS, tuple) and isinstance(info.ESTIMATORS, tuple)
    assert isinstance(info.EXACT_MAX_N, int)
