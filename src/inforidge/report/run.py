"""Report sections and figures of the complementary analyses (see :mod:`inforidge.pipelines.analyze`).

Each function reads the tidy table and returns nothing (no section, no figure) when the
analysis has no rows, so runs without it look as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from inforidge.measure.rows import NULL_SUFFIXES, SE_SUFFIX
from inforidge.report.markdown import format_number, format_p_value, markdown_table, split_name
from inforidge.results.summaries import (
    KERNEL_PREFIX,
    _final,
    degenerate_layers,
    kernel_curves,
    ridge_by_step,
    ridge_of_curves,
    ridge_summary,
    ridge_table,
    robustness_table,
    table1,
)
from inforidge.results.table import sigma_label, write_text_atomic


def _peak(r, suffix: str) -> str:
    layer = r.get(f"ridge_layer{suffix}")
    if layer is None or pd.isna(layer):
        return "—"
    return f"{int(layer)} [{int(r[f'ridge_layer_ci_low{suffix}'])}, {int(r[f'ridge_layer_ci_high{suffix}'])}]"


def _yes(x, flag=None) -> str:
    """yes/no of a verdict value (1/0/True/False); "no verdict (<flag>)" or "—" when there is none."""
    if x is None or pd.isna(x):
        return f"no verdict ({flag})" if isinstance(flag, str) and flag else "—"
    return "yes" if x >= 0.5 else "no"


FLAG_TEXT = {
    "too_few_samples": "fewer than 30 samples: not meaningful",
    "flat_curve": "flat curve, no peak",
    "too_few_draws": "too few bootstrap draws for the 0.05 level (need B ≥ 39)",
}


def _flags(d: pd.DataFrame) -> dict:
    """(split, final_norm, sigma, verdict metric) -> flag of the raw and corrected verdict rows."""
    rows = d[d["metric"].isin(["ridge_verdict", "ridge_verdict_corrected"])]
    if "flag" not in rows:
        return {}
    return {(sp, v, sg, m): f for sp, v, sg, m, f in rows[["split", "final_norm", "sigma", "metric", "flag"]]
            .itertuples(index=False) if isinstance(f, str)}


def ridge_section(df: pd.DataFrame) -> list[str]:
    df = df.assign(sigma=sigma_label(df))  # "1.0" / "median": one label per bandwidth setting
    w = ridge_summary(df)
    if w.empty:
        return []
    d = _final(df, "ridge_")
    first = d.iloc[0]
    n_boot = first.get("ridge_n_boot")
    flags = _flags(d)
    n_layers = int(df[df["metric"] == "predictive_information"]["layer"].max()) if (
        df["metric"] == "predictive_information").any() else None
    rows = []
    for _, r in w.iterrows():
        key = (r["split"], r["final_norm"], r["sigma"])
        f_raw, f_corr = flags.get((*key, "ridge_verdict")), flags.get((*key, "ridge_verdict_corrected"))
        rows.append({
            "split": r["split"], "view": r["final_norm"], "σ": r["sigma"],
            "raw peak [CI]": _peak(r, ""), "raw p": format_p_value(r.get("ridge_p_value"), n_boot),
            "raw ridge": _yes(r.get("ridge_verdict"), f_raw),
            "corrected peak [CI]": _peak(r, "_corrected"),
            "corrected p": format_p_value(r.get("ridge_p_value_corrected"), n_boot),
            "corrected ridge": _yes(r.get("ridge_verdict_corrected"), f_corr),
        })
    last = "L" if n_layers is None else f"L = {n_layers}"
    lines = [
        f"## Ridge statistics (step {int(d['step'].max())})",
        f"Bootstrap over the N={int(first['n_samples'])} samples of the seed-{int(first['seed'])} subsample "
        f"({'—' if pd.isna(n_boot) else int(n_boot)} draws, paired over layers). peak = arg-max layer of the "
        "full-sample curve, with the 95 % percentile interval of the draws' arg-max; p = max-statistic "
        f"bootstrap p of the largest drop from an intermediate layer 1..L−1 to the last layer ({last}), "
        "which pays for picking the peak on the same samples (draws rescaled to the jackknife standard "
        "error; see inforidge.info.ridge); ridge = peak at an intermediate layer and p < 0.05. No verdict "
        "below N = 30, for a flat curve or with fewer than 39 draws (the `flag` column says which). The "
        "rows at the measurement's own σ are the verdict of the report.",
        "",
        markdown_table(pd.DataFrame(rows)),
        "",
    ]
    sigmas = list(dict.fromkeys(w["sigma"]))
    if len(sigmas) > 1:
        for (split, view), g in w.groupby(["split", "final_norm"], sort=False, observed=True):
            verdicts = {}
            for kind, col in (("raw", "ridge_verdict"), ("null-corrected", "ridge_verdict_corrected")):
                if col in g:
                    verdicts[kind] = {s: _yes(v, flags.get((split, view, s, col)))
                                      for s, v in zip(g["sigma"], g[col], strict=True)}
            parts = []
            for kind, v in verdicts.items():
                same = len(set(v.values())) == 1
                detail = ", ".join(f"σ={s}: {x}" for s, x in v.items())
                parts.append(f"{kind} verdict {'does not depend' if same else '**depends**'} on σ ({detail})")
            lines.append(f"- {split_name(split)}, {view} view: " + "; ".join(parts) + ".")
        lines.append("")
    every = df[df["metric"].astype(str) == "ridge_layer_corrected"]
    if every["step"].nunique() > 1:  # tracking.ridge_every_step
        own = every[every["sigma"] == every["sigma"].iloc[0]]
        by_step = []
        for _, r in ridge_by_step(df, str(own["sigma"].iloc[0])).iterrows():
            by_step.append({"step": int(r["step"]), "split": r["split"], "view": r["final_norm"],
                            "corrected peak [CI]": _peak(r, "_corrected"),
                            "corrected p": format_p_value(r.get("ridge_p_value_corrected"), n_boot),
                            "corrected ridge": _yes(r.get("ridge_verdict_corrected"))})
        lines += [f"Null-corrected ridge statistics at every measured step (σ={own['sigma'].iloc[0]}):", "",
                  markdown_table(pd.DataFrame(by_step)), ""]
    return lines


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


def scaling_section(df: pd.DataFrame) -> list[str]:
    d = _final(df, "residual_scale")
    if d.empty:
        return []
    alphas = d[d["metric"] == "residual_scale"].pivot_table(index="layer", columns="split", values="value", observed=True)
    alphas = alphas.rename(columns={c: f"α {c}" for c in alphas.columns}).reset_index()
    alphas = alphas.map(lambda v: format_number(v) if isinstance(v, float) else v)
    acc = []
    for split, g in d.groupby("split", sort=False, observed=True):
        before = g.loc[g["metric"] == "residual_scale_accuracy_before", "value"]
        after = g.loc[g["metric"] == "residual_scale_accuracy_after", "value"]
        acc.append(f"{split_name(split)}: accuracy {format_number(before.iloc[0] if len(before) else None)} → "
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


def kernel_section(df: pd.DataFrame) -> list[str]:

    curves = kernel_curves(df)
    if curves.empty:
        return []
    step = int(_final(df, KERNEL_PREFIX)["step"].max())
    rows = []
    for (kernel, split), g in curves.groupby(["kernel", "split"], sort=False, observed=True):
        row = {"kernel": kernel, "split": split}
        for kind, metric in (("raw", "predictive_information"), ("corrected", "predictive_information_corrected")):
            wide = g[g["metric"] == metric].pivot_table(index="seed", columns="layer", values="value", aggfunc="mean", observed=True)
            r = ridge_of_curves(wide.sort_index(axis=1))
            peak = r.get("peak_layer")
            row[f"{kind} peak"] = "—" if peak is None else peak
            row[f"{kind} drop to L"] = format_number(r.get("drop"))
            row[f"{kind} ridge"] = _yes(None if r.get("ridge") is None else float(r["ridge"]), r.get("flag"))
        rows.append(row)
    return [
        f"## Kernel ablation (step {step}; paper Fig. 11)",
        "Predictive information of the final model with the Gaussian (σ as measured), Laplacian (γ = 1) and "
        "polynomial ((x·y + 1)², rows L2-normalised) kernels on the same subsamples, post view; peak = arg-max "
        "layer of the mean over seeds, ridge = peak at an intermediate layer with a paired drop > max(2·std over "
        "seeds, 0.02 bits) (seed-spread screen; no bootstrap for the other kernels). The polynomial kernel is not infinitely divisible, so I ≤ min(H) is not guaranteed for it.",
        "",
        markdown_table(pd.DataFrame(rows)),
        "",
    ]


def analysis_sections(df: pd.DataFrame) -> list[str]:
    """Markdown lines of every analysis that has rows (empty list when none)."""
    return ridge_section(df) + attention_section(df) + scaling_section(df) + kernel_section(df) + skipped_lines(df)


def skipped_lines(df: pd.DataFrame) -> list[str]:
    """"skipped: <analysis> because <reason>" for each ``skipped_<analysis>`` row of the last step."""
    rows = df[df["metric"].astype(str).str.startswith("skipped_") & (df["step"] == df["step"].max())]
    if rows.empty:
        return []
    return ["## Skipped analyses",
            *[f"- skipped: {m.removeprefix('skipped_')} because {flag}"
              for m, flag in zip(rows["metric"], rows["flag"], strict=True)],
            ""]


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and pd.isna(x))


def _peak_phrase(name: str, r, kind: str, n_layers: int) -> str:
    peak = r.get(f"{kind}_peak_layer")
    if _missing(peak):
        return f"{name} is a flat curve, no peak"
    peak, value = int(peak), format_number(r[f"{kind}_peak_value"])
    if peak == n_layers:
        return f"{name} is highest at the last layer {n_layers} ({value} bits)"
    where = f"layer {peak} of {n_layers}" + (" (the embedding output, not a ridge)" if peak == 0 else "")
    if r.get(f"{kind}_criterion") == "bootstrap":
        spread = (f"[{format_number(r.get(f'{kind}_drop_ci_low'))}, {format_number(r.get(f'{kind}_drop_ci_high'))}]"
                  f", max-statistic p {format_p_value(r.get(f'{kind}_p_value'), r.get(f'{kind}_n_boot'))}")
    else:
        std = r.get(f"{kind}_drop_std")
        spread = "(one seed: no spread)" if _missing(std) else f"± {format_number(std)} over seeds"
    return f"{name} peaks at {where} ({value} bits; drop to layer {n_layers}: {format_number(r[f'{kind}_drop'])} {spread})"


def _verdict_value(x) -> bool | None:
    return None if _missing(x) else bool(x)


CRITERION_TEXT = {"bootstrap": "bootstrap max-statistic test", "seeds": "seed-spread criterion"}


def other_bandwidth_verdicts(df: pd.DataFrame) -> pd.DataFrame:
    """The bootstrap ridge rows of the final step at bandwidths other than the measurement's own
    (one row per split, final_norm, sigma label; :func:`ridge_summary` columns); empty if none."""
    df = df.assign(sigma=sigma_label(df))
    own = df.loc[df["metric"] == "predictive_information", "sigma"]
    w = ridge_summary(df)
    if w.empty or own.empty:
        return pd.DataFrame()
    return w[w["sigma"] != own.iloc[0]]


def _bandwidth_caveat(r, corr_ridge: bool | None, others: pd.DataFrame | None) -> str:
    """' At σ=median the null-corrected verdict differs: ...' when a bootstrap verdict at another
    bandwidth disagrees with this one (else '')."""
    if others is None or others.empty or corr_ridge is None:
        return ""
    mine = others[(others["split"] == r["split"]) & (others["final_norm"] == r["final_norm"])]
    notes = []
    for _, o in mine.iterrows():
        theirs = _verdict_value(o.get("ridge_verdict_corrected"))
        if theirs is None or bool(theirs) == corr_ridge:
            continue
        notes.append(f"σ={o['sigma']}: {'ridge' if theirs else 'no ridge'}, max-statistic p "
                     f"{format_p_value(o.get('ridge_p_value_corrected'), o.get('ridge_n_boot'))}")
    return (" **The verdict depends on the bandwidth**: at " + "; ".join(notes)
            + " (see the σ check under Ridge statistics).") if notes else ""


def verdict(ridges: pd.DataFrame, final_step: int, n_layers: int,
            other_bandwidths: pd.DataFrame | None = None) -> tuple[list[str], dict]:
    """Plain sentences about the final checkpoint and the run, and a machine-readable summary,
    both read from :func:`~inforidge.results.summaries.ridge_table` (the one verdict).
    ``other_bandwidths`` (:func:`other_bandwidth_verdicts`): a sentence is added where the
    null-corrected verdict at another σ differs, and ``depends_on_sigma`` is set."""
    lines, summary = [], {"final_step": final_step, "ridges": {}}
    fin = ridges[ridges["step"] == final_step]
    for _, r in fin.iterrows():
        key = f"{r['split']}/{r['final_norm']}"
        raw_ridge, corr_ridge = _verdict_value(r["raw_ridge"]), _verdict_value(r["corrected_ridge"])
        summary["ridges"][key] = {
            "raw_peak_layer": None if _missing(r["raw_peak_layer"]) else int(r["raw_peak_layer"]),
            "corrected_peak_layer": None if _missing(r["corrected_peak_layer"]) else int(r["corrected_peak_layer"]),
            "raw_ridge": raw_ridge, "corrected_ridge": corr_ridge,
            "corrected_p_value": None if _missing(r.get("corrected_p_value")) else float(r["corrected_p_value"]),
            "corrected_flag": r.get("corrected_flag") if isinstance(r.get("corrected_flag"), str) else None,
            "criterion": r.get("corrected_criterion"),
        }
        where = (f"{split_name(r['split'])} data, last layer {'after' if r['final_norm'] == 'post' else 'before'} "
                 f"the final norm; {CRITERION_TEXT.get(r.get('corrected_criterion'), 'seed-spread criterion')}")
        raw = _peak_phrase("raw MI", r, "raw", n_layers)
        corr = _peak_phrase("null-corrected MI", r, "corrected", n_layers)
        flag = summary["ridges"][key]["corrected_flag"]
        if corr_ridge is None:
            msg = f"**No verdict** ({where}): {FLAG_TEXT.get(flag, flag or 'no verdict')}; {corr}; {raw}."
        elif corr_ridge:
            msg = f"**Ridge seen** ({where}): {corr}; {raw}."
        elif raw_ridge and int(r["corrected_peak_layer"]) == n_layers:
            msg = (f"**No ridge after null correction** ({where}): {raw}, but the {corr}: the raw peak "
                   "follows the permutation null (representation spread), not information about the target.")
        elif raw_ridge:
            msg = (f"**Ridge not confirmed after null correction** ({where}): {raw}; the {corr}: "
                   "a drop too small to call a ridge.")
        else:
            msg = f"**No ridge** ({where}): {raw}; {corr}."
        caveat = _bandwidth_caveat(r, corr_ridge, other_bandwidths)  # fin: final-step rows only
        summary["ridges"][key]["depends_on_sigma"] = bool(caveat)
        lines.append(msg + caveat)
    seen = ridges["corrected_ridge"].map(lambda x: _verdict_value(x) is True)
    mid = ridges[(ridges["step"] != final_step) & seen]
    if len(mid):
        at = ", ".join(f"step {int(s)} ({sp}/{v}, layer {int(p)}, {CRITERION_TEXT.get(c, c)})" for s, sp, v, p, c in
                       mid[["step", "split", "final_norm", "corrected_peak_layer", "corrected_criterion"]].itertuples(
                           index=False))
        lines.append(f"During training a null-corrected ridge was seen at: {at}.")
    else:
        lines.append("No earlier checkpoint shows a ridge in the null-corrected MI.")
    summary["corrected_ridge_anywhere"] = bool(seen.any())
    post_id = summary["ridges"].get("id/post") or next(iter(summary["ridges"].values()), {})
    summary["ridge_layer"] = post_id.get("corrected_peak_layer")
    return lines, summary


def checkpoint_ridge_table(ridges: pd.DataFrame) -> pd.DataFrame:
    """The verdict rows of :func:`~inforidge.results.summaries.ridge_table` as the report prints them."""
    out = []
    for _, r in ridges.iterrows():
        row = {"step": int(r["step"]), "split": r["split"], "view": r["final_norm"]}
        for kind in ("raw", "corrected"):
            peak = r[f"{kind}_peak_layer"]
            row[f"{kind} peak"] = "—" if _missing(peak) else str(int(peak))
            row[f"{kind} drop"] = format_number(r[f"{kind}_drop"])
            row[f"{kind} p"] = format_p_value(r.get(f"{kind}_p_value"), r.get(f"{kind}_n_boot"))
            flag = r.get(f"{kind}_flag")
            row[f"{kind} ridge"] = _yes(None if _missing(r[f"{kind}_ridge"]) else float(r[f"{kind}_ridge"]), flag)
        row["criterion"] = r.get("corrected_criterion")
        out.append(row)
    return pd.DataFrame(out)


SIGNIFICANCE_LEVEL = 0.05


def robustness_section(df: pd.DataFrame, level: float = SIGNIFICANCE_LEVEL) -> list[str]:
    """Corrected MI at the main bandwidth beside the robustness (median) bandwidth, per split,
    with permutation p-values; sentences on significance, peak agreement and degenerate Grams."""
    df = df.assign(sigma=sigma_label(df))
    robust = df[df["metric"] == "robustness_predictive_information_corrected"]
    lines: list[str] = []
    if not robust.empty:
        n_perm = int(df.loc[df["metric"] == "predictive_information_p_value", "n_permutations"].max())
        main_sigma = df.loc[df["metric"] == "predictive_information_corrected", "sigma"].iloc[0]
        other = robust["sigma"].iloc[0]
        lines += ["## Significance and robustness (post view, last step)",
                  f"corrected = mean over seeds; p = one-sided permutation p-value (1 + #null ≥ raw) / (1 + P), the "
                  f"largest over seeds, resolution 1/(1+P) = {format_p_value(1 / (1 + n_perm))}; significant: "
                  f"p < {level}. robust_*: the same states and permutations at σ={other} (main: σ={main_sigma}).", ""]
        for split in sorted(robust["split"].unique()):
            table = robustness_table(df, split, level=level)
            if table.empty:
                continue
            main_peak = int(table.loc[table["corrected"].idxmax(), "layer"])
            robust_peak = int(table.loc[table["robust_corrected"].idxmax(), "layer"])
            sig, rsig = table.loc[table["significant"], "layer"].tolist(), table.loc[table["robust_significant"],
                                                                                       "layer"].tolist()
            agree = "agree" if main_peak == robust_peak else "disagree"
            lines += [f"### {split_name(split)}", markdown_table(table), "",
                      f"- significant layers (p < {level}): σ={main_sigma}: {sig or 'none'}; σ={other}: {rsig or 'none'}",
                      f"- peak layer of the corrected curve: {main_peak} at σ={main_sigma}, {robust_peak} at "
                      f"σ={other}: the bandwidths {agree}", ""]
    degenerate = degenerate_layers(df)
    if not degenerate.empty:
        where = "; ".join(f"{split_name(sp)} σ={sg}: layers {sorted(g['layer'].unique().tolist())}"
                          for (sp, sg), g in degenerate.groupby(["split", "sigma"], observed=True))
        lines += ["- **degenerate Gram** (representation entropy < 5 % of log N, flag degenerate_gram): " + where
                  + ". The Gram is nearly all ones at this bandwidth, so every MI there is squeezed towards 0; "
                  "read the median-σ robustness view instead.", ""]
    return lines + massive_dimension_lines(df)


def massive_dimension_lines(df: pd.DataFrame) -> list[str]:
    """A sentence on layers whose last-position states are dominated by one dimension (flag
    massive_dimension on the dominant_dimension_share rows of the last step)."""
    d = df[df["metric"] == "dominant_dimension_share"]
    if d.empty or "flag" not in d:
        return []
    d = d[(d["step"] == d["step"].max()) & (d["flag"] == "massive_dimension")]
    if d.empty:
        return []
    parts = []
    for (split, view), g in d.groupby(["split", "final_norm"], observed=True):
        dims = sorted({int(x) for x in g["dimension"].dropna()}) if "dimension" in g else []
        parts.append(f"{split_name(split)} ({view}): layers {sorted(g['layer'].unique().tolist())}, dimension(s) "
                     f"{dims}, {g['value'].max():.0%} of the squared norm at most")
    return ["- **one dimension dominates the states** (a massive activation, flag massive_dimension): "
            + "; ".join(parts) + ". The Gaussian Gram of those layers reads mostly that coordinate.", ""]


def null_sentence(df: pd.DataFrame) -> str:
    """Which permutation null the table's corrected values use (its ``null`` column)."""
    used = set(df["null"].dropna()) if "null" in df else set()
    if "permutation_within_length" in used:
        splits = sorted(df.loc[df["null"] == "permutation_within_length", "split"].unique())
        return ("targets shuffled only among prompts of the same length in "
                f"{', '.join(split_name(s) for s in splits)} (the label view carries the position, and prompt "
                "lengths vary: a plain shuffle would count the prompt length as information); plain shuffle elsewhere")
    return "targets shuffled over all samples"


def _metric_family(metric: str) -> str:
    """A metric's family for the estimator sentence: its stage, or the metric without null suffixes."""
    for prefix, name in (("ridge_", "the ridge bootstrap"), (KERNEL_PREFIX, "the kernel ablation")):
        if metric.startswith(prefix):
            return name
    for suffix in (SE_SUFFIX, *NULL_SUFFIXES):
        metric = metric.removesuffix(suffix)
    return metric


def estimator_sentence(df: pd.DataFrame, ms) -> str:
    """The settings line's words on the estimator (the table's ``estimator`` column); "" when no
    row is stochastic, i.e. every information estimate is exact (the default below N = 4096)."""
    used = df["estimator"] if "estimator" in df else pd.Series([], dtype=object)
    if not (used == "stochastic").any():
        return ""
    exact = sorted({_metric_family(str(m)) for m in df.loc[used == "exact", "metric"]})
    return (f"; estimator={ms.estimator}: the information is stochastic (matrix-free Lanczos quadrature + Hutch++, "
            f"{ms.n_probes} probes, {ms.lanczos_steps} Lanczos steps, top {ms.deflation} directions without probe noise; "
            "the `*_se` rows hold the probes' standard errors)"
            + (f", exact for {', '.join(exact)}" if exact else ""))


def write_report(df: pd.DataFrame, run_dir: Path, config, figures: dict[str, Path],
                 extra_sections: Sequence[str] = ()) -> tuple[Path, dict]:
    """Write ``run_dir/report.md`` (atomically) from the table ``df`` and the run's ``config``;
    ``extra_sections``: markdown lines added before the figures (e.g. a sweep's checkpoints).
    Returns the report's path and the summary."""
    final_step = int(df["step"].max())
    n_layers = int(df[df["metric"] == "predictive_information"]["layer"].max())
    ridges = ridge_table(df)
    lines_verdict, summary = verdict(ridges, final_step, n_layers, other_bandwidth_verdicts(df))
    ms = config.tracking.measure
    whole_target_note = (" of every token of the whole target, compared by the sequence kernel (mean pairwise "
                         "kernel); early-exit accuracy scores the target's first token")
    units = "bits" if ms.base == 2 else f"log base {ms.base}"
    model = config.model.name_or_path or (
        f"GPT-2 trained from scratch (L={config.model.n_layer}, d={config.model.n_embd}, heads={config.model.n_head})")
    parts = [
        f"# InfoRidge report — {config.name}",
        "",
        "## Settings",
        f"- model: {model}; task: {config.task.name}; final checkpoint: step {final_step}",
        f"- measurement: matrix-based Rényi MI, α={ms.alpha}, {ms.kernel} kernel (σ={ms.sigma}), "
        f"rows L2-normalised, values in {units}; N={ms.n_samples} samples × {len(ms.seeds)} seeds "
        f"{list(ms.seeds)}; permutation null with {ms.n_permutations} draws per subsample{estimator_sentence(df, ms)}",
        f"- label embedding y: {ms.label_view}"
        f"{whole_target_note if config.task.multi_token_target == 'whole' else ''}; layers 0..{n_layers} (0 = embedding output); "
        "final-norm views: post (HF, last layer after the final norm) and pre (raw residual stream)",
        "- corrected = raw MI − mean of the permutation null (MI with the targets shuffled)."
        " Raw MI alone is biased by how spread out a representation is.",
        f"- null: {null_sentence(df)}",
        "",
        "## Verdict (final checkpoint)",
        *[f"- {s}" for s in lines_verdict],
        "",
        f"## Per layer at step {final_step} (post view; mean over seeds)",
        markdown_table(table1(df, final_step)),
        "",
        *robustness_section(df),
        "## Ridge by checkpoint",
        "The verdict above and this table are the same rows. criterion = bootstrap: the max-statistic "
        "test of the ridge statistics below at the measurement's σ (peak and drop of the seed-0 "
        "subsample); criterion = seeds (steps without bootstrap): peak = arg-max layer of the mean curve, "
        "ridge = peak at an intermediate layer with a paired drop > max(2·std over seeds, 0.02 bits), a "
        "screen, not a calibrated test. No verdict below N = 30 or for a flat curve.",
        "",
        markdown_table(checkpoint_ridge_table(ridges)),
        "",
        *analysis_sections(df),
        *extra_sections,
        "## Figures",
        *[f"![{name}]({p.relative_to(run_dir)})" for name, p in figures.items()],
        "",
    ]
    return write_text_atomic(run_dir / "report.md", "\n".join(parts)), summary


def attention_table(df: pd.DataFrame) -> pd.DataFrame:
    """Paper-Table-2-style summary per split (final step)."""
    d = _final(df, "attention_")
    if d.empty:
        return pd.DataFrame()
    out = []
    for split, g in d.groupby("split", sort=False, observed=True):
        m = g.pivot_table(index="layer", columns="metric", values="value", aggfunc="mean", observed=True)
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
