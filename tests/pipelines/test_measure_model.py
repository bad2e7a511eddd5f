"""`inforidge measure`: step-0 measurement without training, no model copy, resumable; max_steps 0."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from inforidge.cli import app
from inforidge.config.loading import load_config
from inforidge.measure.predictive import Evaluator
from inforidge.pipelines.measure import measure_model
from inforidge.pipelines.run import run

WRITTEN = {"config.yaml", "env.json", "results.parquet", "results.csv", "report.md", "figures"}


def _values(df, step):
    rows = df[df["step"] == step].sort_values(["split", "metric", "final_norm", "seed", "layer"])
    return rows.set_index(["split", "metric", "final_norm", "seed", "layer"])["value"].astype(float)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_overrides):
    out = tmp_path_factory.mktemp("measure_runs")
    cfg = load_config(None, tiny_overrides(out, "trained", **{"training.max_steps": 2, "tracking.steps": "[0,2]"}))
    return cfg, run(cfg, progress=False)


def test_measure_from_scratch_equals_the_runs_step_0(trained, tmp_path):
    cfg, res = trained
    out = measure_model(cfg, output_dir=tmp_path, name="m0")
    got = pd.read_parquet(out.run_dir / "results.parquet")
    assert set(got["step"]) == {0}
    ref = pd.read_parquet(res.run_dir / "results.parquet")
    # the per-step measurement (the analyses run at each folder's last step, so they differ)
    step_rows = ref[ref["step"] == 0]
    mine = got[got.metric.isin(set(step_rows.metric))]
    assert mine.metric.str.startswith("predictive_information").any()
    a, b = _values(mine, 0), _values(step_rows, 0)
    assert len(a) == len(b)
    pd.testing.assert_series_equal(a, b.loc[a.index], check_exact=False, atol=1e-9, rtol=0)


def test_measure_cli_on_a_saved_model_writes_the_table_and_no_model(trained, tmp_path):
    cfg, res = trained
    saved = res.run_dir / "model"  # a saved tiny GPT-2 with its word tokenizer
    result = CliRunner().invoke(app, ["measure", str(saved), "--config", str(res.run_dir / "config.yaml"),
                                      "--out", str(tmp_path), "--set", "name=saved", "--quiet"])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "saved"
    assert {p.name for p in run_dir.iterdir()} == WRITTEN, "no model/ and no checkpoints/"
    assert list((run_dir / "figures").glob("*.png"))
    got = pd.read_parquet(run_dir / "results.parquet")
    assert set(got["step"]) == {0}
    # the same weights the run measured at its last step (2): the same numbers
    ref = pd.read_parquet(res.run_dir / "results.parquet")
    main = got[got.metric.isin(set(ref.loc[ref.step == 0, "metric"]))]
    a = _values(main, 0)
    b = _values(ref[ref.metric.isin(set(main.metric))], 2)
    pd.testing.assert_series_equal(a, b.loc[a.index], check_exact=False, atol=1e-6, rtol=0)


def test_max_steps_0_measures_without_training(trained, tmp_path):
    cfg, _ = trained
    from dataclasses import replace

    cfg0 = replace(cfg, output_dir=str(tmp_path), name="zero", training=replace(cfg.training, max_steps=0))
    out = run(cfg0, progress=False)
    assert {p.name for p in out.run_dir.iterdir()} == WRITTEN
    assert set(pd.read_parquet(out.run_dir / "results.parquet")["step"]) == {0}


def test_an_interrupted_measure_resumes_without_recomputing(trained, tmp_path, monkeypatch):
    cfg, _ = trained
    first = measure_model(cfg, output_dir=tmp_path, name="again")
    (first.run_dir / "report.md").unlink()  # as if it stopped after the table
    n = len(first.table.frame)

    def boom(*a, **k):
        raise AssertionError("step 0 measured again")

    monkeypatch.setattr(Evaluator, "extract", boom)
    second = measure_model(cfg, output_dir=tmp_path, name="again")
    assert len(second.table.frame) == n and (second.run_dir / "report.md").exists()


def test_a_finished_run_keeps_its_model_and_no_checkpoints(trained):
    from inforidge.models.checkpoints import discover_checkpoints

    _, res = trained
    assert {p.name for p in res.run_dir.iterdir()} == WRITTEN | {"model"}, "checkpoints/ deleted at the end"
    model_files = {p.name for p in (res.run_dir / "model").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "trainer_state.json"} <= model_files
    assert not any(n.startswith(("optimizer", "scheduler", "rng_state")) for n in model_files)
    # the step of model/ stays known without the checkpoints (sweep/layers read it)
    assert [c.step for c in discover_checkpoints(res.run_dir)] == [2]


def test_save_model_false_writes_no_model_and_a_rerun_does_not_train_again(tiny_overrides, tmp_path, monkeypatch):
    cfg = load_config(None, tiny_overrides(tmp_path, "lean", **{"training.max_steps": 2, "tracking.steps": "[0,2]",
                                                                "training.save_model": False}))
    out = run(cfg, progress=False)
    assert {p.name for p in out.run_dir.iterdir()} == WRITTEN
    assert set(out.table.frame["step"]) == {0, 2}
    n = len(out.table.frame)

    import transformers

    def boom(*a, **k):
        raise AssertionError("a finished run trained again")

    monkeypatch.setattr(transformers.Trainer, "train", boom)
    again = run(cfg, progress=False)
    assert len(again.table.frame) == n and not (again.run_dir / "checkpoints").exists()
