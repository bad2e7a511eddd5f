"""Figures and report.md of the multi-token generation analysis (paper Figs. 7 and 8)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from inforidge._optional import require
from inforidge.config.settings import FigureSettings
from inforidge.measure.rows import NO_STEP
from inforidge.measure.sequence import SEQUENCE_METRIC, TYPE_GROUPS
from inforidge.report.figures import (
    DIVERGING_MAP,
    LAYER_LABEL,
    SEQUENTIAL_MAP,
    color_limits,
    color_norm,
    figures_available,
    palette,
    panels,
    write_figures,
)
from inforidge.report.markdown import markdown_table, table_units
from inforidge.results.table import write_text_atomic


def _per_step(df: pd.DataFrame, metric: str, view: str) -> pd.DataFrame:
    return df[(df["metric"] == metric) & (df["final_norm"] == view) & (df["step"] >= 0)]


def default_plot_steps(n_steps: int, k: int = 6) -> list[int]:
    """About ``k`` evenly spaced steps including the first and the last."""
    return sorted({int(round(x)) for x in np.linspace(0, n_steps - 1, min(k, n_steps))})


def _label(df: pd.DataFrame, corrected: bool = False) -> str:
    return ("I(h_l^(t); Y) − null mean" if corrected else "I(h_l^(t); Y)") + f" [{table_units(df)}]"


def information_by_step(df: pd.DataFrame, steps: Sequence[int] | None = None, view: str = "post", *, ax=None):
    """MI by layer for several decoding steps (paper Fig. 7): raw with the permutation null
    dashed and its mean ± null sd as a hatched band (left), null-corrected (right).
    ``ax``: two axes."""
    data = _per_step(df, SEQUENCE_METRIC, view)
    all_steps = sorted(int(s) for s in data["step"].unique())
    steps = [s for s in (steps or default_plot_steps(len(all_steps))) if s in all_steps] or all_steps[:1]
    fig, axes = panels(ax, 2)
    colors = palette(SEQUENTIAL_MAP, np.linspace(0, 0.9, len(steps)))
    null = _per_step(df, f"{SEQUENCE_METRIC}_null", view)
    null_sd = _per_step(df, f"{SEQUENCE_METRIC}_null_std", view)
    any_null = False
    corr = _per_step(df, f"{SEQUENCE_METRIC}_corrected", view)
    for c, step in zip(colors, steps, strict=True):
        m = data[data["step"] == step].groupby("layer", observed=True)["value"].mean()
        axes[0].plot(m.index, m.values, "-o", ms=3, color=c, label=f"step {step}")
        nm = null[null["step"] == step].groupby("layer", observed=True)["value"].mean()
        if len(nm):
            any_null = True
            ns = null_sd[null_sd["step"] == step].groupby("layer", observed=True)["value"].mean().reindex(nm.index).fillna(0)
            axes[0].plot(nm.index, nm.values, "--", lw=1, color=c)
            axes[0].fill_between(nm.index, nm - ns, nm + ns, facecolor=c, alpha=0.25, hatch="///", edgecolor=c, lw=0)
        cm = corr[corr["step"] == step].groupby("layer", observed=True)["value"].mean()
        axes[1].plot(cm.index, cm.values, "-o", ms=3, color=c, label=f"step {step}")
    axes[0].set_title("raw")
    axes[1].set_title("null-corrected")
    axes[1].axhline(0, color="grey", lw=0.6)
    for a, corrected in zip(axes, (False, True), strict=True):
        a.set_xlabel(LAYER_LABEL)
        a.set_ylabel(_label(df, corrected))
        a.xaxis.set_major_locator(require("matplotlib.ticker").MaxNLocator(integer=True))
    handles, labels = axes[0].get_legend_handles_labels()
    if any_null:
        mlines, mpatches = require("matplotlib.lines"), require("matplotlib.patches")
        handles += [mlines.Line2D([], [], color="grey", ls="--", lw=1),
                    mpatches.Patch(facecolor="grey", alpha=0.25, hatch="///", edgecolor="grey")]
        labels += ["permutation null (mean)", "null mean ± null sd"]
    if handles:
        axes[0].legend(handles, labels)
    fig.suptitle(f"information per decoding step t (final-norm view {view})")
    return fig


def step_heatmap(df: pd.DataFrame, view: str = "post", *, ax=None, vmin: float | None = None,
                 vmax: float | None = None, corrected_vmin: float | None = None, corrected_vmax: float | None = None):
    """Layer x decoding step heatmaps of the raw (left, sequential map, ``vmin``/``vmax``) and
    null-corrected (right, diverging map centred at 0, ``corrected_vmin``/``corrected_vmax``;
    symmetric limits by default) information: two quantities, so two declared colour scales.
    ``ax``: two axes."""
    fig, axes = panels(ax, 2)
    spec = ((SEQUENCE_METRIC, False, vmin, vmax), (f"{SEQUENCE_METRIC}_corrected", True, corrected_vmin, corrected_vmax))
    for a, (metric, signed, lo, hi) in zip(axes, spec, strict=True):
        w = _per_step(df, metric, view).pivot_table(index="layer", columns="step", values="value", aggfunc="mean", observed=True)
        lo, hi = color_limits([w.values], lo, hi, centred=signed)
        im = a.imshow(w.values, aspect="auto", origin="lower", cmap=DIVERGING_MAP if signed else SEQUENTIAL_MAP,
                      norm=color_norm(lo, hi, centred=signed), interpolation="nearest")
        ticks = np.unique(np.linspace(0, w.shape[1] - 1, min(8, w.shape[1])).round().astype(int)) if w.shape[1] else []
        a.set_xticks(ticks, [str(w.columns[i]) for i in ticks])
        step_y = max(1, int(np.ceil(w.shape[0] / 13)))
        a.set_yticks(range(0, w.shape[0], step_y), [str(i) for i in w.index[::step_y]])
        a.set_xlabel("decoding step t")
        a.set_ylabel(LAYER_LABEL)
        a.set_title("null-corrected (own scale, centred at 0)" if signed else "raw (own scale)")
        fig.colorbar(im, ax=a, label=_label(df, signed))
    fig.suptitle(f"information by layer and decoding step (final-norm view {view})")
    return fig


def content_vs_stopword(df: pd.DataFrame, view: str = "post", *, ax=None):
    """MI by layer when the generated token is a content word vs a stopword/punctuation
    (paper Fig. 8): mean +- std over the draws; raw (left), null-corrected (right). ``ax``: two axes."""
    fig, axes = panels(ax, 2)
    d = df[(df["step"] == NO_STEP) & (df["final_norm"] == view)]
    labels = {"content": "content words", "stopword": "stopwords + punctuation"}
    for ax, metric, signed in zip(axes, (SEQUENCE_METRIC, f"{SEQUENCE_METRIC}_corrected"), (False, True), strict=True):
        for group, color in zip(TYPE_GROUPS, ("tab:blue", "tab:orange"), strict=True):
            g = d[(d["metric"] == metric) & (d["split"] == group)].groupby("layer", observed=True)["value"]
            if len(g):
                m, s = g.mean(), g.std().fillna(0)
                n = int(d[(d["metric"] == metric) & (d["split"] == group)]["n_samples"].iloc[0])
                ax.plot(m.index, m.values, "-o", ms=3, color=color, label=f"{labels[group]} (N={n})")
                ax.fill_between(m.index, m - s, m + s, color=color, alpha=0.2)
        ax.set_title("null-corrected" if signed else "raw")
        ax.xaxis.set_major_locator(require("matplotlib.ticker").MaxNLocator(integer=True))
        ax.set_xlabel(LAYER_LABEL)
        ax.set_ylabel(_label(df, signed))
        if ax.has_data():
            if signed:
                ax.axhline(0, color="grey", lw=0.6)
            ax.legend(title="band: ± 1 sd over draws")
        else:
            ax.text(0.5, 0.5, "too few samples of one group", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"content vs stopword steps, pooled over steps (view {view})")
    return fig


def save_generation_figures(df: pd.DataFrame, folder: Path, *, steps: Sequence[int] | None = None,
                            view: str = "post", settings: FigureSettings | None = None) -> dict[str, Path]:
    """information_by_step (Fig. 7), information_step_heatmap (raw and corrected) and
    content_vs_stopword (Fig. 8) into ``folder``, in the formats, dpi and style of ``settings``
    (default PNG)."""
    if not figures_available():
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    if view not in set(df["final_norm"]):
        view = str(df["final_norm"].iloc[0])
    figs = {
        # Drawn one at a time by write_figures.
        "information_by_step": lambda: information_by_step(df, steps, view),
        "information_step_heatmap": lambda: step_heatmap(df, view),
        "content_vs_stopword": lambda: content_vs_stopword(df, view),
    }
    return write_figures(figs, folder, settings)


def _peaks(df: pd.DataFrame, view: str) -> pd.DataFrame:
    """Per step: arg-max layer and value of the raw and corrected curves, and the last layer's value."""
    wide = {name: _per_step(df, metric, view).pivot_table(index="step", columns="layer", values="value", aggfunc="mean", observed=True)
            for metric, name in ((SEQUENCE_METRIC, "raw"), (f"{SEQUENCE_METRIC}_corrected", "corrected"))}
    rows = []
    for step in wide["raw"].index:
        row = {"step": int(step)}
        for name, w in wide.items():
            r = w.loc[step]
            row |= {f"{name} peak layer": int(r.idxmax()), f"{name} peak": float(r.max()),
                    f"{name} last layer": float(r.iloc[-1])}
        rows.append(row)
    return pd.DataFrame(rows)


def write_generation_report(df: pd.DataFrame, out_dir: Path, summary: dict, figures: dict[str, Path],
                            states, records: list[dict], view: str = "post") -> Path:
    """report.md: settings, per-step peak layers, content vs stopword table, examples, figures."""
    units = table_units(df)
    gen, info = summary["generation"], summary["information"]
    lines = [
        "# Information per decoding step (multi-token generation)", "",
        f"Model `{summary['model']}` ({summary['n_layers']} blocks), task `{summary['task']}` "
        f"(split `{summary['split']}`), N = {summary['n_samples']} prompts, T = {gen['max_new_tokens']} generated "
        f"tokens per prompt ({'sampling, seed ' + str(gen['seed']) if gen['do_sample'] else 'greedy'}; EOS does not "
        f"stop generation; {summary['with_eos']} sequences produced EOS).",
        "",
        f"- I(h_l^(t); Y): h_l^(t) = state at the last position at decoding step t (step 0 reads the prompt), "
        f"Y = the gold target as the set of its tokens' input embeddings (mean {summary['target_tokens_mean']:.1f}, "
        f"max {summary['target_tokens_max']} tokens), sequence kernel = mean pairwise Gaussian "
        f"(sigma {info['target_sigma']}) between the two targets' L2-normalised token embeddings.",
        f"- Matrix-based Renyi MI, alpha = {info['alpha']}, units: {units}; state kernel Gaussian, "
        f"sigma {info['sigma']}; permutation null with {info['n_permutations']} draws (seed {info['seed']}); "
        "corrected = raw - null mean.",
        f"- Tables and figures: last layer in the final-norm view `{view}` "
        f"({'after' if view == 'post' else 'before'} the final norm); both views are in results.parquet.",
        f"- Prompts truncated from the left to fit the context: {summary['n_truncated']} of {summary['n_samples']} "
        f"(longest prompt fed: {summary['prompt_tokens_max']} tokens).",
        f"- Generated token types: {summary['token_type_counts']} (stopwords: {summary['stopwords']}; "
        "punctuation = no letter or digit).",
        *[f"- Unknown tokens in the {what}: {u['n_unknown']} of {u['n_tokens']} ({u['share']:.1%}; above 50 % "
          "is refused unless allowed)." for what, u in summary.get("unknown_tokens", {}).items()],
        f"- Wall time {summary['wall_seconds']} s.",
        "",
        "## Peak layer per decoding step", "",
    ]
    lines += [markdown_table(_peaks(df, view)), ""]
    d = df[(df["step"] == NO_STEP) & (df["final_norm"] == view)]
    lines += ["## Content words vs stopwords and punctuation (paper Fig. 8)", ""]
    if d.empty:
        lines += ["Skipped: too few samples generated a token of each group "
                  f"(counts of generated tokens: {summary['token_type_counts']}).", ""]
    else:
        m = d.groupby(["metric", "split", "layer"], observed=True)["value"].mean()
        n = int(d["n_samples"].iloc[0])
        tab = []
        for layer in sorted(d["layer"].unique()):
            if layer < 0:
                continue
            tab.append({"layer": int(layer), **{
                f"{label} {g}": m.get((metric, g, layer))
                for label, metric in (("I", SEQUENCE_METRIC), ("corr", f"{SEQUENCE_METRIC}_corrected"))
                for g in TYPE_GROUPS}})
        lines += [f"One state per sample at a randomly drawn step of each group, N = {n} per group, "
                  f"mean over {d['seed'].nunique()} draws ({units}).", "", markdown_table(pd.DataFrame(tab)), ""]
    lines += ["## Examples", ""]
    for r, text in list(zip(records, states.texts, strict=True))[:3]:
        lines += [f"- `{r.get('id')}` target: {r['target'][:160]!r}",
                  f"  generated: {text[:160]!r}"]
    lines += ["", "## Figures", ""]
    for name, path in figures.items():
        lines.append(f"![{name}]({path.relative_to(out_dir)})")
    return write_text_atomic(out_dir / "report.md", "\n".join(lines) + "\n")
