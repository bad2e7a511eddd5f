"""One ridge verdict: the report's verdict, the checkpoint table, the bootstrap table and the
summaries read the same rows; no verdict below N = 30, for a flat curve or too few draws."""

import numpy as np
import pandas as pd
import torch

from inforidge.info.ridge import ridge_test
from inforidge.measure.ridge import verdict_rows
from inforidge.report.markdown import format_p_value
from inforidge.report.run import (
    checkpoint_ridge_table,
    other_bandwidth_verdicts,
    ridge_section,
    verdict,
)
from inforidge.results.summaries import ridge_table

L = 4
PEAKED = np.array([0.1, 0.5, 0.9, 0.5, 0.2])  # clear intermediate peak, layer 2


def curve_rows(curve, n_samples=100, seeds=(0, 1, 2), step=10, split="id", view="post", jitter=1e-3):
    """predictive_information(_corrected) rows of one curve, nearly the same on every seed."""
    rows = []
    for seed in seeds:
        for metric in ("predictive_information", "predictive_information_corrected"):
            for layer, v in enumerate(curve):
                rows.append({"step": step, "split": split, "final_norm": view, "metric": metric, "layer": layer,
                             "value": float(v) + jitter * seed, "seed": seed, "n_samples": n_samples, "sigma": "1.0",
                             "flag": None})
    return rows


def boot_rows(curve, spread, sigma="1.0", n_boot=100, n_samples=100, step=10, split="id", view="post"):
    """ridge_* rows (raw and corrected) of a bootstrap whose draws scatter by ``spread`` around ``curve``."""
    g = torch.Generator().manual_seed(0)
    c = torch.as_tensor(curve, dtype=torch.float64)
    draws = c + spread * torch.randn(n_boot, len(curve), generator=g, dtype=torch.float64)
    test = ridge_test(c, draws, n_samples=n_samples)
    common = {"step": step, "split": split, "final_norm": view, "layer": -1, "seed": 0, "n_samples": n_samples,
              "sigma": sigma, "ridge_n_boot": n_boot}
    return verdict_rows(test, common) + verdict_rows(test, common, "_corrected"), test


def test_the_bootstrap_rows_at_the_own_sigma_decide_everywhere():
    # Seeds criterion alone: a ridge (tiny spread over seeds). The bootstrap at σ = 1.0 sees draws
    # so noisy that the drop is not significant; the median-σ rows (a clear ridge) do not decide.
    rows, test = boot_rows(PEAKED, spread=2.0)
    median, median_test = boot_rows(PEAKED, spread=0.01, sigma="median")
    assert not test.is_ridge() and median_test.is_ridge()
    seeds_only = ridge_table(pd.DataFrame(curve_rows(PEAKED)))
    assert bool(seeds_only["corrected_ridge"].iloc[0]) and seeds_only["corrected_criterion"].iloc[0] == "seeds"
    df = pd.DataFrame(curve_rows(PEAKED) + rows + median)
    table = ridge_table(df)
    r = table.iloc[0]
    assert r["corrected_criterion"] == "bootstrap" and table["corrected_ridge"].tolist() == [False]
    assert r["corrected_p_value"] == test.p_value and r["corrected_peak_layer"] == 2
    lines, summary = verdict(table, 10, L)
    assert lines[0].startswith("**No ridge**") and "bootstrap max-statistic test" in lines[0]
    assert summary["ridges"]["id/post"]["corrected_ridge"] is False
    assert summary["ridges"]["id/post"]["corrected_p_value"] == test.p_value
    section = "\n".join(ridge_section(df))
    own = [line for line in section.splitlines() if line.startswith("| id | post | 1.0 |")]
    assert len(own) == 1 and own[0].rstrip(" |").endswith("| no")
    assert checkpoint_ridge_table(table)["corrected ridge"].tolist() == ["no"]


def test_a_significant_bootstrap_ridge_reads_the_same_in_every_part():
    rows, test = boot_rows(PEAKED, spread=0.01)
    df = pd.DataFrame(curve_rows(PEAKED) + rows)
    table = ridge_table(df)
    lines, summary = verdict(table, 10, L)
    assert test.is_ridge() and lines[0].startswith("**Ridge seen**") and summary["corrected_ridge_anywhere"]
    # p at its resolution: 1 / (B + 1) with B = 100
    assert "≤ 0.010 (smallest with 100 draws)" in lines[0]
    assert checkpoint_ridge_table(table)["corrected ridge"].tolist() == ["yes"]
    assert "| yes |" in "\n".join(ridge_section(df))


def test_no_verdict_below_30_samples():
    df = pd.DataFrame(curve_rows(PEAKED, n_samples=20))
    table = ridge_table(df)
    assert table["corrected_ridge"].iloc[0] is None and table["corrected_flag"].iloc[0] == "too_few_samples"
    lines, summary = verdict(table, 10, L)
    assert lines[0].startswith("**No verdict**") and "fewer than 30 samples: not meaningful" in lines[0]
    assert summary["ridges"]["id/post"]["corrected_ridge"] is None and not summary["corrected_ridge_anywhere"]
    assert checkpoint_ridge_table(table)["corrected ridge"].tolist() == ["no verdict (too_few_samples)"]
    # the bootstrap rows of a small sample carry the flag
    rows, _ = boot_rows(PEAKED, spread=0.01, n_samples=20)
    assert {r["flag"] for r in rows} == {"too_few_samples"}
    assert all(np.isnan(r["value"]) for r in rows if r["metric"].startswith("ridge_verdict"))


def test_a_flat_curve_names_no_peak():
    flat = np.zeros(L + 1)  # e.g. a one-class label: every MI is 0
    rows, test = boot_rows(flat, spread=0.0)
    assert test.peak_layer is None and test.flag() == "flat_curve"
    for df in (pd.DataFrame(curve_rows(flat, jitter=0.0)), pd.DataFrame(curve_rows(flat, jitter=0.0) + rows)):
        table = ridge_table(df)
        assert table["corrected_peak_layer"].iloc[0] is None and table["corrected_flag"].iloc[0] == "flat_curve"
        lines, _ = verdict(table, 10, L)
        assert lines[0].startswith("**No verdict**") and "flat curve, no peak" in lines[0]
        assert "peaks at" not in lines[0] and "highest at" not in lines[0]


def test_too_few_draws_give_no_verdict_in_the_section():
    rows, test = boot_rows(PEAKED, spread=0.01, n_boot=20)
    assert test.flag() == "too_few_draws"
    df = pd.DataFrame(curve_rows(PEAKED) + rows)
    section = "\n".join(ridge_section(df))
    assert "no verdict (too_few_draws)" in section and "≤ 0.048 (smallest with 20 draws)" in section
    lines, _ = verdict(ridge_table(df), 10, L)
    assert lines[0].startswith("**No verdict**") and "too few bootstrap draws" in lines[0]


def test_peak_at_the_embedding_is_not_a_ridge_for_the_seeds_criterion():
    table = ridge_table(pd.DataFrame(curve_rows([0.9, 0.5, 0.4, 0.3, 0.1])))
    assert table["corrected_peak_layer"].iloc[0] == 0 and table["corrected_ridge"].tolist() == [False]
    lines, _ = verdict(table, 10, L)
    assert "embedding output, not a ridge" in lines[0]


def test_p_value_resolution():
    assert format_p_value(1 / 21, 20) == "≤ 0.048 (smallest with 20 draws)"
    assert format_p_value(2 / 21, 20) == "0.095"
    assert format_p_value(1 / 1001, 1000) == "≤ 0.001 (smallest with 1000 draws)"
    assert format_p_value(0.5) == "0.500" and format_p_value(None, 20) == "—"


def test_section_keeps_verdict_columns_that_are_all_no_verdict():
    """Every verdict NaN (N < 30): the σ comparison still lists both bandwidths with the flag."""
    rows = boot_rows(PEAKED, 0.01, n_samples=20)[0] + boot_rows(PEAKED, 0.01, sigma="median", n_samples=20)[0]
    section = "\n".join(ridge_section(pd.DataFrame(curve_rows(PEAKED, n_samples=20) + rows)))
    assert "null-corrected verdict does not depend on σ (σ=1.0: no verdict (too_few_samples), " \
           "σ=median: no verdict (too_few_samples))" in section


def test_the_verdict_says_when_another_bandwidth_disagrees():
    # σ = 1.0 (the measurement's): no ridge (noisy draws); σ = median: a clear ridge
    rows, test = boot_rows(PEAKED, spread=2.0)
    median, median_test = boot_rows(PEAKED, spread=0.01, sigma="median")
    df = pd.DataFrame(curve_rows(PEAKED) + rows + median)
    others = other_bandwidth_verdicts(df)
    assert others["sigma"].tolist() == ["median"]
    lines, summary = verdict(ridge_table(df), 10, L, others)
    assert lines[0].startswith("**No ridge**")
    assert "**The verdict depends on the bandwidth**: at σ=median: ridge, max-statistic p" in lines[0]
    assert summary["ridges"]["id/post"]["depends_on_sigma"] is True
    # the same verdict at both bandwidths: no sentence
    agree = pd.DataFrame(curve_rows(PEAKED) + rows + boot_rows(PEAKED, spread=2.0, sigma="median")[0])
    lines, summary = verdict(ridge_table(agree), 10, L, other_bandwidth_verdicts(agree))
    assert "depends on the bandwidth" not in lines[0] and summary["ridges"]["id/post"]["depends_on_sigma"] is False
