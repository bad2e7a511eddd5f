"""Checkpoint sweeps: measure a list of saved model states into ONE tidy table.

Each checkpoint (a ``checkpoint-<N>`` folder of any Trainer run, a run folder of ours, or a
hub revision such as Pythia's ``step3000``) is loaded, hashed, measured with the standard
:class:`~inforidge.measure.predictive.Evaluator` and appended to a :class:`~inforidge.results.table.ResultsTable`
with two extra columns: ``checkpoint`` (the folder's absolute path, or ``name@revision``) and
``weight_hash`` (see :func:`weight_hash`). ``step`` is the checkpoint's training step.

Provenance (hub checkpoints can be wrong: Pythia issues #108, #205, #206): every row carries
the weight hash, and two checkpoints with identical weights are reported with a warning.
A sweep is resumable: checkpoints whose rows are already in the table are skipped.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from inforidge.config.loading import apply_overrides, from_dict, parse_yaml
from inforidge.config.schema import RunConfig
from inforidge.config.settings import MeasureSettings
from inforidge.measure.predictive import Evaluator
from inforidge.models.checkpoints import (
    Checkpoint,
    discover_checkpoints,
    resolve_checkpoints,
    weight_hash,
)
from inforidge.models.loading import load, load_tokenizer, prepare_tokenizer, tokenizer_folder
from inforidge.pipelines.folders import check_output_folder
from inforidge.pipelines.tracking import (
    check_report_to,
    summary_scalars,
    tensorboard_layout,
    write_tensorboard,
)
from inforidge.report.run import write_report
from inforidge.report.run_figures import distinct_targets, save_figures
from inforidge.report.sweep import checkpoint_section
from inforidge.results.summaries import checkpoint_summary
from inforidge.results.table import ResultsTable
from inforidge.tasks import TaskData
from inforidge.tasks.registry import build_task

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    """What a sweep produced; ``warnings`` repeats what was logged (identical weights...)."""

    table: ResultsTable
    checkpoints: list[Checkpoint]
    hashes: dict[str, str] = field(default_factory=dict)
    """checkpoint name -> weight hash (measured now or read from the table)."""
    measured: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Checkpoints whose rows were already in the table (resume)."""
    duplicates: list[list[str]] = field(default_factory=list)
    """Groups of checkpoints with identical weights."""
    warnings: list[str] = field(default_factory=list)

    @property
    def frame(self):
        """The results as a DataFrame (as every entry point's ``.frame``)."""
        return self.table.frame

    @property
    def out_dir(self):
        return self.table.folder


def _eval_splits(data) -> dict[str, list[dict]]:
    if isinstance(data, TaskData):
        return {"id": data.splits["test_id"], "ood": data.splits["test_ood"]}
    return dict(data)


def _default_device(model_kwargs: dict) -> str | None:
    if model_kwargs.get("device_map") is not None:
        return None
    return "cuda" if torch.cuda.is_available() else None


@contextmanager
def _hf_progress_bars(enabled: bool):
    """transformers' own bars ("Loading weights") off while ``enabled`` is False."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if was and not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was and not enabled:
            hf_logging.enable_progress_bar()


def _measure_all(bar, done, result, evaluator_for, model_kwargs, device, block_path, final_norm_path) -> None:
    """Load, hash and measure each checkpoint of ``bar`` not in ``done``; rows go to ``result.table``."""
    table = result.table
    for c in bar:
        bar.set_postfix_str(f"step {c.step}")
        if c.name in done:
            result.skipped.append(c.name)
            result.hashes[c.name] = done[c.name]
            continue
        ev = evaluator_for(c)
        # The Evaluator's tokenizer is the checkpoint's own (loaded with the same options) or
        # the shared one; load() prepares it like any other (pad token, left padding).
        model, _, parts = load(c.source, kind="causal", tokenizer=ev.tokenizer, revision=c.revision, device=device,
                               block_path=block_path, final_norm_path=final_norm_path, **model_kwargs)
        digest = weight_hash(model)
        rows = ev.measure(parts, c.step)
        for r in rows:
            r["checkpoint"] = c.name
            r["weight_hash"] = digest
        table.append(rows)
        result.measured.append(c.name)
        result.hashes[c.name] = digest
        del model, parts
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def sweep(
    checkpoints: Sequence[Checkpoint | str | Path],
    data: TaskData | dict[str, list[dict]],
    settings: MeasureSettings | None = None,
    out_dir: str | Path | None = None,
    *,
    tokenizer=None,
    multi_token_target: str = "error",
    model_kwargs: dict | None = None,
    block_path: str | None = None,
    final_norm_path: str | None = None,
    device: str | None = "auto",
    progress: bool = True,
) -> SweepResult:
    """Measure ``checkpoints`` on the same evaluation subsamples into one table in ``out_dir``.

    Args:
        checkpoints: :class:`Checkpoint` objects, folders, or ``name_or_path@revision`` strings.
        data: a :class:`TaskData` (its ``test_id`` / ``test_ood`` splits) or split -> records.
        settings: estimator settings (the same for every checkpoint).
        out_dir: where ``results.parquet`` / ``results.csv`` go (None: in memory only).
        tokenizer: used for checkpoints without their own tokenizer: a tokenizer object or a
            path / hub name to load one from. A checkpoint folder with tokenizer files uses its own.
        model_kwargs: passed to :func:`~inforidge.models.loading.load` (dtype, device_map,
            attn_implementation, trust_remote_code).
        device: where to move each model ("auto": CUDA when available; None: leave it).

    Checkpoints already in the table (by the ``checkpoint`` column) are skipped. Two
    checkpoints with identical weight hashes are logged with ``logging.warning`` and listed
    in ``SweepResult.duplicates`` / ``warnings``.
    """
    from tqdm.auto import tqdm

    settings = settings or MeasureSettings()
    model_kwargs = dict(model_kwargs or {})
    model_kwargs.pop("revision", None)
    if device == "auto":
        device = _default_device(model_kwargs)
    splits = _eval_splits(data)
    ckpts = [Checkpoint.parse(c) for c in checkpoints]
    names = [c.name for c in ckpts]
    if len(set(names)) != len(names):
        raise ValueError(f"a checkpoint is listed twice: {sorted({n for n in names if names.count(n) > 1})}")
    table = ResultsTable(out_dir)
    result = SweepResult(table, ckpts)
    done = {}
    f = table.frame
    if not f.empty and "checkpoint" in f:
        done = dict(f.dropna(subset=["checkpoint"]).groupby("checkpoint", observed=True)["weight_hash"].first())
    steps = [c.step for c in ckpts]
    if len(set(steps)) != len(steps):
        msg = ("two checkpoints share a training step "
               f"{sorted({s for s in steps if steps.count(s) > 1})}; their rows share that step in the table")
        log.warning(msg)
        result.warnings.append(msg)

    trust = bool(model_kwargs.get("trust_remote_code", False))
    shared: list[Evaluator] = []  # the one Evaluator for checkpoints without a tokenizer

    def evaluator_for(c: Checkpoint) -> Evaluator:
        if c.has_tokenizer():
            return Evaluator(load_tokenizer(c.source, revision=c.revision, trust_remote_code=trust), splits, settings,
                             multi_token_target=multi_token_target)
        if tokenizer is None:
            raise ValueError(f"{c.name} holds no tokenizer; pass tokenizer= (an object or a folder holding one; "
                             "CLI: --set model.name_or_path=<folder or hub name with the tokenizer>)")
        if not shared:
            tok = (load_tokenizer(tokenizer, trust_remote_code=trust) if isinstance(tokenizer, str | Path)
                   else prepare_tokenizer(tokenizer))
            shared.append(Evaluator(tok, splits, settings, multi_token_target=multi_token_target))
        return shared[0]

    with _hf_progress_bars(progress):
        bar = tqdm(ckpts, desc="checkpoints", unit="ckpt", disable=not progress)
        try:
            _measure_all(bar, done, result, evaluator_for, model_kwargs, device, block_path, final_norm_path)
        finally:  # what was measured is in results.parquet even when a checkpoint fails
            table.compact()

    by_hash: dict[str, list[str]] = {}
    for name, digest in result.hashes.items():
        by_hash.setdefault(digest, []).append(name)
    for digest, group in by_hash.items():
        if len(group) > 1:
            msg = f"identical weights (hash {digest}) in {len(group)} checkpoints: {', '.join(group)}"
            log.warning(msg)
            result.duplicates.append(group)
            result.warnings.append(msg)
    return result


@dataclass
class SweepOutput:
    out_dir: Path
    result: SweepResult
    report_path: Path
    summary: pd.DataFrame


def _split_sweep_section(data: dict) -> tuple[dict, dict]:
    data = dict(data or {})
    section = data.pop("sweep", None) or {}
    unknown = sorted(set(section) - {"checkpoints", "revisions"})
    if unknown:
        raise ValueError(f"unknown key(s) under sweep: {', '.join(unknown)}; valid: checkpoints, revisions")
    return data, section


def sweep_target(
    target: str,
    *,
    checkpoints: Sequence[str] | None = None,
    out: str | Path | None = None,
    config_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    progress: bool = True,
    report_to: str = "none",
) -> SweepOutput:
    """What ``inforidge sweep`` does: sweep ``target`` (a run folder of ours, a folder of
    Trainer checkpoints, or a hub model name), then write the table, figures and report.
    ``report_to="tensorboard"`` also writes the per-layer scalars (x = checkpoint step; one
    custom-scalars chart per metric and split) and the figures to ``<out>/tensorboard``.

    The evaluation data and measurement settings come from ``config_path`` (a run config YAML
    with the task; it may hold a ``sweep: {checkpoints: [...], revisions: [...]}`` section) or,
    for a run folder of ours, from its ``config.yaml``; ``overrides`` apply on top.
    """
    trackers = check_report_to(report_to)
    folder = Path(target)
    is_dir = folder.is_dir()
    path = Path(config_path) if config_path else (folder / "config.yaml" if is_dir else None)
    if config_path and not path.exists():
        raise ValueError(f"config file {path} does not exist")
    if path is None or not path.exists():
        raise ValueError(
            f"{target} has no config.yaml; pass --config with a YAML whose task section describes "
            "the evaluation data (see `inforidge config`)"
        )
    data = parse_yaml(path.read_text(), f"config file {path}") or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a YAML mapping of sections")
    data, section = _split_sweep_section(data)
    config: RunConfig = from_dict(RunConfig, apply_overrides(data, list(overrides)))
    hub_name = None if is_dir else target

    items = list(checkpoints or section.get("checkpoints") or [])
    revisions = list(section.get("revisions") or [])
    if revisions:
        name = hub_name or config.model.name_or_path
        if not name:
            raise ValueError("sweep.revisions needs a hub model: give its name as the target or model.name_or_path")
        items += [f"{name}@{r}" for r in revisions]
    if items:
        ckpts = resolve_checkpoints(folder, items, hub_name)
    elif is_dir:
        ckpts = discover_checkpoints(folder)
    else:
        raise ValueError(f"{target} is not a folder; list the revisions to sweep (--checkpoints step0,step1000)")

    own = tokenizer_folder(folder) if is_dir else None
    tokenizer = (str(own) if own else None) or config.model.name_or_path or hub_name
    out_dir = Path(out) if out else (folder / "sweep" if is_dir else Path(config.output_dir) / f"sweep-{Path(target).name}")
    check_output_folder(out_dir, "the sweep output folder (--out)")
    model_kwargs = config.model.from_pretrained_kwargs()
    # the arithmetic task writes its values for the tokenizer (task.rendering; words for a word tokenizer)
    task_tokenizer = (load_tokenizer(tokenizer, trust_remote_code=config.model.trust_remote_code)
                      if config.task.name == "arithmetic" and tokenizer else None)
    task = build_task(config, task_tokenizer)
    result = sweep(
        ckpts, task, config.tracking.measure, out_dir, tokenizer=tokenizer,
        multi_token_target=config.task.multi_token_target, model_kwargs=model_kwargs,
        block_path=config.model.block_path, final_norm_path=config.model.final_norm_path, progress=progress,
    )
    df = result.table.frame
    df = df[df["checkpoint"].isin([c.name for c in ckpts])] if "checkpoint" in df else df
    config.name = f"{config.name if config_path is None else Path(target).name} (checkpoint sweep)"
    figures = save_figures(df, out_dir / "figures", settings=config.figures,
                           classes=distinct_targets(_eval_splits(task)))
    report_path, _ = write_report(df, out_dir, config, figures, checkpoint_section(df, result.warnings))
    if trackers and not df.empty:
        by_step = {int(s): summary_scalars(g.to_dict("records")) for s, g in df.groupby("step", observed=True)}
        write_tensorboard(out_dir / "tensorboard", {"": by_step},
                          {f"inforidge/{n}": (max(by_step), p) for n, p in figures.items()},
                          tensorboard_layout({k for v in by_step.values() for k in v}, prefix=""))
    return SweepOutput(out_dir, result, report_path, checkpoint_summary(df))
