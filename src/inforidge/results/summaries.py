"""Ridge detection on the tidy table (pure pandas; no models).

A ridge is a peak of a per-layer curve at an intermediate layer 1 <= l < L (layer 0, the
embedding output, is not one) with a real drop to the last layer L. ONE verdict per (step,
split, final-norm view) and curve, :func:`ridge_table`, which every summary and the report read:

- ``criterion = "bootstrap"`` where the run has bootstrap ridge rows (``ridge_*``, from
  :func:`inforidge.measure.ridge.ridge_rows`) at the measurement's own bandwidth: their
  max-statistic test decides (peak, drop, p, verdict and flag are those rows' values);
- ``criterion = "seeds"`` elsewhere (steps without bootstrap rows): the drop is judged per seed
  (paired: value at the peak layer minus value at L on the same subsample), ridge when the
  mean drop exceeds ``max(2 * std over seeds, min_drop)``. Not a calibrated test: a screen.

No verdict (``ridge`` None, ``flag`` says why) below N = 30 samples (``too_few_samples``) or for
a flat curve (``flat_curve``: every layer equal, no peak is named); the bootstrap rows add
``too_few_draws``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from inforidge.info.ridge import MIN_SAMPLES, is_flat
from inforidge.measure.rows import STAGE_PREFIX
from inforidge.results.table import read_run_table, sigma_label


def _final(df: pd.DataFrame, prefix: str) -> pd.DataFrame:
    d = df[df["metric"].astype(str).str.startswith(prefix)]
    return d if d.empty else d[d["step"] == d["step"].max()]


def ridge_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (split, final_norm, sigma) with the raw and corrected statistics (final step)."""
    d = _final(df, "ridge_")
    if d.empty:
        return pd.DataFrame()
    return _wide(d.assign(sigma=sigma_label(d)), ["split", "final_norm", "sigma"])


def _wide(d: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """metric -> column; keeps all-NaN metrics (a verdict row with no verdict), unlike pivot_table."""
    wide = d.groupby([*index, "metric"], sort=True, observed=True)["value"].first().unstack("metric")
    wide.columns.name = None
    return wide.reset_index()


def ridge_by_step(df: pd.DataFrame, sigma: str) -> pd.DataFrame:
    """One row per (step, split, final_norm) of the ridge statistics at bandwidth ``sigma`` (a
    :func:`~inforidge.results.table.sigma_label`: "1.0", "median")."""
    d = df[df["metric"].astype(str).str.startswith("ridge_")]
    d = d[sigma_label(d) == str(sigma)]
    return _wide(d, ["split", "final_norm", "step"])




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
    return sel.pivot_table(index="seed", columns="layer", values="value", aggfunc="mean", observed=True).sort_index(axis=1)


def ridge_of_curves(curves: pd.DataFrame, min_drop: float = MIN_DROP_BITS, n_samples: int | None = None) -> dict:
    """Peak layer, drop to the last layer and the seeds-criterion verdict for a seed x layer table.

    ``ridge`` is None with a ``flag`` when there is no verdict: N < MIN_SAMPLES (``n_samples``
    given) or a flat mean curve (then ``peak_layer`` is None too).
    """
    if curves.empty:
        return {}
    mean = curves.mean(0)
    last = int(mean.index.max())
    if is_flat(mean.to_numpy(dtype=float)):
        return {"peak_layer": None, "peak_value": float("nan"), "last_layer": last, "last_value": float(mean[last]),
                "drop": float("nan"), "drop_std": float("nan"), "p_value": float("nan"), "ridge": None,
                "flag": "flat_curve", "criterion": "seeds"}
    peak = int(mean.idxmax())
    drop = curves[peak] - curves[last]
    spread = float(drop.std(ddof=1)) if len(drop) > 1 else float("nan")  # one seed: no spread to show
    drop_mean = float(drop.mean())
    few = n_samples is not None and n_samples < MIN_SAMPLES
    return {
        "peak_layer": peak,
        "peak_value": float(mean[peak]),
        "last_layer": last,
        "last_value": float(mean[last]),
        "drop": drop_mean,
        "drop_std": spread,
        "p_value": float("nan"),
        "ridge": None if few else bool(0 < peak < last and drop_mean > max(2 * (0.0 if len(drop) < 2 else spread),
                                                                              min_drop)),
        "flag": "too_few_samples" if few else None,
        "criterion": "seeds",
    }


def _bootstrap_verdict(boot: pd.DataFrame, suffix: str) -> dict:
    """The ridge_* rows of one (step, split, view) at one bandwidth -> the fields of ridge_of_curves."""
    value = boot.groupby("metric", observed=True)["value"].first()
    flags = boot.loc[boot["metric"] == f"ridge_verdict{suffix}", "flag"] if "flag" in boot else pd.Series(dtype=object)
    flag = flags.iloc[0] if len(flags) and isinstance(flags.iloc[0], str) else None
    get = lambda stem: float(value.get(stem + suffix, float("nan")))  # noqa: E731
    peak, verdict = get("ridge_layer"), get("ridge_verdict")
    return {
        "peak_layer": None if pd.isna(peak) else int(peak), "peak_value": get("ridge_peak_value"),
        "drop": get("ridge_drop"), "drop_ci_low": get("ridge_drop_ci_low"), "drop_ci_high": get("ridge_drop_ci_high"),
        "drop_std": float("nan"), "p_value": get("ridge_p_value"), "n_boot": boot["ridge_n_boot"].iloc[0]
        if "ridge_n_boot" in boot else float("nan"),
        "ridge": None if pd.isna(verdict) else bool(verdict >= 0.5), "flag": flag, "criterion": "bootstrap",
    }


def ridge_table(df: pd.DataFrame, metric: str = "predictive_information") -> pd.DataFrame:
    """THE ridge verdict: one row per (step, split, final-norm view) with the raw and
    null-corrected peak, drop, p, verdict (``ridge``: True/False/None), ``flag`` and ``criterion``
    (module docstring: the bootstrap rows at the measurement's own σ where they exist, the
    seeds criterion elsewhere)."""
    rows = []
    sub = df[df["metric"].isin([metric, f"{metric}_corrected"])]
    boot_all = df[df["metric"].astype(str).str.startswith("ridge_")]
    boot_all = boot_all.assign(sigma=sigma_label(boot_all))  # labelled once, not per group
    for (step, split, view), g in sub.groupby(["step", "split", "final_norm"], observed=True):
        row = {"step": int(step), "split": split, "final_norm": view}
        own_sigma = sigma_label(g.iloc[:1]).iloc[0] if "sigma" in g else None
        n = g["n_samples"].dropna() if "n_samples" in g else pd.Series(dtype=float)
        n_samples = int(n.min()) if len(n) else None
        boot = boot_all[(boot_all["step"] == step) & (boot_all["split"] == split) & (boot_all["final_norm"] == view)]
        if own_sigma is not None and "sigma" in boot:
            boot = boot[boot["sigma"] == own_sigma]
        for kind, name, suffix in (("raw", metric, ""), ("corrected", f"{metric}_corrected", "_corrected")):
            if metric == "predictive_information" and (boot["metric"] == f"ridge_verdict{suffix}").any():
                r = _bootstrap_verdict(boot, suffix)
            else:
                r = ridge_of_curves(layer_curves(g, name, split, view, int(step)), n_samples=n_samples)
            row.update({f"{kind}_{k}": v for k, v in r.items() if k not in ("last_layer",)})
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["split", "final_norm", "step"]).reset_index(drop=True)


def _layer(x) -> int | None:
    return None if x is None or pd.isna(x) else int(x)


def _verdict_text(ridge, flag=None) -> str:
    """yes / no / "no verdict (<flag>)" of a ridge_table verdict."""
    if ridge is None or (isinstance(ridge, float) and pd.isna(ridge)):
        return f"no verdict ({flag})" if isinstance(flag, str) else "no verdict"
    return "yes" if ridge else "no"


def _final_curve(df: pd.DataFrame, metric: str, split: str, view: str = "post") -> pd.Series:
    d = df[(df["metric"] == metric) & (df["split"] == split) & (df["final_norm"] == view)]
    d = d[d["step"] == d["step"].max()]
    return d.groupby("layer", observed=True)["value"].mean().sort_index()


def depth_summary(depth_runs: dict[int, Path]) -> pd.DataFrame:
    """Per depth k and split: the null-corrected peak layer and ridge verdict at the final step
    (post view; :func:`inforidge.results.summaries.ridge_table`, the runs' own criterion)."""

    rows = []
    for k, run_dir in sorted(depth_runs.items()):
        r = ridge_table(read_run_table(run_dir))
        r = r[(r["final_norm"] == "post") & (r["step"] == r["step"].max())]
        for _, x in r.iterrows():
            peak = _layer(x["corrected_peak_layer"])
            rows.append({"k": k, "split": x["split"], "corrected peak": peak,
                         "L": k, "corrected drop": f"{float(x['corrected_drop']):.3f}",
                         "ridge": _verdict_text(x["corrected_ridge"]) == "yes",
                         "peak before last": peak is not None and peak < k,
                         "no verdict": x.get("corrected_flag") if isinstance(x.get("corrected_flag"), str) else "—"})
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
                         "corrected peak": _layer(x["corrected_peak_layer"]),
                         "corrected drop": f"{float(x['corrected_drop']):.3f}",
                         "ridge": _verdict_text(x["corrected_ridge"], x.get("corrected_flag"))})
    return pd.DataFrame(rows)


def table1(df: pd.DataFrame, step: int, view: str = "post") -> pd.DataFrame:
    """Per layer at ``step``: predictive information (raw, null, corrected) and early-exit accuracy."""
    d = df[(df["step"] == step) & (df["final_norm"] == view)]
    mean = d.groupby(["metric", "split", "layer"], observed=True)["value"].mean()
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
    for (name, step, digest), g in df.groupby(["checkpoint", "step", "weight_hash"], sort=False, observed=True):
        row = {"step": int(step), "checkpoint": name, "weight_hash": digest}
        verdicts = ridge_table(g)  # the one verdict (bootstrap rows where the sweep has them)
        for _, x in verdicts[(verdicts["final_norm"] == "post") & (verdicts["split"] != "all")].iterrows():
            row[f"peak {x['split']}"] = _layer(x["corrected_peak_layer"])
            row[f"ridge {x['split']}"] = _verdict_text(x["corrected_ridge"], x.get("corrected_flag"))
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
    last = last.assign(sigma=sigma_label(last))
    return last[["split", "sigma", "final_norm", "layer"]].drop_duplicates().sort_values(["split", "sigma", "layer"])
