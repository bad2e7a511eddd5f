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
from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    EarlyStoppingCallback,
    PrinterCallback,
    ProgressCallback,
    Trainer,
    TrainingArguments,
)
from transformers.trainer_utils import get_last_checkpoint

from .config import RunConfig, save_config
from .envinfo import environment
from .measure import Evaluator, one_multi_token_warning
from .model import default_gpt2, load_causal_lm, locate_parts, truncate_blocks, validate_parts
from .results import ResultsTable
from .tasks import ArithmeticSpec, TaskData, build_arithmetic_task, load_jsonl_task
from .tasks.tokenizer import build_word_tokenizer
from .training import (
    SCALAR_PREFIXES,
    InfoRidgeCallback,
    collator,
    set_threads,
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


def build_task(config: RunConfig) -> TaskData:
    t = config.task
    if t.name == "arithmetic":
        return build_arithmetic_task(ArithmeticSpec(
            train_modulus=t.train_modulus, ood_moduli=tuple(t.ood_moduli), n_train=t.n_train,
            n_validation=t.n_validation, n_test=t.n_test, seed=t.seed,
        ))
    if t.name == "jsonl":
        if not t.path:
            raise ValueError("task.name=jsonl needs task.path, the JSONL file (see README: Bring your own model and data)")
        return load_jsonl_task(
            t.path, seed=t.seed, validation_fraction=t.validation_fraction, test_fraction=t.test_fraction
        )
    if t.name == "clutrr":
        from .tasks.clutrr import build_clutrr_task

        return build_clutrr_task(t)
    if t.name == "ecqa":
        from .tasks.ecqa import build_ecqa_task

        return build_ecqa_task(t)
    raise ValueError(f"unknown task {t.name!r}; tasks: arithmetic, jsonl, clutrr, ecqa")


def build_model_and_tokenizer(config: RunConfig, task: TaskData):
    """The default from-scratch GPT-2 with the task's word tokenizer, or a pretrained LM
    loaded with the model.* options (revision, dtype, device_map, ...)."""
    m = config.model
    if m.name_or_path:
        kw = m.from_pretrained_kwargs()
        tokenizer = AutoTokenizer.from_pretrained(
            m.name_or_path, **{k: kw[k] for k in ("revision", "trust_remote_code") if k in kw}
        )
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = load_causal_lm(m.name_or_path, **kw)
        if m.keep_blocks is not None:
            truncate_blocks(model, m.keep_blocks, block_path=m.block_path, final_norm_path=m.final_norm_path)
        return model, tokenizer
    if task.vocabulary is None:
        raise ValueError(f"task {task.name!r} has no closed vocabulary; set model.name_or_path to a pretrained LM")
    tokenizer = build_word_tokenizer(task.vocabulary)
    model = default_gpt2(
        len(tokenizer), n_layer=m.n_layer, n_embd=m.n_embd, n_head=m.n_head, seed=m.seed,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return model, tokenizer


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
    from .plots import save_figures
    from .report import write_report

    t0 = time.time()
    run_dir = config.run_dir
    main = is_main_process()
    threads = set_threads(config.training.threads)
    if main:  # under `accelerate launch` every rank runs this function; one writes the files
        _check_resume(config, run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
        (run_dir / "env.json").write_text(json.dumps(
            {**environment(), "seed": config.training.seed, "data_seed": config.task.seed, "torch_threads": threads},
            indent=2))

    task = build_task(config)
    model, tokenizer = build_model_and_tokenizer(config, task)
    paths = {"block_path": config.model.block_path, "final_norm_path": config.model.final_norm_path}
    validate_parts(locate_parts(model, **paths), tokenizer)
    policy = config.task.multi_token_target
    table = ResultsTable(run_dir)
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
    if config.tracking.ridge_every_step and config.tracking.ridge_bootstrap > 0:
        from .analyses import with_ridge_rows

        evaluator = with_ridge_rows(evaluator, config.tracking.ridge_bootstrap)
    if train:
        args = training_arguments(config, run_dir, progress)
        trainer = Trainer(
            model=model, args=args, train_dataset=train_data, eval_dataset=validation_data,
            data_collator=collator(tokenizer), processing_class=tokenizer,
        )
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        if progress:
            trainer.add_callback(_TerseProgress())
        InfoRidgeCallback(
            evaluator, table, steps=config.tracking.steps, n_measurements=config.tracking.n_measurements,
            **paths,
        ).attach(trainer)
        for cb in callbacks:
            trainer.add_callback(cb)
        if config.training.early_stopping_patience is not None:
            trainer.add_callback(EarlyStoppingCallback(config.training.early_stopping_patience))
        last = get_last_checkpoint(args.output_dir) if os.path.isdir(args.output_dir) else None
        if last:
            log.warning("resuming from %s", last)
        trainer.train(resume_from_checkpoint=last)
        trainer.save_model(str(final_dir))
        if main:
            tokenizer.save_pretrained(str(final_dir))
    if not main:  # the table, figures and report belong to rank 0, which measured
        return RunOutput(run_dir, table, run_dir / "report.md", {})
    from .analyses import (  # ridge statistics, attention, residual scaling
        final_model_loader,
        run_analyses,
    )

    run_analyses(config, final_model_loader(config, run_dir, trainer.model if train else None),
                 tokenizer, task, evaluator, table)
    figures = save_figures(table.frame, run_dir / "figures")
    report_path, summary = write_report(table.frame, run_dir, config, figures, evaluator)
    summary["wall_seconds"] = round(time.time() - t0, 1)
    return RunOutput(run_dir, table, report_path, summary)
