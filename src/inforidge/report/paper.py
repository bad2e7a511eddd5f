"""The combined report of ``inforidge paper`` (main, depth-threshold and overfitting runs)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from inforidge.config.loading import load_config
from inforidge.report.figures import new_figure, palette
from inforidge.report.markdown import SPLIT_NAME, markdown_table
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


def _plot_depths(depth_runs: dict[int, Path], path: Path) -> None:

    fig, axes = new_figure(1, 2, figsize=(11, 4), squeeze=False)
    colors = palette("viridis", [i / max(len(depth_runs) - 1, 1) * 0.9 for i in range(len(depth_runs))])
    for (k, run_dir), c in zip(sorted(depth_runs.items()), colors, strict=True):
        df = read_run_table(run_dir)
        for ax, split in zip(axes[0], ("id", "ood"), strict=True):
            m = _final_curve(df, "predictive_information_corrected", split)
            ax.plot(m.index / k, m.values, "-o", ms=3, color=c, label=f"k = {k}")
    for ax, split in zip(axes[0], (SPLIT_NAME["id"], SPLIT_NAME["ood"]), strict=True):
        ax.set_xlabel("depth fraction l / L")
        ax.set_ylabel("null-corrected predictive information (bits)")
        ax.set_title(f"depth threshold, final step ({split}, post view)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _plot_overfit(main_dir: Path, overfit_dir: Path, path: Path) -> None:

    fig, axes = new_figure(1, 2, figsize=(11, 4), squeeze=False)
    for label, run_dir, color in (("main (final)", main_dir, "C0"), ("overfit (final)", overfit_dir, "C3")):
        df = read_run_table(run_dir)
        step = int(df["step"].max())
        for ax, split in zip(axes[0], ("id", "ood"), strict=True):
            m = _final_curve(df, "predictive_information_corrected", split)
            r = _final_curve(df, "predictive_information", split)
            ax.plot(m.index, m.values, "-o", ms=3, color=color, label=f"{label}, step {step}: corrected")
            ax.plot(r.index, r.values, ":", color=color, label=f"{label}: raw")
    for ax, split in zip(axes[0], (SPLIT_NAME["id"], SPLIT_NAME["ood"]), strict=True):
        ax.set_xlabel("layer")
        ax.set_ylabel("predictive information (bits)")
        ax.set_title(f"overfitting: main vs longer training ({split}, post view)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_paper_report(root: Path, runs: dict[str, Path], depth_runs: dict[int, Path]) -> tuple[Path, dict]:
    figures = root / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    _plot_depths(depth_runs, figures / "depth_threshold.png")
    _plot_overfit(runs["main"], runs["overfit"], figures / "overfitting.png")
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
        "![depth threshold](figures/depth_threshold.png)",
        "",
        "## Overfitting (paper Fig. 4)",
        "The main config trained longer (no early stopping; its linear schedule spans the longer run, so "
        "its curves at the main run's steps are not the main run's), measured at the main run's steps "
        "and then at every multiple of its last step. Final curves of both runs:",
        "",
        markdown_table(osum),
        "",
        "![overfitting](figures/overfitting.png)",
        "",
    ]
    path = write_text_atomic(root / "report.md", "\n".join(lines))
    return path, {"depths": dsum.to_dict("records"), "overfit": osum.to_dict("records")}
