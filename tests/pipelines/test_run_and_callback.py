"""Training with tracking, resume, the CLI and the report, on configs that take seconds."""

import json

import pandas as pd
import pytest
from transformers import Trainer, TrainerCallback, TrainingArguments
from typer.testing import CliRunner

from inforidge.cli import app
from inforidge.config.loading import load_config
from inforidge.config.settings import MeasureSettings
from inforidge.measure.predictive import Evaluator
from inforidge.measure.rows import COLUMNS, KEY
from inforidge.pipelines.run import run
from inforidge.pipelines.tracking import InfoRidgeCallback, log_spaced_steps
from inforidge.results.table import ResultsTable, column_type, read_csv_table, read_run_table
from inforidge.tasks.tokenize import collator, tokenize_for_next_token


def test_log_spaced_steps():
    s = log_spaced_steps(471, 8)
    assert s[0] == 0 and s[-1] == 471 and s == sorted(set(s)) and len(s) <= 8
    assert log_spaced_steps(0) == [0]


def test_callback_in_a_plain_trainer_writes_rows_and_logs_scalars(tiny_gpt2, word_tokenizer, tiny_task, tmp_path):
    settings = MeasureSettings(n_samples=16, seeds=[0, 1], n_permutations=3)
    ev = Evaluator(word_tokenizer, {"id": tiny_task.splits["test_id"], "ood": tiny_task.splits["test_ood"]}, settings)
    table = ResultsTable(tmp_path / "table")
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=16,
                             report_to="none", use_cpu=True, save_strategy="no", logging_steps=1, disable_tqdm=True)
    trainer = Trainer(model=tiny_gpt2, args=args, train_dataset=tokenize_for_next_token(tiny_task.splits["train"], word_tokenizer),
                      data_collator=collator(word_tokenizer))
    cb = InfoRidgeCallback(ev, table, steps=[0, 2]).attach(trainer)
    trainer.train()
    df = pd.read_parquet(tmp_path / "table" / "results.parquet")
    assert set(df["step"]) == {0, 2, 4}, "the last step is always measured"
    assert cb.steps == [0, 2, 4]
    metrics = set(df["metric"])
    for m in ("predictive_information", "incremental_gain", "early_exit_accuracy"):
        assert {m, f"{m}_null", f"{m}_corrected"} <= metrics or m == "early_exit_accuracy"
    assert set(df["split"]) == {"id", "ood", "all"}
    assert set(df[df.metric == "predictive_information"]["layer"]) == {0, 1, 2}
    assert set(df[df.metric == "incremental_gain"]["layer"]) == {1, 2}
    assert not df.duplicated(KEY).any()
    # corrected = raw - null mean, row by row
    w = df[df.metric.str.startswith("predictive_information")].pivot_table(
        index=["step", "split", "seed", "final_norm", "layer"], columns="metric", values="value")
    pd.testing.assert_series_equal(
        w["predictive_information"] - w["predictive_information_null"], w["predictive_information_corrected"],
        check_names=False, atol=1e-9, rtol=0)
    logged = [h for h in trainer.state.log_history if "info/id/layer_01" in h]
    assert len(logged) == 3 and isinstance(logged[0]["early_exit/ood/layer_02"], float)


class _Interrupt(TrainerCallback):
    def __init__(self, at):
        self.at = at

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.at:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_resume_gives_the_same_table_as_an_uninterrupted_run(tiny_overrides, tmp_path):
    full = run(load_config(None, tiny_overrides(tmp_path, "full")), progress=False)
    cfg = load_config(None, tiny_overrides(tmp_path, "cut"))
    with pytest.raises(KeyboardInterrupt):
        run(cfg, progress=False, callbacks=[_Interrupt(5)])
    partial = pd.read_parquet(tmp_path / "cut" / "results.parquet")
    assert set(partial["step"]) == {0, 2, 4}
    resumed = run(cfg, progress=False)
    a = full.table.frame.sort_values(KEY).reset_index(drop=True)
    b = resumed.table.frame.sort_values(KEY).reset_index(drop=True)
    assert len(a) == len(b) and not b.duplicated(KEY).any()
    pd.testing.assert_frame_equal(a.drop(columns="value"), b.drop(columns="value"))
    assert (a["value"] - b["value"]).abs().max() < 1e-4
    # A third call finds everything done and changes nothing.
    again = run(cfg, progress=False)
    assert len(again.table.frame) == len(b)


@pytest.mark.slow
def test_a_different_config_in_the_same_folder_is_refused(tiny_overrides, tmp_path):
    run(load_config(None, tiny_overrides(tmp_path, "x", **{"training.max_steps": 2, "tracking.steps": "[0]"})), progress=False)
    with pytest.raises(ValueError, match="different config"):
        run(load_config(None, tiny_overrides(tmp_path, "x", **{"training.max_steps": 3})), progress=False)


@pytest.mark.slow
def test_cli_runs_a_config_end_to_end(tiny_overrides, tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("name: cli\nmodel: {n_layer: 2, n_embd: 32, n_head: 2}\n")
    res = CliRunner().invoke(app, ["run", str(cfg), "--quiet", *sum((["--set", o] for o in tiny_overrides(tmp_path, "cli")), [])])
    assert res.exit_code == 0, res.output
    assert "ridge layer" in res.output
    out = tmp_path / "cli"
    for f in ("results.parquet", "results.csv", "config.yaml", "env.json", "report.md",
              "figures/information_heatmap.png", "figures/early_exit_accuracy.png"):
        assert (out / f).exists(), f
    report = (out / "report.md").read_text()
    assert "## Verdict" in report and "permutation null" in report and "| layer |" in report
    env = json.loads((out / "env.json").read_text())
    assert env["extraction_batch_size"] == 64 and env["threads_setting"] == "auto" and env["torch_threads"] >= 1
    df = read_run_table(out)
    assert list(df.columns[:len(COLUMNS)]) == COLUMNS
    assert {c: column_type(c) for c in COLUMNS} == {c: str(df[c].dtype) for c in COLUMNS}
    pd.testing.assert_frame_equal(read_csv_table(out / "results.csv"), df)
    whole = df[df["metric"] == "label_entropy"]
    assert len(whole) and whole["layer"].isna().all()  # no -1 sentinel
    main = df[df["metric"] == "predictive_information"]
    assert (main["sigma"] == 1.0).all() and (main["sigma_rule"] == "fixed").all()
    robust = df[df["metric"] == "robustness_predictive_information"]
    assert len(robust) and robust["sigma"].isna().all() and (robust["sigma_rule"] == "median").all()


def test_cli_reports_bad_overrides(tmp_path):
    res = CliRunner().invoke(app, ["demo", "--set", "training.nonsense=1"])
    assert res.exit_code != 0 and "unknown config key" in res.output


def test_env_command():
    res = CliRunner().invoke(app, ["env"])
    assert res.exit_code == 0 and '"torch"' in res.output and '"transformers"' in res.output


@pytest.mark.slow
def test_early_stopping_run_measures_its_last_step(tiny_overrides, tmp_path):
    cfg = load_config(None, tiny_overrides(
        tmp_path, "early", **{"training.early_stopping_patience": 1, "training.eval_steps": 2,
                              "training.learning_rate": 0.0, "training.max_steps": 40, "tracking.steps": "[0]"}))
    out = run(cfg, progress=False)
    steps = sorted(out.table.steps())
    assert steps[0] == 0 and 0 < steps[-1] < 40, "a constant eval loss must stop the run early"
    assert (out.run_dir / "model" / "config.json").exists()
