"""The paper's complementary analyses of a trained model, as rows of the run's table.

Run after training (``run``) or on a saved run (``inforidge analyze RUN_DIR``), always on the
final checkpoint (step = the last measured step):

- ``ridge``: bootstrap ridge statistics (:mod:`inforidge.info.ridge`) of the predictive
  information per split and final-norm view: peak layer with its percentile interval, the
  max-statistic bootstrap p of the best intermediate-layer drop to the last layer (the
  report's verdict at the measurement's sigma) for the raw and the null-corrected curve,
  and the same under the median bandwidth (Gaussian kernel only) to show whether the verdict
  depends on sigma. Sample: the Evaluator's subsample of its FIRST seed (the same N samples
  every checkpoint was measured on); the seeds are not pooled, because the bootstrap already
  resamples and a pooled sample of ~5N points would cost ~125x more eigendecompositions.
- ``attention``: attention of the last position to the signal tokens (:mod:`inforidge.measure.attention`),
  on the same first-seed subsample, for tasks whose records carry ``signal_positions``.
- ``scaling``: residual scaling coefficients (:mod:`inforidge.measure.scaling`) fitted once on the ID
  and once on the OOD test split: trained on that split's records outside the first-seed
  subsample (at most ``analyses.scaling_max_records``), accuracy before/after measured on the
  first-seed subsample (held out from the fit).
- ``kernels``: kernel ablation (paper Fig. 11): the predictive information (raw, null, corrected)
  re-measured with the Gaussian, Laplacian and polynomial kernels (default parameters of
  :func:`~inforidge.info.gram_matrix`) on the Evaluator's subsamples, every seed. Rows are named
  ``kernel_ablation_<metric>`` with the ``kernel`` column telling the kernel; the measurement's own
  kernel is not measured again (its rows are the ordinary ``predictive_information*`` rows), and
  the prefix keeps the other kernels out of every curve that reads ``predictive_information``.

Every stage is skipped when its rows already exist at the final step (a resumed run adds
nothing); ``force=True`` (the ``analyze`` command) replaces them (:meth:`ResultsTable.drop`).
The stages are a registry (:data:`STAGES`, name -> function of a :class:`FinalModel`); they
share one extraction of the final model's states and the subsamples the Evaluator drew.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from inforidge.config.loading import load_config, save_config
from inforidge.config.settings import FigureSettings
from inforidge.extract.last_position import LayerStates
from inforidge.extract.saved_states import load_states, saved_steps
from inforidge.measure.attention import attention_profile, attention_rows
from inforidge.measure.predictive import Evaluator
from inforidge.measure.ridge import ABLATION_KERNELS, kernel_ablation_rows, ridge_rows
from inforidge.measure.rows import SKIPPED_PREFIX, STAGE_PREFIX, WHOLE_CURVE
from inforidge.measure.scaling import fit_residual_scales, residual_scale_rows
from inforidge.models.loading import load, load_tokenizer
from inforidge.models.parts import ModelParts, locate_parts
from inforidge.report.run import write_report
from inforidge.report.run_figures import distinct_targets, save_figures
from inforidge.results.table import ResultsTable
from inforidge.tasks.base import TaskData
from inforidge.tasks.registry import build_task, renders_for_tokenizer
from inforidge.tasks.tokenize import build_word_tokenizer, one_multi_token_warning

log = logging.getLogger(__name__)


@dataclass
class FinalModel:
    """What every analysis stage reads: the final model, its step and the run's evaluation setup.

    ``states`` are extracted on first use and then shared by every stage (one forward pass).
    """

    parts: ModelParts
    tokenizer: object
    task: TaskData
    evaluator: Evaluator
    step: int
    config: object

    @cached_property
    def states(self) -> dict[str, LayerStates]:
        return self.evaluator.extract(self.parts)


def ridge_stage(final: FinalModel) -> tuple[list[dict], str]:
    """Bootstrap ridge statistics of the final model's predictive information."""
    n_boot = final.config.tracking.ridge_bootstrap or 200
    rows = ridge_rows(final.evaluator, final.states, final.step, n_boot=n_boot)
    return rows, f"ridge statistics: {n_boot} bootstrap draws"


def attention_stage(final: FinalModel) -> tuple[list[dict], str]:
    """Attention rows for every split (or none, with the reason), on the first seed's subsample."""
    evaluator = final.evaluator
    seed = evaluator.seed()
    rows = []
    for split in evaluator.splits:
        records = evaluator.subsample(split, seed)
        if any("signal_positions" not in r for r in records):
            return [], (f"attention to signal tokens skipped: the records of task {final.task.name!r} carry no "
                        "'signal_positions' (token positions of the signal tokens)")
        try:
            # output_attentions holds (B, H, T, T) per block: a small batch bounds the memory.
            profile = attention_profile(final.parts, final.tokenizer, [r["prompt"] for r in records],
                                        [r["signal_positions"] for r in records],
                                        batch_size=min(evaluator.settings.batch_size, 16),
                                        signal_prefix=getattr(final.task, "signal_token_prefix", None))
        except ValueError as e:  # positions that do not fit this tokenizer: report, do not fail the run
            return [], f"attention to signal tokens skipped: {e}"
        rows += attention_rows(profile, split=split, step=final.step, seed=seed)
    impl = rows[0]["attention_implementation"] if rows else ""
    return rows, f"attention to signal tokens measured with {impl}"


def scaling_stage(final: FinalModel) -> tuple[list[dict], str]:
    """Fit the residual scales on each test split; rows of :func:`~inforidge.measure.scaling.residual_scale_rows`."""
    evaluator, analyses = final.evaluator, final.config.analyses
    seed = evaluator.seed()
    rows, notes = [], []
    for split in evaluator.splits:
        train = evaluator.complement(split, seed)[: analyses.scaling_max_records]
        held_out = evaluator.subsample(split, seed)
        if not train:
            notes.append(f"{split}: no records outside the subsample; fitted on the subsample itself")
            train = held_out
        fit = fit_residual_scales(final.parts, final.tokenizer, train, epochs=analyses.scaling_epochs,
                                  lr=analyses.scaling_lr, batch_size=32, seed=seed, eval_records=held_out,
                                  multi_token_target=final.config.task.multi_token_target)
        rows += residual_scale_rows(fit, split=split, step=final.step)
    return rows, "; ".join(notes) or "residual scales fitted on each split's records outside the subsample"


def kernel_stage(final: FinalModel) -> tuple[list[dict], str]:
    """The final model's predictive information under the other kernels of :data:`ABLATION_KERNELS`."""
    rows = kernel_ablation_rows(final.evaluator, final.states, final.step)
    others = [k for k in ABLATION_KERNELS if k != final.evaluator.settings.kernel]
    return rows, f"kernel ablation: predictive information re-measured with the {' and '.join(others)} kernels"


STAGES: dict[str, Callable[[FinalModel], tuple[list[dict], str]]] = {
    "ridge": ridge_stage, "attention": attention_stage, "scaling": scaling_stage, "kernels": kernel_stage,
}
"""Analysis stage name -> the function giving its rows and a one-line message."""


@dataclass
class AnalysesOutcome:
    rows: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def wanted_stages(config) -> list[str]:
    """The stages a run's config switches on."""
    out = []
    if config.tracking.ridge_bootstrap > 0:
        out.append("ridge")
    if config.analyses.attention:
        out.append("attention")
    if config.analyses.residual_scaling:
        out.append("scaling")
    if getattr(config.analyses, "kernel_ablation", False):
        out.append("kernels")
    return out


def run_analyses(config, load_parts, tokenizer, task, evaluator: Evaluator, table: ResultsTable, *,
                 stages: Sequence[str] | None = None, force: bool = False) -> AnalysesOutcome:
    """Run the analysis stages on the final checkpoint and append their rows to ``table``.

    load_parts: a callable returning the :class:`~inforidge.models.parts.ModelParts` of the final
    model, called only when a stage has work to do. stages: default :func:`wanted_stages`.
    The final model's states are extracted at most once and shared by the stages.
    """
    stages = list(wanted_stages(config) if stages is None else stages)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise ValueError(f"unknown analyses {bad}; choose from {', '.join(STAGES)}")
    outcome = AnalysesOutcome()
    frame = table.frame
    if frame.empty:
        outcome.messages.append("no measurements in the table; analyses skipped")
        return outcome
    step = int(frame["step"].max())
    present = set(frame.loc[frame["step"] == step, "metric"].astype(str))
    todo = [s for s in stages if force or not any(m.startswith(STAGE_PREFIX[s]) for m in present)]
    if not todo:
        return outcome
    final = FinalModel(load_parts(), tokenizer, task, evaluator, step, config)
    for stage in todo:
        t0 = time.time()
        rows, msg = STAGES[stage](final)
        if force:  # replace the stage's rows of the final step
            table.drop(metric_prefix=STAGE_PREFIX[stage], step=step)
            table.drop(metric_prefix=SKIPPED_PREFIX + stage, step=step)
        if not rows:  # the analysis could not run: say so loudly and keep the reason for the report
            rows = [{"step": step, "split": "all", "metric": SKIPPED_PREFIX + stage, "layer": WHOLE_CURVE,
                     "value": float("nan"), "flag": msg}]
        table.append(rows)
        outcome.rows += len(rows)
        outcome.seconds[stage] = round(time.time() - t0, 2)
        outcome.messages.append(f"{msg} [{outcome.seconds[stage]} s]")
        log.log(logging.WARNING if rows[0]["metric"].startswith(SKIPPED_PREFIX) else logging.INFO,
                "%s", outcome.messages[-1])
    return outcome


def final_model_loader(config, run_dir: Path, model=None, *, tokenizer=None):
    """A callable giving the final model's parts: ``model`` when given (the model just
    trained), else ``run_dir/model`` through :func:`~inforidge.models.loading.load` (with
    ``tokenizer`` when given, else the one saved beside the model)."""

    paths = {"block_path": config.model.block_path, "final_norm_path": config.model.final_norm_path}

    def load_parts():
        if model is not None:
            return locate_parts(model.eval(), **paths)
        # A saved run folder has no revision to pick; the other model.* options still apply.
        kw = {k: v for k, v in config.model.from_pretrained_kwargs().items() if k != "revision"}
        device = "cuda" if "device_map" not in kw and torch.cuda.is_available() else None
        return load(run_dir / "model", kind="causal", tokenizer=tokenizer, device=device, **kw, **paths).parts

    return load_parts


def run_evaluator(run_dir: Path, config, measure=None) -> tuple[object, TaskData, Evaluator]:
    """(tokenizer, task, Evaluator) of a saved run, rebuilt as the run built them (same records,
    same subsamples), without loading the model; ``measure``: other estimator settings."""
    task = build_task(config)
    if config.model.name_or_path:
        tokenizer = load_tokenizer(run_dir / "model", trust_remote_code=config.model.trust_remote_code)
    else:  # the task's word tokenizer, rebuilt exactly as the run built it
        tokenizer = build_word_tokenizer(task.vocabulary)
    if renders_for_tokenizer(config):  # as the run wrote it: for the model's tokenizer
        task = build_task(config, tokenizer)
    with one_multi_token_warning():
        evaluator = Evaluator(tokenizer, {"id": task.splits["test_id"], "ood": task.splits["test_ood"]},
                              measure or config.tracking.measure, multi_token_target=config.task.multi_token_target)
    return tokenizer, task, evaluator


def analyze_run(run_dir: str | Path, stages: Sequence[str] | None = None, *, progress: bool = False,
                figures: FigureSettings | None = None):
    """Run analyses on a finished run's saved model (no retraining); rewrite figures and report.

    stages: default every stage of :data:`STAGES` (attention is skipped with a message on tasks
    without signal positions). figures: formats, dpi and style of the figures (default: the
    run config's ``figures`` section). Returns (AnalysesOutcome, report path).
    """

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists() or not (run_dir / "model" / "config.json").exists():
        raise FileNotFoundError(f"{run_dir} is not a finished run with a saved model (needs config.yaml and "
                                "model/; a run saves model/ unless training.save_model is false)")
    config = load_config(run_dir / "config.yaml")
    tokenizer, task, evaluator = run_evaluator(run_dir, config)
    table = ResultsTable(run_dir)
    outcome = run_analyses(config, final_model_loader(config, run_dir, tokenizer=tokenizer), tokenizer, task,
                           evaluator, table, stages=list(stages or STAGES), force=True)
    table.compact()
    paths = save_figures(table.frame, run_dir / "figures", settings=figures or config.figures,
                         classes=distinct_targets(evaluator.records))
    report_path, _ = write_report(table.frame, run_dir, config, paths)
    return outcome, report_path


# What --from-states may change: estimator settings only (the saved states fix the samples).
FROM_STATES_KEYS = ("tracking.measure.alpha", "tracking.measure.base", "tracking.measure.kernel",
                    "tracking.measure.sigma", "tracking.measure.n_permutations", "tracking.measure.label_view",
                    "tracking.measure.final_norm_views", "tracking.measure.estimator", "tracking.measure.n_probes",
                    "tracking.measure.lanczos_steps", "tracking.measure.deflation", "tracking.ridge_bootstrap")


def analyze_from_states(run_dir: str | Path, overrides: Sequence[str] = (), out_dir: str | Path | None = None,
                        *, progress: bool = False, figures: FigureSettings | None = None) -> tuple[ResultsTable, Path]:
    """Recompute the measurements of a run from its saved states (``tracking.save_states``) with
    other estimator settings (``overrides``: ``key=value`` for the keys in :data:`FROM_STATES_KEYS`),
    without loading the model. Writes ``out_dir`` (default ``<run>/from-states``): config.yaml
    (the run's config with the overrides), results.parquet/csv, figures and report.md. Steps
    already in ``out_dir``'s table are not recomputed. figures: formats, dpi and style of the figures
    (default: the run config's). Returns (table, report path)."""
    run_dir = Path(run_dir)
    folder = run_dir / "states"
    files = saved_steps(folder)
    if not (run_dir / "config.yaml").exists() or not files:
        raise FileNotFoundError(
            f"{run_dir} has no saved states ({folder}/step_*.safetensors); run it with "
            "tracking.save_states=true (--set tracking.save_states=true) to keep them")
    bad = [o for o in overrides if o.split("=", 1)[0].strip() not in FROM_STATES_KEYS]
    if bad:
        raise ValueError(f"--from-states can change only estimator settings ({', '.join(FROM_STATES_KEYS)}); "
                         f"not {', '.join(bad)}: the saved states fix the samples, the model and the task")
    config = load_config(run_dir / "config.yaml", list(overrides))
    out = Path(out_dir) if out_dir is not None else run_dir / "from-states"
    saved = out / "config.yaml"
    if saved.exists() and load_config(saved).to_dict() != config.to_dict():
        raise ValueError(f"{out} holds results of other settings; choose another --out or delete it")
    _, _, evaluator = run_evaluator(run_dir, config)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, saved)
    table = ResultsTable(out, config=config.to_dict())
    done = table.steps()
    last = None
    for path in files:
        saved_states = load_states(path)
        last = saved_states
        if saved_states.step in done:
            continue
        _check_same_samples(evaluator, saved_states, path)
        table.append(evaluator.rows(saved_states.states, saved_states.step))
        if progress:
            log.info("recomputed step %d from %s", saved_states.step, path.name)
    boot = config.tracking.ridge_bootstrap
    if boot > 0 and last is not None and not any(str(m).startswith("ridge_") for m in table.frame.get("metric", [])):
        table.append(ridge_rows(evaluator, last.states, last.step, n_boot=boot))
    table.compact()
    paths = save_figures(table.frame, out / "figures", settings=figures or config.figures,
                         classes=distinct_targets(evaluator.records))
    report_path, _ = write_report(table.frame, out, config, paths)
    return table, report_path


def _check_same_samples(evaluator: Evaluator, saved, path: Path) -> None:
    for split, by_seed in evaluator.record_indices.items():
        theirs = saved.record_indices.get(split, {})
        if set(theirs) != set(by_seed) or any(list(map(int, by_seed[s])) != list(theirs[s]) for s in by_seed):
            raise ValueError(
                f"{path} was measured on other samples of split {split!r} than the run's config gives now "
                "(a changed task, n_samples or seeds); recompute with the run's own task and sampling settings")
