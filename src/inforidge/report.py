"""report.md: settings, the paper-Table-1-style table, ridge per checkpoint and a plain verdict.

The verdict only claims what the null-corrected numbers show: a raw-MI peak that the
corrected curve does not reproduce is reported as a spread (geometry) effect, not a ridge.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .analyses_report import analysis_sections
from .analysis import ridge_table
from .markdown import format_number, markdown_table

SPLIT_NAME = {"id": "in-distribution", "ood": "out-of-distribution"}




def table1(df: pd.DataFrame, step: int, view: str = "post") -> pd.DataFrame:
    """Per layer at ``step``: predictive information (raw, null, corrected) and early-exit accuracy."""
    d = df[(df["step"] == step) & (df["final_norm"] == view)]
    mean = d.groupby(["metric", "split", "layer"])["value"].mean()
    layers = sorted(d[d["metric"] == "predictive_information"]["layer"].unique())
    out = []
    for layer in layers:
        row = {"layer": int(layer)}
        for split in ("id", "ood"):
            for name, m in (("I", "predictive_information"), ("null", "predictive_information_null"),
                            ("corr", "predictive_information_corrected")):
                row[f"{name} {split}"] = mean.get((m, split, layer))
        for split in ("all", "id", "ood"):
            row[f"acc {split}"] = mean.get(("early_exit_accuracy", split, layer))
        out.append(row)
    return pd.DataFrame(out)


def _peak_phrase(name: str, r, kind: str, n_layers: int) -> str:
    peak, value = int(r[f"{kind}_peak_layer"]), format_number(r[f"{kind}_peak_value"])
    if peak == n_layers:
        return f"{name} is highest at the last layer {n_layers} ({value} bits)"
    return (f"{name} peaks at layer {peak} of {n_layers} ({value} bits; drop to layer {n_layers}: "
            f"{format_number(r[f'{kind}_drop'])} ± {format_number(r[f'{kind}_drop_std'])} over seeds)")


def verdict(ridges: pd.DataFrame, final_step: int, n_layers: int) -> tuple[list[str], dict]:
    """Plain sentences about the final checkpoint and the run, and a machine-readable summary."""
    lines, summary = [], {"final_step": final_step, "ridges": {}}
    fin = ridges[ridges["step"] == final_step]
    for _, r in fin.iterrows():
        key = f"{r['split']}/{r['final_norm']}"
        summary["ridges"][key] = {
            "raw_peak_layer": int(r["raw_peak_layer"]), "corrected_peak_layer": int(r["corrected_peak_layer"]),
            "raw_ridge": bool(r["raw_ridge"]), "corrected_ridge": bool(r["corrected_ridge"]),
        }
        where = f"{SPLIT_NAME.get(r['split'], r['split'])} data, last layer {'after' if r['final_norm'] == 'post' else 'before'} the final norm"
        raw = _peak_phrase("raw MI", r, "raw", n_layers)
        corr = _peak_phrase("null-corrected MI", r, "corrected", n_layers)
        if r["corrected_ridge"]:
            msg = f"**Ridge seen** ({where}): {corr}; {raw}."
        elif r["raw_ridge"] and int(r["corrected_peak_layer"]) == n_layers:
            msg = (f"**No ridge after null correction** ({where}): {raw}, but the {corr}: the raw peak "
                   "follows the permutation null (representation spread), not information about the target.")
        elif r["raw_ridge"]:
            msg = (f"**Ridge not confirmed after null correction** ({where}): {raw}; the {corr}: "
                   "a drop too small to call a ridge.")
        else:
            msg = f"**No ridge** ({where}): {raw}; {corr}."
        lines.append(msg)
    mid = ridges[(ridges["step"] != final_step) & ridges["corrected_ridge"].astype(bool)]
    if len(mid):
        at = ", ".join(f"step {int(s)} ({sp}/{v}, layer {int(p)})" for s, sp, v, p in
                       mid[["step", "split", "final_norm", "corrected_peak_layer"]].itertuples(index=False))
        lines.append(f"During training a null-corrected ridge was seen at: {at}.")
    else:
        lines.append("No earlier checkpoint shows a ridge in the null-corrected MI.")
    summary["corrected_ridge_anywhere"] = bool(ridges["corrected_ridge"].astype(bool).any())
    post_id = summary["ridges"].get("id/post") or next(iter(summary["ridges"].values()), {})
    summary["ridge_layer"] = post_id.get("corrected_peak_layer")
    return lines, summary


def write_report(df: pd.DataFrame, run_dir: Path, config, figures: dict[str, Path], evaluator=None) -> tuple[Path, dict]:
    """Write ``run_dir/report.md``; returns its path and the summary."""
    final_step = int(df["step"].max())
    n_layers = int(df[df["metric"] == "predictive_information"]["layer"].max())
    ridges = ridge_table(df)
    lines_verdict, summary = verdict(ridges, final_step, n_layers)
    ms = config.tracking.measure
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
        f"{list(ms.seeds)}; permutation null with {ms.n_permutations} draws per subsample",
        f"- label embedding y: {ms.label_view}; layers 0..{n_layers} (0 = embedding output); "
        "final-norm views: post (HF, last layer after the final norm) and pre (raw residual stream)",
        "- corrected = raw MI − mean of the permutation null (MI with the targets shuffled)."
        " Raw MI alone is biased by how spread out a representation is.",
        "",
        "## Verdict (final checkpoint)",
        *[f"- {s}" for s in lines_verdict],
        "",
        f"## Per layer at step {final_step} (post view; mean over seeds)",
        markdown_table(table1(df, final_step)),
        "",
        "## Ridge by checkpoint",
        "peak = arg-max layer of the mean curve; ridge = peak before the last layer with a paired drop "
        "> max(2·std over seeds, 0.02 bits).",
        "",
        markdown_table(ridges[["step", "split", "final_norm", "raw_peak_layer", "raw_drop", "raw_ridge",
                          "corrected_peak_layer", "corrected_drop", "corrected_ridge"]]),
        "",
        *analysis_sections(df),
        "## Figures",
        *[f"![{name}]({p.relative_to(run_dir)})" for name, p in figures.items()],
        "",
    ]
    path = run_dir / "report.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(parts))
    tmp.replace(path)
    return path, summary
