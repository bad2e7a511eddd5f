"""The main job: task -> model -> fine-tuning with tracking -> table -> figures -> report.

``run(config)`` writes ``<output_dir>/<name>/``: config.yaml, env.json, results.parquet/csv,
figures/*.png, report.md, model/ (final weights + tokenizer) and checkpoints/ (for resume).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from transformers import (
    EarlyStoppingCallback,
    PrinterCallback,
    ProgressCallback,
    Trainer,
    TrainingArguments,
)
from transformers.trainer_utils import get_last_checkpoint

from inforidge.config.loading import save_config
from inforidge.config.schema import RunConfig
from inforidge.measure.predictive import Evaluator
from inforidge.measure.ridge import ridge_rows
from inforidge.models.forward import accepts_argument
from inforidge.models.loading import load_for_run
from inforidge.pipelines.analyze import final_model_loader, run_analyses
from inforidge.pipelines.environment import environment, record_environment, set_threads
from inforidge.pipelines.folders import check_output_folder
from inforidge.pipelines.tracking import SCALAR_PREFIXES, InfoRidgeCallback
from inforidge.report.run import write_report
from inforidge.report.run_figures import distinct_targets, save_figures
from inforidge.results.table import ResultsTable, provenance
from inforidge.tasks.registry import build_task, renders_for_tokenizer
from inforidge.tasks.tokenize import (
    collator,
    one_multi_token_warning,
    tokenize_for_next_token,
)

log = logging.getLogger(__name__)


@dataclass
class RunOutput:
    run_dir: Path
    table: ResultsTable
    report_path: Path
    summary: dict


class _TerseProgress(ProgressCallback):
    """The Trainer's progress bar without echoing the per-layer scalars (they go to the table)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = {k: v for k, v in (logs or {}).items() if not k.startswith(SCALAR_PREFIXES)}
        if set(logs) - {"epoch"}:
            super().on_log(args, state, control, logs=logs, **kwargs)


def is_main_process() -> bool:
    """False on the other ranks of a multi-process launch (``accelerate launch``, torchrun)."""
    return int(os.environ.get("RANK", "0")) == 0


def _check_resume(config: RunConfig, run_dir: Path) -> None:
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


def training_arguments(config: RunConfig, run_dir: Path, progress: bool) -> TrainingArguments:
    tr = config.training
    early = tr.early_stopping_patience is not None
    eval_strategy = "steps" if tr.eval_steps else "epoch"
    return TrainingArguments(
        output_dir=str(run_dir / "checkpoints"),
        num_train_epochs=tr.epochs,
        max_steps=tr.max_steps,
        per_device_train_batch_size=tr.batch_size,
        per_device_eval_batch_size=max(tr.batch_size, 64),
        learning_rate=tr.learning_rate,
        weight_decay=tr.weight_decay,
        adam_beta2=tr.adam_beta2,
        warmup_steps=tr.warmup_ratio,
        lr_scheduler_type="linear",
        eval_strategy=eval_strategy,
        eval_steps=tr.eval_steps,
        save_strategy="steps" if not early else eval_strategy,
        save_steps=tr.save_steps if not early else tr.eval_steps,
        save_total_limit=2,
        load_best_model_at_end=early,
        metric_for_best_model="eval_loss" if early else None,
        logging_steps=max(1, min(50, tr.save_steps)),
        report_to=[s.strip() for s in tr.report_to.split(",")] if tr.report_to != "none" else "none",
        seed=tr.seed,
        disable_tqdm=not progress,
        use_cpu=not torch.cuda.is_available(),
    )


def run(config: RunConfig, *, progress: bool = True, callbacks=()) -> RunOutput:
    """Run (or resume) the job described by ``config``; returns where everything went.

    ``callbacks``: extra ``TrainerCallback`` objects for the training run.
    Under a multi-process launch only rank 0 writes files; the other ranks train and
    return an empty summary.
    """

    t0 = time.time()
    run_dir = config.run_dir
    main = is_main_process()
    threads = set_threads(config.training.threads)
    log.info("torch threads: %d (%s; %s of %d cores busy at the start)", threads.torch_threads,
             threads.threads_setting, threads.busy_cores, threads.cores)
    if main:
        check_output_folder(run_dir, "the run folder (output_dir/name)")
        _check_resume(config, run_dir)

    # The task, the model and the tokenised data are checked before the run folder is written:
    # a bad task, model or target stops here and a corrected rerun is not taken for another config.
    task = build_task(config)
    model, tokenizer, _ = load_for_run(config.model, task)
    if renders_for_tokenizer(config):  # values written as single tokens of the model's tokenizer
        task = build_task(config, tokenizer)
    paths = {"block_path": config.model.block_path, "final_norm_path": config.model.final_norm_path}
    policy = config.task.multi_token_target
    table = ResultsTable(run_dir, config=config.to_dict())
    final_dir = run_dir / "model"
    train = not (final_dir / "config.json").exists()
    with one_multi_token_warning():  # one warning for every split together
        evaluator = Evaluator(
            tokenizer, {"id": task.splits["test_id"], "ood": task.splits["test_ood"]}, config.tracking.measure,
            multi_token_target=policy,
        )
        if train:
            train_data = tokenize_for_next_token(task.splits["train"], tokenizer, policy)
            validation_data = tokenize_for_next_token(task.splits["validation"], tokenizer, policy)
    if main:  # under `accelerate launch` every rank runs this function; one writes the files
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
        (run_dir / "env.json").write_text(json.dumps(
            {**environment(), **provenance(config.to_dict()), "seed": config.training.seed,
             "data_seed": config.task.seed, **threads.record()},
            indent=2))
    extra_rows = []
    if config.tracking.ridge_every_step and config.tracking.ridge_bootstrap > 0:
        extra_rows.append(partial(ridge_rows, evaluator, n_boot=config.tracking.ridge_bootstrap))
    if train:
        args = training_arguments(config, run_dir, progress)
        trainer = Trainer(
            model=model, args=args, train_dataset=train_data, eval_dataset=validation_data,
            data_collator=collator(tokenizer, position_ids=accepts_argument(model, "position_ids")),
            processing_class=tokenizer,
        )
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        if progress:
            trainer.add_callback(_TerseProgress())
        InfoRidgeCallback(
            evaluator, table, steps=config.tracking.steps, n_measurements=config.tracking.n_measurements,
            extra_rows=extra_rows, states_dir=run_dir / "states" if config.tracking.save_states else None, **paths,
        ).attach(trainer)
        for cb in callbacks:
            trainer.add_callback(cb)
        if config.training.early_stopping_patience is not None:
            trainer.add_callback(EarlyStoppingCallback(config.training.early_stopping_patience))
        last = get_last_checkpoint(args.output_dir) if os.path.isdir(args.output_dir) else None
        if last:
            log.warning("resuming from %s", last)
        try:
            trainer.train(resume_from_checkpoint=last)
        finally:  # interrupted or not, results.parquet holds every measurement made
            if main:
                table.compact()
        trainer.save_model(str(final_dir))
        if main:
            tokenizer.save_pretrained(str(final_dir))
    if not main:  # the table, figures and report belong to rank 0, which measured
        return RunOutput(run_dir, table, run_dir / "report.md", {})

    run_analyses(config, final_model_loader(config, run_dir, trainer.model if train else None, tokenizer=tokenizer),
                 tokenizer, task, evaluator, table)
    record_environment(run_dir / "env.json", extraction_batch_size=evaluator.batches.size)
    table.compact()
    figures = save_figures(table.frame, run_dir / "figures", settings=config.figures,
                           classes=distinct_targets(evaluator.records))
    report_path, summary = write_report(table.frame, run_dir, config, figures)
    summary["wall_seconds"] = round(time.time() - t0, 1)
    return RunOutput(run_dir, table, report_path, summary)
