"""The main job: task -> model -> fine-tuning with tracking -> table -> figures -> report.

``run(config)`` writes ``<output_dir>/<name>/``: config.yaml, env.json, results.parquet/csv,
figures/*.png, report.md and model/ (final weights + tokenizer + trainer_state.json; not with
``training.save_model: false``). checkpoints/ holds the last Trainer checkpoint while training (for
resume) and is deleted when the run finishes, unless ``training.keep_checkpoints: true`` (then
every checkpoint is kept). ``training.max_steps: 0`` (or ``epochs: 0``) trains nothing and measures
the model as it is (:func:`~inforidge.pipelines.measure.measure_model`).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
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

from inforidge.config.schema import RunConfig
from inforidge.models.forward import accepts_argument
from inforidge.models.loading import load_for_run
from inforidge.pipelines.analyze import final_model_loader
from inforidge.pipelines.environment import set_threads
from inforidge.pipelines.measure import (
    build_evaluator,
    check_run_dir,
    finish_run,
    measure_model,
    step_extra_rows,
    write_run_files,
)
from inforidge.pipelines.tracking import SCALAR_PREFIXES, InfoRidgeCallback
from inforidge.results.table import ResultsTable
from inforidge.tasks.registry import build_task, renders_for_tokenizer
from inforidge.tasks.tokenize import (
    collator,
    one_multi_token_warning,
    tokenize_for_next_token,
)

log = logging.getLogger(__name__)


@dataclass
class RunOutput:
    """What ``run`` and ``measure_model`` return: like every entry point, ``.frame`` (the results
    as a DataFrame), ``out_dir`` (the folder written) and ``report_path``."""

    run_dir: Path
    table: ResultsTable
    report_path: Path
    summary: dict

    @property
    def frame(self):
        return self.table.frame

    @property
    def out_dir(self) -> Path:
        return self.run_dir


class _TerseProgress(ProgressCallback):
    """The Trainer's progress bar without echoing the per-layer scalars (they go to the table)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = {k: v for k, v in (logs or {}).items() if not k.startswith(SCALAR_PREFIXES)}
        if set(logs) - {"epoch"}:
            super().on_log(args, state, control, logs=logs, **kwargs)


def is_main_process() -> bool:
    """False on the other ranks of a multi-process launch (``accelerate launch``, torchrun)."""
    return int(os.environ.get("RANK", "0")) == 0


def finished(run_dir: Path) -> bool:
    """True when the run in ``run_dir`` has trained to its end: its final model is saved, or its
    report is written (a run with ``training.save_model: false`` saves no model)."""
    return (run_dir / "model" / "config.json").exists() or (run_dir / "report.md").exists()


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
        # resume needs only the last checkpoint; keep_checkpoints keeps every one for sweeps
        save_total_limit=None if tr.keep_checkpoints else 1,
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

    if config.training.max_steps == 0 or config.training.epochs == 0:
        # no training asked: the step-0 measurement of `inforidge measure` (no model copy, no checkpoints)
        log.warning("training.max_steps/epochs is 0: measuring the model as it is (as `inforidge measure`)")
        return measure_model(config, progress=progress)
    t0 = time.time()
    run_dir = config.run_dir
    main = is_main_process()
    threads = set_threads(config.training.threads)
    log.info("torch threads: %d (%s; %s of %d cores busy at the start)", threads.torch_threads,
             threads.threads_setting, threads.busy_cores, threads.cores)
    if main:
        check_run_dir(config, run_dir)

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
    train = not finished(run_dir)
    with one_multi_token_warning():  # one warning for every split together
        evaluator = build_evaluator(config, task, tokenizer)
        if train:
            train_data = tokenize_for_next_token(task.splits["train"], tokenizer, policy)
            validation_data = tokenize_for_next_token(task.splits["validation"], tokenizer, policy)
    if main:  # under `accelerate launch` every rank runs this function; one writes the files
        write_run_files(config, run_dir, threads)
    extra_rows = step_extra_rows(config, evaluator)
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
        if config.training.save_model:
            trainer.save_model(str(final_dir))
            if main:
                tokenizer.save_pretrained(str(final_dir))
                # the model's step for sweep/layers once checkpoints/ is gone
                trainer.state.save_to_json(str(final_dir / "trainer_state.json"))
    if not main:  # the table, figures and report belong to rank 0, which measured
        return RunOutput(run_dir, table, run_dir / "report.md", {})

    report_path, summary = finish_run(
        config, run_dir, final_model_loader(config, run_dir, trainer.model if train else None, tokenizer=tokenizer),
        tokenizer, task, evaluator, table)
    if not config.training.keep_checkpoints:  # the run is finished: nothing left to resume
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    summary["wall_seconds"] = round(time.time() - t0, 1)
    return RunOutput(run_dir, table, report_path, summary)
