"""Figures and report.md of the multi-token generation analysis (paper Figs. 7 and 8)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from inforidge._optional import require
from inforidge.measure.rows import NO_STEP
from inforidge.measure.sequence import SEQUENCE_METRIC, TYPE_GROUPS
from inforidge.report.figures import figures_available, new_figure, palette, write_figures
from inforidge.report.markdown import markdown_table, table_units
from inforidge.results.table import write_text_atomic


def _per_step(df: pd.DataFrame, metric: str, view: str) -> pd.DataFrame:
    return df[(df["metric"] == metric) & (df["final_norm"] == view) & (df["step"] >= 0)]


def default_plot_steps(n_steps: int, k: int = 6) -> list[int]:
    """About ``k`` evenly spaced steps including the first and the last."""
    return sorted({int(round(x)) for x in np.linspace(0, n_steps - 1, min(k, n_steps))})


def information_by_step(df: pd.DataFrame, steps: Sequence[int] | None = None, view: str = "post"):
    """MI by layer for several decoding steps (paper Fig. 7): raw with the permutation null
    dashed (left), null-corrected (right)."""
    data = _per_step(df, SEQUENCE_METRIC, view)
    all_steps = sorted(int(s) for s in data["step"].unique())
    steps = [s for s in (steps or default_plot_steps(len(all_steps))) if s in all_steps] or all_steps[:1]
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    colors = palette("viridis", np.linspace(0, 0.9, len(steps)))
    null = _per_step(df, f"{SEQUENCE_METRIC}_null", view)
    corr = _per_step(df, f"{SEQUENCE_METRIC}_corrected", view)
    for c, step in zip(colors, steps, strict=True):
        m = data[data["step"] == step].groupby("layer")["value"].mean()
        axes[0].plot(m.index, m.values, "-o", ms=3, color=c, label=f"step {step}")
        nm = null[null["step"] == step].groupby("layer")["value"].mean()
        if len(nm):
            axes[0].plot(nm.index, nm.values, "--", lw=1, color=c)
        cm = corr[corr["step"] == step].groupby("layer")["value"].mean()
        axes[1].plot(cm.index, cm.values, "-o", ms=3, color=c, label=f"step {step}")
    axes[0].set_title("I(h_l^(t); Y) by layer; dashed = permutation null", fontsize=9)
    axes[1].set_title("null-corrected I(h_l^(t); Y)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("layer")
        ax.set_ylabel(table_units(df))
        ax.xaxis.set_major_locator(require("matplotlib.ticker").MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    fig.suptitle(f"information per decoding step (final-norm view: {view})", fontsize=9)
    fig.tight_layout()
    return fig


def step_heatmap(df: pd.DataFrame, view: str = "post"):
    """Layer x decoding step heatmaps of the raw (left) and null-corrected (right) information."""
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, (SEQUENCE_METRIC, f"{SEQUENCE_METRIC}_corrected"), strict=True):
        w = _per_step(df, metric, view).pivot_table(index="layer", columns="step", values="value", aggfunc="mean")
        im = ax.imshow(w.values, aspect="auto", origin="lower", cmap="viridis")
        ticks = np.unique(np.linspace(0, w.shape[1] - 1, min(10, w.shape[1])).round().astype(int))
        ax.set_xticks(ticks, [str(w.columns[i]) for i in ticks], fontsize=7)
        ax.set_yticks(range(w.shape[0]), [str(i) for i in w.index], fontsize=7)
        ax.set_xlabel("decoding step")
        ax.set_ylabel("layer")
        ax.set_title(f"{metric} (view {view})", fontsize=9)
        fig.colorbar(im, ax=ax, label=table_units(df))
    fig.tight_layout()
    return fig


def content_vs_stopword(df: pd.DataFrame, view: str = "post"):
    """MI by layer when the generated token is a content word vs a stopword/punctuation
    (paper Fig. 8): mean +- std over the draws; raw (left), null-corrected (right)."""
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    d = df[(df["step"] == NO_STEP) & (df["final_norm"] == view)]
    labels = {"content": "content words", "stopword": "stopwords + punctuation"}
    for ax, metric in zip(axes, (SEQUENCE_METRIC, f"{SEQUENCE_METRIC}_corrected"), strict=True):
        for group, color in zip(TYPE_GROUPS, ("tab:blue", "tab:orange"), strict=True):
            g = d[(d["metric"] == metric) & (d["split"] == group)].groupby("layer")["value"]
            if len(g):
                m, s = g.mean(), g.std().fillna(0)
                n = int(d[(d["metric"] == metric) & (d["split"] == group)]["n_samples"].iloc[0])
                ax.plot(m.index, m.values, "-o", ms=3, color=color, label=f"{labels[group]} (N={n})")
                ax.fill_between(m.index, m - s, m + s, color=color, alpha=0.2)
        ax.set_title(metric.replace("_", " "), fontsize=9)
        ax.xaxis.set_major_locator(require("matplotlib.ticker").MaxNLocator(integer=True))
        ax.set_xlabel("layer")
        ax.set_ylabel(table_units(df))
        if ax.has_data():
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "too few samples of one group", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"content vs stopword steps, pooled over steps (view {view})", fontsize=9)
    fig.tight_layout()
    return fig


def save_generation_figures(df: pd.DataFrame, folder: Path, *, steps: Sequence[int] | None = None,
                            view: str = "post") -> dict[str, Path]:
    """information_by_step.png (Fig. 7), information_step_heatmap.png (raw and corrected) and
    content_vs_stopword.png (Fig. 8) into ``folder``."""
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
    return write_figures(figs, folder)


def _peaks(df: pd.DataFrame, view: str) -> pd.DataFrame:
    """Per step: arg-max layer and value of the raw and corrected curves, and the last layer's value."""
    wide = {name: _per_step(df, metric, view).pivot_table(index="step", columns="layer", values="value", aggfunc="mean")
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
        m = d.groupby(["metric", "split", "layer"])["value"].mean()
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
