"""Figures from the tidy table. Every function takes the table, draws into ``ax`` (new axes when
None) and returns the matplotlib Figure.

Conventions: x = layer l (0 = embeddings); y names the quantity and its unit; panels of the
in-distribution and out-of-distribution splits share one colour scale (and say so); signed values
(null-corrected information, incremental gains) are drawn on a diverging map centred at 0; the
permutation null is drawn as its mean ± its own spread (``<metric>_null_std``, mean over seeds),
the seed spread as a lighter band, both named in the legend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from inforidge._optional import require
from inforidge.config.settings import FigureSettings
from inforidge.report.figures import (
    DIVERGING_MAP,
    LAYER_LABEL,
    SEQUENTIAL_MAP,
    color_limits,
    color_norm,
    figures_available,
    integer_ticks,
    new_figure,
    palette,
    panels,
    write_figures,
)
from inforidge.report.markdown import SPLIT_NAME, table_units
from inforidge.results.summaries import _final, kernel_curves

QUANTITY = {
    "predictive_information": "predictive information I(h_l; Y)",
    "predictive_information_corrected": "I(h_l; Y) − null mean",
    "incremental_gain": "incremental gain I(h_l − h_(l−1); Y)",
    "incremental_gain_corrected": "incremental gain − null mean",
}


def quantity_label(df: pd.DataFrame, metric: str) -> str:
    """Axis label of an information metric: the quantity and its unit, e.g.
    "predictive information I(h_l; Y) [bits]"."""
    return f"{QUANTITY.get(metric, metric.replace('_', ' '))} [{table_units(df)}]"


def is_signed(metric: str) -> bool:
    """Whether a metric's values can be negative (drawn on a diverging map centred at 0)."""
    return metric.endswith("_corrected") or metric.startswith("incremental_gain")


def _legend_handles(ax, extra: list) -> None:
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles + [h for h, _ in extra], labels + [lab for _, lab in extra])


def _proxy_line(**kw):
    return require("matplotlib.lines", "the figures").Line2D([], [], **kw)


def _proxy_patch(**kw):
    return require("matplotlib.patches", "the figures").Patch(**kw)


def attention_figure(df: pd.DataFrame, ax=None):
    """Attention of the last position to the signal tokens / all tokens / itself by block (final step)."""
    att = _final(df, "attention_")
    fig, (ax,) = panels(ax, 1)
    styles = {"attention_signal": "-o", "attention_all": "--s", "attention_last": ":^"}
    for split, color in (("id", "C0"), ("ood", "C1")):
        g = att[att["split"] == split]
        for metric, style in styles.items():
            m = g[g["metric"] == metric].groupby("layer", observed=True)["value"].mean()
            if len(m):
                ax.plot(m.index, m.values, style, ms=3, color=color,
                        label=f"{metric.removeprefix('attention_')} ({split.upper()})")
    ax.set_xlabel("block l")
    integer_ticks(ax)
    ax.set_ylabel("attention weight\n(mean over heads and samples)")
    ax.set_title("last position's attention (sink excluded)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(ncols=2)
    return fig


def residual_scale_figure(df: pd.DataFrame, ax=None):
    """Learned residual scaling coefficient of each block (final step), ID and OOD."""
    sc = _final(df, "residual_scale")
    sc = sc[sc["metric"] == "residual_scale"] if not sc.empty else sc
    fig, (ax,) = panels(ax, 1)
    for split in ("id", "ood"):
        m = sc[sc["split"] == split].groupby("layer", observed=True)["value"].mean() if len(sc) else pd.Series(dtype=float)
        if len(m):
            ax.plot(m.index, m.values, "-o", ms=3, label=SPLIT_NAME[split])
    ax.axhline(1.0, color="grey", lw=0.8, ls=":", label="α = 1 (unscaled)")
    ax.set_xlabel("block l")
    integer_ticks(ax)
    ax.set_ylabel("residual scale α (dimensionless)")
    ax.set_title("learned residual scaling coefficients")
    ax.legend()
    return fig


def kernel_ablation_figure(df: pd.DataFrame, ax=None):
    """Raw (top) and null-corrected (bottom) predictive information per kernel, ID (left) and OOD
    (right), final step, post view; mean ± std over seeds. ``ax``: 4 axes in that order."""
    kc = kernel_curves(df)
    if ax is None:
        fig, axes = new_figure(2, 2, columns="double", squeeze=False, sharex=True)
        axes = [a for row in axes for a in row]
    else:
        fig, axes = panels(ax, 4)
    kinds = ("predictive_information", "predictive_information_corrected")
    for i, metric in enumerate(kinds):
        for j, split in enumerate(("id", "ood")):
            a = axes[2 * i + j]
            g = kc[(kc["metric"] == metric) & (kc["split"] == split)] if len(kc) else kc
            for (kernel, gk), style in zip(g.groupby("kernel", sort=False, observed=True) if len(g) else [],
                                           ("-o", "--s", ":^", "-.d"), strict=False):
                m = gk.groupby("layer", observed=True)["value"].mean()
                s = gk.groupby("layer", observed=True)["value"].std().fillna(0)
                (line,) = a.plot(m.index, m.values, style, ms=3, label=str(kernel))
                a.fill_between(m.index, m - s, m + s, color=line.get_color(), alpha=0.15, lw=0)
            if is_signed(metric):
                a.axhline(0, color="grey", lw=0.6)
            a.set_title(SPLIT_NAME[split])
            if i == 1:
                a.set_xlabel(LAYER_LABEL)
            a.set_ylabel(quantity_label(df, metric))
            integer_ticks(a)
    if axes[0].get_legend_handles_labels()[0]:  # one legend: the kernels are the same in every panel
        axes[0].legend(title="kernel (band: ± 1 sd over seeds)")
    fig.suptitle("kernel ablation (final step, post view)")
    return fig


def analysis_figures(df: pd.DataFrame) -> dict:
    """{name: function drawing the figure} for the analyses that have rows."""
    figs = {}
    if not _final(df, "attention_").empty:
        figs["attention_signal"] = lambda: attention_figure(df)
    sc = _final(df, "residual_scale")
    if not sc.empty and (sc["metric"] == "residual_scale").any():
        figs["residual_scales"] = lambda: residual_scale_figure(df)
    if not kernel_curves(df).empty:
        figs["kernel_ablation"] = lambda: kernel_ablation_figure(df)
    return figs


def _sel(df, metric, split=None, view="post"):
    s = df[(df["metric"] == metric) & (df["final_norm"] == view)]
    return s if split is None else s[s["split"] == split]


def information_heatmap(df: pd.DataFrame, metric: str = "predictive_information", view: str = "post", *,
                        ax=None, vmin: float | None = None, vmax: float | None = None, cmap: str | None = None):
    """Layer x step heatmap for each split (paper Fig. 2), one panel per split, all panels on ONE
    colour scale (one colour bar; the title says so). Signed metrics (``*_corrected``, gains) use a
    diverging map centred at 0 (symmetric limits unless given). ``ax``: one axes per split present."""
    present = set(_sel(df, metric, view=view)["split"])
    splits = [s for s in ("id", "ood") if s in present] or ["id"]
    fig, axes = panels(ax, len(splits))
    grids = [_sel(df, metric, split, view).pivot_table(index="layer", columns="step", values="value", aggfunc="mean", observed=True)
             for split in splits]
    signed = is_signed(metric)
    lo, hi = color_limits([w.values for w in grids], vmin, vmax, centred=signed)
    norm = color_norm(lo, hi, centred=signed)
    cmap = cmap or (DIVERGING_MAP if signed else SEQUENTIAL_MAP)
    im = None
    for a, split, w in zip(axes, splits, grids, strict=True):
        im = a.imshow(w.values, aspect="auto", origin="lower", cmap=cmap, norm=norm, interpolation="nearest")
        n_x = w.shape[1]
        ticks = np.unique(np.linspace(0, n_x - 1, min(8, n_x)).round().astype(int)) if n_x else []
        a.set_xticks(ticks, [str(w.columns[i]) for i in ticks], rotation=45 if n_x > 4 else 0)
        a.set_yticks(range(w.shape[0]), [str(i) for i in w.index])
        a.set_xlabel("training step")
        a.set_ylabel(LAYER_LABEL)
        a.set_title(SPLIT_NAME[split])
    scale = "shared colour scale" + (", centred at 0" if signed else "")
    fig.colorbar(im, ax=axes, label=quantity_label(df, metric), shrink=0.95)
    fig.suptitle(f"{QUANTITY.get(metric, metric)}: {scale} (view {view})")
    return fig


def layer_curves(df: pd.DataFrame, metric: str = "predictive_information", view: str = "post",
                 steps: list[int] | None = None, with_null: bool = True, *, ax=None):
    """Curves by layer at chosen steps, one panel per split (shared y): mean over seeds with a band of
    ± 1 sd over seeds, and the permutation null as a dashed line with a hatched band of its mean
    ± its own spread (``<metric>_null_std``). ``ax``: one axes per split present."""
    data = _sel(df, metric, view=view)
    present = set(data["split"])
    splits = [s for s in ("id", "ood") if s in present] or ["id"]
    all_steps = sorted(data["step"].unique())
    steps = steps or (sorted({all_steps[0], *all_steps[-3:]}) if all_steps else [])  # start + the last stretch
    fig, axes = panels(ax, len(splits), sharey=True)
    colors = palette(SEQUENTIAL_MAP, np.linspace(0, 0.9, max(len(steps), 1)))
    any_null = False
    for a, split in zip(axes, splits, strict=True):
        for c, step in zip(colors, steps, strict=False):
            g = data[(data["split"] == split) & (data["step"] == step)].groupby("layer", observed=True)["value"]
            m, s = g.mean(), g.std().fillna(0)
            a.plot(m.index, m.values, "-o", ms=3, color=c, label=f"step {step}")
            a.fill_between(m.index, m - s, m + s, color=c, alpha=0.2, lw=0)
            if with_null:
                n = _sel(df, f"{metric}_null", split, view)
                nm = n[n["step"] == step].groupby("layer", observed=True)["value"].mean()
                if len(nm):
                    any_null = True
                    sd = _sel(df, f"{metric}_null_std", split, view)
                    ns = sd[sd["step"] == step].groupby("layer", observed=True)["value"].mean().reindex(nm.index).fillna(0)
                    a.plot(nm.index, nm.values, "--", color=c, lw=1)
                    a.fill_between(nm.index, nm - ns, nm + ns, facecolor=c, alpha=0.25, hatch="///",
                                   edgecolor=c, lw=0)
        if is_signed(metric):
            a.axhline(0, color="grey", lw=0.6)
        a.set_title(SPLIT_NAME[split])
        a.set_xlabel(LAYER_LABEL)
        integer_ticks(a)
    axes[0].set_ylabel(quantity_label(df, metric))
    extra = [(_proxy_patch(facecolor="grey", alpha=0.2), "± 1 sd over seeds")]
    if any_null:
        extra += [(_proxy_line(color="grey", ls="--", lw=1), "permutation null (mean)"),
                  (_proxy_patch(facecolor="grey", alpha=0.25, hatch="///", edgecolor="grey"),
                   "null mean ± null sd")]
    _legend_handles(axes[-1], extra)
    fig.suptitle(f"{QUANTITY.get(metric, metric)} by layer (final-norm view {view})")
    return fig


def distinct_targets(splits: dict[str, list[dict]]) -> dict[str, int]:
    """Split -> number of distinct ``target`` strings of its records: the K of the chance line
    1 / K of the early-exit accuracy (the table does not hold it: ``base ** label_entropy`` is
    far below K, since the label kernel on embeddings does not separate the classes)."""
    return {name: len({r["target"] for r in records}) for name, records in splits.items() if records}


def early_exit_accuracy(df: pd.DataFrame, step: int | None = None, view: str = "post", *, ax=None,
                        classes: dict[str, float] | None = None):
    """Early-exit accuracy by layer for all / ID / OOD at one step (the last by default), mean ± 1 sd
    over seeds, with a chance line 1 / K per split where ``classes`` (split -> number K of target
    classes, e.g. :func:`distinct_targets` of the evaluated records) gives K; without it the
    figure says that no chance line is drawn."""
    data = _sel(df, "early_exit_accuracy", view=view)
    step = (int(data["step"].max()) if len(data) else 0) if step is None else step
    fig, (ax,) = panels(ax, 1)
    colors = {"all": "C2", "id": "C0", "ood": "C1"}
    for split in ("all", "id", "ood"):
        g = data[(data["split"] == split) & (data["step"] == step)].groupby("layer", observed=True)["value"]
        if len(g):
            m, s = g.mean(), g.std().fillna(0)
            ax.errorbar(m.index, m.values, yerr=s.values, marker="o", ms=3, capsize=2, color=colors[split],
                        label=SPLIT_NAME[split])
    for split in ("id", "ood"):
        k = (classes or {}).get(split)
        if k and k >= 1 and len(data[data["split"] == split]):
            ax.axhline(1 / k, color=colors[split], ls=":", lw=1.2, label=f"chance 1/K (K = {k:g})")
    if not classes:
        ax.text(0.99, 0.98, "no chance line: number of classes not given", transform=ax.transAxes,
                ha="right", va="top", fontsize="small", color="grey")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(LAYER_LABEL)
    integer_ticks(ax)
    ax.set_ylabel("early-exit accuracy (fraction correct)")
    ax.set_title(f"early exit (final norm + LM head), step {step}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title="error bars: ± 1 sd over seeds")
    return fig


def save_figures(df: pd.DataFrame, folder: Path, view: str = "post",
                 settings: FigureSettings | None = None, classes: dict[str, float] | None = None) -> dict[str, Path]:
    """Draw the standard figures into ``folder`` in the formats, dpi and style of ``settings``
    (default PNG); ``classes``: split -> number of target classes, for the chance line of the
    early-exit accuracy. Returns name -> path of the first format (none, with a warning, without
    matplotlib: the extra ``plots``)."""
    if not figures_available():
        return {}
    figs = {
        "information_heatmap": lambda: information_heatmap(df, view=view),
        "information_corrected_heatmap": lambda: information_heatmap(df, "predictive_information_corrected", view),
        "information_curves": lambda: layer_curves(df, view=view),
        "incremental_gain": lambda: layer_curves(df, "incremental_gain", view=view),
        "early_exit_accuracy": lambda: early_exit_accuracy(df, view=view, classes=classes),
    }
    figs.update(analysis_figures(df))
    return write_figures(figs, folder, settings)
