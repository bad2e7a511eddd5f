"""The complementary analyses: ridge statistics rows, attention to signal tokens, residual
scaling as a run stage, and ``inforidge analyze`` on a saved run."""

import copy

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from inforidge.cli import app
from inforidge.config.loading import load_config
from inforidge.config.settings import MeasureSettings
from inforidge.extract.attention import last_position_attention, signal_token_mask
from inforidge.info import gram_matrix
from inforidge.info.ridge import ridge_statistics, ridge_statistics_views
from inforidge.measure.attention import attention_profile
from inforidge.measure.predictive import Evaluator
from inforidge.measure.rows import KEY
from inforidge.models.parts import locate_parts
from inforidge.models.surgery import eager_attention
from inforidge.pipelines.analyze import FinalModel, attention_stage
from inforidge.pipelines.run import run
from inforidge.results.table import sigma_label

# ----------------------------------------------------------------------------- ridge statistics


def test_shared_stack_ridge_statistics_equal_one_call_per_view():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(30, 3, generator=g)
    x = torch.stack([y @ torch.randn(3, 5, generator=g) + s * torch.randn(30, 5, generator=g)
                     for s in (3.0, 0.5, 0.2, 1.0, 4.0)])
    index = {"post": torch.tensor([0, 1, 2, 3]), "pre": torch.tensor([0, 1, 2, 4])}
    for sigma in (1.0, "median"):
        kx, ky = gram_matrix(x, sigma=sigma), gram_matrix(y, sigma=sigma)
        shared = ridge_statistics_views(kx, ky, index, n_boot=40, n_permutations=4, seed=3)
        for view, ix in index.items():
            alone = ridge_statistics(x[ix], y, n_boot=40, n_permutations=4, seed=3, sigma=sigma)
            for a, b in ((shared[view].raw, alone.raw), (shared[view].corrected, alone.corrected)):
                assert a.peak_layer == b.peak_layer and a.p_value == b.p_value
                assert a.ridge_layer_ci == b.ridge_layer_ci
                torch.testing.assert_close(a.draws, b.draws, rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------- attention

WORDS = [f"w{i}" for i in range(30)]  # a subset of the words conftest's tiny_lm knows


def _prompts(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    prompts = [" ".join(WORDS[j] for j in torch.randint(0, 30, (3 + 2 * i,), generator=g)) for i in range(n)]
    signals = [list(range(0, 3 + 2 * i, 2)) for i in range(n)]
    return prompts, signals


@pytest.mark.parametrize("tiny_lm", ["gpt2", "llama"], indirect=True)
def test_attention_rows_sum_to_one_and_padding_changes_nothing(tiny_lm):
    parts, tok = locate_parts(tiny_lm.model), tiny_lm.tokenizer
    before = parts.model.config._attn_implementation
    prompts, signals = _prompts()
    enc = tok(prompts, return_tensors="pt", padding=True)
    assert (enc["attention_mask"] == 0).any(), "the batch must be padded"
    with eager_attention(parts.model) as previous:
        assert parts.model.config._attn_implementation == "eager" and previous == before
        w = last_position_attention(parts, enc["input_ids"], enc["attention_mask"])
    assert parts.model.config._attn_implementation == before, "the implementation is restored"
    assert w.shape == (2, len(prompts), enc["input_ids"].shape[1])
    torch.testing.assert_close(w.sum(-1), torch.ones(2, len(prompts)), rtol=0, atol=1e-5)
    assert float(w[:, enc["attention_mask"] == 0].abs().max()) < 1e-6, "padding gets no attention"
    batched = attention_profile(parts, tok, prompts, signals, batch_size=8)
    alone = attention_profile(parts, tok, prompts, signals, batch_size=1)
    torch.testing.assert_close(batched.row_sums, torch.ones_like(batched.row_sums), rtol=0, atol=1e-5)
    for name in ("all", "signal", "last", "sink"):
        torch.testing.assert_close(getattr(batched, name), getattr(alone, name), rtol=1e-4, atol=1e-5)
    # Sink excluded, not renormalised: the shares of positions 1..t and the sink add up to 1.
    lengths = torch.tensor([len(p.split()) for p in prompts], dtype=torch.float32)
    torch.testing.assert_close(batched.all * (lengths - 1) + batched.sink, torch.ones_like(batched.sink),
                               rtol=0, atol=1e-5)


def test_signal_mask_picks_the_signal_tokens(tiny_task, word_tokenizer):
    records = tiny_task.splits["test_ood"][:6]
    enc = word_tokenizer([r["prompt"] for r in records], return_tensors="pt", padding=True)
    mask = signal_token_mask(enc["attention_mask"], [r["signal_positions"] for r in records])
    assert mask.sum(1).tolist() == [9] * 6
    tokens = word_tokenizer.convert_ids_to_tokens(enc["input_ids"][mask].tolist())
    assert all(t.startswith("S") for t in tokens)
    # Every S token of the prompt (the target is not in the prompt) and nothing else.
    all_s = torch.tensor([[t.startswith("S") for t in word_tokenizer.convert_ids_to_tokens(row.tolist())]
                          for row in enc["input_ids"]]) & enc["attention_mask"].bool()
    assert torch.equal(mask, all_s)
    # Right padding and a leading special token (offset 1) shift the columns, not the tokens.
    am = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    got = signal_token_mask(am, [[0, 2], [1]], offsets=[1, 1])
    assert got.tolist() == [[False, True, False, True, False], [False, False, True, False, False]]
    with pytest.raises(ValueError, match="outside"):
        signal_token_mask(am, [[4]], offsets=[0])


def test_attention_is_skipped_for_tasks_without_signal_positions(tiny_task, word_tokenizer, tiny_gpt2):
    def attention_of(task):
        ev = Evaluator(word_tokenizer, {"id": task.splits["test_id"], "ood": task.splits["test_ood"]},
                       MeasureSettings(n_samples=8, seeds=[0]))
        return attention_stage(FinalModel(locate_parts(tiny_gpt2), word_tokenizer, task, ev, 0, None))

    task = copy.deepcopy(tiny_task)
    for split in ("test_id", "test_ood"):
        for r in task.splits[split]:
            r.pop("signal_positions")
    rows, msg = attention_of(task)
    assert rows == [] and "signal_positions" in msg
    # Positions that point at noise tokens (N...) are caught by the task's signal prefix.
    shifted = copy.deepcopy(tiny_task)
    for split in ("test_id", "test_ood"):
        for r in shifted.splits[split]:
            r["signal_positions"] = [p + 1 for p in r["signal_positions"]]
    rows, msg = attention_of(shifted)
    assert rows == [] and "do not start with 'S'" in msg
    rows, msg = attention_of(tiny_task)
    assert len(rows) == 2 * 4 * 2 and "eager" in msg  # splits x metrics x blocks


# ----------------------------------------------------------------------------- run stage + CLI


@pytest.mark.slow
def test_run_adds_the_analyses_and_analyze_redoes_them(tiny_overrides, tmp_path):
    cfg = load_config(None, tiny_overrides(tmp_path, "an", **{
        "tracking.steps": "[0,8]", "tracking.ridge_bootstrap": 30, "analyses.residual_scaling": "true",
        "analyses.scaling_epochs": 1}))
    out = run(cfg, progress=False)
    df = out.table.frame
    final = int(df["step"].max())
    ridge = df[df["metric"].str.startswith("ridge_")]
    assert set(ridge["step"]) == {final} and ridge["layer"].isna().all()
    assert set(sigma_label(ridge)) == {"1.0", "median"} and set(ridge["split"]) == {"id", "ood"}
    assert set(ridge["final_norm"]) == {"post", "pre"}
    assert {"ridge_layer", "ridge_layer_ci_low", "ridge_layer_ci_high", "ridge_p_value",
            "ridge_p_value_corrected", "ridge_verdict_corrected"} <= set(ridge["metric"])
    p = ridge[ridge["metric"] == "ridge_p_value"]["value"]
    assert ((p > 0) & (p <= 1)).all()
    att = df[df["metric"] == "attention_signal"]
    assert set(att["layer"]) == {1, 2} and att["value"].between(0, 1).all()
    assert "eager" in str(df.loc[df["metric"] == "attention_all", "attention_implementation"].iloc[0])
    alphas = df[df["metric"] == "residual_scale"]
    assert set(alphas["split"]) == {"id", "ood"} and set(alphas["layer"]) == {1, 2}
    assert not df.duplicated(KEY).any()
    report = (out.run_dir / "report.md").read_text()
    for heading in ("## Ridge statistics", "## Attention to signal tokens", "## Residual scaling coefficients"):
        assert heading in report
    assert "on σ" in report and "avg attn (signal tokens)" in report
    for fig in ("attention_signal", "residual_scales"):
        assert (out.run_dir / "figures" / f"{fig}.png").exists()
    # A second run call finds everything done and adds nothing.
    n = len(df)
    assert len(run(cfg, progress=False).table.frame) == n
    # analyze on the saved model replaces the chosen analyses' rows (no duplicates).
    res = CliRunner().invoke(app, ["analyze", str(out.run_dir), "--what", "ridge,attention"])
    assert res.exit_code == 0, res.output
    assert "rows written" in res.output and "eager" in res.output
    again = pd.read_parquet(out.run_dir / "results.parquet")
    assert len(again) == n
    assert not again.duplicated(KEY).any()


@pytest.mark.slow
def test_ridge_every_step_adds_rows_to_each_measurement(tiny_overrides, tmp_path):
    cfg = load_config(None, tiny_overrides(tmp_path, "every", **{
        "tracking.steps": "[0,8]", "tracking.ridge_bootstrap": 20, "tracking.ridge_every_step": "true",
        "analyses.attention": "false"}))
    out = run(cfg, progress=False)
    df = out.table.frame
    ridge = df[df["metric"] == "ridge_layer_corrected"]
    assert set(ridge["step"]) == {0, 8} and len(ridge) == 2 * 2 * 2 * 2  # steps x splits x views x sigmas
    assert not df.duplicated(KEY).any() and not (df["metric"] == "attention_all").any()
    assert "at every measured step" in (out.run_dir / "report.md").read_text()
