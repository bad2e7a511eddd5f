"""Fine-tuning with the HF Trainer and tracking information flow during training.

:class:`InfoRidgeCallback` works in any user's ``Trainer`` run: at scheduled steps it
measures the model with an :class:`~inforidge.measure.predictive.Evaluator`, appends rows to a
:class:`~inforidge.results.table.ResultsTable` and logs flat scalars (``info/id/layer_03``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from transformers import TrainerCallback

from inforidge.extract.saved_states import save_states
from inforidge.measure.predictive import Evaluator
from inforidge.models.parts import locate_parts
from inforidge.models.validate import validate_parts
from inforidge.results.table import ResultsTable


def check_supported_parallelism(args) -> None:
    """Refuse sharded-parameter training: the callback measures with one forward pass on rank 0,
    which under FSDP or DeepSpeed ZeRO-3 holds only a shard of each weight (the pass would hang
    or fail). Supported: one process (with ``device_map`` for large models), and data parallel
    (DDP; ZeRO stages 0-2 keep whole weights on every rank)."""
    fsdp = getattr(args, "fsdp", None)
    if fsdp and fsdp not in ([], "", False):
        raise ValueError(
            "InfoRidge measures on rank 0 with one forward pass, but this Trainer shards the parameters with FSDP "
            f"(fsdp={fsdp!r}); rank 0 does not hold the whole model. Train with data parallelism (DDP: accelerate "
            "launch / torchrun without FSDP), or measure the saved checkpoints afterwards with `inforidge sweep`")
    from transformers.integrations import is_deepspeed_zero3_enabled

    if getattr(args, "deepspeed", None) and is_deepspeed_zero3_enabled():
        raise ValueError(
            "InfoRidge measures on rank 0 with one forward pass, but DeepSpeed ZeRO-3 shards the parameters; use "
            "ZeRO stage 0-2 (whole weights on every rank), or measure the saved checkpoints with `inforidge sweep`")


def log_spaced_steps(max_steps: int, n: int = 8) -> list[int]:
    """n roughly log-spaced steps in [0, max_steps], always including 0 and max_steps."""
    if max_steps <= 0:
        return [0]
    pts = np.unique(np.round(np.geomspace(1, max_steps, max(n - 1, 1))).astype(int))
    return sorted({0, *pts.tolist(), int(max_steps)})


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
        extra_rows: more row builders, each called as ``builder(states, step) -> list[dict]``
            with the states the Evaluator extracted for this measurement (no second forward
            pass), e.g. the ridge statistics at every step (``tracking.ridge_every_step``).
        states_dir: when given, every measurement's extracted states are written there
            (:func:`~inforidge.extract.saved_states.save_states`, one safetensors file per step),
            so ``inforidge analyze RUN --from-states`` can recompute any estimator setting.

    Steps already present in ``table`` are skipped, so a resumed run neither recomputes
    nor duplicates rows.
    """

    def __init__(self, evaluator: Evaluator, table: ResultsTable | None = None, *, steps=None,
                 n_measurements: int = 8, trainer=None, block_path=None, final_norm_path=None,
                 extra_rows: Sequence[Callable[[dict, int], list[dict]]] = (), states_dir=None):
        self.evaluator = evaluator
        self.states_dir = states_dir
        self.extra_rows = list(extra_rows)
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
        states = self.evaluator.extract(parts)
        if self.states_dir is not None:
            save_states(self.states_dir, step, states, self.evaluator.record_indices)
        rows = self.evaluator.rows(states, step)
        for builder in self.extra_rows:
            rows += builder(states, step)
        self.table.append(rows)
        scalars = summary_scalars(rows)
        if self.trainer is not None:
            self.trainer.log(scalars)
        else:
            state.log_history.append({**scalars, "step": step})

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        check_supported_parallelism(args)
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
        if state.is_world_process_zero:
            self.table.compact()  # results.parquet / results.csv whole at the end of training


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
