"""``inforidge paper``: the synthetic reproduction as a set of ordinary runs under ``runs/paper/``.

- ``main``: the config's run as given (the paper's 12 layers, every analysis on);
- ``depth_<k>``: depth threshold (paper Fig. 3): the main config with a k-block model for each k
  in ``paper.depths`` (``model.n_layer = k`` from scratch; a pretrained model truncated to its
  first k blocks with ``model.keep_blocks = k``); k equal to the main depth reuses the main run;
- ``overfit``: overfitting (paper Fig. 4): the main config with ``paper.overfit_epochs_factor``
  times the epochs, measured at the main run's steps and then every main-run length.

Each sub-run is a plain :func:`inforidge.run.run` call, so an interrupted ``paper`` resumes.
The ``paper:`` section of the YAML is read here (:class:`PaperConfig`); the rest is a
:class:`~inforidge.config.schema.RunConfig`. Then ``runs/paper/report.md`` combines them.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from inforidge.config.schema import PaperConfig, RunConfig
from inforidge.models.parts import config_num_layers
from inforidge.pipelines.run import run
from inforidge.report.paper import write_paper_report
from inforidge.results.table import read_run_table


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




def run_paper(base: RunConfig, paper: PaperConfig, *, progress: bool = True) -> PaperOutput:
    """Run (or resume) every sub-run, then write ``<output_dir>/<name>/report.md``."""

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
    main_steps = sorted(int(s) for s in read_run_table(main.run_dir)["step"].unique())
    runs["overfit"] = run(overfit_config(base, paper, main_steps), progress=progress).run_dir
    report, summary = write_paper_report(root, runs, depth_runs, base.figures)
    return PaperOutput(root, report, runs, depth_runs, summary)
