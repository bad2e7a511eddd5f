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
