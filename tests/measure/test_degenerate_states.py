"""States that cannot be right: non-finite layers are an error, constant layers are flagged."""

import pytest
import torch

from inforidge.config.settings import MeasureSettings
from inforidge.extract.last_position import LayerStates
from inforidge.measure.predictive import CONSTANT_STATES, Evaluator, constant_layers
from inforidge.tasks.tokenize import build_word_tokenizer

N, D, L = 12, 6, 3


@pytest.fixture(scope="module")
def evaluator():
    tok = build_word_tokenizer(["a", "b", "c", "d"])
    records = [{"prompt": "a b", "target": "cd"[i % 2]} for i in range(N)]
    return Evaluator(tok, {"id": records}, MeasureSettings(n_samples=N, seeds=[0], n_permutations=2))


def _states(evaluator, hidden):
    targets = evaluator.splits["id"]["targets"]
    labels = torch.randn(N, D, generator=torch.Generator().manual_seed(1))
    return {"id": LayerStates(hidden=hidden, final_normed=hidden[-1] * 2, labels={"embedding_output": labels,
                              "token_embedding": labels}, early_exit=torch.zeros(L + 1, N, dtype=torch.long),
                              target_ids=targets)}


def test_constant_and_zero_layers_are_detected():
    stack = torch.randn(4, N, D)
    stack[1] = torch.randn(D)  # the same vector for every sample
    stack[2] = 0.0
    stack[3, 0, 0] += 1e-3  # one sample differs a little: not constant
    assert constant_layers(stack).tolist() == [False, True, True, False]


def test_rows_of_a_constant_layer_are_flagged(evaluator):
    hidden = torch.randn(L + 1, N, D, generator=torch.Generator().manual_seed(0))
    hidden[1] = hidden[1, :1]  # layer 1: one state for every sample
    rows = evaluator.rows(_states(evaluator, hidden), step=0)
    info = [r for r in rows if r["metric"] == "predictive_information"]
    assert {r["layer"] for r in info if r.get("flag") == CONSTANT_STATES} == {1}
    assert all(r["value"] == pytest.approx(0, abs=1e-9) for r in info if r.get("flag"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_states_are_an_error_naming_the_layer(evaluator, bad):
    hidden = torch.randn(L + 1, N, D)
    hidden[2, 3, 1] = bad
    with pytest.raises(ValueError, match=r"split 'id': the states of layer\(s\) 2 are not finite.*float32"):
        evaluator.rows(_states(evaluator, hidden), step=0)


def test_labels_of_one_class_are_an_error_naming_the_problem_and_the_fix():
    from inforidge.measure.predictive import check_two_classes

    y = torch.randn(6, 4)
    check_two_classes(y, torch.tensor([1, 2, 1, 1, 2, 1]), "id", 0)  # two classes: fine
    with pytest.raises(ValueError, match=r"split 'id', seed 3: .*fewer than two classes.*token id 7.*two distinct"):
        check_two_classes(y, torch.full((6,), 7), "id", 3)
    with pytest.raises(ValueError, match="every label state is identical"):
        check_two_classes(torch.ones(6, 4), torch.tensor([1, 2, 1, 1, 2, 1]), "id", 0)


def test_a_dimension_that_dominates_the_states_is_reported_and_flagged():
    """A "massive activation": one coordinate of layer 2 holds most of every state's norm."""
    from inforidge.measure.rows import (
        DOMINANT_DIMENSION,
        MASSIVE_DIMENSION,
        dominant_dimension_rows,
    )

    d = 32
    tok = build_word_tokenizer(["a", "b", "c", "d"])
    records = [{"prompt": "a b", "target": "cd"[i % 2]} for i in range(N)]
    ev = Evaluator(tok, {"id": records}, MeasureSettings(n_samples=N, seeds=[0], n_permutations=2))
    g = torch.Generator().manual_seed(3)
    hidden = torch.randn(L + 1, N, d, generator=g)
    hidden[2, :, 7] += 40.0
    labels = torch.randn(N, d, generator=g)
    states = {"id": LayerStates(hidden=hidden, final_normed=hidden[-1], labels={"embedding_output": labels,
                                "token_embedding": labels}, early_exit=torch.zeros(L + 1, N, dtype=torch.long),
                                target_ids=ev.splits["id"]["targets"])}
    rows = ev.rows(states, step=0)
    dom = {(r["final_norm"], r["layer"]): r for r in rows if r["metric"] == DOMINANT_DIMENSION}
    assert dom[("post", 2)]["dimension"] == 7 and dom[("post", 2)]["value"] > 0.9
    assert dom[("post", 2)]["flag"] == MASSIVE_DIMENSION and not dom[("post", 1)].get("flag")
    # By hand: mean over samples of max_d x_d^2 / |x|^2.
    x = hidden[1]
    expected = float(((x.double()**2).max(-1).values / (x.double()**2).sum(-1)).mean())
    assert dom[("post", 1)]["value"] == pytest.approx(expected, rel=1e-9)
    info = [r for r in rows if r["metric"] == "predictive_information" and r["final_norm"] == "post"]
    assert {r["layer"] for r in info if r.get("flag") == MASSIVE_DIMENSION} == {2}
    # Few dimensions: one of them holds half the norm by chance, so no flag.
    small = dominant_dimension_rows(torch.randn(2, N, 3), {"post": torch.arange(2)}, {}, 0)
    assert not any(r.get("flag") for r in small)


def test_report_names_the_dominated_layers():
    import pandas as pd

    from inforidge.report.run import massive_dimension_lines

    df = pd.DataFrame([{"step": 4, "split": "id", "final_norm": "post", "metric": "dominant_dimension_share",
                        "layer": 2, "value": 0.93, "dimension": 7, "flag": "massive_dimension"},
                       {"step": 4, "split": "id", "final_norm": "post", "metric": "dominant_dimension_share",
                        "layer": 1, "value": 0.1, "dimension": 3, "flag": None}])
    text = "\n".join(massive_dimension_lines(df))
    assert "layers [2], dimension(s) [7], 93%" in text
    assert massive_dimension_lines(df[df["layer"] == 1]) == []
