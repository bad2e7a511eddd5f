"""Figures fit for a paper: shared and centred colour scales, the null's own spread in the legend,
a chance line, units on the axes, vector output, the paper preset's sizes, drawing into ``ax=``."""

import numpy as np
import pandas as pd
import pytest

from inforidge.config.settings import FigureSettings
from inforidge.report.figures import figure_style, new_figure, write_figures
from inforidge.report.run_figures import (
    attention_figure,
    distinct_targets,
    early_exit_accuracy,
    information_heatmap,
    kernel_ablation_figure,
    layer_curves,
    residual_scale_figure,
    save_figures,
)

pytest.importorskip("matplotlib")


def synthetic_table(n_layers: int = 6, steps=(0, 50, 100), seeds=(0, 1), classes=None) -> pd.DataFrame:
    """A results table of the predictive measurement without a model: ID values twice the OOD ones,
    corrected values of both signs, a permutation null with its spread, label entropies of K classes."""
    classes = classes or {"id": 13, "ood": 16}
    rng = np.random.default_rng(0)
    rows = []
    common = {"alpha": 1.01, "kernel": "gaussian", "sigma": 1.0, "base": 2.0, "label_view": "embedding_output",
              "n_permutations": 10, "n_samples": 64, "null": None, "flag": None, "final_norm": "post"}
    for step in steps:
        for split, scale in (("id", 2.0), ("ood", 1.0)):
            for seed in seeds:
                rows.append({**common, "step": step, "split": split, "seed": seed, "metric": "label_entropy",
                             "layer": -1, "value": float(np.log2(classes[split]))})
                for layer in range(n_layers + 1):
                    bump = np.exp(-((layer - n_layers * 0.6) ** 2) / 4) * (step + 10) / 110
                    v = scale * bump + 0.05 * rng.standard_normal()
                    null = 0.3 + 0.02 * rng.standard_normal()
                    for metric, value in (("predictive_information", v + null), ("predictive_information_null", null),
                                          ("predictive_information_null_std", 0.05),
                                          ("predictive_information_corrected", v - 0.4 * scale),
                                          ("early_exit_accuracy", min(1.0, layer / n_layers * bump * scale))):
                        rows.append({**common, "step": step, "split": split, "seed": seed, "metric": metric,
                                     "layer": layer, "value": float(value)})
                    if layer:
                        for metric, value in (("incremental_gain", v / 3), ("incremental_gain_null", 0.1),
                                              ("incremental_gain_null_std", 0.03),
                                              ("incremental_gain_corrected", v / 3 - 0.1)):
                            rows.append({**common, "step": step, "split": split, "seed": seed, "metric": metric,
                                         "layer": layer, "value": float(value)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def table():
    return synthetic_table()


def _images(fig):
    return [im for ax in fig.axes for im in ax.get_images()]


def test_id_and_ood_heatmaps_share_one_colour_scale(table):
    fig = information_heatmap(table)
    ims = _images(fig)
    assert len(ims) == 2 and ims[0].get_clim() == ims[1].get_clim()
    values = table[table["metric"] == "predictive_information"].groupby(["split", "step", "layer"])["value"].mean()
    assert ims[0].get_clim() == pytest.approx((values.min(), values.max()))
    assert "shared colour scale" in fig.get_suptitle()


def test_given_colour_limits_are_used(table):
    ims = _images(information_heatmap(table, vmin=0.0, vmax=3.0))
    assert all(im.get_clim() == (0.0, 3.0) for im in ims)


def test_corrected_values_are_on_a_diverging_map_centred_at_zero(table):
    ims = _images(information_heatmap(table, "predictive_information_corrected"))
    lo, hi = ims[0].get_clim()
    assert lo < 0 < hi and lo == pytest.approx(-hi)
    assert getattr(ims[0].norm, "vcenter", 0.0) == 0.0 and ims[0].get_cmap().name == "RdBu_r"
    assert ims[0].get_clim() == ims[1].get_clim()
    # Asymmetric given limits keep 0 at the centre of the map.
    im = _images(information_heatmap(table, "predictive_information_corrected", vmin=-1.0, vmax=3.0))[0]
    assert im.norm.vcenter == 0.0 and im.norm(0.0) == pytest.approx(0.5)


def test_the_null_band_is_its_own_spread_and_the_legend_names_it(table):
    fig = layer_curves(table, steps=[100])
    texts = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert "null mean ± null sd" in texts and "± 1 sd over seeds" in texts and "permutation null (mean)" in texts
    ax = fig.axes[0]
    # The band of the null: null mean ± the mean of the *_null_std rows (0.05), not the seeds' spread.
    null = table[(table["metric"] == "predictive_information_null") & (table["split"] == "id")
                 & (table["step"] == 100)].groupby("layer")["value"].mean()
    bands = [c for c in ax.collections if c.get_hatch() == "///"]
    assert len(bands) == 1
    ys = bands[0].get_paths()[0].vertices[:, 1]
    assert ys.max() == pytest.approx(null.max() + 0.05, abs=1e-9)
    assert ys.min() == pytest.approx(null.min() - 0.05, abs=1e-9)


def test_early_exit_accuracy_draws_a_chance_line_per_split(table):
    classes = distinct_targets({"id": [{"target": str(i % 13)} for i in range(40)],
                                "ood": [{"target": str(i)} for i in range(16)], "empty": []})
    assert classes == {"id": 13, "ood": 16}
    ax = early_exit_accuracy(table, classes=classes).axes[0]
    chance = sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":")
    assert chance == pytest.approx(sorted([1 / 13, 1 / 16]))
    assert [t.get_text() for t in ax.get_legend().get_texts()].count("chance 1/K (K = 13)") == 1
    # Without the number of classes: no line, and the figure says so.
    ax = early_exit_accuracy(table).axes[0]
    assert not [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert any("no chance line" in t.get_text() for t in ax.texts)


def test_axes_name_the_quantity_and_its_unit(table):
    fig = layer_curves(table)
    assert fig.axes[0].get_ylabel() == "predictive information I(h_l; Y) [bits]"
    assert fig.axes[0].get_xlabel() == "layer l (0 = embeddings)"
    heat = information_heatmap(table, "predictive_information_corrected")
    assert any("[bits]" in ax.get_ylabel() for ax in heat.axes)  # the colour bar
    assert "[nats]" in layer_curves(table.assign(base=np.e)).axes[0].get_ylabel()
    assert "fraction" in early_exit_accuracy(table).axes[0].get_ylabel()


def _clipped(fig) -> bool:
    """Whether anything drawn (labels, ticks, legends, colour bars, titles) reaches past the canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    tight = fig.get_tightbbox(canvas.get_renderer())  # inches
    w, h = fig.get_size_inches()
    return tight.x0 < -0.01 or tight.y0 < -0.01 or tight.x1 > w + 0.01 or tight.y1 > h + 0.01


@pytest.mark.parametrize("style", ["notebook", "paper"])
def test_nothing_is_clipped(table, style):
    att = pd.DataFrame([{"step": 100, "split": s, "metric": m, "layer": layer, "value": 0.1 * layer,
                         "final_norm": "post", "seed": 0}
                        for s in ("id", "ood") for m in ("attention_signal", "attention_all") for layer in range(1, 7)])
    with figure_style(style):
        for fig in (information_heatmap(table), information_heatmap(table, "predictive_information_corrected"),
                    layer_curves(table), early_exit_accuracy(table, classes={"id": 13, "ood": 16}), attention_figure(att)):
            assert not _clipped(fig)


def test_vector_and_raster_files_start_with_their_magic_bytes(table, tmp_path):
    settings = FigureSettings(formats=["png", "pdf", "svg"], dpi=72)
    paths = save_figures(table, tmp_path, settings=settings)
    assert paths["information_heatmap"].suffix == ".png"  # the first format: the one reports embed
    for name in paths:
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
        head = (tmp_path / f"{name}.svg").read_bytes()[:200]
        assert head.startswith(b"<?xml") and b"<svg" in (tmp_path / f"{name}.svg").read_bytes()[:2000]


def test_dpi_sets_the_png_resolution(table, tmp_path):
    from PIL import Image

    write_figures({"a": lambda: layer_curves(table)}, tmp_path / "lo", FigureSettings(dpi=50))
    write_figures({"a": lambda: layer_curves(table)}, tmp_path / "hi", FigureSettings(dpi=100))
    lo, hi = (Image.open(tmp_path / d / "a.png").size for d in ("lo", "hi"))
    assert hi[0] == pytest.approx(2 * lo[0], abs=2)


def test_paper_preset_sizes_and_text(table, tmp_path):
    import matplotlib

    sizes = {}

    def keep(name, draw):
        def run():
            fig = draw()
            sizes[name] = tuple(fig.get_size_inches())
            sizes[name + "_font"] = fig.axes[0].xaxis.label.get_fontsize()
            return fig
        return run

    before = matplotlib.rcParams["font.size"]
    write_figures({"single": keep("single", lambda: early_exit_accuracy(table)),
                   "double": keep("double", lambda: layer_curves(table))}, tmp_path,
                  FigureSettings(style="paper"))
    assert sizes["single"][0] == pytest.approx(3.3) and sizes["double"][0] == pytest.approx(6.8)
    assert sizes["single_font"] == 8 and sizes["double_font"] == 8
    assert matplotlib.rcParams["font.size"] == before  # the user's rcParams are restored
    with figure_style("notebook"):
        assert early_exit_accuracy(table).get_size_inches()[0] == pytest.approx(5.5)


def test_every_plot_function_draws_into_the_given_axes(table):
    fig, axes = new_figure(2, 3)
    assert information_heatmap(table, ax=axes[0, :2]) is fig
    assert len(axes[0, 0].get_images()) == 1 and len(axes[0, 1].get_images()) == 1
    assert layer_curves(table, ax=[axes[1, 0], axes[1, 1]]) is fig and axes[1, 0].get_lines()
    assert early_exit_accuracy(table, ax=axes[0, 2]) is fig and axes[0, 2].get_lines()
    assert residual_scale_figure(table, ax=axes[1, 2]) is fig
    fig2, axes2 = new_figure(2, 3)
    assert attention_figure(table, ax=axes2[0, 0]) is fig2
    assert kernel_ablation_figure(table, ax=list(axes2.ravel()[2:])) is fig2
    with pytest.raises(ValueError, match="sequence of 2 axes"):
        information_heatmap(table, ax=axes[0, 0])


DRAW_AND_SAVE = """
import sys
import matplotlib
matplotlib.use("svg")
sys.path.insert(0, {tests!r})
from test_figure_properties import synthetic_table
from inforidge.config.settings import FigureSettings
from inforidge.report.run_figures import save_figures
save_figures(synthetic_table(), __import__("pathlib").Path({out!r}), settings=FigureSettings(formats=["png", "pdf"],
             style="paper"))
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules, matplotlib.rcParams["font.size"])
"""


def test_drawing_and_saving_keep_the_backend_and_rcparams(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": str(here.parents[1] / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = DRAW_AND_SAVE.format(tests=str(here), out=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["svg", "False", "10.0"]
    assert (tmp_path / "information_heatmap.pdf").exists()
