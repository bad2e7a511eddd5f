"""The combined report of ``inforidge paper`` (main, depth-threshold and overfitting runs)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from inforidge.config.loading import load_config
from inforidge.config.settings import FigureSettings
from inforidge.report.figures import (
    DEPTH_FRACTION_LABEL,
    LAYER_LABEL,
    integer_ticks,
    palette,
    panels,
    write_figures,
)
from inforidge.report.markdown import SPLIT_NAME, markdown_table, table_units
from inforidge.results.summaries import _final_curve, depth_summary, overfit_summary
from inforidge.results.table import read_run_table, write_text_atomic


def depth_sentence(summary: pd.DataFrame) -> str:
    parts = []
    for split, name in (("id", "in-distribution"), ("ood", "out-of-distribution")):
        g = summary[summary["split"] == split]
        if g.empty:
            continue
        ridge = [int(k) for k in g.loc[g["ridge"], "k"]]
        before = [int(k) for k in g.loc[g["peak before last"] & ~g["ridge"], "k"]]
        s = (f"{name}: a null-corrected peak before the last layer with a clear drop (ridge) appears for "
             f"k ∈ {{{', '.join(map(str, ridge))}}}" if ridge else
             f"{name}: no depth shows a null-corrected ridge (peak before the last layer with a clear drop)")
        if before:
            s += f"; a peak before the last layer without a clear drop for k ∈ {{{', '.join(map(str, before))}}}"
        parts.append(s + ".")
    return " ".join(parts)


def depth_threshold_figure(depth_runs: dict[int, Path], *, ax=None):
    """Final null-corrected predictive information by depth fraction, a curve per depth k; ID
    (left) and OOD (right) share one y scale. ``ax``: two axes."""
    fig, axes = panels(ax, 2, sharey=True)
    colors = palette("viridis", [i / max(len(depth_runs) - 1, 1) * 0.9 for i in range(len(depth_runs))])
    units = "bits"
    for (k, run_dir), c in zip(sorted(depth_runs.items()), colors, strict=True):
        df = read_run_table(run_dir)
        units = table_units(df)
        for a, split in zip(axes, ("id", "ood"), strict=True):
            m = _final_curve(df, "predictive_information_corrected", split)
            a.plot(m.index / k, m.values, "-o", ms=3, color=c, label=f"k = {k}")
    for a, split in zip(axes, ("id", "ood"), strict=True):
        a.axhline(0, color="grey", lw=0.6)
        a.set_xlabel(DEPTH_FRACTION_LABEL)
        a.set_title(SPLIT_NAME[split])
    axes[0].set_ylabel(f"I(h_l; Y) − null mean [{units}]")
    if axes[-1].get_legend_handles_labels()[0]:
        axes[-1].legend(title="depth (blocks)")
    fig.suptitle("depth threshold: final step, post view")
    return fig


def overfitting_figure(main_dir: Path, overfit_dir: Path, *, ax=None):
    """Final raw (dotted) and null-corrected (solid) predictive information of the main and the
    overfit run by layer; ID (left) and OOD (right). ``ax``: two axes."""
    fig, axes = panels(ax, 2, sharey=True)
    units = "bits"
    for label, run_dir, color in (("main", main_dir, "C0"), ("overfit", overfit_dir, "C3")):
        df = read_run_table(run_dir)
        units = table_units(df)
        step = int(df["step"].max())
        for a, split in zip(axes, ("id", "ood"), strict=True):
            m = _final_curve(df, "predictive_information_corrected", split)
            r = _final_curve(df, "predictive_information", split)
            a.plot(m.index, m.values, "-o", ms=3, color=color, label=f"{label} (step {step}): corrected")
            a.plot(r.index, r.values, ":", color=color, label=f"{label}: raw")
    for a, split in zip(axes, ("id", "ood"), strict=True):
        a.axhline(0, color="grey", lw=0.6)
        a.set_xlabel(LAYER_LABEL)
        integer_ticks(a)
        a.set_title(SPLIT_NAME[split])
    axes[0].set_ylabel(f"predictive information I(h_l; Y) [{units}]")
    axes[-1].legend()
    fig.suptitle("overfitting: main vs longer training (final step, post view)")
    return fig


def write_paper_report(root: Path, runs: dict[str, Path], depth_runs: dict[int, Path],
                       settings: FigureSettings | None = None) -> tuple[Path, dict]:
    """``<root>/report.md`` and its figures (formats, dpi and style of ``settings``; default PNG)."""
    figs = write_figures({"depth_threshold": lambda: depth_threshold_figure(depth_runs),
                          "overfitting": lambda: overfitting_figure(runs["main"], runs["overfit"])},
                         root / "figures", settings)
    dsum = depth_summary(depth_runs)
    osum = overfit_summary(runs["main"], runs["overfit"])
    rel = {name: d.relative_to(root) for name, d in runs.items()}
    pretrained = load_config(runs["main"] / "config.yaml").model.name_or_path
    depth_models = (f"`{pretrained}` cut to its first k blocks (its final norm and LM head kept), then fine-tuned"
                    if pretrained else "GPT-2 trained from scratch with k blocks")
    lines = [
        "# InfoRidge — synthetic reproduction",
        "",
        "Sub-runs (each an ordinary run with its own report, table and figures):",
        *[f"- `{name}`: [{p}/report.md]({p}/report.md)" for name, p in rel.items()],
        "",
        "## Main run",
        f"The paper's setting; every analysis (ridge statistics, attention, residual scaling, kernel "
        f"ablation) is in [its report]({rel['main']}/report.md).",
        "",
        "## Depth threshold (paper Fig. 3)",
        f"{depth_models} (otherwise the main config; the k equal to the main run's "
        "depth is the main run itself); final null-corrected "
        "predictive information against the depth fraction l / L (post view). Ridge = the runs' own "
        "criterion (peak before the last layer, paired drop > max(2·std over seeds, 0.02 bits)).",
        "",
        depth_sentence(dsum),
        "",
        markdown_table(dsum.assign(ridge=dsum["ridge"].map({True: "yes", False: "no"}),
                        **{"peak before last": dsum["peak before last"].map({True: "yes", False: "no"})})),
        "",
        f"![depth threshold](figures/{figs['depth_threshold'].name})",
        "",
        "## Overfitting (paper Fig. 4)",
        "The main config trained longer (no early stopping; its linear schedule spans the longer run, so "
        "its curves at the main run's steps are not the main run's), measured at the main run's steps "
        "and then at every multiple of its last step. Final curves of both runs:",
        "",
        markdown_table(osum),
        "",
        f"![overfitting](figures/{figs['overfitting'].name})",
        "",
    ]
    path = write_text_atomic(root / "report.md", "\n".join(lines))
    return path, {"depths": dsum.to_dict("records"), "overfit": osum.to_dict("records")}
