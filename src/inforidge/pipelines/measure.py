"""Measure a model as it is (step 0), without training: ``inforidge measure`` / :func:`measure_model`.

Writes ``<output_dir>/<name>/`` exactly like ``run`` (config.yaml, env.json, results.parquet/csv,
figures/*.png, report.md) but no model copy and no checkpoints. The config is a
:class:`~inforidge.config.schema.RunConfig` (a run's YAML works as it is); its ``training``
section is ignored except ``training.threads`` and ``training.seed`` (recorded in env.json).
The pieces shared with ``run`` (folder set-up, the Evaluator, the per-step extra rows, the
analyses/figures/report tail) live here so that both commands produce the same numbers.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from pathlib import Path

from inforidge.config.loading import save_config
from inforidge.config.schema import RunConfig
from inforidge.extract.saved_states import save_states
from inforidge.measure.predictive import Evaluator
from inforidge.measure.ridge import ridge_rows
from inforidge.models.loading import load_for_run
from inforidge.pipelines.analyze import run_analyses
from inforidge.pipelines.environment import (
    ThreadChoice,
    environment,
    record_environment,
    set_threads,
)
from inforidge.pipelines.folders import check_output_folder
from inforidge.report.run import write_report
from inforidge.report.run_figures import distinct_targets, save_figures
from inforidge.results.table import ResultsTable, provenance, write_text_atomic
from inforidge.tasks.registry import build_task, renders_for_tokenizer
from inforidge.tasks.tokenize import one_multi_token_warning

log = logging.getLogger(__name__)


def check_resume(config: RunConfig, run_dir: Path) -> None:
    """Refuse a folder that holds a run with another config (resume needs the same one)."""
    saved = run_dir / "config.yaml"
    if not saved.exists():
        return
    import yaml

    old = yaml.safe_load(saved.read_text())
    if old != json.loads(json.dumps(config.to_dict())):
        raise ValueError(
            f"{run_dir} holds a run with a different config; resume it with the same config "
            f"(inforidge run {saved}) or choose another name (--set name=...)"
        )


def check_run_dir(config: RunConfig, run_dir: Path) -> None:
    """Before anything is loaded: ``run_dir`` is usable as a folder, and a folder that holds a run
    holds this config (resume)."""
    check_output_folder(run_dir, "the run folder (output_dir/name)")
    check_resume(config, run_dir)


def write_run_files(config: RunConfig, run_dir: Path, threads: ThreadChoice) -> None:
    """Create ``run_dir`` with config.yaml and env.json (versions, provenance, seeds, threads).
    Called once the task, the model and the data have passed their checks, so a bad input leaves
    no folder behind that a corrected rerun would take for another config."""
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    write_text_atomic(run_dir / "env.json", json.dumps(
        {**environment(), **provenance(config.to_dict()), "seed": config.training.seed,
         "data_seed": config.task.seed, **threads.record()}, indent=2))


def build_evaluator(config: RunConfig, task, tokenizer) -> Evaluator:
    """The run's Evaluator on the ID and OOD test splits (same subsamples in run and measure)."""
    return Evaluator(tokenizer, {"id": task.splits["test_id"], "ood": task.splits["test_ood"]},
                     config.tracking.measure, multi_token_target=config.task.multi_token_target)


def step_extra_rows(config: RunConfig, evaluator: Evaluator) -> list:
    """Row builders run at every measured step besides the Evaluator's own rows."""
    if config.tracking.ridge_every_step and config.tracking.ridge_bootstrap > 0:
        return [partial(ridge_rows, evaluator, n_boot=config.tracking.ridge_bootstrap)]
    return []


def finish_run(config: RunConfig, run_dir: Path, load_parts, tokenizer, task, evaluator, table) -> tuple[Path, dict]:
    """The tail shared by run and measure: analyses of the last step, the batch size found,
    the compacted table, figures, report."""
    run_analyses(config, load_parts, tokenizer, task, evaluator, table)
    record_environment(run_dir / "env.json", extraction_batch_size=evaluator.batches.size)
    table.compact()
    figures = save_figures(table.frame, run_dir / "figures", settings=config.figures,
                           classes=distinct_targets(evaluator.records))
    return write_report(table.frame, run_dir, config, figures)


def measure_model(config: RunConfig | None = None, *, model: str | None = None, task: str | None = None,
                  output_dir: str | Path | None = None, name: str | None = None, progress: bool = False):
    """Measure ``config``'s model at step 0 (no training, no model copy); resumable.

    Args:
        config: a RunConfig (default: the defaults); ``training`` is ignored.
        model, task, output_dir, name: shortcuts for ``model.name_or_path``, ``task.name``,
            ``output_dir`` and ``name`` (applied on top of ``config``).
        progress: accepted for parity with ``run`` (there is no training loop to show).
    Returns a :class:`~inforidge.pipelines.run.RunOutput`-like object (run_dir, table,
    report_path, summary). Rerunning on the same folder skips the step-0 measurement and
    analyses already in the table.
    """
    from dataclasses import replace

    from inforidge.pipelines.run import RunOutput

    t0 = time.time()
    config = config or RunConfig()
    if model is not None:
        config = replace(config, model=replace(config.model, name_or_path=str(model)))
    if task is not None:
        config = replace(config, task=replace(config.task, name=task))
    if output_dir is not None:
        config = replace(config, output_dir=str(output_dir))
    if name is not None:
        config = replace(config, name=name)
    run_dir = config.run_dir
    threads = set_threads(config.training.threads)
    check_run_dir(config, run_dir)
    task_data = build_task(config)
    loaded = load_for_run(config.model, task_data)
    if renders_for_tokenizer(config):  # values written as single tokens of the model's tokenizer
        task_data = build_task(config, loaded.tokenizer)
    with one_multi_token_warning():
        evaluator = build_evaluator(config, task_data, loaded.tokenizer)
    write_run_files(config, run_dir, threads)
    table = ResultsTable(run_dir, config=config.to_dict())
    if 0 not in table.steps():  # a resumed measure does not recompute step 0
        states = evaluator.extract(loaded.parts)
        if config.tracking.save_states:
            save_states(run_dir / "states", 0, states, evaluator.record_indices)
        rows = evaluator.rows(states, 0)
        for builder in step_extra_rows(config, evaluator):
            rows += builder(states, 0)
        table.append(rows)
    report_path, summary = finish_run(config, run_dir, lambda: loaded.parts, loaded.tokenizer, task_data,
                                      evaluator, table)
    summary["wall_seconds"] = round(time.time() - t0, 1)
    return RunOutput(run_dir, table, report_path, summary)
