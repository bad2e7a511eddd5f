"""Ridge detection on the tidy table (pure pandas; no models).

A ridge is a peak of a per-layer curve before the last layer L with a real drop to L. The
drop is judged per seed (paired: value at the peak layer minus value at L on the same
subsample): ridge when the mean drop exceeds ``max(2 * std over seeds, min_drop)``.
"""

from __future__ import annotations

import pandas as pd

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
