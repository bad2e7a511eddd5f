"""Report: corrected MI at both bandwidths with p-values, peak agreement, degenerate Grams."""

import pandas as pd

from inforidge.report.run import robustness_section
from inforidge.results.summaries import robustness_table


def _df(robust_curve, robust_p, flag=None):
    rows = []
    main_curve, main_p = [0.1, 0.5, 0.2], [0.5, 1 / 21, 0.2]
    for seed in (0, 1):
        for prefix, sigma, curve, ps in (("", "1.0", main_curve, main_p),
                                         ("robustness_", "median", robust_curve, robust_p)):
            for layer in range(3):
                common = {"step": 9, "split": "id", "final_norm": "post", "layer": layer, "seed": seed,
                          "sigma": sigma, "n_permutations": 20,
                          "flag": flag if (prefix == "" and layer == 0) else None}
                # seed 1 has the larger p at layer 1: the table keeps the largest over seeds
                rows += [{**common, "metric": f"{prefix}predictive_information_corrected",
                          "value": curve[layer] + seed * 0.01},
                         {**common, "metric": f"{prefix}predictive_information_p_value",
                          "value": ps[layer] * (1 + seed)}]
    return pd.DataFrame(rows)


def test_table_means_corrected_over_seeds_and_keeps_the_largest_p():
    table = robustness_table(_df([0.3, 0.1, 0.05], [1 / 21, 0.3, 0.4]), "id")
    assert table["layer"].tolist() == [0, 1, 2]
    assert table["corrected"].round(6).tolist() == [0.105, 0.505, 0.205]
    assert table["p"].round(6).tolist() == [1.0, round(2 / 21, 6), 0.4]
    assert table["significant"].tolist() == [False, False, False]  # 2/21 > 0.05 in seed 1
    assert table["robust_significant"].tolist() == [False, False, False]  # 1/21 in seed 0, 2/21 in seed 1


def test_sentences_name_significant_layers_peak_agreement_and_degenerate_grams():
    text = "\n".join(robustness_section(_df([0.3, 0.1, 0.05], [0.01, 0.3, 0.4], flag="degenerate_gram")))
    assert "resolution 1/(1+P) = 0.048" in text
    assert "σ=1.0: none; σ=median: [0]" in text
    assert "1 at σ=1.0, 0 at σ=median: the bandwidths disagree" in text
    assert "degenerate Gram" in text and "layers [0]" in text and "median-σ robustness view" in text
    same = "\n".join(robustness_section(_df([0.1, 0.4, 0.05], [0.5, 0.01, 0.4])))
    assert "the bandwidths agree" in same and "degenerate" not in same
    assert robustness_section(_df([0.1] * 3, [0.5] * 3).query("~metric.str.startswith('robustness_')")) == []
