"""Figures and report of the Layer-by-Layer suite (``inforidge layers``).

Figures put the depth fraction (layer / L) on the x-axis so models of different depth
overlay (Skean et al. 2025, Fig. 1-2): one figure per metric, one curve per model or
checkpoint; each stress sweep gets one figure with a curve per stress value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from inforidge.config.settings import WITHOUT_FIRST, FigureSettings
from inforidge.report.figures import (
    DEPTH_FRACTION_LABEL,
    figures_available,
    palette,
    panels,
    write_figures,
)
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


MASSIVE_PREFIX = "massive_"


def _is_side_metric(metric) -> bool:
    """Dominant-token statistics and the without-first-token views: shown in their own section."""
    m = str(metric)
    return m.startswith(MASSIVE_PREFIX) or m.endswith(WITHOUT_FIRST)


def _curves_differ(a: pd.Series, b: pd.Series, rtol: float = 0.05) -> bool:
    """Whether two per-layer curves differ by more than ``rtol`` of the larger one's range (or level)."""
    both = pd.concat([a, b], axis=1, keys=["a", "b"]).dropna()
    if both.empty:
        return False
    scale = max(float(both.to_numpy().max() - both.to_numpy().min()), float(both.abs().to_numpy().max()) * 0.1, 1e-12)
    return float((both["a"] - both["b"]).abs().max()) > rtol * scale


def dominant_token_lines(g: pd.DataFrame) -> list[str]:
    """Report lines on tokens that dominate the norms (attention-sink "massive activations") and on
    the curves measured without the first token, for one (model, step)."""
    share = g[g["metric"] == "massive_token_share"].groupby("layer", observed=True)["value"].mean()
    if share.empty:
        return []
    hit = share[share >= 0.5]
    if hit.empty:
        return [f"No token dominates the norms (largest share of prompts with a token ≥ the threshold × its "
                f"prompt's median norm: {share.max():.2f}).", ""]

    def stat(metric):
        v = g[(g["metric"] == metric) & g["layer"].isin(hit.index)]["value"]
        return v.mode().iloc[0] if len(v) else None

    ratio = g[(g["metric"] == "massive_token_ratio") & g["layer"].isin(hit.index)]["value"].median()
    pos, dim = stat("massive_token_position"), stat("massive_dimension")
    layers = ", ".join(str(int(x)) for x in hit.index)
    lines = [f"**A single token dominates the norms** at layers {layers}: in at least half of the prompts one token's "
             f"state is ≥ {_col(g, 'massive_ratio').dropna().iloc[0]:g}× the prompt's median token norm (median "
             f"{ratio:.0f}×), most often real-token position {int(pos) if pos is not None else '?'}, dimension "
             f"{int(dim) if dim is not None else '?'} (an attention-sink \"massive activation\"). Rows of those layers "
             "carry flag `massive_activation`: token-level metrics there describe that one token more than the prompt.",
             ""]
    rows = []
    for metric in ("prompt_entropy", "effective_rank", "dataset_entropy"):
        a = g[g["metric"] == metric].groupby("layer", observed=True)["value"].mean()
        b = g[g["metric"] == metric + WITHOUT_FIRST].groupby("layer", observed=True)["value"].mean()
        if not b.empty and _curves_differ(a, b):
            rows.append(metric)
    if rows:
        lines += [f"Without the first token the curves change ({', '.join(rows)}); both, by layer:", ""]
        cols = {}
        for metric in rows:
            cols[metric] = g[g["metric"] == metric].groupby("layer", observed=True)["value"].mean()
            cols[metric + WITHOUT_FIRST] = g[g["metric"] == metric + WITHOUT_FIRST].groupby("layer", observed=True)["value"].mean()
        lines += [markdown_table(pd.DataFrame(cols).reset_index()), ""]
    return lines


def _curve_label(model, step) -> str:
    return str(model) if step is None or pd.isna(step) else f"{model} @ step {int(step)}"


def _unit(df: pd.DataFrame, metric: str) -> str:
    u = UNITS.get(metric, "")
    return table_units(df) if u == "entropy" else u


def metric_label(df: pd.DataFrame, metric: str) -> str:
    """Axis label of a suite metric: its name and unit, e.g. "prompt entropy [bits]"."""
    unit = _unit(df, metric)
    return metric.replace("_", " ") + (f" [{unit}]" if unit else "")


def depth_figure(df: pd.DataFrame, metric: str, *, ax=None):
    """One metric by depth fraction, a curve per (model, step); drawn into ``ax`` when given."""
    d = _base_rows(df)
    d = d[d["metric"] == metric].copy()
    d["_model"] = _col(d, "model").astype(str)
    d["_step"] = pd.to_numeric(_col(d, "step"), errors="coerce")
    fig, (ax,) = panels(ax, 1)
    groups = list(d.groupby(["_model", "_step"], dropna=False, sort=True, observed=True))
    steps = sorted({s for (_, s), _ in groups if not pd.isna(s)})
    many_steps = len(steps) > 1
    colors = palette("viridis", np.linspace(0, 0.9, max(len(steps), 1))) if many_steps else None
    alt = _base_rows(df)
    alt = alt[alt["metric"] == metric + WITHOUT_FIRST]
    for i, ((model, step), g) in enumerate(groups):
        g = g.groupby("depth_fraction", observed=True)["value"].mean().sort_index()
        c = colors[steps.index(step)] if many_steps and not pd.isna(step) else f"C{i % 10}"
        ax.plot(g.index, g.values, "-o", ms=3, color=c, label=_curve_label(model, step))
        same = alt[(_col(alt, "model").astype(str) == model)
                   & (pd.to_numeric(_col(alt, "step"), errors="coerce").fillna(-1) == (-1 if pd.isna(step) else step))]
        other = same.groupby("depth_fraction", observed=True)["value"].mean().sort_index()
        if not other.empty and _curves_differ(g, other):  # a dominant first token changes the curve
            ax.plot(other.index, other.values, "--", color=c, lw=1, label=f"{_curve_label(model, step)}, without first token")
    ax.set_xlabel(DEPTH_FRACTION_LABEL)
    ax.set_ylabel(metric_label(df, metric))
    ax.set_xlim(-0.02, 1.02)
    view = ", ".join(sorted(set(_col(d, "final_norm").dropna().astype(str))))
    ax.set_title(metric.replace("_", " ") + (f" (final norm: {view})" if view else ""))
    if groups:
        ax.legend()
    return fig


def stress_figure(df: pd.DataFrame, stress: str, metrics=("prompt_entropy", "prompt_entropy_normalized", "dataset_entropy"),
                  *, ax=None):
    """Metrics by depth fraction under one stress sweep: a curve per stress value (and model), one
    panel per metric (``ax``: one axes per metric)."""
    d = df[_col(df, "stress") == stress].copy()
    d["_model"] = _col(d, "model").astype(str)
    d["_step"] = pd.to_numeric(_col(d, "step"), errors="coerce")
    fig, axes = panels(ax, len(metrics))
    values = sorted(d["stress_value"].unique())
    colors = palette("plasma", np.linspace(0, 0.85, max(len(values), 1)))
    styles = ["-", "--", ":", "-."]
    for a, metric in zip(axes, metrics, strict=True):
        m = d[d["metric"] == metric]
        for j, (_key, g) in enumerate(m.groupby(["_model", "_step"], dropna=False, sort=True, observed=True)):
            for c, v in zip(colors, values, strict=True):
                gv = g[g["stress_value"] == v].groupby("depth_fraction", observed=True)["value"].mean().sort_index()
                name = f"{v:g}" if j == 0 else None
                a.plot(gv.index, gv.values, styles[j % 4], color=c, lw=1.3, label=name)
        a.set_title(metric.replace("_", " "))  # the panel names the metric, the y label its unit
        a.set_xlabel("depth fraction l / L")
        unit = UNITS.get(metric, "")
        a.set_ylabel(f"entropy [{table_units(df)}]" if unit == "entropy" else unit)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(title="probability p" if stress != "length" else "length [tokens]")
    fig.suptitle(f"stress: {stress} (line style = model/checkpoint)")
    return fig


def save_layer_figures(df: pd.DataFrame, folder: Path, settings: FigureSettings | None = None) -> dict[str, Path]:
    """Every depth-fraction figure under ``folder`` in the formats, dpi and style of ``settings``
    (default PNG); returns name -> path of the first format."""
    if df.empty or not figures_available():
        return {}
    present = {m for m in _base_rows(df)["metric"] if not _is_side_metric(m)}
    metrics = [m for m in ORDER if m in present]
    figs = {f"depth_{m}": (lambda m=m: depth_figure(df, m)) for m in metrics}
    for stress in sorted(set(_col(df, "stress").dropna())):
        figs[f"stress_{stress}"] = lambda s=stress: stress_figure(df, s)
    return write_figures(figs, folder, settings)


def _wide(d: pd.DataFrame) -> pd.DataFrame:
    w = d.pivot_table(index=["layer", "depth_fraction"], columns="metric", values="value", aggfunc="mean", observed=True)
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
        for (model, step), g in base.groupby(["_model", "_step"], dropna=False, sort=True, observed=True):
            main = g[~g["metric"].map(_is_side_metric)]
            lines += [f"## {_curve_label(model, step)}", "", markdown_table(_wide(main)), ""]
            lines += dominant_token_lines(g)
    for name, p in figures.items():
        if name.startswith("depth_"):
            lines += [f"![{name}](figures/{p.name})", ""]
    stress = df[_col(df, "stress").notna()] if len(df) else df
    if len(stress):
        lines += ["## Stress inputs", "",
                  "Prompt entropy (mean over prompts) by layer for each stress value; repetition and randomness "
                  "replace each content token with probability p (by one token of the prompt / a uniform "
                  "vocabulary token); length truncates prompts to n tokens.", ""]
        for kind, g in stress[stress["metric"] == "prompt_entropy"].groupby("stress", observed=True):
            w = g.pivot_table(index="stress_value", columns="layer", values="value", aggfunc="mean", observed=True)
            w.columns = [f"layer {c}" for c in w.columns]
            lines += [f"### {kind}", "", markdown_table(w.reset_index()), ""]
            if f"stress_{kind}" in figures:
                lines += [f"![stress_{kind}](figures/{figures[f'stress_{kind}'].name})", ""]
    if correlations is not None and len(correlations):
        lines += ["## Relation to downstream quality", "",
                  "Linear-probe accuracy (logistic regression, cross-validated) on mean-pooled features of each "
                  "layer, and the correlation of each metric with it across layers (also in correlations.csv):", "",
                  markdown_table(correlations), ""]
    return write_text_atomic(out_dir / "report.md", "\n".join(lines))


__all__ = ["depth_figure", "save_layer_figures", "stress_figure", "write_layers_report"]
