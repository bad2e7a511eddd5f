"""p-value / z rows beside every MI and the degenerate-Gram flag (measure/rows.py)."""

import math

import torch

from inforidge.info import estimate_information
from inforidge.measure.rows import DEGENERATE_GRAM, DEGENERATE_GRAM_SHARE, estimate_rows


def _rows(sigma):
    g = torch.Generator().manual_seed(0)
    y = torch.randn(32, 2, generator=g, dtype=torch.float64)
    x = torch.stack([y @ torch.randn(2, 4, generator=g, dtype=torch.float64) for _ in range(2)])
    est = estimate_information(x, y, n_permutations=9, seed=1, sigma=sigma)
    return est, estimate_rows(est, {"post": torch.tensor([0, 1])}, {"step": 0}, "m")


def test_p_value_and_z_rows_carry_the_estimate_values_per_layer():
    est, rows = _rows(sigma=1.0)
    p = [r["value"] for r in rows if r["metric"] == "m_p_value"]
    z = [r["value"] for r in rows if r["metric"] == "m_z"]
    assert p == [float(v) for v in est.p_value] and z == [float(v) for v in est.z]
    assert [r["layer"] for r in rows if r["metric"] == "m_p_value"] == [0, 1]


def test_a_gram_of_near_zero_entropy_flags_every_row_of_its_layer_and_a_healthy_one_none():
    est, rows = _rows(sigma=1e4)  # bandwidth far above the spread: Gram ~ all ones
    assert bool((est.entropy_x < DEGENERATE_GRAM_SHARE * math.log2(32)).all())
    layer_rows = [r for r in rows if r["layer"] >= 0]
    assert layer_rows and all(r.get("flag") == DEGENERATE_GRAM for r in layer_rows)
    est, rows = _rows(sigma=1.0)
    assert bool((est.entropy_x > DEGENERATE_GRAM_SHARE * math.log2(32)).all())
    assert not any("flag" in r for r in rows)
