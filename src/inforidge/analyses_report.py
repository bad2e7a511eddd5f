"""Report sections and figures of the complementary analyses (see :mod:`inforidge.analyses`).

Each function reads the tidy table and returns nothing (no section, no figure) when the
analysis has no rows, so runs without it look as before.
"""

from __future__ import annotations

import pandas as pd

from .markdown import format_number, markdown_table

SPLIT_NAME = {"id": "in-distribution", "ood": "out-of-distribution"}



def _p(x) -> str:
    return "—" if x is None or pd.isna(x) else (f"{x:.3f}" if x >= 0.001 else f"{x:.1e}")



def _final(df: pd.DataFrame, prefix: str) -> pd.DataFrame:
    d = df[df["metric"].astype(str).str.startswith(prefix)]
    return d if d.empty else d[d["step"] == d["step"].max()]


# ----------------------------------------------------------------------------- ridge


def ridge_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (split, final_norm, sigma) with the raw and corrected statistics (final step)."""
    d = _final(df, "ridge_")
    if d.empty:
        return pd.DataFrame()
    wide = d.pivot_table(index=["split", "final_norm", "sigma"], columns="metric", values="value", aggfunc="first")
    return wide.reset_index()


def _peak(r, suffix: str) -> str:
    layer = r.get(f"ridge_layer{suffix}")
    if layer is None or pd.isna(layer):
        return "—"
    return f"{int(layer)} [{int(r[f'ridge_layer_ci_low{suffix}'])}, {int(r[f'ridge_layer_ci_high{suffix}'])}]"


def _yes(x) -> str:
    return "—" if x is None or pd.isna(x) else ("yes" if x >= 0.5 else "no")


def ridge_section(df: pd.DataFrame) -> list[str]:
    w = ridge_summary(df)
    if w.empty:
        return []
    d = _final(df, "ridge_")
    first = d.iloc[0]
    n_boot = first.get("ridge_n_boot")
    n_layers = int(df[df["metric"] == "predictive_information"]["layer"].max()) if (
        df["metric"] == "predictive_information").any() else None
    rows = []
    for _, r in w.iterrows():
        rows.append({
            "split": r["split"], "view": r["final_norm"], "σ": r["sigma"],
            "raw peak [CI]": _peak(r, ""), "raw p": _p(r.get("ridge_p_value")), "raw ridge": _yes(r.get("ridge_verdict")),
            "corrected peak [CI]": _peak(r, "_corrected"), "corrected p": _p(r.get("ridge_p_value_corrected")),
            "corrected ridge": _yes(r.get("ridge_verdict_corrected")),
        })
    lines = [
        f"## Ridge statistics (step {int(d['step'].max())})",
        f"Bootstrap over the N={int(first['n_samples'])} samples of the seed-{int(first['seed'])} subsample "
        f"({'—' if pd.isna(n_boot) else int(n_boot)} draws, paired over layers). peak = arg-max layer of the "
        "full-sample curve, with the 95 % percentile interval of the draws' arg-max; p = one-sided bootstrap "
        f"p-value of MI(peak) > MI(last layer{'' if n_layers is None else f' {n_layers}'}); ridge = peak before "
        "the last layer and p < 0.05. The peak is chosen and tested on the same samples, so read p as a "
        "screen for a clear drop, not an exact test.",
        "",
        markdown_table(pd.DataFrame(rows)),
        "",
    ]
    sigmas = list(dict.fromkeys(w["sigma"]))
    if len(sigmas) > 1:
        for (split, view), g in w.groupby(["split", "final_norm"], sort=False):
            verdicts = {}
            for kind, col in (("raw", "ridge_verdict"), ("null-corrected", "ridge_verdict_corrected")):
                if col in g:
                    verdicts[kind] = {s: _yes(v) for s, v in zip(g["sigma"], g[col], strict=True)}
            parts = []
            for kind, v in verdicts.items():
                same = len(set(v.values())) == 1
                detail = ", ".join(f"σ={s}: {x}" for s, x in v.items())
                parts.append(f"{kind} verdict {'does not depend' if same else '**depends**'} on σ ({detail})")
            lines.append(f"- {SPLIT_NAME.get(split, split)}, {view} view: " + "; ".join(parts) + ".")
        lines.append("")
    every = df[df["metric"].astype(str) == "ridge_layer_corrected"]
    if every["step"].nunique() > 1:  # tracking.ridge_every_step
        own = every[every["sigma"] == every["sigma"].iloc[0]]
        by_step = []
        for _, r in ridge_by_step(df, str(own["sigma"].iloc[0])).iterrows():
            by_step.append({"step": int(r["step"]), "split": r["split"], "view": r["final_norm"],
                            "corrected peak [CI]": _peak(r, "_corrected"),
                            "corrected p": _p(r.get("ridge_p_value_corrected")),
                            "corrected ridge": _yes(r.get("ridge_verdict_corrected"))})
        lines += [f"Null-corrected ridge statistics at every measured step (σ={own['sigma'].iloc[0]}):", "",
                  markdown_table(pd.DataFrame(by_step)), ""]
    return lines


def ridge_by_step(df: pd.DataFrame, sigma: str) -> pd.DataFrame:
    """One row per (step, split, final_norm) of the ridge statistics at bandwidth ``sigma``."""
    d = df[df["metric"].astype(str).str.startswith("ridge_") & (df["sigma"] == sigma)]
    wide = d.pivot_table(index=["split", "final_norm", "step"], columns="metric", values="value", aggfunc="first")
    return wide.reset_index()


# ----------------------------------------------------------------------------- attention


def attention_table(df: pd.DataFrame) -> pd.DataFrame:
    """Paper-Table-2-style summary per split (final step)."""
    d = _final(df, "attention_")
    if d.empty:
        return pd.DataFrame()
    out = []
    for split, g in d.groupby("split", sort=False):
        m = g.pivot_table(index="layer", columns="metric", values="value", aggfunc="mean")
        last = int(m.index.max())
        sig = m.get("attention_signal")
        peak = int(sig.idxmax()) if sig is not None and sig.notna().any() else None
        out.append({
            "split": split,
            "avg attn (all tokens)": format_number(m["attention_all"].mean(), 4),
            "avg attn (signal tokens)": format_number(None if sig is None else sig.mean(), 4),
            "max signal layer": "—" if peak is None else str(peak),
            "max signal attn": format_number(None if peak is None else sig[peak], 4),
            "final layer signal attn": format_number(None if sig is None else sig[last], 4),
            "final layer last-token attn": format_number(m["attention_last"][last], 4),
            "avg attn sink (pos 0, left out)": format_number(m["attention_sink"].mean(), 4) if "attention_sink" in m else "—",
        })
    return pd.DataFrame(out)


def attention_section(df: pd.DataFrame) -> list[str]:
    t = attention_table(df)
    if t.empty:
        return []
    d = _final(df, "attention_")
    impl = d["attention_implementation"].dropna().iloc[0] if "attention_implementation" in d and \
        d["attention_implementation"].notna().any() else "eager"
    return [
        f"## Attention to signal tokens (step {int(d['step'].max())}; paper Table 2)",
        f"Attention of the last prompt position, averaged over heads and over the N={int(d['n_samples'].iloc[0])} "
        f"samples of the seed-{int(d['seed'].iloc[0])} subsample; computed with {impl} attention. "
        "Position 0 (attention sink) is left out and the other weights are NOT renormalised (each is the "
        "model's own softmax share; renormalised = value / (1 − attention_sink); attention_sink is in the results table). Averages "
        "are over the blocks 1..L.",
        "",
        markdown_table(t),
        "",
    ]


# ----------------------------------------------------------------------------- residual scaling


def scaling_section(df: pd.DataFrame) -> list[str]:
    d = _final(df, "residual_scale")
    if d.empty:
        return []
    alphas = d[d["metric"] == "residual_scale"].pivot_table(index="layer", columns="split", values="value")
    alphas = alphas.rename(columns={c: f"α {c}" for c in alphas.columns}).reset_index()
    alphas = alphas.map(lambda v: format_number(v) if isinstance(v, float) else v)
    acc = []
    for split, g in d.groupby("split", sort=False):
        before = g.loc[g["metric"] == "residual_scale_accuracy_before", "value"]
        after = g.loc[g["metric"] == "residual_scale_accuracy_after", "value"]
        acc.append(f"{SPLIT_NAME.get(split, split)}: accuracy {format_number(before.iloc[0] if len(before) else None)} → "
                   f"{format_number(after.iloc[0] if len(after) else None)}")
    first = d[d["metric"] == "residual_scale"].iloc[0]
    return [
        f"## Residual scaling coefficients (step {int(d['step'].max())}; paper §5.2)",
        f"One scale α_l per block, model frozen, fitted with AdamW ({int(first['scale_epochs'])} epochs, "
        f"lr {first['scale_lr']:g}, weight decay {first['scale_weight_decay']:g}) on each split's test records "
        "outside the seed subsample; accuracy (final layer) before → after on the held-out subsample: "
        + "; ".join(acc) + ". The paper finds relatively lower α in the final layers under OOD data.",
        "",
        markdown_table(alphas),
        "",
    ]


# ----------------------------------------------------------------------------- kernel ablation

KERNEL_PREFIX = "kernel_ablation_"


def kernel_curves(df: pd.DataFrame, view: str = "post") -> pd.DataFrame:
    """Rows (kernel, split, metric, seed, layer, value) of the final step for every kernel: the
    measurement's own kernel from the ordinary rows, the others from the ``kernel_ablation_`` rows;
    metric is ``predictive_information`` or ``predictive_information_corrected``."""
    abl = _final(df, KERNEL_PREFIX)
    if abl.empty:
        return pd.DataFrame()
    step = int(abl["step"].max())
    names = ("predictive_information", "predictive_information_corrected")
    own = df[(df["step"] == step) & df["metric"].isin(names)]
    abl = abl.assign(metric=abl["metric"].str.removeprefix(KERNEL_PREFIX))
    abl = abl[abl["metric"].isin(names)]
    both = pd.concat([own, abl], ignore_index=True)
    both = both[(both["final_norm"] == view) & both["split"].isin(["id", "ood"])]
    return both[["kernel", "split", "metric", "seed", "layer", "value"]]


def kernel_section(df: pd.DataFrame) -> list[str]:
    from .analysis import ridge_of_curves

    curves = kernel_curves(df)
    if curves.empty:
        return []
    step = int(_final(df, KERNEL_PREFIX)["step"].max())
    rows = []
    for (kernel, split), g in curves.groupby(["kernel", "split"], sort=False):
        row = {"kernel": kernel, "split": split}
        for kind, metric in (("raw", "predictive_information"), ("corrected", "predictive_information_corrected")):
            wide = g[g["metric"] == metric].pivot_table(index="seed", columns="layer", values="value", aggfunc="mean")
            r = ridge_of_curves(wide.sort_index(axis=1))
            row[f"{kind} peak"] = r.get("peak_layer", "—")
            row[f"{kind} drop to L"] = format_number(r.get("drop"))
            row[f"{kind} ridge"] = _yes(float(r["ridge"])) if r else "—"
        rows.append(row)
    return [
        f"## Kernel ablation (step {step}; paper Fig. 11)",
        "Predictive information of the final model with the Gaussian (σ as measured), Laplacian (γ = 1) and "
        "polynomial ((x·y + 1)², rows L2-normalised) kernels on the same subsamples, post view; peak = arg-max "
        "layer of the mean over seeds, ridge = peak before the last layer with a paired drop > max(2·std over "
        "seeds, 0.02 bits). The polynomial kernel is not infinitely divisible, so I ≤ min(H) is not guaranteed for it.",
        "",
        markdown_table(pd.DataFrame(rows)),
        "",
    ]


def analysis_sections(df: pd.DataFrame) -> list[str]:
    """Markdown lines of every analysis that has rows (empty list when none)."""
    return ridge_section(df) + attention_section(df) + scaling_section(df) + kernel_section(df)


# ----------------------------------------------------------------------------- figures


def analysis_figures(df: pd.DataFrame) -> dict:
    """{name: matplotlib Figure} for the analyses that have rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = {}
    att = _final(df, "attention_")
    if not att.empty:
        fig, ax = plt.subplots(figsize=(6, 4))
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
        fig, ax = plt.subplots(figsize=(5.5, 4))
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
        fig, axes = plt.subplots(2, 2, figsize=(10, 7), squeeze=False)
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
