"""Figures and report of the Layer-by-Layer suite (``inforidge layers``).

Figures put the depth fraction (layer / L) on the x-axis so models of different depth
overlay (Skean et al. 2025, Fig. 1-2): one figure per metric, one curve per model or
checkpoint; each stress sweep gets one figure with a curve per stress value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from inforidge.report.figures import new_figure, palette, write_figures
from inforidge.report.markdown import base_units, markdown_table, table_units
from inforidge.results.table import write_text_atomic

UNITS = {
    "prompt_entropy": "entropy", "dataset_entropy": "entropy", "lidar": "entropy", "dime": "entropy",
    "prompt_entropy_normalized": "fraction of log T", "effective_rank": "effective rank",
    "dataset_effective_rank": "effective rank", "curvature": "radians", "infonce": "nats (lower = more invariant)",
    "probe_accuracy": "accuracy", "sublayer_prompt_entropy": "entropy",
}


ORDER = ("prompt_entropy", "prompt_entropy_normalized", "dataset_entropy", "effective_rank",
         "dataset_effective_rank", "curvature", "infonce", "lidar", "dime", "probe_accuracy",
         "sublayer_prompt_entropy")


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index, dtype=object)


def _base_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the plain suite (no stress sweep)."""
    stress = _col(df, "stress")
    return df[stress.isna()]


def _curve_label(model, step) -> str:
    return str(model) if step is None or pd.isna(step) else f"{model} @ step {int(step)}"


def _unit(df: pd.DataFrame, metric: str) -> str:
    u = UNITS.get(metric, "")
    return table_units(df) if u == "entropy" else u


def depth_figure(df: pd.DataFrame, metric: str):
    """One metric by depth fraction, a curve per (model, step)."""
    d = _base_rows(df)
    d = d[d["metric"] == metric].copy()
    d["_model"] = _col(d, "model").astype(str)
    d["_step"] = pd.to_numeric(_col(d, "step"), errors="coerce")
    fig, ax = new_figure(figsize=(5.5, 4))
    groups = list(d.groupby(["_model", "_step"], dropna=False, sort=True))
    steps = sorted({s for (_, s), _ in groups if not pd.isna(s)})
    many_steps = len(steps) > 1
    colors = palette("viridis", np.linspace(0, 0.9, max(len(steps), 1))) if many_steps else None
    for i, ((model, step), g) in enumerate(groups):
        g = g.groupby("depth_fraction")["value"].mean().sort_index()
        c = colors[steps.index(step)] if many_steps and not pd.isna(step) else f"C{i % 10}"
        ax.plot(g.index, g.values, "-o", ms=3, color=c, label=_curve_label(model, step))
    ax.set_xlabel("depth fraction (layer / L)")
    ax.set_ylabel(_unit(df, metric))
    ax.set_xlim(-0.02, 1.02)
    view = ", ".join(sorted(set(_col(d, "final_norm").dropna().astype(str))))
    ax.set_title(f"{metric}" + (f" (final norm: {view})" if view else ""), fontsize=9)
    if groups:
        ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.13, top=0.92)  # fixed: tight_layout draws twice
    return fig


def stress_figure(df: pd.DataFrame, stress: str, metrics=("prompt_entropy", "prompt_entropy_normalized", "dataset_entropy")):
    """Metrics by depth fraction under one stress sweep: a curve per stress value (and model)."""
    d = df[_col(df, "stress") == stress].copy()
    d["_model"] = _col(d, "model").astype(str)
    d["_step"] = pd.to_numeric(_col(d, "step"), errors="coerce")
    fig, axes = new_figure(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    values = sorted(d["stress_value"].unique())
    colors = palette("plasma", np.linspace(0, 0.85, max(len(values), 1)))
    styles = ["-", "--", ":", "-."]
    for ax, metric in zip(axes[0], metrics, strict=True):
        m = d[d["metric"] == metric]
        for j, (_key, g) in enumerate(m.groupby(["_model", "_step"], dropna=False, sort=True)):
            for c, v in zip(colors, values, strict=True):
                gv = g[g["stress_value"] == v].groupby("depth_fraction")["value"].mean().sort_index()
                name = f"{v:g}" if j == 0 else None
                ax.plot(gv.index, gv.values, styles[j % 4], color=c, lw=1.3, label=name)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("depth fraction (layer / L)")
        ax.set_ylabel(_unit(df, metric))
    axes[0][0].legend(title="p" if stress != "length" else "tokens", fontsize=7)
    fig.suptitle(f"stress: {stress} (line style = model/checkpoint)", fontsize=9)
    fig.tight_layout()
    return fig


def save_layer_figures(df: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """Every depth-fraction figure as PNG under ``folder``; returns name -> path."""
    if df.empty:
        return {}
    present = set(_base_rows(df)["metric"])
    metrics = [m for m in ORDER if m in present]
    figs = {f"depth_{m}": (lambda m=m: depth_figure(df, m)) for m in metrics}
    for stress in sorted(set(_col(df, "stress").dropna())):
        figs[f"stress_{stress}"] = lambda s=stress: stress_figure(df, s)
    return write_figures(figs, folder)


def _wide(d: pd.DataFrame) -> pd.DataFrame:
    w = d.pivot_table(index=["layer", "depth_fraction"], columns="metric", values="value", aggfunc="mean")
    cols = [m for m in ORDER if m in w.columns] + [c for c in w.columns if c not in ORDER]
    return w[cols].reset_index()


def write_layers_report(
    df: pd.DataFrame,
    out_dir: Path,
    figures: dict[str, Path],
    *,
    settings=None,
    source: str = "",
    n_prompts: int | None = None,
    correlations: pd.DataFrame | None = None,
    notes: list[str] | None = None,
) -> Path:
    """``<out_dir>/report.md``: settings, per-layer tables, figures, stress and probe sections."""
    s = settings
    units = base_units(2.0 if s is None else s.base)
    lines = ["# Layer-by-Layer representation metrics", ""]
    lines += [
        f"Text source: `{source}` ({n_prompts} prompts read). Metrics of Skean et al. 2025 (METHOD §7) for "
        "every layer 0..L (0 = embedding output); x-axes are the depth fraction layer / L.",
        "",
    ]
    if s is not None:
        lines += [
            f"- Entropies: linear kernel, alpha = {s.alpha:g}, in {units}; InfoNCE in nats (temperature {s.temperature:g}).",
            f"- Prompt-level metrics: mean over all measured prompts (padding masked; prompts under {s.min_tokens} "
            f"tokens skipped; truncated to {s.max_length} tokens).",
            f"- Dataset-level and augmentation metrics: a seeded subset of at most {s.n_samples} prompts "
            f"(seed {s.seed}); augmentations: nlpaug SplitAug + RandomCharAug + KeyboardAug (p = {s.augment_p:g}), "
            f"two copies per prompt; DiME with {s.n_permutations} permutations.",
            f"- Final-norm view of the last layer of causal LMs: `{s.final_norm}` "
            "(pre = raw residual stream like every other layer; encoders: `none`).",
        ]
    for n in notes or []:
        lines.append(f"- Note: {n}")
    lines.append("")
    base = _base_rows(df)
    base = base[base["metric"] != "sublayer_prompt_entropy"] if len(base) else base
    if len(base):
        base = base.assign(_model=_col(base, "model").astype(str), _step=pd.to_numeric(_col(base, "step"), errors="coerce"))
        for (model, step), g in base.groupby(["_model", "_step"], dropna=False, sort=True):
            lines += [f"## {_curve_label(model, step)}", "", markdown_table(_wide(g)), ""]
    for name, p in figures.items():
        if name.startswith("depth_"):
            lines += [f"![{name}](figures/{p.name})", ""]
    stress = df[_col(df, "stress").notna()] if len(df) else df
    if len(stress):
        lines += ["## Stress inputs", "",
                  "Prompt entropy (mean over prompts) by layer for each stress value; repetition and randomness "
                  "replace each content token with probability p (by one token of the prompt / a uniform "
                  "vocabulary token); length truncates prompts to n tokens.", ""]
        for kind, g in stress[stress["metric"] == "prompt_entropy"].groupby("stress"):
            w = g.pivot_table(index="stress_value", columns="layer", values="value", aggfunc="mean")
            w.columns = [f"layer {c}" for c in w.columns]
            lines += [f"### {kind}", "", markdown_table(w.reset_index()), ""]
            if f"stress_{kind}" in figures:
                lines += [f"![stress_{kind}](figures/stress_{kind}.png)", ""]
    if correlations is not None and len(correlations):
        lines += ["## Relation to downstream quality", "",
                  "Linear-probe accuracy (logistic regression, cross-validated) on mean-pooled features of each "
                  "layer, and the correlation of each metric with it across layers (also in correlations.csv):", "",
                  markdown_table(correlations), ""]
    return write_text_atomic(out_dir / "report.md", "\n".join(lines))


__all__ = ["depth_figure", "save_layer_figures", "stress_figure", "write_layers_report"]
