"""tracking.save_states writes each measurement's states; analyze --from-states recomputes from them,
without the model: the same settings give exactly the in-run numbers, other settings differ."""

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from inforidge.cli import app
from inforidge.config.loading import load_config
from inforidge.extract.saved_states import load_states, save_states, saved_steps
from inforidge.pipelines.analyze import analyze_from_states
from inforidge.pipelines.run import run

pytestmark = pytest.mark.slow

KEYS = ["step", "split", "seed", "layer", "metric", "final_norm"]


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory, tiny_overrides):
    out = tmp_path_factory.mktemp("states_run")
    overrides = tiny_overrides(out, "s", **{"training.max_steps": 4, "tracking.steps": "[0,4]",
                                            "tracking.save_states": "true", "tracking.ridge_bootstrap": 0})
    run(load_config(None, overrides), progress=False)
    return out / "s"


def test_states_files_round_trip(saved_run):
    files = saved_steps(saved_run / "states")
    assert [f.name for f in files] == ["step_000000.safetensors", "step_000004.safetensors"]
    saved = load_states(files[1])
    assert saved.step == 4 and set(saved.states) == {"id", "ood"}
    s = saved.states["id"]
    n_layers = s.hidden.shape[0] - 1
    assert s.hidden.shape[1] == s.final_normed.shape[0] == s.target_ids.shape[0] and n_layers == 2
    assert set(s.labels) == {"token_embedding", "embedding_output"}
    again = save_states(saved_run / "copy", 4, saved.states, saved.record_indices)
    back = load_states(again)
    assert torch.equal(back.states["ood"].hidden, saved.states["ood"].hidden) and back.record_indices == saved.record_indices


def test_from_states_reproduces_the_run_exactly(saved_run, tmp_path):
    table, report = analyze_from_states(saved_run, [], tmp_path / "same")
    def keyed(frame):  # the two tables' categoricals have different category sets: compare values
        return frame.astype({c: "object" for c in ("split", "metric", "final_norm")}).set_index(KEYS)["value"].sort_index()

    ours = keyed(table.frame)
    theirs = pd.read_parquet(saved_run / "results.parquet")
    theirs = keyed(theirs[theirs["metric"].isin(set(table.frame["metric"]))])
    assert len(ours) == len(theirs) > 100
    assert ours.index.equals(theirs.index)
    np.testing.assert_array_equal(ours.to_numpy(), theirs.to_numpy())  # exactly, not approximately
    assert report.exists() and (tmp_path / "same" / "figures").is_dir()


def test_from_states_with_other_settings_and_guards(saved_run, tmp_path):
    res = CliRunner().invoke(app, ["analyze", str(saved_run), "--from-states", "--set", "tracking.measure.sigma=median",
                                   "--set", "tracking.measure.n_permutations=5", "--out", str(tmp_path / "median")])
    assert res.exit_code == 0, res.output
    f = pd.read_parquet(tmp_path / "median" / "results.parquet")
    info = f[f["kernel"] == "gaussian"]
    assert set(info["sigma_rule"]) == {"median"} and info["sigma"].isna().all()
    assert set(f["n_permutations"].dropna()) == {5}
    base = pd.read_parquet(saved_run / "results.parquet")
    a = f[(f["metric"] == "predictive_information") & (f["step"] == 4)]["value"].to_numpy()
    b = base[(base["metric"] == "predictive_information") & (base["step"] == 4)]["value"].to_numpy()
    assert a.shape == b.shape and not np.allclose(a, b)
    # early exit does not depend on the estimator: the same as in the run
    ee = lambda d: d[d["metric"] == "early_exit_accuracy"].set_index(KEYS)["value"].sort_index()  # noqa: E731
    np.testing.assert_array_equal(ee(f).to_numpy(), ee(base).to_numpy())
    bad = CliRunner().invoke(app, ["analyze", str(saved_run), "--from-states", "--set", "tracking.measure.n_samples=10"])
    assert bad.exit_code == 2 and "only estimator settings" in bad.output
    other = CliRunner().invoke(app, ["analyze", str(saved_run), "--from-states", "--set", "tracking.measure.alpha=2",
                                     "--out", str(tmp_path / "median")])
    assert other.exit_code == 2 and "other settings" in other.output


def test_from_states_can_switch_to_the_stochastic_estimator(saved_run, tmp_path):
    table, report = analyze_from_states(saved_run, ["tracking.measure.estimator=stochastic",
                                                    "tracking.measure.n_probes=16"], tmp_path / "stoch")
    f = table.frame
    info = f[f["metric"].str.startswith(("predictive_information", "incremental_gain", "robustness_"))]
    assert set(info["estimator"]) == {"stochastic"} and info["metric"].str.endswith("_se").any()
    assert f.loc[f["metric"] == "early_exit_accuracy", "estimator"].isna().all()
    # N = 24 <= deflation (128): the top-of-spectrum block covers everything, only quadrature error is left
    base = pd.read_parquet(saved_run / "results.parquet")
    assert set(base.loc[base["metric"] == "predictive_information", "estimator"]) == {"exact"}
    pick = lambda d: d[d["metric"] == "predictive_information"].set_index(KEYS)["value"].sort_index()  # noqa: E731
    np.testing.assert_allclose(pick(f).to_numpy(), pick(base).to_numpy(), atol=1e-4)
    assert "estimator=stochastic: the information is stochastic" in report.read_text()


def test_a_run_without_saved_states_says_how(tmp_path, tiny_overrides):
    run(load_config(None, tiny_overrides(tmp_path, "plain", **{"training.max_steps": 2, "tracking.steps": "[0]",
                                                                 "tracking.ridge_bootstrap": 0})), progress=False)
    with pytest.raises(FileNotFoundError, match="tracking.save_states=true"):
        analyze_from_states(tmp_path / "plain")
