"""MeasureSettings.estimator: the Evaluator's information rows from the exact or the matrix-free
(stochastic) estimator, the ``estimator`` column and the ``<metric>_se`` rows; ``auto`` exact up
to EXACT_MAX_N and where the stochastic estimator does not apply; the length-stratified null kept."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import inforidge.info
import inforidge.info.stochastic as stochastic
import inforidge.measure.predictive as predictive
from inforidge.config.loading import load_config
from inforidge.config.settings import ESTIMATORS, MeasureSettings
from inforidge.measure.predictive import NULL_PLAIN, NULL_WITHIN_LENGTH, Evaluator
from inforidge.measure.ridge import kernel_ablation_rows
from inforidge.measure.rows import COLUMNS, KEY, SE_SUFFIX
from inforidge.models.parts import locate_parts
from inforidge.report.run import estimator_sentence
from inforidge.results.table import ResultsTable

N = 64
EXACT = MeasureSettings(n_samples=N, seeds=[0], n_permutations=3)
# deflation < N, so the probes carry part of the trace and the standard errors are not ~0
STOCHASTIC = replace(EXACT, estimator="stochastic", n_probes=64, deflation=32)
INFORMATION = ("predictive_information", "incremental_gain", "robustness_predictive_information")
NOT_INFORMATION = ("early_exit_accuracy", "dominant_dimension_share")


def _within_errors(exact: pd.DataFrame, stoch: pd.DataFrame) -> pd.DataFrame:
    """exact and stochastic values of every row that has an ``_se`` twin, with that se and
    |difference| / (4 se + the quadrature tolerance) ("excess", <= 1 passes)."""
    key = ["split", "seed", "metric", "final_norm", "layer"]
    se = stoch[stoch["metric"].str.endswith(SE_SUFFIX)].assign(metric=lambda d: d["metric"].str.removesuffix(SE_SUFFIX))
    m = exact[key + ["value"]].merge(stoch[key + ["value"]], on=key, suffixes=("_exact", "_stoch"))
    m = m.merge(se[key + ["value"]].rename(columns={"value": "se"}), on=key)
    # se counts the probes only; the Lanczos quadrature error (~1e-6 here) is not in it
    tol = 4 * m["se"] + 2e-3 * m["value_exact"].abs() + 1e-4
    return m.assign(diff=(m["value_stoch"] - m["value_exact"]).abs(), excess=lambda d: d["diff"] / tol)


@pytest.fixture(scope="module")
def measured(tiny_task, word_tokenizer, tiny_gpt2):
    ev = Evaluator(word_tokenizer, {"id": tiny_task.splits["train"][:N]}, EXACT)
    states = ev.extract(locate_parts(tiny_gpt2))
    return ev, states


def test_config_estimators_are_the_info_estimators():
    assert ESTIMATORS == inforidge.info.ESTIMATORS


def test_estimator_settings_are_checked_when_the_config_is_built():
    config = load_config(None, ["tracking.measure.estimator=stochastic", "tracking.measure.n_probes=16"])
    assert config.tracking.measure.estimator == "stochastic" and config.tracking.measure.n_probes == 16
    assert load_config(None, []).tracking.measure.estimator == "auto"
    with pytest.raises(ValueError, match="estimator must be one of auto, exact, stochastic; got 'fast'"):
        load_config(None, ["tracking.measure.estimator=fast"])
    with pytest.raises(ValueError, match=r"n_probes .* must be an integer >= 2"):
        load_config(None, ["tracking.measure.n_probes=1"])
    with pytest.raises(ValueError, match=r"lanczos_steps .* must be an integer >= 1"):
        MeasureSettings(lanczos_steps=0)
    with pytest.raises(ValueError, match=r"Gaussian kernel only.*kernel='laplacian'; set estimator=auto"):
        load_config(None, ["tracking.measure.estimator=stochastic", "tracking.measure.kernel=laplacian"])
    with pytest.raises(ValueError, match=r"estimator=stochastic needs labels given as features.*"
                                         r"multi_token_target=whole.*tracking.measure.estimator=auto"):
        load_config(None, ["tracking.measure.estimator=stochastic", "task.multi_token_target=whole",
                           "tracking.measure.label_view=token_embedding"])
    # auto is fine with either: it stays exact there
    load_config(None, ["tracking.measure.kernel=laplacian"])
    load_config(None, ["task.multi_token_target=whole", "tracking.measure.label_view=token_embedding"])


def test_stochastic_rows_agree_with_exact_rows_within_their_errors(measured):
    ev, states = measured
    exact = pd.DataFrame(ev.information_rows(states, 0))
    stoch = pd.DataFrame(ev.information_rows(states, 0, STOCHASTIC))
    assert ev.estimator_for() == "exact" and ev.estimator_for(STOCHASTIC) == "stochastic"
    info = stoch[~stoch["metric"].isin(NOT_INFORMATION)]
    ex = exact[~exact["metric"].isin(NOT_INFORMATION)]
    assert set(ex["estimator"]) == {"exact"} and set(info["estimator"]) == {"stochastic"}
    assert stoch.loc[stoch["metric"].isin(NOT_INFORMATION), "estimator"].isna().all()
    assert not exact["metric"].str.endswith(SE_SUFFIX).any()
    m = _within_errors(exact, stoch)
    # every predictive / gain / robustness value with its null and corrected value, the entropies
    stems = {x.removesuffix(s) for x in m["metric"] for s in ("_null", "_corrected") if x.endswith(s)}
    assert set(INFORMATION) <= stems and {"representation_entropy", "label_entropy"} <= set(m["metric"])
    assert len(m) == len(stoch[stoch["metric"].str.endswith(SE_SUFFIX)])
    assert (m["se"] > 0).all() and (m["se"] < 0.05).all()  # not vacuous, not useless
    assert (m["excess"] <= 1).all(), m.sort_values("excess").tail().to_string()
    # the same rows otherwise: same metrics (plus the _se rows), views, layers and flags
    plain = info[~info["metric"].str.endswith(SE_SUFFIX)]
    def keys(f):  # layer NA (whole-curve rows) as -1: NaN != NaN in tuples
        return sorted(map(tuple, f[["metric", "final_norm", "layer"]].fillna({"layer": -1}).to_numpy()))

    assert keys(plain) == keys(ex)


def test_stochastic_rows_with_the_default_knobs_are_exact_up_to_quadrature_at_small_n(measured):
    # deflation 128 >= N: the top-of-spectrum block spans everything, no probe noise is left
    ev, states = measured
    exact = pd.DataFrame(ev.information_rows(states, 0, replace(EXACT, robustness_sigma=None)))
    stoch = pd.DataFrame(ev.information_rows(states, 0, replace(EXACT, robustness_sigma=None, estimator="stochastic")))
    m = _within_errors(exact, stoch)
    assert (m["diff"] < 1e-4).all() and (m["se"] < 1e-6).all(), m.sort_values("diff").tail().to_string()


def test_auto_is_exact_below_the_threshold_and_stochastic_above(measured, monkeypatch):
    ev, states = measured
    auto = replace(EXACT, robustness_sigma=None)
    assert auto.estimator == "auto" and ev.estimator_for(auto) == "exact"
    assert set(pd.DataFrame(ev.information_rows(states, 0, auto))["estimator"].dropna()) == {"exact"}
    monkeypatch.setattr(stochastic, "EXACT_MAX_N", N - 1)
    assert ev.estimator_for(auto) == "stochastic"
    rows = pd.DataFrame(ev.information_rows(states, 0, auto))
    assert set(rows["estimator"].dropna()) == {"stochastic"} and rows["metric"].str.endswith(SE_SUFFIX).any()
    # no Gaussian kernel: auto stays exact, and so does the kernel ablation's non-Gaussian kernels
    laplace = replace(auto, kernel="laplacian")
    assert ev.estimator_for(laplace) == "exact"
    ablation = pd.DataFrame(kernel_ablation_rows(ev, states, 0, kernels=("laplacian",)))
    assert set(ablation["estimator"]) == {"exact"}
    ev.settings = replace(ev.settings, estimator="stochastic")
    try:  # an explicit stochastic measurement still ablates the other kernels exactly
        ablation = pd.DataFrame(kernel_ablation_rows(ev, states, 0, kernels=("laplacian",)))
        assert set(ablation["estimator"]) == {"exact"}
    finally:
        ev.settings = EXACT


def test_whole_targets_stay_exact_under_auto_and_refuse_stochastic(tiny_task, word_tokenizer, monkeypatch):
    records = [{**r, "target": f"{r['target']} S1"} for r in tiny_task.splits["test_id"][:16]]
    settings = MeasureSettings(n_samples=16, seeds=[0], label_view="token_embedding")
    ev = Evaluator(word_tokenizer, {"id": records}, settings, multi_token_target="whole")
    monkeypatch.setattr(stochastic, "EXACT_MAX_N", 4)
    assert ev.estimator_for() == "exact"
    with pytest.raises(ValueError, match="multi_token_target=whole.*estimator=auto"):
        Evaluator(word_tokenizer, {"id": records}, replace(settings, estimator="stochastic"),
                  multi_token_target="whole")
    with pytest.raises(ValueError, match="multi_token_target=whole"):
        ev.estimator_for(replace(settings, estimator="stochastic"))


def _varying_length_records(tiny_task, n=N, seed=0):
    """Prompts of 2-9 words and a target drawn independently of them."""
    rng = np.random.default_rng(seed)
    out = []
    for r in tiny_task.splits["train"][:n]:
        words = r["prompt"].split()[:-1]
        out.append({"prompt": " ".join(words[: int(rng.integers(2, 10))] + ["?"]),
                    "target": f"S{int(rng.integers(0, 13))}"})
    return out


def test_the_length_stratified_null_is_kept(tiny_task, word_tokenizer, tiny_gpt2, monkeypatch):
    # GPT-2's embedding_output label carries the prompt length: the null shuffles within lengths
    settings = MeasureSettings(n_samples=N, seeds=[0], n_permutations=5, final_norm_views=["post"],
                               robustness_sigma=None, sigma="median")
    ev = Evaluator(word_tokenizer, {"id": _varying_length_records(tiny_task)}, settings)
    states = ev.extract(locate_parts(tiny_gpt2))
    seen = []
    real = predictive.stochastic_information
    monkeypatch.setattr(predictive, "stochastic_information", lambda *a, **kw: seen.append(kw["groups"]) or real(*a, **kw))
    stoch = pd.DataFrame(ev.information_rows(states, 0, replace(settings, estimator="stochastic", deflation=16,
                                                                n_probes=64)))
    exact = pd.DataFrame(ev.information_rows(states, 0))
    lengths = ev.splits["id"]["lengths"][ev.positions("id")]
    assert seen and all(g is not None and g.equal(lengths) for g in seen)
    pi = lambda d: d[d["metric"].str.startswith("predictive_information")]  # noqa: E731
    assert set(pi(stoch)["null"]) == set(pi(exact)["null"]) == {NULL_WITHIN_LENGTH}
    m = _within_errors(exact, stoch)
    assert (m["excess"] <= 1).all(), m.to_string()
    corrected = m[m["metric"] == "predictive_information_corrected"]
    assert (corrected["value_stoch"].abs() < 4 * corrected["se"] + 0.01).all()  # independent targets: ~0
    # the check can fail: a plain null reads the shared length as ~0.4 bits of information
    monkeypatch.setattr(predictive, "label_carries_position", lambda *a: False)
    plain = pd.DataFrame(ev.information_rows(states, 0, replace(settings, estimator="stochastic", deflation=16,
                                                                n_probes=64)))
    plain_c = plain[plain["metric"] == "predictive_information_corrected"]
    assert set(plain_c["null"]) == {NULL_PLAIN} and (plain_c["value"] > 0.2).all()


def test_the_column_is_in_the_table_and_the_key_and_the_report_names_the_estimator(measured):
    ev, states = measured
    assert COLUMNS.index("estimator") == COLUMNS.index("null") + 1 and "estimator" in KEY
    table = ResultsTable()
    table.append(ev.rows(states, 0, replace(EXACT, robustness_sigma=None)))
    assert estimator_sentence(table.frame, EXACT) == ""
    table.append(ev.rows(states, 1, replace(STOCHASTIC, robustness_sigma=None)))
    f = table.frame
    assert list(f.columns[: len(COLUMNS)]) == COLUMNS and not f.duplicated(KEY).any()
    assert f.loc[f["metric"] == "early_exit_accuracy", "estimator"].isna().all()
    assert set(f.loc[f["step"] == 1, "estimator"].dropna()) == {"stochastic"}
    sentence = estimator_sentence(f, STOCHASTIC)
    assert "stochastic" in sentence and "64 probes" in sentence and "_se" in sentence
    assert "exact for incremental_gain, label_entropy, predictive_information" in sentence  # step 0 was exact
