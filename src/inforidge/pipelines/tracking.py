"""Fine-tuning with the HF Trainer and tracking information flow during training.

:class:`InfoRidgeCallback` works in any user's ``Trainer`` run: at scheduled steps it
measures the model with an :class:`~inforidge.measure.predictive.Evaluator`, appends rows to a
:class:`~inforidge.results.table.ResultsTable` and logs flat scalars (``info/id/layer_03``).

The scalars reach every tracker in ``report_to`` with each of the usual idioms
(``Trainer(callbacks=[cb])``, ``trainer.add_callback(cb)``, ``cb.attach(trainer)``): they are
handed to the ``on_log`` of the Trainer's other callbacks (the integrations: TensorBoard, W&B,
MLflow...), as ``Trainer.log`` would, except the console printers, so a measurement does not
print its hundreds of numbers. Where the tracker takes charts and figures, each metric and
split is also one chart (TensorBoard custom-scalars layout; W&B line series), each measurement
logs the layer-curve figure and the final one the layer x step heatmap.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Callable, Sequence

import numpy as np
from transformers import TrainerCallback
from transformers.trainer_callback import CallbackHandler

from inforidge.extract.saved_states import save_states
from inforidge.measure.predictive import Evaluator
from inforidge.models.parts import locate_parts
from inforidge.models.validate import validate_parts
from inforidge.report.run_figures import information_heatmap, layer_curves
from inforidge.results.table import ResultsTable

log = logging.getLogger(__name__)

# Callbacks that print logs to the console: they do not get the per-layer scalars.
CONSOLE_CALLBACKS = ("ProgressCallback", "PrinterCallback", "NotebookProgressCallback")


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
        trainer: optional (set by :meth:`attach`); without it the callback finds the Trainer's
            callback handler when the Trainer first calls it, so ``Trainer(callbacks=[cb])`` and
            ``trainer.add_callback(cb)`` log to the trackers as well.
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
        self._handler: CallbackHandler | None = None
        self._layout_written = False
        self._warned = False

    def attach(self, trainer) -> InfoRidgeCallback:
        """Add this callback to ``trainer`` (same as ``trainer.add_callback(cb)``)."""
        self.trainer = trainer
        trainer.add_callback(self)
        return self

    # -- reaching the trackers ---------------------------------------------------------------

    def _find_handler(self) -> CallbackHandler | None:
        """The Trainer's CallbackHandler holding this callback.

        Transformers passes callbacks neither the trainer nor the handler, but every event comes
        through ``CallbackHandler.call_event``: its frame, a few levels up, holds the handler.
        """
        if self.trainer is not None:
            return self.trainer.callback_handler
        frame = sys._getframe(1)
        for _ in range(8):
            if frame is None:
                break
            owner = frame.f_locals.get("self")
            if isinstance(owner, CallbackHandler) and any(cb is self for cb in owner.callbacks):
                return owner
            frame = frame.f_back
        return None

    def _trackers(self) -> list[TrainerCallback]:
        """The handler's callbacks that get the scalars: all but the console printers and this one."""
        if self._handler is None:
            return []
        return [cb for cb in self._handler.callbacks if cb is not self
                and not any(c.__name__ in CONSOLE_CALLBACKS for c in type(cb).__mro__)]

    def _log(self, args, state, control, scalars: dict[str, float]):
        """What ``Trainer.log`` does (log_history, then every callback's ``on_log``) without the console."""
        logs = dict(scalars)
        if state.epoch is not None:
            logs["epoch"] = state.epoch
        state.log_history.append({**logs, "step": state.global_step})
        if self._handler is None:
            if not self._warned:
                log.warning("InfoRidgeCallback was called outside a Trainer's callback handler, so its scalars go "
                            "only to state.log_history, not to the trackers in report_to; add it with "
                            "Trainer(callbacks=[cb]), trainer.add_callback(cb) or cb.attach(trainer)")
                self._warned = True
            return control
        h = self._handler
        kwargs = {name: getattr(h, name, None) for name in
                  ("model", "processing_class", "optimizer", "lr_scheduler", "train_dataloader", "eval_dataloader")}
        for cb in self._trackers():
            result = cb.on_log(args, state, control, logs=dict(logs), **kwargs)
            control = result if result is not None else control
        log.info("InfoRidge: step %d measured; %d scalars to the trackers", state.global_step, len(scalars))
        return control

    def _charts(self, args, state, scalars: dict[str, float], final: bool) -> None:
        """One chart per metric and split, the layer-curve figure and (final) the heatmap, for the
        trackers that take them (TensorBoard, W&B)."""
        from transformers.integrations import TensorBoardCallback, WandbCallback

        step = int(state.global_step)
        figures = {}
        for cb in self._trackers():
            if isinstance(cb, TensorBoardCallback):
                if cb.tb_writer is None and hasattr(cb, "_init_summary_writer"):
                    cb._init_summary_writer(args)
                writer = cb.tb_writer
                if writer is None:
                    continue
                if not self._layout_written:
                    writer.add_custom_scalars(tensorboard_layout(scalars))
                    self._layout_written = True
                for name, pixels in self._figures(figures, step, final).items():
                    writer.add_image(f"inforidge/{name}", pixels, step, dataformats="HWC")
                writer.flush()
            elif isinstance(cb, WandbCallback) and getattr(cb, "_wandb", None) is not None \
                    and getattr(cb._wandb, "run", None) is not None:
                wandb = cb._wandb
                entry = {f"inforidge/{name}": wandb.Image(pixels)
                         for name, pixels in self._figures(figures, step, final).items()}
                for group, (xs, ys, keys) in layer_series(self.table.frame).items():
                    entry[f"inforidge/{group}"] = wandb.plot.line_series(xs, ys, keys=keys, title=group, xname="step")
                wandb.log({**entry, "train/global_step": step})

    def _close_reopened_writers(self) -> None:
        """At train end the TensorBoardCallback has already closed its writer (it runs first);
        a measurement then reopens it: close it again."""
        from transformers.integrations import TensorBoardCallback

        for cb in self._trackers():
            if isinstance(cb, TensorBoardCallback) and cb.tb_writer is not None:
                cb.tb_writer.close()
                cb.tb_writer = None

    def _figures(self, cache: dict, step: int, final: bool) -> dict[str, np.ndarray]:
        """The figures as RGB arrays, drawn once per measurement for all trackers."""
        if not cache:
            df = self.table.frame
            cache["layer_curves"] = figure_pixels(layer_curves(df, steps=[step]))
            if final:
                cache["information_heatmap"] = figure_pixels(information_heatmap(df))
        return cache

    # -- measuring -----------------------------------------------------------------------------

    def _maybe_measure(self, args, state, control, model, at_end: bool = False):
        step = int(state.global_step)
        if step not in (self.steps or []) or step in self.table.steps():
            return control
        if not state.is_world_process_zero:
            return control
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
        control = self._log(args, state, control, scalars)
        if scalars:
            self._charts(args, state, scalars, final=at_end or step == max(self.steps))
        if at_end:
            self._close_reopened_writers()
        return control

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        check_supported_parallelism(args)
        self._handler = self._find_handler()
        if self.steps is None:
            self.steps = log_spaced_steps(state.max_steps, self.n_measurements)
        elif state.max_steps and state.max_steps not in self.steps:
            self.steps.append(int(state.max_steps))
            self.steps.sort()
        return self._maybe_measure(args, state, control, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        return self._maybe_measure(args, state, control, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self.steps is not None and state.global_step not in self.steps:
            self.steps.append(int(state.global_step))  # early stopping ended the run early
        try:
            return self._maybe_measure(args, state, control, model, at_end=True)
        finally:
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


def scalar_groups(keys) -> list[str]:
    """The metric/split groups of flat scalar keys: ``info/id/layer_03`` -> ``info/id``."""
    return sorted({k.rsplit("/layer_", 1)[0] for k in keys if "/layer_" in k})


def tensorboard_layout(scalars, prefix: str = "train/") -> dict:
    """TensorBoard custom-scalars layout: one multi-line chart (a line per layer) per metric and
    split, under one category per metric. The Trainer's TensorBoardCallback writes the keys
    under ``train/`` (``prefix``); the tags are regular expressions."""
    layout: dict[str, dict] = {}
    for group in scalar_groups(scalars):
        metric = group.split("/", 1)[0]
        layout.setdefault(f"InfoRidge {metric}", {})[group] = [
            "Multiline", [rf"^{re.escape(prefix)}{re.escape(group)}/layer_\d+$"]]
    return layout


def layer_series(df, view: str = "post") -> dict[str, tuple[list[int], list[list[float]], list[str]]]:
    """group -> (steps, one value list per layer, layer names) for line-series charts (W&B)."""
    out = {}
    by_step = {int(s): summary_scalars(g.to_dict("records"), view) for s, g in df.groupby("step", observed=True)}
    steps = sorted(by_step)
    for group in scalar_groups({k for v in by_step.values() for k in v}):
        keys = sorted({k for v in by_step.values() for k in v if k.startswith(group + "/layer_")})
        ys = [[by_step[s].get(k, float("nan")) for s in steps] for k in keys]
        out[group] = (steps, ys, [k.rsplit("/", 1)[1] for k in keys])
    return out


def figure_pixels(fig) -> np.ndarray:
    """An RGB (H, W, 3) uint8 array of a matplotlib Figure, drawn on an Agg canvas of its own:
    neither pyplot nor the user's backend is touched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


# -- trackers for the commands without a Trainer (sweep, layers) -------------------------------

OFFLINE_TRACKERS = ("none", "tensorboard")


def check_report_to(report_to: str | Sequence[str] | None) -> list[str]:
    """The trackers of a ``report_to`` option (comma list); sweep and layers write TensorBoard."""
    names = [n.strip() for n in (report_to.split(",") if isinstance(report_to, str) else report_to or [])]
    names = [n for n in names if n and n != "none"]
    bad = [n for n in names if n not in OFFLINE_TRACKERS]
    if bad:
        raise ValueError(f"report_to={','.join(bad)} is not available here: sweep and layers write TensorBoard "
                         "event files (report_to=tensorboard) under the output folder; to see them in W&B, "
                         "upload that folder with `wandb sync --sync-tensorboard <folder>`")
    if names:
        try:
            import tensorboard  # noqa: F401  (torch's SummaryWriter needs it)
        except ImportError as e:
            raise ValueError("report_to=tensorboard needs the tensorboard package: pip install tensorboard") from e
    return names


def png_pixels(path) -> np.ndarray:
    """An RGB uint8 array of a PNG written by the report (read without pyplot)."""
    from matplotlib.image import imread

    img = imread(path)
    img = (img * 255).round().astype(np.uint8) if img.dtype != np.uint8 else img
    return np.ascontiguousarray(img[..., :3])


def write_tensorboard(folder, runs: dict[str, dict[int, dict[str, float]]], images: dict[str, tuple[int, object]] = (),
                      layout: dict | None = None):
    """TensorBoard event files under ``folder``: ``runs`` is run name ("" = ``folder`` itself) ->
    step -> {tag: value}; ``images`` is tag -> (step, figure path or RGB array; a path's PNG sibling
    is read, none written without one), written in the
    top run with the custom-scalars ``layout``. Earlier event files in ``folder`` are removed
    first, so a resumed command leaves one copy of each point."""
    from pathlib import Path

    from torch.utils.tensorboard import SummaryWriter

    folder = Path(folder)
    for old in folder.rglob("events.out.tfevents.*"):
        old.unlink()
    runs = {"": {}, **runs}
    for name, steps in runs.items():
        with SummaryWriter(str(folder / name) if name else str(folder)) as writer:
            if not name:
                if layout:
                    writer.add_custom_scalars(layout)
                for tag, (step, image) in dict(images).items():
                    if not isinstance(image, np.ndarray):
                        image = Path(image).with_suffix(".png")  # a figure's PNG (figures.formats without png: none)
                        if not image.exists():
                            continue
                    pixels = image if isinstance(image, np.ndarray) else png_pixels(image)
                    writer.add_image(tag, pixels, step, dataformats="HWC")
            for step, scalars in sorted(steps.items()):
                for tag, value in scalars.items():
                    writer.add_scalar(tag, value, step)
    return folder
