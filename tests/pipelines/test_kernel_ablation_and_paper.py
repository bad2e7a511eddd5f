"""Kernel ablation (paper Fig. 11) as a run analysis, and ``inforidge paper`` end to end."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from inforidge.cli import app
from inforidge.config.loading import load_config
from inforidge.measure.rows import KEY
from inforidge.pipelines.run import run

pytestmark = pytest.mark.slow  # both are end-to-end runs


def test_kernel_ablation_adds_laplacian_and_polynomial_rows(tiny_overrides, tmp_path):
    cfg = load_config(None, tiny_overrides(tmp_path, "kern", **{
        "tracking.steps": "[0,8]", "tracking.ridge_bootstrap": 0, "analyses.attention": "false",
        "analyses.kernel_ablation": "true"}))
    out = run(cfg, progress=False)
    df = out.table.frame
    final = int(df["step"].max())
    abl = df[df["metric"].str.startswith("kernel_ablation_")]
    assert set(abl["step"]) == {final}
    assert set(abl["kernel"]) == {"laplacian", "polynomial"}, "the Gaussian rows are not duplicated"
    assert set(abl["split"]) == {"id", "ood"} and set(abl["seed"]) == {0, 1}
    assert {"kernel_ablation_predictive_information", "kernel_ablation_predictive_information_corrected",
            "kernel_ablation_predictive_information_null"} <= set(abl["metric"])
    assert set(abl["layer"]) == {0, 1, 2}
    # The ordinary curves hold the measurement's kernel only.
    assert set(df.loc[df["metric"] == "predictive_information", "kernel"]) == {"gaussian"}
    assert not df.duplicated(KEY).any()
    report = (out.run_dir / "report.md").read_text()
    assert "## Kernel ablation" in report and "laplacian" in report and "polynomial" in report
    assert (out.run_dir / "figures" / "kernel_ablation.png").exists()
    n = len(df)
    res = CliRunner().invoke(app, ["analyze", str(out.run_dir), "--what", "kernels"])
    assert res.exit_code == 0, res.output
    assert "kernel ablation" in res.output
    again = pd.read_parquet(out.run_dir / "results.parquet")
    assert len(again) == n and not again.duplicated(KEY).any()


def test_paper_runs_main_depth_and_overfit_and_writes_one_report(tiny_overrides, tmp_path):
    overrides = tiny_overrides(tmp_path, "paper", **{
        "tracking.steps": "[0,4,8]", "tracking.ridge_bootstrap": 10, "analyses.residual_scaling": "false",
        "analyses.kernel_ablation": "true", "paper.depths": "[1,2]", "paper.overfit_epochs_factor": 2})
    args = ["paper", "--quiet"] + [a for o in overrides for a in ("--set", o)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    root = tmp_path / "paper"
    # depth 2 is the main run's depth: reused, not trained twice.
    assert sorted(p.name for p in root.iterdir() if (p / "report.md").exists()) == ["depth_1", "main", "overfit"]
    main = pd.read_parquet(root / "main" / "results.parquet")
    assert (main["metric"] == "kernel_ablation_predictive_information").any()
    assert main["metric"].str.startswith("ridge_").any()
    assert load_config(root / "depth_1" / "config.yaml").model.n_layer == 1
    over = pd.read_parquet(root / "overfit" / "results.parquet")
    assert sorted(over["step"].unique()) == [0, 4, 8, 16]
    assert not over["metric"].str.startswith("ridge_").any()
    report = (root / "report.md").read_text()
    for s in ("main/report.md", "depth_1/report.md", "## Depth threshold", "## Overfitting",
              "figures/depth_threshold.png", "figures/overfitting.png"):
        assert s in report, s
    assert "GPT-2 trained from scratch with k blocks" in report
    assert "in-distribution: " in report and ("k ∈" in report or "no depth shows" in report)
    assert (root / "figures" / "depth_threshold.png").exists() and (root / "figures" / "overfitting.png").exists()
    # A second call resumes: nothing is trained again, the table is unchanged.
    n = len(over)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert len(pd.read_parquet(root / "overfit" / "results.parquet")) == n
