"""The layer-suite, generation and paper figures: ``ax=``, units on the axes, centred corrected
maps, the null's spread, every format written and embedded by name."""

import numpy as np
import pandas as pd
import pytest

from inforidge.config.settings import FigureSettings
from inforidge.report import generation, layers
from inforidge.report.figures import new_figure

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def generation_table():
    rows = []
    for step in range(4):
        for layer in range(5):
            v = np.exp(-((layer - 3) ** 2) / 4) * (1 + step)
            base = {"step": step, "split": "id", "layer": layer, "seed": 0, "final_norm": "post", "base": 2.0,
                    "n_samples": 20}
            rows += [{**base, "metric": "sequence_information", "value": v + 0.4},
                     {**base, "metric": "sequence_information_null", "value": 0.4},
                     {**base, "metric": "sequence_information_null_std", "value": 0.1},
                     {**base, "metric": "sequence_information_corrected", "value": v - 1.0}]
    for group in ("content", "stopword"):
        for layer in range(5):
            base = {"step": -1, "split": group, "layer": layer, "seed": 0, "final_norm": "post", "base": 2.0,
                    "n_samples": 10}
            rows += [{**base, "metric": "sequence_information", "value": 1.0},
                     {**base, "metric": "sequence_information_corrected", "value": 0.2}]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def suite_table():
    rows = []
    for model, n in (("a", 4), ("b", 2)):
        for layer in range(n + 1):
            for stress, p in ((None, None), ("repetition", 0.0), ("repetition", 0.5)):
                for metric in ("prompt_entropy", "prompt_entropy_normalized", "dataset_entropy"):
                    rows.append({"model": model, "step": None, "layer": layer, "depth_fraction": layer / n,
                                 "metric": metric, "value": float(layer), "final_norm": "pre", "base": 2.0,
                                 "stress": stress, "stress_value": p})
    return pd.DataFrame(rows)


def test_generation_figures_draw_into_given_axes_with_units_and_the_null_spread(generation_table):
    fig, axes = new_figure(3, 2)
    assert generation.information_by_step(generation_table, ax=axes[0]) is fig
    labels = [t.get_text() for t in axes[0, 0].get_legend().get_texts()]
    assert "null mean ± null sd" in labels and "permutation null (mean)" in labels
    assert axes[0, 0].get_ylabel() == "I(h_l^(t); Y) [bits]" and axes[0, 0].get_xlabel() == "layer l (0 = embeddings)"
    assert generation.step_heatmap(generation_table, ax=axes[1]) is fig
    raw, corrected = axes[1, 0].get_images()[0], axes[1, 1].get_images()[0]
    lo, hi = corrected.get_clim()
    assert lo == pytest.approx(-hi) and corrected.get_cmap().name == "RdBu_r" and raw.get_cmap().name == "viridis"
    assert generation.content_vs_stopword(generation_table, ax=axes[2]) is fig
    assert "[bits]" in axes[2, 1].get_ylabel()
    one = generation.step_heatmap(generation_table, vmin=0, vmax=5, corrected_vmin=-2, corrected_vmax=2)
    assert [im.get_clim() for ax in one.axes for im in ax.get_images()] == [(0, 5), (-2, 2)]


def test_generation_figures_in_every_format(generation_table, tmp_path):
    paths = generation.save_generation_figures(generation_table, tmp_path,
                                               settings=FigureSettings(formats=["svg", "pdf"], dpi=72))
    assert {p.suffix for p in paths.values()} == {".svg"}
    assert all((tmp_path / f"{n}.pdf").read_bytes()[:5] == b"%PDF-" for n in paths)


def test_layer_figures_draw_into_given_axes_and_the_report_embeds_their_format(suite_table, tmp_path):
    fig, axes = new_figure(1, 4)
    assert layers.depth_figure(suite_table, "prompt_entropy", ax=axes[0]) is fig
    assert axes[0].get_ylabel() == "prompt entropy [bits]" and "depth fraction" in axes[0].get_xlabel()
    assert layers.stress_figure(suite_table, "repetition", ax=list(axes[1:])) is fig
    paths = layers.save_layer_figures(suite_table, tmp_path / "figures", FigureSettings(formats=["pdf", "png"]))
    assert paths["stress_repetition"].name == "stress_repetition.pdf"
    assert (tmp_path / "figures" / "stress_repetition.png").exists()
    text = layers.write_layers_report(suite_table, tmp_path, paths).read_text()
    assert "figures/stress_repetition.pdf" in text and "figures/depth_prompt_entropy.pdf" in text


def test_paper_figures_draw_into_given_axes(tmp_path):
    from test_figure_properties import synthetic_table

    from inforidge.report import paper

    runs = {}
    for k in (2, 4):
        (tmp_path / f"k{k}").mkdir()
        synthetic_table(n_layers=k).to_parquet(tmp_path / f"k{k}" / "results.parquet")
        runs[k] = tmp_path / f"k{k}"
    fig, axes = new_figure(2, 2)
    assert paper.depth_threshold_figure(runs, ax=axes[0]) is fig
    assert axes[0, 0].get_ylabel() == "I(h_l; Y) − null mean [bits]" and "depth fraction" in axes[0, 0].get_xlabel()
    assert paper.overfitting_figure(runs[2], runs[4], ax=axes[1]) is fig
    assert axes[1, 0].get_xlabel() == "layer l (0 = embeddings)" and axes[1, 1].get_legend() is not None
