"""``inforidge paper``: the synthetic reproduction as a set of ordinary runs under ``runs/paper/``.

- ``main``: the config's run as given (the paper's 12 layers, every analysis on);
- ``depth_<k>``: depth threshold (paper Fig. 3): the main config with a k-block model for each k
  in ``paper.depths`` (``model.n_layer = k`` from scratch; a pretrained model truncated to its
  first k blocks with ``model.keep_blocks = k``); k equal to the main depth reuses the main run;
- ``overfit``: overfitting (paper Fig. 4): the main config with ``paper.overfit_epochs_factor``
  times the epochs, measured at the main run's steps and then every main-run length.

Each sub-run is a plain :func:`inforidge.run.run` call, so an interrupted ``paper`` resumes.
The ``paper:`` section of the YAML is read here (:class:`PaperConfig`); the rest is a
:class:`~inforidge.config.RunConfig`. Then ``runs/paper/report.md`` combines them.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml

from .config import RunConfig, apply_overrides, from_dict, load_config
from .markdown import markdown_table


@dataclass
class PaperConfig:
    depths: list[int] = field(default_factory=lambda: [2, 4, 6, 8, 12])
    """Depth threshold (paper Fig. 3): the number of blocks of each depth run (model.n_layer from scratch;
    a pretrained model is truncated to its first k blocks)."""
    overfit_epochs_factor: float = 3.0
    """Overfitting (paper Fig. 4): the overfit run trains this many times the main run's epochs."""
    sub_run_analyses: bool = False
    """Depth and overfit runs: keep the main config's analyses (ridge bootstrap, attention, residual
    scaling, kernels); false = curves only."""

    def __post_init__(self) -> None:
        if not self.depths or any(int(k) < 1 for k in self.depths):
            raise ValueError(f"paper.depths must list depths >= 1; got {self.depths}")
        if self.overfit_epochs_factor <= 1:
            raise ValueError(f"paper.overfit_epochs_factor must be > 1; got {self.overfit_epochs_factor}")


def paper_config_path() -> Path:
    return Path(str(resources.files("inforidge") / "configs" / "paper.yaml"))


def load_paper_config(path: str | Path | None = None, overrides: list[str] | None = None
                      ) -> tuple[RunConfig, PaperConfig]:
    """The main run's config and the ``paper:`` section (overrides may name ``paper.*`` too)."""
    p = Path(path) if path is not None else paper_config_path()
    if not p.exists():
        raise FileNotFoundError(f"config file {p} does not exist")
    data = yaml.safe_load(p.read_text()) or {}
    data = apply_overrides(data, overrides or [])
    paper = from_dict(PaperConfig, data.pop("paper", None), "paper.")
    return from_dict(RunConfig, data), paper


def _curves_only(cfg: RunConfig) -> None:
    cfg.tracking.ridge_bootstrap = 0
    cfg.tracking.ridge_every_step = False
    cfg.analyses.attention = False
    cfg.analyses.residual_scaling = False
    cfg.analyses.kernel_ablation = False


def sub_config(base: RunConfig, name: str, paper: PaperConfig) -> RunConfig:
    cfg = copy.deepcopy(base)
    cfg.output_dir = str(base.run_dir)
    cfg.name = name
    if name != "main" and not paper.sub_run_analyses:
        _curves_only(cfg)
    return cfg


def main_depth(base: RunConfig) -> int:
    """L of the main run's model: model.n_layer from scratch, else the pretrained config's depth
    (or model.keep_blocks when the main run is itself truncated)."""
    m = base.model
    if not m.name_or_path:
        return int(m.n_layer)
    if m.keep_blocks is not None:
        return int(m.keep_blocks)
    from transformers import AutoConfig

    from .model import config_num_layers

    return config_num_layers(AutoConfig.from_pretrained(
        m.name_or_path, revision=m.revision, trust_remote_code=m.trust_remote_code))


def depth_config(base: RunConfig, paper: PaperConfig, k: int) -> RunConfig:
    """The main config with a k-block model: a k-layer default GPT-2 trained from scratch, or the
    pretrained model truncated to its first k blocks (final norm and LM head kept) and fine-tuned."""
    cfg = sub_config(base, f"depth_{k}", paper)
    if base.model.name_or_path:
        cfg.model.keep_blocks = int(k)
    else:
        cfg.model.n_layer = int(k)
    return cfg


def overfit_config(base: RunConfig, paper: PaperConfig, main_steps: list[int]) -> RunConfig:
    """The main config trained ``overfit_epochs_factor`` times longer, without early stopping,
    measured at the main run's steps and then at every multiple of its last step."""
    cfg = sub_config(base, "overfit", paper)
    f = paper.overfit_epochs_factor
    cfg.training.epochs = float(base.training.epochs) * f
    if base.training.max_steps > 0:
        cfg.training.max_steps = int(round(base.training.max_steps * f))
    cfg.training.early_stopping_patience = None
    last = max(main_steps)
    extra = [last * j for j in range(2, math.ceil(f) + 1)]
    cfg.tracking.steps = sorted({int(s) for s in [*main_steps, *extra]})
    return cfg


@dataclass
class PaperOutput:
    root: Path
    report_path: Path
    runs: dict[str, Path]
    depth_runs: dict[int, Path]
    summary: dict = field(default_factory=dict)


def _table(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "results.parquet")


def run_paper(base: RunConfig, paper: PaperConfig, *, progress: bool = True) -> PaperOutput:
    """Run (or resume) every sub-run, then write ``<output_dir>/<name>/report.md``."""
    from .run import run

    root = base.run_dir
    root.mkdir(parents=True, exist_ok=True)
    (root / "paper.yaml").write_text(yaml.safe_dump(
        {**base.to_dict(), "paper": dataclasses.asdict(paper)}, sort_keys=False))
    # Check the depths before training anything: a pretrained model cannot grow blocks.
    full_depth = main_depth(base)
    too_deep = [k for k in paper.depths if int(k) > full_depth]
    if base.model.name_or_path and too_deep:
        raise ValueError(f"paper.depths lists {too_deep}, but {base.model.name_or_path} has only {full_depth} blocks")
    runs: dict[str, Path] = {}
    main = run(sub_config(base, "main", paper), progress=progress)
    runs["main"] = main.run_dir
    depth_runs: dict[int, Path] = {}
    for k in sorted({int(k) for k in paper.depths}):
        if k == full_depth:
            depth_runs[k] = main.run_dir
            continue
        depth_runs[k] = run(depth_config(base, paper, k), progress=progress).run_dir
        runs[f"depth_{k}"] = depth_runs[k]
    main_steps = sorted(int(s) for s in _table(main.run_dir)["step"].unique())
    runs["overfit"] = run(overfit_config(base, paper, main_steps), progress=progress).run_dir
    report, summary = write_paper_report(root, runs, depth_runs)
    return PaperOutput(root, report, runs, depth_runs, summary)


# ----------------------------------------------------------------------------- combined report


def _final_curve(df: pd.DataFrame, metric: str, split: str, view: str = "post") -> pd.Series:
    d = df[(df["metric"] == metric) & (df["split"] == split) & (df["final_norm"] == view)]
    d = d[d["step"] == d["step"].max()]
    return d.groupby("layer")["value"].mean().sort_index()


def depth_summary(depth_runs: dict[int, Path]) -> pd.DataFrame:
    """Per depth k and split: the null-corrected peak layer and ridge verdict at the final step
    (post view; :func:`inforidge.analysis.ridge_table`, the runs' own criterion)."""
    from .analysis import ridge_table

    rows = []
    for k, run_dir in sorted(depth_runs.items()):
        r = ridge_table(_table(run_dir))
        r = r[(r["final_norm"] == "post") & (r["step"] == r["step"].max())]
        for _, x in r.iterrows():
            rows.append({"k": k, "split": x["split"], "corrected peak": int(x["corrected_peak_layer"]),
                         "L": k, "corrected drop": f"{float(x['corrected_drop']):.3f}",
                         "ridge": bool(x["corrected_ridge"]),
                         "peak before last": int(x["corrected_peak_layer"]) < k})
    return pd.DataFrame(rows)


def depth_sentence(summary: pd.DataFrame) -> str:
    parts = []
    for split, name in (("id", "in-distribution"), ("ood", "out-of-distribution")):
        g = summary[summary["split"] == split]
        if g.empty:
            continue
        ridge = [int(k) for k in g.loc[g["ridge"], "k"]]
        before = [int(k) for k in g.loc[g["peak before last"] & ~g["ridge"], "k"]]
        s = (f"{name}: a null-corrected peak before the last layer with a clear drop (ridge) appears for "
             f"k ∈ {{{', '.join(map(str, ridge))}}}" if ridge else
             f"{name}: no depth shows a null-corrected ridge (peak before the last layer with a clear drop)")
        if before:
            s += f"; a peak before the last layer without a clear drop for k ∈ {{{', '.join(map(str, before))}}}"
        parts.append(s + ".")
    return " ".join(parts)


def _plot_depths(depth_runs: dict[int, Path], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), squeeze=False)
    colors = plt.cm.viridis([i / max(len(depth_runs) - 1, 1) * 0.9 for i in range(len(depth_runs))])
    for (k, run_dir), c in zip(sorted(depth_runs.items()), colors, strict=True):
        df = _table(run_dir)
        for ax, split in zip(axes[0], ("id", "ood"), strict=True):
            m = _final_curve(df, "predictive_information_corrected", split)
            ax.plot(m.index / k, m.values, "-o", ms=3, color=c, label=f"k = {k}")
    for ax, split in zip(axes[0], ("in-distribution", "out-of-distribution"), strict=True):
        ax.set_xlabel("depth fraction l / L")
        ax.set_ylabel("null-corrected predictive information (bits)")
        ax.set_title(f"depth threshold, final step ({split}, post view)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_overfit(main_dir: Path, overfit_dir: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), squeeze=False)
    for label, run_dir, color in (("main (final)", main_dir, "C0"), ("overfit (final)", overfit_dir, "C3")):
        df = _table(run_dir)
        step = int(df["step"].max())
        for ax, split in zip(axes[0], ("id", "ood"), strict=True):
            m = _final_curve(df, "predictive_information_corrected", split)
            r = _final_curve(df, "predictive_information", split)
            ax.plot(m.index, m.values, "-o", ms=3, color=color, label=f"{label}, step {step}: corrected")
            ax.plot(r.index, r.values, ":", color=color, label=f"{label}: raw")
    for ax, split in zip(axes[0], ("in-distribution", "out-of-distribution"), strict=True):
        ax.set_xlabel("layer")
        ax.set_ylabel("predictive information (bits)")
        ax.set_title(f"overfitting: main vs longer training ({split}, post view)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)



def overfit_summary(main_dir: Path, overfit_dir: Path) -> pd.DataFrame:
    from .analysis import ridge_table

    rows = []
    for label, run_dir in (("main", main_dir), ("overfit", overfit_dir)):
        df = _table(run_dir)
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


def write_paper_report(root: Path, runs: dict[str, Path], depth_runs: dict[int, Path]) -> tuple[Path, dict]:
    figures = root / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    _plot_depths(depth_runs, figures / "depth_threshold.png")
    _plot_overfit(runs["main"], runs["overfit"], figures / "overfitting.png")
    dsum = depth_summary(depth_runs)
    osum = overfit_summary(runs["main"], runs["overfit"])
    rel = {name: d.relative_to(root) for name, d in runs.items()}
    pretrained = load_config(runs["main"] / "config.yaml").model.name_or_path
    depth_models = (f"`{pretrained}` cut to its first k blocks (its final norm and LM head kept), then fine-tuned"
                    if pretrained else "GPT-2 trained from scratch with k blocks")
    lines = [
        "# InfoRidge — synthetic reproduction",
        "",
        "Sub-runs (each an ordinary run with its own report, table and figures):",
        *[f"- `{name}`: [{p}/report.md]({p}/report.md)" for name, p in rel.items()],
        "",
        "## Main run",
        f"The paper's setting; every analysis (ridge statistics, attention, residual scaling, kernel "
        f"ablation) is in [its report]({rel['main']}/report.md).",
        "",
        "## Depth threshold (paper Fig. 3)",
        f"{depth_models} (otherwise the main config; the k equal to the main run's "
        "depth is the main run itself); final null-corrected "
        "predictive information against the depth fraction l / L (post view). Ridge = the runs' own "
        "criterion (peak before the last layer, paired drop > max(2·std over seeds, 0.02 bits)).",
        "",
        depth_sentence(dsum),
        "",
        markdown_table(dsum.assign(ridge=dsum["ridge"].map({True: "yes", False: "no"}),
                        **{"peak before last": dsum["peak before last"].map({True: "yes", False: "no"})})),
        "",
        "![depth threshold](figures/depth_threshold.png)",
        "",
        "## Overfitting (paper Fig. 4)",
        "The main config trained longer (no early stopping; its linear schedule spans the longer run, so "
        "its curves at the main run's steps are not the main run's), measured at the main run's steps "
        "and then at every multiple of its last step. Final curves of both runs:",
        "",
        markdown_table(osum),
        "",
        "![overfitting](figures/overfitting.png)",
        "",
    ]
    path = root / "report.md"
    path.write_text("\n".join(lines))
    return path, {"depths": dsum.to_dict("records"), "overfit": osum.to_dict("records")}
