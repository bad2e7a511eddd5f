"""multi_token_target=whole: the label is the whole target (sequence kernel over its token
embeddings), checked against a direct computation; training predicts every target token."""

import pytest
import torch

from inforidge.config.loading import load_config
from inforidge.config.settings import MeasureSettings
from inforidge.info import gram_matrix, information_from_grams
from inforidge.info.sequence_kernel import mean_embedding_gram, sequence_gram_reference
from inforidge.measure.predictive import Evaluator
from inforidge.measure.ridge import kernel_ablation_rows, ridge_rows
from inforidge.measure.rows import EARLY_EXIT_ACCURACY, PREDICTIVE_INFORMATION
from inforidge.models.parts import locate_parts
from inforidge.tasks.tokenize import target_token_ids, tokenize_for_next_token

N = 12
SETTINGS = MeasureSettings(n_samples=N, seeds=[0, 1], n_permutations=3, label_view="token_embedding")


def multi_token_records(tiny_task, n=40):
    """Prompts of the tiny task with targets of 1-3 signal words; some share a first word."""
    out = []
    for i, r in enumerate(tiny_task.splits["test_id"][:n]):
        words = [f"S{(r['s0'] + j) % 13}" for j in range(1 + i % 3)]
        out.append({**r, "target": " ".join(words)})
    return out


def direct_label_gram(model, tok, targets, sigma=1.0):
    """The sequence kernel from the embedding matrix rows of each target's tokens (pair loop)."""
    weight = model.get_input_embeddings().weight.detach().double()
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in targets]
    width = max(map(len, ids))
    emb = torch.zeros(len(ids), width, weight.shape[1], dtype=torch.float64)
    mask = torch.zeros(len(ids), width, dtype=torch.bool)
    for i, row in enumerate(ids):
        emb[i, : len(row)], mask[i, : len(row)] = weight[row], True
    return sequence_gram_reference(emb, mask, sigma=sigma)


def test_mean_embedding_gram_matches_pair_loops():
    g = torch.Generator().manual_seed(0)
    emb, mask = torch.randn(6, 4, 5, generator=g, dtype=torch.float64), torch.rand(6, 4, generator=g) > 0.4
    mask[:, 0] = True
    emb[~mask] = float("nan")  # padding never enters a product
    torch.testing.assert_close(mean_embedding_gram(emb, mask, sigma=0.7),
                               sequence_gram_reference(emb, mask, sigma=0.7), rtol=0, atol=1e-12)
    sets = [emb[i][mask[i]] for i in range(6)]
    for kernel in ("linear", "laplacian"):
        want = torch.tensor([[float(gram_matrix(torch.cat([a, b]), kernel)[: len(a), len(a):].mean()) for b in sets]
                             for a in sets], dtype=torch.float64)
        torch.testing.assert_close(mean_embedding_gram(emb, mask, kernel), want, rtol=0, atol=1e-12)
    # one token per set: the plain Gram of those tokens
    one = torch.zeros_like(mask)
    one[:, 0] = True
    torch.testing.assert_close(mean_embedding_gram(emb, one, "polynomial"), gram_matrix(emb[:, 0], "polynomial"))


def test_whole_label_gram_and_information_equal_a_direct_computation(tiny_task, word_tokenizer, tiny_gpt2):
    records = multi_token_records(tiny_task)
    ev = Evaluator(word_tokenizer, {"id": records}, SETTINGS, multi_token_target="whole")
    parts = locate_parts(tiny_gpt2)
    states = ev.extract(parts)
    idx = ev.positions("id", 0)
    targets = [r["target"] for r in ev.subsample("id", 0)]
    assert {len(t.split()) for t in targets} == {1, 2, 3}
    want = direct_label_gram(tiny_gpt2, word_tokenizer, targets)
    ky = ev.label_gram(states["id"], idx, "gaussian", sigma=1.0)
    torch.testing.assert_close(ky, want, rtol=0, atol=1e-6)  # float32 embeddings
    rows = ev.rows(states, 5)
    x, index = states["id"].views_stacked(SETTINGS.final_norm_views)
    est = information_from_grams(gram_matrix(x[:, idx]), want, n_permutations=3, seed=0)
    got = {r["layer"]: r["value"] for r in rows if r["metric"] == PREDICTIVE_INFORMATION and r["seed"] == 0
           and r["final_norm"] == "pre" and r["split"] == "id"}
    torch.testing.assert_close(torch.tensor([got[k] for k in sorted(got)], dtype=torch.float64),
                               est.mi[index["pre"]], rtol=0, atol=1e-5)
    assert {r.get("target_kernel") for r in rows if r["metric"] == PREDICTIVE_INFORMATION} == {"sequence_mean_gaussian"}
    # early exit is scored on the first token
    first = target_token_ids(word_tokenizer, targets, "whole")
    acc = (states["id"].early_exit[:, idx] == first).float().mean(1)
    got_acc = [r["value"] for r in rows if r["metric"] == EARLY_EXIT_ACCURACY and r["seed"] == 0
               and r["split"] == "id" and r["final_norm"] == "pre"]
    assert got_acc == acc.tolist()
    # the ridge statistics and the kernel ablation measure against the same whole-target label
    assert ridge_rows(ev, states, 5, n_boot=4)
    assert kernel_ablation_rows(ev, states, 5)


def test_whole_equals_first_on_single_token_targets(tiny_task, word_tokenizer, tiny_gpt2):
    records = tiny_task.splits["test_id"]
    parts = locate_parts(tiny_gpt2)
    rows = {}
    for policy in ("first", "whole"):
        ev = Evaluator(word_tokenizer, {"id": records}, SETTINGS, multi_token_target=policy)
        rows[policy] = {(r["metric"], r["layer"], r["seed"], r["final_norm"]): r["value"] for r in ev.measure(parts, 0)}
    assert rows["first"].keys() == rows["whole"].keys()
    for key, v in rows["first"].items():
        assert rows["whole"][key] == pytest.approx(v, abs=1e-9, nan_ok=True), key


def test_whole_needs_the_token_embedding_label():
    with pytest.raises(ValueError, match="set tracking.measure.label_view=token_embedding"):
        Evaluator(None, {}, MeasureSettings(), multi_token_target="whole")
    with pytest.raises(ValueError, match="set tracking.measure.label_view=token_embedding"):
        load_config(None, ["task.multi_token_target=whole"])
    config = load_config(None, ["task.multi_token_target=whole", "tracking.measure.label_view=token_embedding"])
    assert config.task.multi_token_target == "whole"


def test_training_predicts_every_token_of_the_whole_target(tiny_task, word_tokenizer):
    records = multi_token_records(tiny_task, 6)
    whole = tokenize_for_next_token(records, word_tokenizer, "whole")
    first = tokenize_for_next_token(records, word_tokenizer, "first_allow_collisions")
    for r, w, f in zip(records, whole, first, strict=True):
        target = word_tokenizer(r["target"], add_special_tokens=False)["input_ids"]
        prompt = word_tokenizer(r["prompt"])["input_ids"]
        assert w["input_ids"] == prompt + target and f["input_ids"] == prompt + target[:1]
        assert w["labels"] == [-100] * len(prompt) + target
        assert f["labels"] == [-100] * len(prompt) + target[:1]
