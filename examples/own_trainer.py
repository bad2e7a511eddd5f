"""Worked example 1: InfoRidge's callback inside your own Hugging Face Trainer run, with TensorBoard.

A small GPT-2 is trained from scratch on the synthetic arithmetic task; the callback measures
the per-layer predictive information at log-spaced steps, writes the tidy table and logs the
per-layer scalars, one chart per metric and split, and the layer-curve figure to TensorBoard.

    python examples/own_trainer.py --out runs/example-trainer [--steps 40]
    tensorboard --logdir runs/example-trainer/trainer
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from transformers import Trainer, TrainingArguments

from inforidge.config.settings import MeasureSettings
from inforidge.measure.predictive import Evaluator
from inforidge.models.loading import default_gpt2
from inforidge.pipelines.tracking import InfoRidgeCallback
from inforidge.results.table import ResultsTable
from inforidge.tasks import ArithmeticSpec, build_arithmetic_task
from inforidge.tasks.tokenize import build_word_tokenizer, collator, tokenize_for_next_token


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=Path("runs/example-trainer"))
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()

    task = build_arithmetic_task(ArithmeticSpec(n_train=1024, n_validation=64, n_test=200, seed=0))
    tokenizer = build_word_tokenizer(task.vocabulary)
    model = default_gpt2(len(tokenizer), n_layer=4, n_embd=64, n_head=4, seed=0)

    # Your data, your Trainer: InfoRidge only needs the evaluation records (prompt, target).
    evaluator = Evaluator(tokenizer, {"id": task.splits["test_id"], "ood": task.splits["test_ood"]},
                          MeasureSettings(n_samples=50, seeds=[0, 1], n_permutations=10))
    callback = InfoRidgeCallback(evaluator, ResultsTable(args.out / "table"), n_measurements=4)
    trainer = Trainer(
        model=model,
        args=TrainingArguments(output_dir=str(args.out / "trainer"), max_steps=args.steps,
                               per_device_train_batch_size=32, learning_rate=1e-3, report_to=["tensorboard"],
                               logging_steps=10, save_strategy="no",
                               use_cpu=True, disable_tqdm=True),
        train_dataset=tokenize_for_next_token(task.splits["train"], tokenizer),
        data_collator=collator(tokenizer),
        callbacks=[callback],  # the usual idiom: every tracker in report_to gets the measurements
    )
    trainer.train()

    table = pd.read_parquet(args.out / "table" / "results.parquet")
    corrected = table[(table["metric"] == "predictive_information_corrected") & (table["final_norm"] == "post")]
    print(corrected.pivot_table(index="layer", columns=["split", "step"], values="value").round(3).to_string())


if __name__ == "__main__":
    main()
