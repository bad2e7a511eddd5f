"""Checkpoint sweeps: one table over saved checkpoints, weight hashes, resume, the CLI."""

import logging
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from inforidge.cli import app
from inforidge.config.loading import load_config
from inforidge.config.settings import MeasureSettings
from inforidge.measure.predictive import Evaluator
from inforidge.measure.rows import KEY
from inforidge.models.checkpoints import Checkpoint, discover_checkpoints, weight_hash
from inforidge.models.loading import load
from inforidge.pipelines.run import run
from inforidge.pipelines.sweep import sweep
from inforidge.tasks.registry import build_task

SETTINGS = MeasureSettings(n_samples=16, seeds=[0, 1], n_permutations=2)


@pytest.fixture(scope="module")
def trained(tiny_overrides, tmp_path_factory):
    """A tiny run of 4 steps: checkpoints every 2 steps, all kept (keep_checkpoints: 2, 4)."""
    root = tmp_path_factory.mktemp("sweep_run")
    cfg = load_config(None, tiny_overrides(root, "tiny", **{"task.n_train": 128, "tracking.steps": "[0]",
                                                         "training.keep_checkpoints": True}))
    out = run(cfg, progress=False)
    return out.run_dir, cfg


@pytest.fixture(scope="module")
def swept(trained, tmp_path_factory):
    run_dir, cfg = trained
    out = tmp_path_factory.mktemp("swept")
    res = sweep(discover_checkpoints(run_dir), build_task(cfg), SETTINGS, out,
                multi_token_target=cfg.task.multi_token_target, progress=False)
    return res, out


@pytest.mark.slow
def test_discover_checkpoints_of_a_run_and_of_a_trainer_folder(trained):
    run_dir, _ = trained
    found = discover_checkpoints(run_dir)
    assert [c.step for c in found] == [2, 4]
    assert [c.name for c in found] == [str((run_dir / "checkpoints" / f"checkpoint-{s}").resolve()) for s in (2, 4)]
    assert all(c.has_tokenizer() for c in found), "Trainer checkpoints of our runs hold the tokenizer"
    # model/ equals checkpoint-4 (the Trainer saves at the last step), so it is not listed twice.
    assert [c.step for c in discover_checkpoints(run_dir / "checkpoints")] == [2, 4]
    alone = discover_checkpoints(run_dir / "model")
    assert [c.step for c in alone] == [4] and alone[0].name.endswith("model")


@pytest.mark.slow
def test_final_model_is_included_when_no_checkpoint_has_its_step(trained, tmp_path):
    run_dir, _ = trained
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("optimizer.pt", "checkpoint-4"))
    found = discover_checkpoints(copy)
    assert [(c.step, c.name.rsplit("/", 1)[-1]) for c in found] == [(2, "checkpoint-2"), (4, "model")]


def test_hub_revisions_parse_their_step_offline():
    c = Checkpoint.parse("EleutherAI/pythia-70m@step3000")
    assert (c.source, c.revision, c.step, c.name) == ("EleutherAI/pythia-70m", "step3000", 3000, "EleutherAI/pythia-70m@step3000")
    with pytest.raises(ValueError, match="training step"):
        Checkpoint.hub("EleutherAI/pythia-70m", "main")


def test_weight_hash_is_short_stable_and_sensitive(tiny_gpt2):
    import torch

    h = weight_hash(tiny_gpt2)
    assert len(h) == 16 and h == weight_hash(tiny_gpt2)
    p = next(tiny_gpt2.parameters())
    with torch.no_grad():
        p.view(-1)[0] += 1.0
        try:
            assert weight_hash(tiny_gpt2) != h
        finally:
            p.view(-1)[0] -= 1.0


@pytest.mark.slow
def test_sweep_writes_one_table_equal_to_hand_measurement(trained, swept):
    run_dir, cfg = trained
    res, out = swept
    df = pd.read_parquet(out / "results.parquet")
    assert set(df["step"]) == {2, 4}
    assert {"checkpoint", "weight_hash"} <= set(df.columns)
    per = df.groupby("checkpoint").agg(step=("step", "nunique"), hashes=("weight_hash", "nunique"))
    assert len(per) == 2 and (per["step"] == 1).all() and (per["hashes"] == 1).all()
    assert df["weight_hash"].nunique() == 2 and not res.duplicates
    assert not df.duplicated(KEY + ["checkpoint"]).any()
    assert (out / "results.csv").exists()
    # The rows of checkpoint-2 equal Evaluator.measure run by hand on that checkpoint.
    ckpt = run_dir / "checkpoints" / "checkpoint-2"
    model, tokenizer, parts = load(ckpt)
    ev = Evaluator(tokenizer, {"id": build_task(cfg).splits["test_id"], "ood": build_task(cfg).splits["test_ood"]},
                   SETTINGS, multi_token_target=cfg.task.multi_token_target)
    hand = pd.DataFrame(ev.measure(parts, 2))
    got = df[df["checkpoint"] == str(ckpt.resolve())]
    assert (got["weight_hash"] == weight_hash(model)).all()
    keys = ["split", "metric", "layer", "seed", "final_norm"]
    m = hand.merge(got, on=keys, suffixes=("_hand", "_sweep"), validate="one_to_one")
    assert len(m) == len(hand) == len(got)
    assert (m["value_hand"] - m["value_sweep"]).abs().max() < 1e-9


@pytest.mark.slow
def test_resume_skips_finished_checkpoints(trained, swept, monkeypatch):
    run_dir, cfg = trained
    res, out = swept
    before = pd.read_parquet(out / "results.parquet")
    calls = []
    real = Evaluator.measure

    def counting(self, parts, step):
        calls.append(step)
        return real(self, parts, step)

    monkeypatch.setattr(Evaluator, "measure", counting)
    again = sweep(discover_checkpoints(run_dir), build_task(cfg), SETTINGS, out,
                  multi_token_target=cfg.task.multi_token_target, progress=False)
    assert calls == [] and len(again.skipped) == 2 and again.hashes == res.hashes
    assert len(pd.read_parquet(out / "results.parquet")) == len(before)
    # Delete the rows of checkpoint-2: only it is measured again.
    name2 = str((run_dir / "checkpoints" / "checkpoint-2").resolve())
    before[before["checkpoint"] != name2].to_parquet(out / "results.parquet", index=False)
    third = sweep(discover_checkpoints(run_dir), build_task(cfg), SETTINGS, out,
                  multi_token_target=cfg.task.multi_token_target, progress=False)
    assert calls == [2] and third.measured == [name2]
    after = pd.read_parquet(out / "results.parquet")
    assert len(after) == len(before) and not after.duplicated(KEY + ["checkpoint"]).any()


@pytest.mark.slow
def test_identical_weights_are_reported(trained, tmp_path, caplog, monkeypatch):
    run_dir, cfg = trained
    folder = tmp_path / "ckpts"
    src = run_dir / "checkpoints" / "checkpoint-2"
    ignore = shutil.ignore_patterns("optimizer.pt", "tokenizer*")  # copies without a tokenizer
    shutil.copytree(src, folder / "checkpoint-2", ignore=ignore)
    shutil.copytree(src, folder / "checkpoint-3", ignore=ignore)
    # Only the hashes matter here: skip the estimators.
    monkeypatch.setattr(Evaluator, "measure", lambda self, parts, step: [{"step": step, "metric": "x", "value": 0.0}])
    kw = {"multi_token_target": cfg.task.multi_token_target, "progress": False}
    with pytest.raises(ValueError, match="holds no tokenizer"):
        sweep(discover_checkpoints(folder), build_task(cfg), SETTINGS, None, **kw)
    with caplog.at_level(logging.WARNING, logger="inforidge.pipelines.sweep"):
        res = sweep(discover_checkpoints(folder), build_task(cfg), SETTINGS, None, tokenizer=run_dir / "model", **kw)
    a, b = (str((folder / f"checkpoint-{s}").resolve()) for s in (2, 3))
    assert res.duplicates == [[a, b]]
    text = caplog.text
    assert "identical weights" in text and a in text and b in text
    assert res.warnings and a in res.warnings[0]


@pytest.mark.slow
def test_sweep_cli_end_to_end(trained, tmp_path):
    run_dir, _ = trained
    out = tmp_path / "cli_sweep"
    res = CliRunner().invoke(app, ["sweep", str(run_dir), "--out", str(out), "--checkpoints", "checkpoint-2,checkpoint-4",
                                   "--quiet", "--set", "tracking.measure.n_samples=16",
                                   "--set", "tracking.measure.n_permutations=2", "--report-to", "tensorboard"])
    assert res.exit_code == 0, res.output
    for f in ("results.parquet", "results.csv", "report.md", "figures/information_heatmap.png"):
        assert (out / f).exists(), f
    df = pd.read_parquet(out / "results.parquet")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    assert [e.step for e in ea.Scalars("info/id/layer_01")] == [2, 4]
    assert len([t for t in ea.Tags()["scalars"] if "/layer_" in t]) == 25
    assert "inforidge/information_heatmap" in ea.Tags()["images"] and "custom_scalars__config__" in ea.Tags()["tensors"]
    assert set(df["step"]) == {2, 4} and set(df["n_samples"].dropna()) <= {16, 32}
    report = (out / "report.md").read_text()
    assert "## Checkpoints" in report and "## Verdict" in report
    for h in df["weight_hash"].unique():
        assert h in report and h in res.output


def test_sweep_cli_needs_a_task_for_a_foreign_folder(tmp_path):
    (tmp_path / "checkpoint-1").mkdir()
    res = CliRunner().invoke(app, ["sweep", str(tmp_path), "--quiet"])
    assert res.exit_code != 0 and "--config" in res.output


@pytest.mark.slow
def test_cli_checkpoint_names_resolve_to_folders_and_revisions(trained):
    from inforidge.models.checkpoints import resolve_checkpoints
    from inforidge.pipelines.sweep import _split_sweep_section

    run_dir, _ = trained
    got = resolve_checkpoints(run_dir, ["checkpoint-2", "EleutherAI/pythia-70m@step1"])
    assert got[0].name == str((run_dir / "checkpoints" / "checkpoint-2").resolve()) and got[0].step == 2
    assert (got[1].source, got[1].revision, got[1].step) == ("EleutherAI/pythia-70m", "step1", 1)
    hub = resolve_checkpoints("EleutherAI/pythia-70m", ["step0", "step512"], hub_name="EleutherAI/pythia-70m")
    assert [c.step for c in hub] == [0, 512]
    with pytest.raises(ValueError, match="neither|not a model folder"):
        resolve_checkpoints(run_dir, ["checkpoint-99"])
    rest, section = _split_sweep_section({"task": {"name": "arithmetic"}, "sweep": {"revisions": ["step0"]}})
    assert rest == {"task": {"name": "arithmetic"}} and section == {"revisions": ["step0"]}
    with pytest.raises(ValueError, match="unknown key"):
        _split_sweep_section({"sweep": {"steps": [1]}})
