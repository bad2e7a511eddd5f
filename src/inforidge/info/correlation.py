"""Distance correlation (the V-statistic that ``dcor`` computes), in numpy.

``import dcor`` costs about 17 s of numba compilation per process (measured), so it is
not imported; a test pins agreement with dcor's values.
"""

from __future__ import annotations

import math

import numpy as np


def distance_correlation(x, y) -> float:
    """Distance correlation (Szekely, Rizzo & Bakirov 2007) of two (n,) samples, in [0, 1].

    The biased (V-statistic) estimator that ``dcor.distance_correlation`` computes by
    default: double-centred distance matrices A, B; dCor = sqrt(mean(A B) /
    sqrt(mean(A A) mean(B B))). 1 for any exact linear relation (increasing or
    decreasing), 0 under independence in the limit. Computed here in O(n^2) numpy (n is
    the number of layers) because importing ``dcor`` compiles its numba kernels, which
    takes 10-30 s; the test suite pins agreement with dcor on fixed inputs. NaN when either
    sample is constant.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be (n,) arrays of the same length; got {x.shape} and {y.shape}")

    def centred(v: np.ndarray) -> np.ndarray:
        d = np.abs(v[:, None] - v[None, :])
        return d - d.mean(0, keepdims=True) - d.mean(1, keepdims=True) + d.mean()

    a, b = centred(x), centred(y)
    denom = math.sqrt(float((a * a).mean()) * float((b * b).mean()))
    if denom <= 0:
        return math.nan
    return math.sqrt(max(float((a * b).mean()), 0.0) / denom)
