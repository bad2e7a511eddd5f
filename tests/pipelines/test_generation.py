"""Multi-token generation with per-step capture (METHOD §5): states against plain forward passes,
the content/stopword split, the task loaders and the command, offline on tiny models."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import GenerationConfig

from inforidge.config.settings import GenerationSettings, SequenceInfoSettings
from inforidge.extract.generated import (
    GeneratedStates,
    generate_with_states,
    prompt_token_ids,
    target_embeddings,
)
from inforidge.info import gram_matrix, information_from_grams, sequence_gram
from inforidge.info.sequence_kernel import sequence_gram_reference
from inforidge.measure.sequence import token_group_draws, token_group_rows
from inforidge.models.forward import forward_with_final_norm
from inforidge.models.parts import locate_parts
from inforidge.pipelines.generate_info import generate_info
from inforidge.tasks.multitoken import (
    CNN_DM_SUFFIX,
    continued_arithmetic,
    load_cnn_dailymail,
    load_multitoken_task,
    load_sequence_jsonl,
    parse_story,
)
from inforidge.tasks.stopwords import STOPWORDS, token_type, token_types


def _prompts(n=5):
    """Synthetic prompts of different lengths (leading elements dropped), so batches are left padded."""
    recs = continued_arithmetic(n, k=3, seed=1)
    return [" ".join(r["prompt"].split()[2 * (i % 4):]) for i, r in enumerate(recs)], recs


@pytest.mark.parametrize("which", ["tiny_gpt2", "tiny_llama"])
def test_states_equal_plain_forward_passes(which, request, word_tokenizer):
    """Step 0 = a forward pass on the prompt alone; step t = a forward pass on the prompt plus the
    first t generated tokens (one unpadded sample at a time), for every layer and both views; the
    generated token is the arg-max of that pass (greedy)."""
    model = request.getfixturevalue(which)
    parts = locate_parts(model)
    prompts, _ = _prompts()
    t_new = 4
    st = generate_with_states(parts, word_tokenizer, prompts, GenerationSettings(max_new_tokens=t_new, batch_size=3))
    n_layers = parts.num_layers
    assert st.hidden.shape == (t_new, n_layers + 1, len(prompts), model.config.hidden_size)
    assert st.final_normed.shape == (t_new, len(prompts), model.config.hidden_size)
    assert st.generated_ids.shape == (len(prompts), t_new)
    ids, _ = prompt_token_ids(word_tokenizer, prompts, None)
    assert len({len(i) for i in ids}) > 1  # the batches really are padded
    for i, prompt_ids in enumerate(ids):
        for t in range(t_new):
            seq = torch.tensor([prompt_ids + st.generated_ids[i, :t].tolist()])
            ref = forward_with_final_norm(parts, seq, torch.ones_like(seq), all_logits=True)
            for layer in range(n_layers):
                torch.testing.assert_close(st.hidden[t, layer, i], ref.hidden_states[layer][0, -1], atol=2e-5, rtol=1e-4)
            torch.testing.assert_close(st.hidden[t, n_layers, i], ref.pre_norm[0, -1], atol=2e-5, rtol=1e-4)
            torch.testing.assert_close(st.final_normed[t, i], ref.post_norm[0, -1], atol=2e-5, rtol=1e-4)
            assert int(ref.logits[0, -1].argmax()) == int(st.generated_ids[i, t])


def test_eos_does_not_stop_and_sampling_is_seeded(tiny_gpt2, word_tokenizer):
    parts = locate_parts(tiny_gpt2)
    prompts, _ = _prompts(4)
    greedy = generate_with_states(parts, word_tokenizer, prompts, GenerationSettings(max_new_tokens=3))
    saved = tiny_gpt2.generation_config
    # a hub-style generation config: an EOS that would stop sample 0 at once, sampling, a penalty
    tiny_gpt2.generation_config = GenerationConfig(eos_token_id=int(greedy.generated_ids[0, 0]), do_sample=True,
                                                   top_k=5, repetition_penalty=3.0)
    try:
        again = generate_with_states(parts, word_tokenizer, prompts, GenerationSettings(max_new_tokens=3))
        assert tiny_gpt2.generation_config.repetition_penalty == 3.0  # restored
    finally:
        tiny_gpt2.generation_config = saved
    assert torch.equal(again.generated_ids, greedy.generated_ids)
    s = GenerationSettings(max_new_tokens=6, do_sample=True, seed=3)
    a = generate_with_states(parts, word_tokenizer, prompts, s)
    b = generate_with_states(parts, word_tokenizer, prompts, s)
    c = generate_with_states(parts, word_tokenizer, prompts, GenerationSettings(max_new_tokens=6, do_sample=True, seed=4))
    assert torch.equal(a.generated_ids, b.generated_ids) and torch.equal(a.hidden, b.hidden)
    assert not torch.equal(a.generated_ids, c.generated_ids)


def test_long_prompts_are_cut_from_the_left_with_one_warning(tiny_gpt2, word_tokenizer, caplog):
    parts = locate_parts(tiny_gpt2)  # 64 positions
    long = " ".join(["N5 S3"] * 40)  # 80 tokens
    prompts = [long, "S1 N2 S3 ?", long + " ?"]
    with caplog.at_level(logging.WARNING):
        st = generate_with_states(parts, word_tokenizer, prompts, GenerationSettings(max_new_tokens=4))
    assert st.n_truncated == 2 and st.prompt_lengths.tolist() == [60, 4, 60]
    assert sum("2 of 3 prompts" in r.getMessage() for r in caplog.records) == 1
    ids, cut = prompt_token_ids(word_tokenizer, prompts, 60)
    assert cut == 2 and ids[2][-1] == word_tokenizer.convert_tokens_to_ids("?")  # the end is kept
    with pytest.raises(ValueError, match="no room for a prompt"):
        generate_with_states(parts, word_tokenizer, prompts, GenerationSettings(max_new_tokens=64))
    with pytest.raises(ValueError, match="dataset is empty"):
        generate_with_states(parts, word_tokenizer, [], GenerationSettings(max_new_tokens=2))


def test_nan_states_are_reported(tiny_gpt2, word_tokenizer):
    parts = locate_parts(tiny_gpt2)
    handle = parts.blocks[0].register_forward_hook(lambda m, a, out: (out[0] * float("nan"),) + tuple(out[1:])
                                                   if isinstance(out, tuple) else out * float("nan"))
    try:
        with pytest.raises(ValueError, match="NaN/inf.*float32"):
            generate_with_states(parts, word_tokenizer, ["S1 N2 ?", "S3 ?"], GenerationSettings(max_new_tokens=2))
    finally:
        handle.remove()


def test_content_stopword_classification_of_a_constructed_sequence():
    pieces = ["The", " cat", " sat", " on", " the", " mat", ".", " It", "'s", " 42", "\n\n", " don't", "!"]
    kinds = [token_type(p) for p in pieces]
    assert kinds == ["stopword", "content", "content", "stopword", "stopword", "content", "punctuation",
                     "stopword", "stopword", "content", "punctuation", "stopword", "punctuation"]
    assert token_type("<|endoftext|>", special=True) == "special"
    assert token_type("\u0120the") == "stopword" and token_type("\u2581Paris") == "content"
    assert len(STOPWORDS) == 179


def test_token_types_with_a_tokenizer_and_group_draws(word_tokenizer):
    ids = word_tokenizer("S1 ? N3", add_special_tokens=False)["input_ids"] + [word_tokenizer.eos_token_id]
    assert token_types(word_tokenizer, ids) == ["content", "punctuation", "content", "special"]
    # 6 samples x 3 steps: sample 5 never generates a stopword/punctuation token
    types = [["content", "stopword", "content"]] * 3 + [["punctuation", "content", "special"]] * 2 + [["content"] * 3]
    st = GeneratedStates(torch.zeros(3, 2, 6, 4), torch.zeros(3, 6, 4), torch.zeros(6, 3, dtype=torch.long),
                         torch.ones(6), 0, types, [""] * 6)
    draw = token_group_draws(st, seed=0, min_samples=2)
    for group, (samples, steps) in draw.items():
        assert len(samples) == 5 == len(set(samples.tolist()))  # equal sizes, distinct samples
        for i, t in zip(samples, steps, strict=True):
            kind = types[i][t]
            assert (kind == "content") if group == "content" else kind in ("stopword", "punctuation")
    assert token_group_draws(st, seed=0, min_samples=6) is None
    d1, d2 = token_group_draws(st, seed=1, min_samples=2), token_group_draws(st, seed=1, min_samples=2)
    assert all(np.array_equal(d1[g][1], d2[g][1]) for g in d1)
    # rows: step -1, split = group, one state per drawn (sample, step)
    st.hidden = torch.randn(3, 2, 6, 4, generator=torch.Generator().manual_seed(0))
    st.final_normed = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(1))
    ky = sequence_gram(torch.randn(6, 2, 3, dtype=torch.float64), torch.ones(6, 2, dtype=torch.bool))
    settings = SequenceInfoSettings(n_permutations=2, type_seeds=[0, 1], min_type_samples=2)
    rows = pd.DataFrame(token_group_rows(st, ky, settings))
    assert set(rows["step"]) == {-1} and set(rows["split"]) == {"content", "stopword"}
    assert set(rows["seed"]) == {0, 1} and set(rows["n_samples"]) == {5}
    samples, steps = token_group_draws(st, seed=0, min_samples=2)["stopword"]
    x = st.stack("pre")[torch.as_tensor(steps), :, torch.as_tensor(samples)].transpose(0, 1)
    est = information_from_grams(gram_matrix(x), ky[samples][:, samples], n_permutations=2, seed=0)
    got = rows[(rows["split"] == "stopword") & (rows["seed"] == 0) & (rows["final_norm"] == "pre")
               & (rows["metric"] == "sequence_information")].sort_values("layer")["value"].to_numpy()
    np.testing.assert_allclose(got, est.mi.numpy(), rtol=1e-12)


def test_target_embeddings_are_the_input_token_embeddings(tiny_gpt2, word_tokenizer):
    parts = locate_parts(tiny_gpt2)
    emb, mask, ids = target_embeddings(parts, word_tokenizer, ["S1 S2 S3", "S4"])
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    w = tiny_gpt2.get_input_embeddings().weight.detach()
    torch.testing.assert_close(emb[0], w[ids[0]])
    torch.testing.assert_close(emb[1, 0], w[ids[1][0]])


def test_cnn_dailymail_local_files_and_story(tmp_path):
    hl3 = "First point .\nSecond point ."
    rows = [{"article": f"Article {i} text .", "highlights": hl3, "id": f"{i:040x}"} for i in range(3)]
    f = tmp_path / "test.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    recs = load_cnn_dailymail(f)  # 1.0.0: highlights joined with a space
    assert recs[0]["prompt"] == "Article 0 text ." + CNN_DM_SUFFIX
    assert CNN_DM_SUFFIX == "\n\n The following is a one-paragraph highlight summary of the article:\n\n"
    assert recs[0]["target"] == "First point . Second point ." and recs[0]["id"] == f"{0:040x}"
    assert load_cnn_dailymail(tmp_path, config="3.0.0")[1]["target"] == hl3  # folder with test.jsonl
    pd.DataFrame(rows).to_parquet(tmp_path / "validation.parquet")
    assert len(load_cnn_dailymail(tmp_path, split="validation", n=2)) == 2
    article, highlights = parse_story("Para one\n\nPara two .\n\n@highlight\n\nPoint A\n\n@highlight\n\nPoint B")
    assert article == "Para one . Para two ." and highlights == ["Point A .", "Point B ."]
    stories = tmp_path / "stories"
    stories.mkdir()
    (stories / "abc.story").write_text("Body\n\n@highlight\n\nOne\n\n@highlight\n\nTwo")
    assert load_cnn_dailymail(stories)[0]["target"] == "One . Two ."
    (tmp_path / "bad.csv").write_text("text,summary\na,b\n")
    with pytest.raises(ValueError, match="missing column"):
        load_cnn_dailymail(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError, match="offline"):
        load_cnn_dailymail(None)  # tests run with HF_HUB_OFFLINE=1


def test_sequence_jsonl_and_synthetic_tasks(tmp_path):
    f = tmp_path / "seq.jsonl"
    f.write_text('{"prompt": "a b", "target": ["c", "d"]}\n\n{"prompt": "e", "target": "f g", "id": "x"}\n')
    recs = load_sequence_jsonl(f)
    assert [r["target"] for r in recs] == ["c d", "f g"] and recs[1]["id"] == "x"
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a"}\n')
    with pytest.raises(ValueError, match="prompt and target"):
        load_sequence_jsonl(tmp_path / "bad.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no samples"):
        load_sequence_jsonl(tmp_path / "empty.jsonl")
    recs = continued_arithmetic(3, k=4, seed=2)
    for r in recs:  # the target continues the prompt's progression
        p, d = r["modulus"], r["d"]
        signals = [int(w[1:]) for w in r["prompt"].split() if w.startswith("S")]
        assert len(signals) == 9 and r["prompt"].endswith("?")
        assert [int(w[1:]) for w in r["target"].split()] == [(signals[-1] + (j + 1) * d) % p for j in range(4)]
    assert continued_arithmetic(3, k=4, seed=2) == recs
    assert {r["split"] for r in load_multitoken_task("synthetic", n=5, split="ood")} == {"ood"}
    with pytest.raises(ValueError, match="unknown multi-token task"):
        load_multitoken_task("wiki")


def test_generate_info_rows_and_errors(tiny_gpt2, word_tokenizer):
    recs = continued_arithmetic(10, k=3, seed=0)
    out = generate_info(tiny_gpt2, word_tokenizer, recs, generation=GenerationSettings(max_new_tokens=3),
                        info=SequenceInfoSettings(n_permutations=3, type_seeds=[0], min_type_samples=2),
                        progress=False)
    df = out.table.frame
    per_step = df[df["step"] >= 0]
    assert sorted(per_step["step"].unique()) == [0, 1, 2]
    assert set(per_step["split"]) == {"id"} and set(df["final_norm"]) == {"post", "pre"}
    mi = per_step[(per_step["metric"] == "sequence_information") & (per_step["final_norm"] == "post")]
    assert sorted(mi["layer"].unique()) == [0, 1, 2] and mi["value"].notna().all()
    corr = per_step.set_index(["step", "layer", "final_norm", "metric"])["value"]
    for (step, layer, view, metric), v in corr.items():
        if metric == "sequence_information_corrected":
            raw = corr[(step, layer, view, "sequence_information")]
            null = corr[(step, layer, view, "sequence_information_null")]
            assert abs(v - (raw - null)) < 1e-9
    assert {"max_new_tokens", "token_group", "target_kernel"} <= set(df.columns)
    again = generate_info(tiny_gpt2, word_tokenizer, recs, generation=GenerationSettings(max_new_tokens=3),
                          info=SequenceInfoSettings(n_permutations=3, type_seeds=[0], min_type_samples=2),
                          progress=False)
    pd.testing.assert_frame_equal(df, again.table.frame)  # same seed, same numbers
    with pytest.raises(ValueError, match="at least 2 samples"):
        generate_info(tiny_gpt2, word_tokenizer, recs[:1], progress=False)


def test_command_runs_offline_on_the_synthetic_task(tiny_gpt2, word_tokenizer, tmp_path):
    from typer.testing import CliRunner

    from inforidge.cli import app

    run = tmp_path / "runs" / "tiny"  # a run folder: the model lives in model/
    tiny_gpt2.save_pretrained(run / "model")
    word_tokenizer.save_pretrained(run / "model")
    out = tmp_path / "gi"
    args = ["generate-info", "--model", str(run), "--task", "synthetic", "--n", "12", "--k", "3",
            "--n-permutations", "2", "--plot-steps", "0,2", "--quiet"]
    res = CliRunner().invoke(app, args + ["--out", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out / "results.parquet")
    assert sorted(df.loc[df["step"] >= 0, "step"].unique()) == [0, 1, 2]
    assert (df["max_new_tokens"] == 3).all() and (df["n_samples"] >= 2).all()
    for name in ("information_by_step", "content_vs_stopword", "information_step_heatmap"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "Peak layer per decoding step" in report and "figures/information_by_step.png" in report
    assert len((out / "generations.jsonl").read_text().splitlines()) == 12
    bad = CliRunner().invoke(app, ["generate-info", "--model", str(run), "--task", "jsonl", "--quiet"])
    assert bad.exit_code != 0 and "data path" in bad.output


def _entropy_bits(k: torch.Tensor) -> float:
    lam = torch.linalg.eigvalsh(k / torch.trace(k)).clamp_min(0)
    return float(-(torch.special.xlogy(lam, lam)).sum() / np.log(2))


def test_per_step_information_equals_a_direct_computation(tiny_gpt2, word_tokenizer):
    """I(h_l^(t); Y) rows against Renyi-1 entropies computed here: Gaussian Gram of the
    L2-normalised states written out, the double-loop sequence kernel, eigvalsh."""
    recs = continued_arithmetic(10, k=3, seed=0)
    gen = GenerationSettings(max_new_tokens=3)
    out = generate_info(tiny_gpt2, word_tokenizer, recs, generation=gen,
                        info=SequenceInfoSettings(n_permutations=2, type_seeds=[0], min_type_samples=2),
                        progress=False)
    df = out.table.frame
    parts = locate_parts(tiny_gpt2)
    states = generate_with_states(parts, word_tokenizer, [r["prompt"] for r in recs], gen)
    emb, mask, _ = target_embeddings(parts, word_tokenizer, [r["target"] for r in recs])
    ky = sequence_gram_reference(emb, mask, sigma=1.0).double()
    h_y = _entropy_bits(ky)
    n_layers = states.hidden.shape[1] - 1
    for t in (0, 2):
        for layer in range(n_layers + 1):
            x = states.final_normed[t] if layer == n_layers else states.hidden[t, layer]
            x = torch.nn.functional.normalize(x.double(), dim=1)
            kx = torch.exp(-torch.cdist(x, x) ** 2 / 2)
            mi = _entropy_bits(kx) + h_y - _entropy_bits(kx * ky)
            row = df[(df["step"] == t) & (df["layer"] == layer) & (df["final_norm"] == "post")
                     & (df["metric"] == "sequence_information")]
            assert len(row) == 1
            assert float(row["value"].iloc[0]) == pytest.approx(mi, abs=1e-6)
    y_rows = df[(df["metric"] == "target_entropy") & (df["step"] == 0)]["value"]
    assert float(y_rows.iloc[0]) == pytest.approx(h_y, abs=1e-6)
