"""Fine-tuning with the HF Trainer and tracking information flow during training.

:class:`InfoRidgeCallback` works in any user's ``Trainer`` run: at scheduled steps it
measures the model with an :class:`~inforidge.measure.Evaluator`, appends rows to a
:class:`~inforidge.results.ResultsTable` and logs flat scalars (``info/id/layer_03``).
"""

from __future__ import annotations

import logging
import math

import datasets
import numpy as np
import torch
from transformers import DataCollatorForSeq2Seq, TrainerCallback

from .measure import Evaluator, target_token_ids
from .model import locate_parts, validate_parts
from .results import ResultsTable

log = logging.getLogger(__name__)


def log_spaced_steps(max_steps: int, n: int = 8) -> list[int]:
    """n roughly log-spaced steps in [0, max_steps], always including 0 and max_steps."""
    if max_steps <= 0:
        return [0]
    pts = np.unique(np.round(np.geomspace(1, max_steps, max(n - 1, 1))).astype(int))
    return sorted({0, *pts.tolist(), int(max_steps)})


def tokenize_for_next_token(records: list[dict], tokenizer, multi_token_target: str = "error") -> datasets.Dataset:
    """input_ids = prompt + target token; labels = -100 except the target (loss on it only).

    ``multi_token_target``: policy for targets longer than one token (see
    :func:`~inforidge.measure.target_token_ids`); 'first' trains on their first token.
    """
    target_ids = target_token_ids(tokenizer, [r["target"] for r in records], multi_token_target).tolist()
    enc = tokenizer([r["prompt"] for r in records], add_special_tokens=True)
    ids = [p + [t] for p, t in zip(enc["input_ids"], target_ids, strict=True)]
    return datasets.Dataset.from_dict({
        "input_ids": ids,
        "attention_mask": [[1] * len(i) for i in ids],
        "labels": [[-100] * (len(i) - 1) + [i[-1]] for i in ids],
    })


def collator(tokenizer) -> DataCollatorForSeq2Seq:
    """Pads input_ids with the pad token and labels with -100."""
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)


class InfoRidgeCallback(TrainerCallback):
    """Measure per-layer information at scheduled training steps.

    Args:
        evaluator: fixed evaluation subsamples and settings.
        table: where rows go (written atomically as they are produced).
        steps: steps to measure at; None = ``n_measurements`` log-spaced steps over the run
            (including step 0, before any update, and the last step).
        trainer: optional; when given, scalars go through ``trainer.log`` so every
            ``report_to`` integration (tensorboard, wandb...) receives them.
        block_path, final_norm_path: overrides passed to :func:`locate_parts`; the parts are
            checked with :func:`validate_parts` at the first measurement.

    Steps already present in ``table`` are skipped, so a resumed run neither recomputes
    nor duplicates rows.
    """

    def __init__(self, evaluator: Evaluator, table: ResultsTable | None = None, *, steps=None,
                 n_measurements: int = 8, trainer=None, block_path=None, final_norm_path=None):
        self.evaluator = evaluator
        self.table = table if table is not None else ResultsTable()
        self.steps = None if steps is None else sorted({int(s) for s in steps})
        self.n_measurements = n_measurements
        self.trainer = trainer
        self._paths = {"block_path": block_path, "final_norm_path": final_norm_path}
        self._validated = False

    def attach(self, trainer) -> InfoRidgeCallback:
        """Add this callback to ``trainer`` and log through it."""
        self.trainer = trainer
        trainer.add_callback(self)
        return self

    def _maybe_measure(self, state, model) -> None:
        step = int(state.global_step)
        if step not in (self.steps or []) or step in self.table.steps():
            return
        if not state.is_world_process_zero:
            return
        parts = locate_parts(model, **self._paths)
        if not self._validated:  # once: a wrong part would silently give wrong curves
            validate_parts(parts, self.evaluator.tokenizer)
            self._validated = True
        rows = self.evaluator.measure(parts, step)
        self.table.append(rows)
        scalars = summary_scalars(rows)
        if self.trainer is not None:
            self.trainer.log(scalars)
        else:
            state.log_history.append({**scalars, "step": step})

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.steps is None:
            self.steps = log_spaced_steps(state.max_steps, self.n_measurements)
        elif state.max_steps and state.max_steps not in self.steps:
            self.steps.append(int(state.max_steps))
        self._maybe_measure(state, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self._maybe_measure(state, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self.steps is not None and state.global_step not in self.steps:
            self.steps.append(int(state.global_step))  # early stopping ended the run early
        self._maybe_measure(state, model)


SCALAR_PREFIXES = ("info/", "info_corrected/", "gain/", "early_exit/")


def summary_scalars(rows: list[dict], view: str = "post") -> dict[str, float]:
    """Flat float scalars (mean over seeds) for trackers: info/<split>/layer_03, ..."""
    groups: dict[str, list[float]] = {}
    names = {"predictive_information": "info", "predictive_information_corrected": "info_corrected",
             "incremental_gain": "gain", "early_exit_accuracy": "early_exit"}
    for r in rows:
        if r["metric"] in names and r["final_norm"] == view:
            key = f"{names[r['metric']]}/{r['split']}/layer_{int(r['layer']):02d}"
            groups.setdefault(key, []).append(float(r["value"]))
    return {k: float(np.mean(v)) for k, v in groups.items() if not math.isnan(np.mean(v))}


def set_threads(n: int | None) -> int:
    """Set torch's intra-op threads (None leaves it); returns the count in force."""
    if n:
        torch.set_num_threads(int(n))
    return torch.get_num_threads()
