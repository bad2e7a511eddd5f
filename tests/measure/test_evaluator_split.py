"""The Evaluator split into extract() and rows(): same rows as measure(), kept subsample indices,
the kernel ablation's predictive-only rows, and the one estimate->rows builder."""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from inforidge.config.settings import MeasureSettings
from inforidge.measure.predictive import Evaluator
from inforidge.measure.ridge import kernel_ablation_rows
from inforidge.measure.rows import STAGE_PREFIX, WHOLE_CURVE, estimate_rows
from inforidge.models.parts import locate_parts

SETTINGS = MeasureSettings(n_samples=8, seeds=[0, 3], n_permutations=2)


@pytest.fixture(scope="module")
def evaluator(tiny_task, word_tokenizer):
    return Evaluator(word_tokenizer, {"id": tiny_task.splits["test_id"], "ood": tiny_task.splits["test_ood"]},
                     SETTINGS)


def test_rows_of_extracted_states_equal_measure(evaluator, tiny_gpt2):
    parts = locate_parts(tiny_gpt2)
    assert pd.DataFrame(evaluator.rows(evaluator.extract(parts), 7)).equals(pd.DataFrame(evaluator.measure(parts, 7)))


def test_robustness_rows_are_the_predictive_rows_at_the_median_bandwidth_from_the_same_states(evaluator, tiny_gpt2):
    states = evaluator.extract(locate_parts(tiny_gpt2))
    rows = evaluator.rows(states, 7)
    robust = [r for r in rows if r["metric"].startswith("robustness_")]
    assert robust and {r["sigma_rule"] for r in robust} == {"median"} and all(np.isnan(r["sigma"]) for r in robust)
    at_median = evaluator.rows(states, 7, replace(SETTINGS, sigma="median", robustness_sigma=None))
    expected = [{**r, "metric": "robustness_" + r["metric"]} for r in at_median
                if r["metric"].startswith("predictive_information") and r["split"] != "all"]
    assert pd.DataFrame(robust).equals(pd.DataFrame(expected))
    off = evaluator.rows(states, 7, replace(SETTINGS, robustness_sigma=None))
    assert not any(r["metric"].startswith("robustness_") for r in off)
    assert {(r["sigma"], r["sigma_rule"]) for r in off} == {(float(SETTINGS.sigma), "fixed")}


def test_kept_record_indices_equal_a_fresh_draw(evaluator, tiny_task):
    for split, name in (("id", "test_id"), ("ood", "test_ood")):
        records = tiny_task.splits[name]
        for seed in SETTINGS.seeds:
            fresh = np.random.default_rng(seed).choice(len(records), SETTINGS.n_samples, replace=False)
            np.testing.assert_array_equal(evaluator.record_indices[split][seed], fresh)
            picked = evaluator.subsample(split, seed)
            assert picked == [records[int(i)] for i in fresh]
            # the positions into the extracted states point at the same prompts
            pool = evaluator.splits[split]["prompts"]
            assert [pool[int(p)] for p in evaluator.positions(split, seed)] == [r["prompt"] for r in picked]
            assert evaluator.complement(split, seed) == [r for i, r in enumerate(records) if i not in set(fresh)]
    assert evaluator.subsample("id") == evaluator.subsample("id", SETTINGS.seeds[0])


def test_kernel_ablation_rows_are_the_predictive_rows_of_the_other_kernels(evaluator, tiny_gpt2):
    states = evaluator.extract(locate_parts(tiny_gpt2))
    got = kernel_ablation_rows(evaluator, states, 5, kernels=("gaussian", "laplacian"))
    full = evaluator.rows(states, 5, replace(SETTINGS, kernel="laplacian"))
    expected = [{**r, "metric": STAGE_PREFIX["kernels"] + r["metric"]} for r in full
                if r["metric"].startswith("predictive_information") and r["split"] != "all"]
    # z is NaN where the null has no spread (constant layers): compare as frames, NaN == NaN
    assert pd.DataFrame(got).equals(pd.DataFrame(expected)) and {r["kernel"] for r in got} == {"laplacian"}
    own = [r for r in evaluator.rows(states, 5) if r["metric"] == "predictive_information"]
    other = [r for r in full if r["metric"] == "predictive_information"]
    assert [r["value"] for r in own] != [r["value"] for r in other]


def test_estimate_rows_number_layers_per_view_and_put_the_label_entropy_at_layer_minus_one():
    est = SimpleNamespace(mi=torch.arange(6.0), null_mean=torch.zeros(6), null_std=torch.ones(6),
                          corrected=torch.arange(6.0) - 1, entropy_x=torch.full((6,), 2.0), entropy_y=torch.tensor(3.0),
                          p_value=torch.full((6,), 0.5), z=torch.arange(6.0) - 1, n_samples=8, base=2.0)
    index = {"post": torch.tensor([0, 1, 2]), "pre": torch.tensor([3, 4, 5])}
    rows = estimate_rows(est, index, {"step": 1}, "m", first_layer=1, entropy_y="label_entropy")
    mi = [(r["final_norm"], r["layer"], r["value"]) for r in rows if r["metric"] == "m"]
    assert mi == [("post", 1, 0.0), ("post", 2, 1.0), ("post", 3, 2.0), ("pre", 1, 3.0), ("pre", 2, 4.0),
                  ("pre", 3, 5.0)]
    assert {r["metric"] for r in rows} == {"m", "m_null", "m_null_std", "m_corrected", "m_p_value", "m_z",
                                           "representation_entropy", "label_entropy"}
    assert not any("flag" in r for r in rows)  # entropy 2 bits of log2 8 = 3: not degenerate
    ent = [r for r in rows if r["metric"] == "label_entropy"]
    assert [(r["layer"], r["value"]) for r in ent] == [(WHOLE_CURVE, 3.0)] * 2
    bare = estimate_rows(est, index, {}, "m", entropy_x=False)
    assert {r["metric"] for r in bare} == {"m", "m_null", "m_null_std", "m_corrected", "m_p_value", "m_z"}
    assert all(r["step"] == 1 for r in rows)
