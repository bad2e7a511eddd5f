"""The synthetic task, its tokenizer, extraction (one pass) and early exit."""

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from inforidge.extract.batching import last_positions
from inforidge.extract.last_position import extract_batched, extract_states
from inforidge.models.parts import locate_parts
from inforidge.tasks import ArithmeticSpec, build_arithmetic_task
from inforidge.tasks.synthetic import arithmetic_sequence
from inforidge.tasks.tokenize import target_token_ids


def test_arithmetic_records_follow_the_recurrence(tiny_task):
    for split in ("train", "test_id", "test_ood"):
        for r in tiny_task.splits[split][:50]:
            words = r["prompt"].split()
            assert words[-1] == "?" and len(words) == 19
            signals = [int(w[1:]) for w in words[:-1:2]]
            p, d = r["modulus"], r["d"]
            assert 1 <= d < p
            expected = [(r["s0"] + i * d) % p for i in range(10)]
            assert signals == expected[:9]
            assert r["target"] == f"S{expected[9]}"
            assert all(0 <= int(w[1:]) < 100 for w in words[1:-1:2])


def test_paper_example():
    prompt, target, _ = arithmetic_sequence(1, 2, 13, [42, 88, 20, 10, 65, 43, 99, 38, 77])
    assert prompt == "S1 N42 S3 N88 S5 N20 S7 N10 S9 N65 S11 N43 S0 N99 S2 N38 S4 N77 ?"
    assert target == "S6"


def test_splits_use_the_right_moduli_and_are_seeded(tiny_task):
    assert {r["modulus"] for r in tiny_task.splits["train"]} == {13}
    assert {r["split"] for r in tiny_task.splits["test_id"]} == {"id"}
    ood = {r["modulus"] for r in tiny_task.splits["test_ood"]}
    assert 13 not in ood and len(ood) > 3
    again = build_arithmetic_task(ArithmeticSpec(n_train=256, n_validation=32, n_test=48, seed=3))
    assert again.splits == tiny_task.splits
    other = build_arithmetic_task(ArithmeticSpec(n_train=256, n_validation=32, n_test=48, seed=4))
    assert other.splits["train"] != tiny_task.splits["train"]
    ds = tiny_task.dataset("test_ood")
    assert len(ds) == 48 and {"prompt", "target", "split", "modulus"} <= set(ds.column_names)


def test_bad_specs_are_rejected():
    with pytest.raises(ValueError, match="contain the training modulus"):
        ArithmeticSpec(ood_moduli=(11, 13))
    with pytest.raises(ValueError, match="n_train"):
        ArithmeticSpec(n_train=0)


def test_tokenizer_round_trip(word_tokenizer, tiny_task, tmp_path):
    word_tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for r in tiny_task.splits["test_ood"][:20]:
        ids = loaded(r["prompt"])["input_ids"]
        assert len(ids) == 19 and loaded.unk_token_id not in ids
        assert loaded.decode(ids) == r["prompt"]
        assert len(loaded(r["target"], add_special_tokens=False)["input_ids"]) == 1


def test_target_must_be_one_known_token(word_tokenizer):
    with pytest.raises(ValueError, match="2 tokens"):
        target_token_ids(word_tokenizer, ["S1 S2"])
    with pytest.raises(ValueError, match="unknown token"):
        target_token_ids(word_tokenizer, ["S999"])


def _batch(tok, task, n=6, side="left"):
    recs = task.splits["test_ood"][:n]
    # Prompts of different lengths so that padding really happens.
    prompts = [" ".join(r["prompt"].split()[2 * (i % 3):]) for i, r in enumerate(recs)]
    tok.padding_side = side
    enc = tok(prompts, return_tensors="pt", padding=True)
    tok.padding_side = "left"
    return prompts, enc, target_token_ids(tok, [r["target"] for r in recs])


def test_extraction_shapes_and_padding_invariance(tiny_gpt2, word_tokenizer, tiny_task):
    parts = locate_parts(tiny_gpt2)
    prompts, left, targets = _batch(word_tokenizer, tiny_task, side="left")
    _, right, _ = _batch(word_tokenizer, tiny_task, side="right")
    assert (left["attention_mask"] == 0).any(), "the fixture must contain padding"
    a = extract_states(parts, left["input_ids"], left["attention_mask"], targets)
    b = extract_states(parts, right["input_ids"], right["attention_mask"], targets)
    L, B, D = parts.num_layers, len(prompts), tiny_gpt2.config.n_embd
    assert a.hidden.shape == (L + 1, B, D) and a.final_normed.shape == (B, D)
    assert a.early_exit.shape == (L + 1, B)
    for k in a.labels:
        torch.testing.assert_close(a.labels[k], b.labels[k])
    torch.testing.assert_close(a.hidden, b.hidden, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.final_normed, b.final_normed, atol=1e-5, rtol=1e-5)
    # Unpadded, one prompt at a time: the same states.
    for i, p in enumerate(prompts):
        enc = word_tokenizer([p], return_tensors="pt")
        single = extract_states(parts, enc["input_ids"], enc["attention_mask"], targets[i : i + 1])
        torch.testing.assert_close(single.hidden[:, 0], a.hidden[:, i], atol=1e-5, rtol=1e-5)


def test_hidden_states_match_hf_and_final_norm(tiny_gpt2, word_tokenizer, tiny_task):
    parts = locate_parts(tiny_gpt2)
    prompts = [r["prompt"] for r in tiny_task.splits["test_id"][:5]]
    enc = word_tokenizer(prompts, return_tensors="pt")
    s = extract_states(parts, enc["input_ids"], enc["attention_mask"], torch.zeros(5, dtype=torch.long))
    with torch.no_grad():
        hs = tiny_gpt2(**enc, output_hidden_states=True).hidden_states
    for layer in range(parts.num_layers):
        torch.testing.assert_close(s.hidden[layer], hs[layer][:, -1])
    torch.testing.assert_close(s.final_normed, hs[-1][:, -1])
    # The "pre" view is the raw stream: the final norm of it is HF's last hidden state.
    with torch.no_grad():
        torch.testing.assert_close(tiny_gpt2.transformer.ln_f(s.hidden[-1]), s.final_normed)
    assert not torch.allclose(s.hidden[-1], s.final_normed)


def test_one_pass_label_embeddings_equal_a_second_forward_pass(tiny_gpt2, word_tokenizer, tiny_task):
    parts = locate_parts(tiny_gpt2)
    prompts, enc, targets = _batch(word_tokenizer, tiny_task, side="left")
    s = extract_states(parts, enc["input_ids"], enc["attention_mask"], targets)
    for i, p in enumerate(prompts):
        full = word_tokenizer([p], return_tensors="pt")
        ids = torch.cat([full["input_ids"], targets[i].view(1, 1)], 1)
        with torch.no_grad():
            h0 = tiny_gpt2(input_ids=ids, output_hidden_states=True).hidden_states[0][0, -1]
        torch.testing.assert_close(s.labels["embedding_output"][i], h0)
        torch.testing.assert_close(s.labels["token_embedding"][i], tiny_gpt2.transformer.wte.weight[targets[i]].detach())


def test_early_exit_at_the_last_layer_is_the_models_prediction(tiny_gpt2, word_tokenizer, tiny_task):
    parts = locate_parts(tiny_gpt2)
    prompts, enc, targets = _batch(word_tokenizer, tiny_task, n=8, side="left")
    s = extract_states(parts, enc["input_ids"], enc["attention_mask"], targets)
    with torch.no_grad():
        logits = tiny_gpt2(**enc, position_ids=(enc["attention_mask"].cumsum(1) - 1).clamp_min(0)).logits
        own = logits[:, -1]
        lens = parts.lm_head(parts.final_norm(s.hidden[-1]))
    torch.testing.assert_close(lens, own, atol=1e-5, rtol=1e-5)
    assert torch.equal(s.early_exit[-1], own.argmax(-1))


def test_last_positions_left_and_right():
    m = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]])
    assert last_positions(m).tolist() == [3, 2, 3]


def test_extract_batched_matches_one_batch(tiny_gpt2, word_tokenizer, tiny_task):
    parts = locate_parts(tiny_gpt2)
    recs = tiny_task.splits["test_id"][:10]
    targets = target_token_ids(word_tokenizer, [r["target"] for r in recs])
    prompts = [r["prompt"] for r in recs]
    a = extract_batched(parts, word_tokenizer, prompts, targets, batch_size=3)
    b = extract_batched(parts, word_tokenizer, prompts, targets, batch_size=64)
    torch.testing.assert_close(a.hidden, b.hidden, atol=1e-5, rtol=1e-5)
    assert np.array_equal(a.early_exit.numpy(), b.early_exit.numpy())
    with pytest.raises(ValueError, match="empty"):
        extract_batched(parts, word_tokenizer, [], targets[:0])
