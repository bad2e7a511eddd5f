"""Downstream relation: linear probes per layer, metric-score correlations, labelled texts."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from inforidge.info.correlation import distance_correlation
from inforidge.measure.probes import metric_score_correlations, probe_scores
from inforidge.tasks.corpora import load_labelled_texts

LAYERS = list(range(8))


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Tiny probes: BLAS threads only contend (as torch.set_num_threads(1) in conftest)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def score():
    rng = np.random.default_rng(0)
    return pd.Series(rng.normal(size=len(LAYERS)), index=LAYERS, name="probe_accuracy")


def test_correlation_identities(score):
    metrics = pd.DataFrame({"same": score, "minus": -score, "exp": np.exp(score), "affine": 3 * score + 1},
                           index=LAYERS)
    out = metric_score_correlations(metrics, score).set_index("metric")
    assert list(out.columns) == ["spearman", "spearman_p", "kendall", "kendall_p", "dcor", "n_layers"]
    assert out.loc["same", ["spearman", "kendall", "dcor"]].tolist() == pytest.approx([1, 1, 1])
    assert out.loc["minus", ["spearman", "kendall", "dcor"]].tolist() == pytest.approx([-1, -1, 1])
    assert out.loc["affine", "dcor"] == pytest.approx(1.0)
    assert out.loc["exp", ["spearman", "kendall"]].tolist() == pytest.approx([1, 1])
    assert out.loc["exp", "dcor"] < 1 - 1e-3  # a non-linear monotone map: dcor below 1
    assert (out["n_layers"] == len(LAYERS)).all()
    assert (out["spearman_p"] < 0.01).all() and (out["kendall_p"] < 0.01).all()


def test_distance_correlation_matches_dcor():
    """Reference values from dcor 0.7 ``dcor.distance_correlation`` (importing dcor in the
    test would cost 10-30 s of numba compilation)."""
    x = np.array([0.3, -1.2, 2.5, 0.7, 1.1, -0.4, 3.0, 0.0])
    y = np.array([1.0, 0.2, -0.5, 2.2, 0.9, 0.1, -1.3, 0.4])
    assert distance_correlation(x, y) == pytest.approx(0.7779417499596335, rel=1e-12)
    assert distance_correlation(x, np.exp(x)) == pytest.approx(0.9392525115684943, rel=1e-12)
    assert distance_correlation(x, x**2) == pytest.approx(0.9132838070878267, rel=1e-12)
    assert distance_correlation(x, -2 * x + 5) == pytest.approx(1.0)
    assert math.isnan(distance_correlation(x, np.ones_like(x)))
    with pytest.raises(ValueError, match="same length"):
        distance_correlation(x, y[:3])


def test_correlation_unrelated_metric_is_weak():
    from scipy import stats

    rng = np.random.default_rng(1)
    layers = list(range(40))
    score = pd.Series(rng.normal(size=40), index=layers)
    m = pd.DataFrame({"noise": rng.normal(size=40)}, index=layers)
    out = metric_score_correlations(m, score)
    assert abs(out.loc[0, "spearman"]) < 0.4 and out.loc[0, "spearman_p"] > 0.01
    assert out.loc[0, "dcor"] < 0.5
    rho, rho_p = stats.spearmanr(m["noise"], score)
    tau, tau_p = stats.kendalltau(m["noise"], score)
    assert out.loc[0, ["spearman", "spearman_p", "kendall", "kendall_p"]].tolist() == pytest.approx(
        [rho, rho_p, tau, tau_p]
    )
    assert out.loc[0, "kendall"] != pytest.approx(out.loc[0, "spearman"])


def test_correlation_alignment_and_degenerate_columns(score):
    # Metrics on layers 2..9, shuffled; score on 0..7: the common layers are 2..7.
    idx = [5, 2, 9, 7, 3, 8, 6, 4]
    metrics = pd.DataFrame({
        "aligned": [2 * score.get(i, 0.0) for i in idx],
        "constant": [1.0] * 8,
        "with_nan": [score.get(i, 0.0) if i != 3 else np.nan for i in idx],
    }, index=idx)
    with np.errstate(all="raise"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no ConstantInputWarning etc.
            out = metric_score_correlations(metrics, score).set_index("metric")
    assert out.loc["aligned", "spearman"] == pytest.approx(1.0)
    assert out.loc["aligned", "n_layers"] == 6
    assert out.loc["constant", ["spearman", "kendall", "dcor", "spearman_p"]].isna().all()
    assert out.loc["with_nan", "n_layers"] == 5 and out.loc["with_nan", "kendall"] == pytest.approx(1.0)
    # A constant score: all NaN, no crash.
    flat = metric_score_correlations(metrics, pd.Series(0.5, index=LAYERS))
    assert flat[["spearman", "kendall", "dcor"]].isna().all().all()
    # Fewer than 3 common layers: NaN.
    few = metric_score_correlations(pd.DataFrame({"m": [1.0, 2.0]}, index=[0, 1]), score)
    assert math.isnan(few.loc[0, "spearman"]) and few.loc[0, "n_layers"] == 2


def test_correlation_errors(score):
    with pytest.raises(ValueError, match="share no layers"):
        metric_score_correlations(pd.DataFrame({"m": [1.0, 2.0, 3.0]}, index=[20, 21, 22]), score)
    with pytest.raises(TypeError, match="DataFrame"):
        metric_score_correlations(score, score)
    with pytest.raises(ValueError, match="duplicate"):
        metric_score_correlations(pd.DataFrame({"m": [1.0, 2.0, 3.0]}, index=[0, 0, 1]), score)
    with pytest.raises(ValueError, match="'m' must be numeric"):
        metric_score_correlations(pd.DataFrame({"m": ["a", "b", "c"]}, index=[0, 1, 2]), score)


def _separable(n=120, d=6, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n // 3)
    rng.shuffle(y)
    centers = rng.normal(size=(3, d)) * 6
    return centers[y] + rng.normal(size=(n, d)), y


def test_probe_separable_vs_random():
    x, y = _separable()
    rng = np.random.default_rng(5)
    feats = {3: x, 1: rng.normal(size=x.shape), 2: np.c_[x[:, :1] * 0, rng.normal(size=(len(y), 4))]}
    s = probe_scores(feats, y, folds=5, seed=0)
    assert s.name == "probe_accuracy" and s.index.name == "layer" and list(s.index) == [1, 2, 3]
    assert s[3] >= 0.98
    assert abs(s[1] - 1 / 3) < 0.15 and abs(s[2] - 1 / 3) < 0.15  # chance for three classes


def test_probe_seeded_and_string_labels():
    x, y = _separable(seed=2)
    noisy = x + np.random.default_rng(3).normal(size=x.shape) * 8  # folds matter here
    a = probe_scores({0: noisy}, y, folds=4, seed=11)
    b = probe_scores({0: noisy}, y, folds=4, seed=11)
    pd.testing.assert_series_equal(a, b)
    c = probe_scores({0: noisy}, np.array(["a", "b", "c"])[y], folds=4, seed=11)
    assert c[0] == a[0]
    seeds = {float(probe_scores({0: noisy}, y, folds=4, seed=s)[0]) for s in range(3)}
    assert len(seeds) > 1  # the seed really changes the folds


def test_probe_errors():
    x, y = _separable(n=30)
    with pytest.raises(ValueError, match="fewer than folds=5"):
        probe_scores({0: x[:12]}, y[:12], folds=5)  # 4 samples per class
    with pytest.raises(ValueError, match="one class"):
        probe_scores({0: x}, np.zeros(len(x), dtype=int))
    with pytest.raises(ValueError, match="29 samples but labels has 30"):
        probe_scores({0: x[:29]}, y)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"features\[7\] contains 1 NaN"):
        probe_scores({7: bad}, y)
    with pytest.raises(ValueError, match="folds"):
        probe_scores({0: x}, y, folds=1)
    with pytest.raises(ValueError, match="non-empty dict"):
        probe_scores({}, y)
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        probe_scores({0: x[:, 0]}, y)


def test_load_jsonl_and_csv(tmp_path):
    j = tmp_path / "d.jsonl"
    j.write_text('{"text": "good film", "label": 1}\n\n{"text": "bad film", "label": 0}\n')
    texts, labels = load_labelled_texts(j)
    assert texts == ["good film", "bad film"] and labels.tolist() == [1, 0]
    c = tmp_path / "d.csv"
    c.write_text('sentence,y\n"good, really",1\nbad,0\n')
    texts, labels = load_labelled_texts(c, text_field="sentence", label_field="y")
    assert texts == ["good, really", "bad"] and labels.dtype == np.int64 and labels.tolist() == [1, 0]
    s = tmp_path / "s.csv"
    s.write_text("text,label\nhi,pos\nho,neg\n")
    assert load_labelled_texts(s)[1].tolist() == ["pos", "neg"]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_labelled_texts(tmp_path / "missing.jsonl")
    cases = {
        "a.txt": ("x", "unsupported file type"),
        "b.jsonl": ('{"text": "a", "label": 1}\n{oops\n', r"b.jsonl:2: not valid JSON"),
        "c.jsonl": ('{"text": "a", "lab": 1}\n', r"no field 'label' \(fields: text, lab\)"),
        "d.jsonl": ('{"text": "", "label": 1}\n', "non-empty string"),
        "e.jsonl": ('{"text": "a", "label": null}\n', "integer, boolean or non-empty string"),
        "f.jsonl": ('{"text": "a", "label": 1}\n{"text": "b", "label": "x"}\n', "mix types"),
        "g.jsonl": ("\n\n", "no records"),
        "h.jsonl": ("[1, 2]\n", "JSON object"),
        "i.csv": ("text,label\nok,1\nmissing\n", r"i.csv:3: 'label' must be"),
    }
    for name, (content, message) in cases.items():
        p = tmp_path / name
        p.write_text(content)
        with pytest.raises(ValueError, match=message):
            load_labelled_texts(p)


def test_end_to_end_probe_then_correlate(tmp_path):
    """Probe accuracy per layer vs a metric built to track it: the pieces fit together."""
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1], 30)
    feats = {layer: rng.normal(size=(60, 4)) + (layer / 2) * y[:, None] for layer in range(6)}
    acc = probe_scores(feats, y, folds=3, seed=0)
    assert acc.is_monotonic_increasing or acc.iloc[-1] > acc.iloc[0]
    metrics = pd.DataFrame({"sep": [layer / 2 for layer in range(6)]}, index=range(6))
    out = metric_score_correlations(metrics, acc)
    assert out.loc[0, "spearman"] > 0.8
    (tmp_path / "rows.json").write_text(json.dumps(out.to_dict("records")))
