"""Ridge detection on the tidy table (pure pandas; no models).

A ridge is a peak of a per-layer curve before the last layer L with a real drop to L. The
drop is judged per seed (paired: value at the peak layer minus value at L on the same
subsample): ridge when the mean drop exceeds ``max(2 * std over seeds, min_drop)``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from inforidge.measure.rows import STAGE_PREFIX
from inforidge.results.table import read_run_table


def _final(df: pd.DataFrame, prefix: str) -> pd.DataFrame:
    d = df[df["metric"].astype(str).str.startswith(prefix)]
    return d if d.empty else d[d["step"] == d["step"].max()]


def ridge_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (split, final_norm, sigma) with the raw and corrected statistics (final step)."""
    d = _final(df, "ridge_")
    if d.empty:
        return pd.DataFrame()
    wide = d.pivot_table(index=["split", "final_norm", "sigma"], columns="metric", values="value", aggfunc="first")
    return wide.reset_index()


def ridge_by_step(df: pd.DataFrame, sigma: str) -> pd.DataFrame:
    """One row per (step, split, final_norm) of the ridge statistics at bandwidth ``sigma``."""
    d = df[df["metric"].astype(str).str.startswith("ridge_") & (df["sigma"] == sigma)]
    wide = d.pivot_table(index=["split", "final_norm", "step"], columns="metric", values="value", aggfunc="first")
    return wide.reset_index()




KERNEL_PREFIX = STAGE_PREFIX["kernels"]


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


MIN_DROP_BITS = 0.02


def layer_curves(df: pd.DataFrame, metric: str, split: str, view: str, step: int | None = None) -> pd.DataFrame:
    """Wide table seed x layer of ``metric`` at ``step`` (the last step when None)."""
    sel = df[(df["metric"] == metric) & (df["split"] == split) & (df["final_norm"] == view)]
    if step is None and not sel.empty:
        step = int(sel["step"].max())
    sel = sel[sel["step"] == step]
    return sel.pivot_table(index="seed", columns="layer", values="value", aggfunc="mean").sort_index(axis=1)


def ridge_of_curves(curves: pd.DataFrame, min_drop: float = MIN_DROP_BITS) -> dict:
    """Peak layer, drop to the last layer and the verdict for a seed x layer table."""
    if curves.empty:
        return {}
    mean = curves.mean(0)
    peak = int(mean.idxmax())
    last = int(mean.index.max())
    drop = curves[peak] - curves[last]
    spread = float(drop.std(ddof=1)) if len(drop) > 1 else 0.0
    drop_mean = float(drop.mean())
    return {
        "peak_layer": peak,
        "peak_value": float(mean[peak]),
        "last_layer": last,
        "last_value": float(mean[last]),
        "drop": drop_mean,
        "drop_std": spread,
        "ridge": bool(peak < last and drop_mean > max(2 * spread, min_drop)),
    }


def ridge_table(df: pd.DataFrame, metric: str = "predictive_information") -> pd.DataFrame:
    """One row per (step, split, final-norm view) with the raw and null-corrected ridge."""
    rows = []
    sub = df[df["metric"].isin([metric, f"{metric}_corrected"])]
    for (step, split, view), g in sub.groupby(["step", "split", "final_norm"]):
        row = {"step": int(step), "split": split, "final_norm": view}
        for kind, name in (("raw", metric), ("corrected", f"{metric}_corrected")):
            r = ridge_of_curves(layer_curves(g, name, split, view, int(step)))
            row.update({f"{kind}_{k}": v for k, v in r.items() if k not in ("last_layer",)})
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["split", "final_norm", "step"]).reset_index(drop=True)


def _final_curve(df: pd.DataFrame, metric: str, split: str, view: str = "post") -> pd.Series:
    d = df[(df["metric"] == metric) & (df["split"] == split) & (df["final_norm"] == view)]
    d = d[d["step"] == d["step"].max()]
    return d.groupby("layer")["value"].mean().sort_index()


def depth_summary(depth_runs: dict[int, Path]) -> pd.DataFrame:
    """Per depth k and split: the null-corrected peak layer and ridge verdict at the final step
    (post view; :func:`inforidge.results.summaries.ridge_table`, the runs' own criterion)."""

    rows = []
    for k, run_dir in sorted(depth_runs.items()):
        r = ridge_table(read_run_table(run_dir))
        r = r[(r["final_norm"] == "post") & (r["step"] == r["step"].max())]
        for _, x in r.iterrows():
            rows.append({"k": k, "split": x["split"], "corrected peak": int(x["corrected_peak_layer"]),
                         "L": k, "corrected drop": f"{float(x['corrected_drop']):.3f}",
                         "ridge": bool(x["corrected_ridge"]),
                         "peak before last": int(x["corrected_peak_layer"]) < k})
    return pd.DataFrame(rows)


def overfit_summary(main_dir: Path, overfit_dir: Path) -> pd.DataFrame:

    rows = []
    for label, run_dir in (("main", main_dir), ("overfit", overfit_dir)):
        df = read_run_table(run_dir)
        step = int(df["step"].max())
        r = ridge_table(df)
        r = r[(r["final_norm"] == "post") & (r["step"] == step)]
        for _, x in r.iterrows():
            acc = _final_curve(df, "early_exit_accuracy", x["split"])
            rows.append({"run": label, "final step": step, "split": x["split"],
                         "last-layer accuracy": round(float(acc.iloc[-1]), 3) if len(acc) else "—",
                         "corrected peak": int(x["corrected_peak_layer"]),
                         "corrected drop": f"{float(x['corrected_drop']):.3f}",
                         "ridge": "yes" if x["corrected_ridge"] else "no"})
    return pd.DataFrame(rows)


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


def checkpoint_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per checkpoint: step, weight hash, and the null-corrected ridge layer per split
    (post view; peak layer of the mean over seeds), from a sweep's table."""

    rows = []
    for (name, step, digest), g in df.groupby(["checkpoint", "step", "weight_hash"], sort=False):
        row = {"step": int(step), "checkpoint": name, "weight_hash": digest}
        for split in sorted(set(g["split"]) - {"all"}):
            r = ridge_of_curves(layer_curves(g, "predictive_information_corrected", split, "post", int(step)))
            if r:
                row[f"peak {split}"] = r["peak_layer"]
                row[f"ridge {split}"] = "yes" if r["ridge"] else "no"
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["step", "checkpoint"]).reset_index(drop=True)


def robustness_table(df: pd.DataFrame, split: str, view: str = "post", level: float = 0.05) -> pd.DataFrame:
    """Per layer at the last step of ``split``: the corrected predictive information (mean over
    seeds) at the main bandwidth and at the robustness bandwidth, each with its permutation
    p-value (the largest over seeds: significant only if every subsample is) and whether
    p < ``level``. Empty when the table has no robustness rows.

    Columns: layer, corrected, p, significant, robust_corrected, robust_p, robust_significant.
    """
    out = {}
    for prefix, name in (("", ""), ("robustness_", "robust_")):
        stem = f"{prefix}predictive_information"
        corrected = layer_curves(df, f"{stem}_corrected", split, view)
        p = layer_curves(df, f"{stem}_p_value", split, view)
        if corrected.empty or p.empty:
            return pd.DataFrame()
        out[f"{name}corrected"], out[f"{name}p"] = corrected.mean(0), p.max(0)
        out[f"{name}significant"] = out[f"{name}p"] < level
    table = pd.DataFrame(out).rename_axis("layer").reset_index()
    return table[["layer", "corrected", "p", "significant", "robust_corrected", "robust_p", "robust_significant"]]


def degenerate_layers(df: pd.DataFrame, flag: str = "degenerate_gram") -> pd.DataFrame:
    """Distinct (split, sigma, final_norm, layer) of the last step whose rows carry ``flag``."""
    if "flag" not in df:
        return pd.DataFrame(columns=["split", "sigma", "final_norm", "layer"])
    last = df[(df["step"] == df["step"].max()) & (df["flag"] == flag)]
    return last[["split", "sigma", "final_norm", "layer"]].drop_duplicates().sort_values(["split", "sigma", "layer"])
