"""Figures from the tidy table. Every function takes the table and returns a matplotlib Figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from inforidge.report.figures import figures_available, new_figure, palette, write_figures
from inforidge.report.markdown import SPLIT_NAME, table_units
from inforidge.results.summaries import _final, kernel_curves


def analysis_figures(df: pd.DataFrame) -> dict:
    """{name: matplotlib Figure} for the analyses that have rows."""

    figs = {}
    att = _final(df, "attention_")
    if not att.empty:
        fig, ax = new_figure(figsize=(6, 4))
        styles = {"attention_signal": "-o", "attention_all": "--s", "attention_last": ":^"}
        for split, color in (("id", "C0"), ("ood", "C1")):
            g = att[att["split"] == split]
            for metric, style in styles.items():
                m = g[g["metric"] == metric].groupby("layer")["value"].mean()
                if len(m):
                    ax.plot(m.index, m.values, style, ms=3, color=color,
                            label=f"{metric.removeprefix('attention_')} ({SPLIT_NAME[split]})")
        ax.set_xlabel("layer (block)")
        ax.set_ylabel("attention of the last position (mean over heads, samples)")
        ax.set_title("attention to signal / all / last token (sink excluded, eager)", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        figs["attention_signal"] = fig
    sc = _final(df, "residual_scale")
    sc = sc[sc["metric"] == "residual_scale"] if not sc.empty else sc
    if not sc.empty:
        fig, ax = new_figure(figsize=(5.5, 4))
        for split in ("id", "ood"):
            m = sc[sc["split"] == split].groupby("layer")["value"].mean()
            if len(m):
                ax.plot(m.index, m.values, "-o", ms=3, label=SPLIT_NAME[split])
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("layer (block)")
        ax.set_ylabel("residual scale α")
        ax.set_title("learned residual scaling coefficients", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        figs["residual_scales"] = fig
    kc = kernel_curves(df)
    if not kc.empty:
        fig, axes = new_figure(2, 2, figsize=(10, 7), squeeze=False)
        kinds = (("predictive_information", "raw"), ("predictive_information_corrected", "null-corrected"))
        for i, (metric, kind) in enumerate(kinds):
            for j, split in enumerate(("id", "ood")):
                ax = axes[i][j]
                g = kc[(kc["metric"] == metric) & (kc["split"] == split)]
                for (kernel, gk), style in zip(g.groupby("kernel", sort=False), ("-o", "--s", ":^", "-.d"),
                                               strict=False):
                    m = gk.groupby("layer")["value"].mean()
                    s = gk.groupby("layer")["value"].std().fillna(0)
                    ax.plot(m.index, m.values, style, ms=4, label=str(kernel))
                    ax.fill_between(m.index, m - s, m + s, alpha=0.15)
                ax.set_title(f"{kind} predictive information ({SPLIT_NAME[split]})", fontsize=9)
                ax.set_xlabel("layer")
                ax.set_ylabel("bits")
                ax.legend(fontsize=7)
        fig.suptitle("kernel ablation (final step, post view; mean ± std over seeds)", fontsize=9)
        fig.tight_layout()
        figs["kernel_ablation"] = fig
    return figs


def _sel(df, metric, split=None, view="post"):
    s = df[(df["metric"] == metric) & (df["final_norm"] == view)]
    return s if split is None else s[s["split"] == split]


def information_heatmap(df: pd.DataFrame, metric: str = "predictive_information", view: str = "post"):
    """Layer x step heatmap for each split (paper Fig. 2); one panel per split."""
    splits = [s for s in ("id", "ood") if s in set(_sel(df, metric, view=view)["split"])]
    fig, axes = new_figure(1, max(len(splits), 1), figsize=(5.5 * max(len(splits), 1), 4), squeeze=False)
    for ax, split in zip(axes[0], splits, strict=False):
        w = _sel(df, metric, split, view).pivot_table(index="layer", columns="step", values="value", aggfunc="mean")
        im = ax.imshow(w.values, aspect="auto", origin="lower", cmap="viridis")
        ax.set_xticks(range(w.shape[1]), [str(c) for c in w.columns], rotation=45, fontsize=7)
        ax.set_yticks(range(w.shape[0]), [str(i) for i in w.index], fontsize=7)
        ax.set_xlabel("training step")
        ax.set_ylabel("layer")
        ax.set_title(f"{metric} ({SPLIT_NAME[split]})", fontsize=9)
        fig.colorbar(im, ax=ax, label=table_units(df))
    fig.suptitle(f"final-norm view: {view}", fontsize=9)
    fig.tight_layout()
    return fig


def layer_curves(df: pd.DataFrame, metric: str = "predictive_information", view: str = "post",
                 steps: list[int] | None = None, with_null: bool = True):
    """Curves by layer at chosen steps: mean +- std over seeds, the permutation null as a band."""
    data = _sel(df, metric, view=view)
    splits = [s for s in ("id", "ood") if s in set(data["split"])]
    all_steps = sorted(data["step"].unique())
    steps = steps or sorted({all_steps[0], *all_steps[-3:]})  # start + the last stretch of training
    fig, axes = new_figure(1, max(len(splits), 1), figsize=(5.5 * max(len(splits), 1), 4), squeeze=False, sharey=True)
    colors = palette("viridis", np.linspace(0, 0.9, len(steps)))
    for ax, split in zip(axes[0], splits, strict=False):
        for c, step in zip(colors, steps, strict=True):
            g = data[(data["split"] == split) & (data["step"] == step)].groupby("layer")["value"]
            m, s = g.mean(), g.std().fillna(0)
            ax.plot(m.index, m.values, "-o", ms=3, color=c, label=f"step {step}")
            ax.fill_between(m.index, m - s, m + s, color=c, alpha=0.2)
            if with_null:
                n = _sel(df, f"{metric}_null", split, view)
                n = n[n["step"] == step].groupby("layer")["value"]
                if len(n):
                    nm, ns = n.mean(), n.std().fillna(0)
                    ax.plot(nm.index, nm.values, "--", color=c, lw=1)
                    ax.fill_between(nm.index, nm - ns, nm + ns, color=c, alpha=0.08, hatch="//")
        ax.set_title(f"{metric} ({SPLIT_NAME[split]}); dashed = permutation null", fontsize=9)
        ax.set_xlabel("layer")
        ax.set_ylabel(table_units(df))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def early_exit_accuracy(df: pd.DataFrame, step: int | None = None, view: str = "post"):
    """Early-exit accuracy by layer for all / ID / OOD at one step (the last by default)."""
    data = _sel(df, "early_exit_accuracy", view=view)
    step = int(data["step"].max()) if step is None else step
    fig, ax = new_figure(figsize=(5.5, 4))
    for split in ("all", "id", "ood"):
        g = data[(data["split"] == split) & (data["step"] == step)].groupby("layer")["value"]
        if len(g):
            m, s = g.mean(), g.std().fillna(0)
            ax.errorbar(m.index, m.values, yerr=s.values, marker="o", ms=3, capsize=2, label=SPLIT_NAME[split])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("layer")
    ax.set_ylabel("accuracy")
    ax.set_title(f"early-exit accuracy (final norm + LM head), step {step}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def save_figures(df: pd.DataFrame, folder: Path, view: str = "post") -> dict[str, Path]:
    """Draw the standard figures as PNG into ``folder``; returns name -> path (none, with a
    warning, without matplotlib: the extra ``plots``)."""
    if not figures_available():
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    figs = {
        "information_heatmap": information_heatmap(df, view=view),
        "information_corrected_heatmap": information_heatmap(df, "predictive_information_corrected", view),
        "information_curves": layer_curves(df, view=view),
        "incremental_gain": layer_curves(df, "incremental_gain", view=view),
        "early_exit_accuracy": early_exit_accuracy(df, view=view),
    }

    figs.update(analysis_figures(df))
    return write_figures(figs, folder)
