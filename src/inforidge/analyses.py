"""The paper's complementary analyses of a trained model, as rows of the run's table.

Run after training (``run``) or on a saved run (``inforidge analyze RUN_DIR``), always on the
final checkpoint (step = the last measured step):

- ``ridge``: bootstrap ridge statistics (:mod:`inforidge.info.ridge`) of the predictive
  information per split and final-norm view: peak layer with its percentile interval, the
  one-sided bootstrap p of "MI(peak) > MI(last)" for the raw and the null-corrected curve,
  and the same under the median bandwidth (Gaussian kernel only) to show whether the verdict
  depends on sigma. Sample: the Evaluator's subsample of its FIRST seed (the same N samples
  every checkpoint was measured on); the seeds are not pooled, because the bootstrap already
  resamples and a pooled sample of ~5N points would cost ~125x more eigendecompositions.
- ``attention``: attention of the last position to the signal tokens (:mod:`inforidge.attention`),
  on the same first-seed subsample, for tasks whose records carry ``signal_positions``.
- ``scaling``: residual scaling coefficients (:mod:`inforidge.scaling`) fitted once on the ID
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
nothing); ``force=True`` (the ``analyze`` command) replaces them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .info import gram_matrix
from .info.entropy import _information
from .info.ridge import (
    RidgeStatistics,
    _sub_seeds,
    bootstrap_indices,
    resampled_information,
    ridge_test,
)
from .measure import Evaluator

log = logging.getLogger(__name__)

STAGES = ("ridge", "attention", "scaling", "kernels")
# Rows of each stage: metric names start with these prefixes.
STAGE_PREFIX = {"ridge": "ridge_", "attention": "attention_", "scaling": "residual_scale",
                "kernels": "kernel_ablation_"}
# Kernels of the ablation (paper Fig. 11); the measurement's own kernel is not measured again.
ABLATION_KERNELS = ("gaussian", "laplacian", "polynomial")
TASK_SPLIT = {"id": "test_id", "ood": "test_ood"}
RIDGE_FIELDS = {  # metric stem -> key of RidgeTest.summary()
    "ridge_layer": "peak_layer", "ridge_layer_ci_low": "ridge_layer_ci_low",
    "ridge_layer_ci_high": "ridge_layer_ci_high", "ridge_p_value": "p_value", "ridge_drop": "drop",
    "ridge_drop_ci_low": "drop_ci_low", "ridge_drop_ci_high": "drop_ci_high",
    "ridge_share_before_last": "share_before_last", "ridge_verdict": "ridge",
}


# ----------------------------------------------------------------------------- ridge statistics


def ridge_statistics_views(
    kx: torch.Tensor, ky: torch.Tensor, index: dict[str, torch.Tensor], *, n_boot: int,
    confidence: float = 0.95, n_permutations: int = 20, draw_permutations: int = 2, seed: int = 0,
    alpha: float = 1.0, base: float = 2.0,
) -> dict[str, RidgeStatistics]:
    """:func:`~inforidge.info.ridge.ridge_statistics_from_grams` for several views of one stack.

    kx: (M, N, N) Grams of a stack whose layers several views share (see
    :meth:`~inforidge.extract.LayerStates.views_stacked`); index: {view: layer indices into kx}.
    The estimator and the bootstrap run once on the shared stack; each view's result equals
    ``ridge_statistics_from_grams(kx[index[view]], ky, ...)`` exactly (same draws, same
    permutations: both depend only on N and the seed, never on the layers).
    """
    n = int(kx.shape[-1])
    full = _information(kx, ky.to(device=kx.device, dtype=kx.dtype), alpha, base, n_permutations, seed)
    index_seed, null_seed = _sub_seeds(seed)
    indices = bootstrap_indices(n, n_boot, index_seed).to(kx.device)
    boot = resampled_information(kx, ky, indices, alpha=alpha, base=base, n_permutations=draw_permutations,
                                 seed=null_seed)
    out = {}
    for view, ix in index.items():
        ix = ix.to(full.mi.device)
        raw = ridge_test(full.mi[ix].cpu(), boot.mi[:, ix].cpu(), confidence)
        corrected = None
        if draw_permutations > 0:
            corrected = ridge_test(full.corrected[ix].cpu(), boot.corrected[:, ix].cpu(), confidence)
        out[view] = RidgeStatistics(
            raw=raw, corrected=corrected, indices=indices.cpu(), null=full.null_mean[ix].cpu(), n_samples=n,
            n_boot=n_boot, n_permutations=n_permutations, draw_permutations=draw_permutations, seed=int(seed),
            alpha=alpha, base=base,
        )
    return out


def ridge_sigmas(settings) -> list:
    """Bandwidths of the check: the measurement's own sigma and the median heuristic (Gaussian);
    the measurement's kernel alone otherwise."""
    if settings.kernel != "gaussian":
        return [None]
    return list(dict.fromkeys([settings.sigma, "median"]))


def ridge_rows(evaluator: Evaluator, states: dict, step: int, *, n_boot: int, confidence: float = 0.95,
               draw_permutations: int = 2, level: float = 0.05) -> list[dict]:
    """Rows of the bootstrap ridge statistics per split, final-norm view and bandwidth.

    Metrics (layer -1, a statement about the whole curve): ``ridge_layer`` (arg-max layer on the
    full sample), ``ridge_layer_ci_low/high`` (percentile interval of the draws' arg-max),
    ``ridge_p_value`` (one-sided bootstrap p of MI(peak) > MI(last)), ``ridge_drop`` (+ CI),
    ``ridge_share_before_last``, ``ridge_verdict`` (1 = peak before the last layer and p < level);
    each for the raw curve and, with suffix ``_corrected``, the null-corrected one. ``sigma``
    tells the bandwidth (the measurement's and 'median').
    """
    st = evaluator.settings
    seed = int(st.seeds[0])
    perms = st.n_permutations
    draws = draw_permutations if perms > 0 else 0
    kernel_kw = {} if st.kernel == "gaussian" else st.kernel_kw()
    rows = []
    for split, sp in evaluator.splits.items():
        s = states[split]
        idx = sp["subsets"][seed]
        x, index = s.views_stacked(st.final_norm_views)
        x, y = x[:, idx], s.labels[st.label_view][idx]
        for sigma in ridge_sigmas(st):
            kw = dict(kernel_kw) if sigma is None else {"sigma": sigma}
            kx, ky = gram_matrix(x, st.kernel, **kw), gram_matrix(y, st.kernel, **kw)
            by_view = ridge_statistics_views(kx, ky, index, n_boot=n_boot, confidence=confidence,
                                             n_permutations=perms, draw_permutations=draws, seed=seed,
                                             alpha=st.alpha, base=st.base)
            common = {"step": int(step), "split": split, "seed": seed, "n_samples": int(len(idx)),
                      **st.row_settings(), "sigma": str(st.sigma if sigma is None else sigma), "layer": -1,
                      "ridge_n_boot": n_boot, "ridge_confidence": confidence, "ridge_draw_permutations": draws}
            for view, stats in by_view.items():
                tests = {"": stats.raw, "_corrected": stats.corrected}
                for suffix, test in tests.items():
                    if test is None:
                        continue
                    summary = test.summary(level)
                    rows += [{**common, "final_norm": view, "metric": stem + suffix, "value": float(summary[key])}
                             for stem, key in RIDGE_FIELDS.items()]
    return rows


class RidgeEvaluator(Evaluator):
    """An :class:`Evaluator` whose every measurement also holds the ridge rows
    (``tracking.ridge_every_step``); the ridge statistics reuse the measurement's states."""

    ridge_bootstrap: int = 200

    def extract(self, parts):
        self._last_states = super().extract(parts)
        return self._last_states

    def measure(self, parts, step: int) -> list[dict]:
        rows = super().measure(parts, step)
        states, self._last_states = self._last_states, None
        return rows + ridge_rows(self, states, step, n_boot=self.ridge_bootstrap)


def with_ridge_rows(evaluator: Evaluator, n_boot: int) -> RidgeEvaluator:
    """A copy of ``evaluator`` (same subsamples) that adds ridge rows to every measurement."""
    out = RidgeEvaluator.__new__(RidgeEvaluator)
    out.__dict__.update(evaluator.__dict__)
    out.ridge_bootstrap = int(n_boot)
    return out


# ----------------------------------------------------------------------------- helpers


def subsample_records(evaluator: Evaluator, split: str, records: list[dict], seed: int | None = None) -> list[dict]:
    """The records of the Evaluator's subsample of ``seed`` (default: its first seed), in order."""
    st = evaluator.settings
    seed = int(st.seeds[0] if seed is None else seed)
    chosen = np.random.default_rng(seed).choice(len(records), st.n_samples, replace=False)
    picked = [records[int(i)] for i in chosen]
    sp = evaluator.splits[split]
    expected = [sp["prompts"][int(i)] for i in sp["subsets"][seed]]
    if [r["prompt"] for r in picked] != expected:
        raise RuntimeError("the Evaluator's subsample could not be reproduced; was it built from other records?")
    return picked


def subsample_complement(evaluator: Evaluator, records: list[dict], seed: int | None = None) -> list[dict]:
    """Records outside the subsample of ``seed`` (default: the first seed), in order."""
    st = evaluator.settings
    seed = int(st.seeds[0] if seed is None else seed)
    chosen = set(np.random.default_rng(seed).choice(len(records), st.n_samples, replace=False).tolist())
    return [r for i, r in enumerate(records) if i not in chosen]


# ----------------------------------------------------------------------------- the stages


class _CachedStatesEvaluator(Evaluator):
    """An Evaluator copy that measures given, already extracted states (no second forward pass)."""

    def extract(self, parts):
        return self._states


def kernel_ablation_rows(evaluator: Evaluator, states: dict, step: int,
                         kernels: Sequence[str] = ABLATION_KERNELS) -> list[dict]:
    """Predictive-information rows (``kernel_ablation_`` prefix) for each kernel other than the
    measurement's own, measured by a copy of ``evaluator`` whose settings name that kernel."""
    from dataclasses import replace

    rows = []
    for kernel in kernels:
        if kernel == evaluator.settings.kernel:
            continue
        ev = _CachedStatesEvaluator.__new__(_CachedStatesEvaluator)
        ev.__dict__.update(evaluator.__dict__)
        ev.settings = replace(evaluator.settings, kernel=kernel)
        ev._states = states
        for r in Evaluator.measure(ev, None, step):
            if str(r["metric"]).startswith("predictive_information") and r["split"] in evaluator.splits:
                rows.append({**r, "metric": STAGE_PREFIX["kernels"] + r["metric"]})
    return rows


def attention_stage(parts, tokenizer, task, evaluator: Evaluator, step: int) -> tuple[list[dict], str]:
    """Attention rows for every split (or none, with the reason)."""
    from .attention import attention_profile, attention_rows

    seed = int(evaluator.settings.seeds[0])
    rows = []
    for split in evaluator.splits:
        records = subsample_records(evaluator, split, task.splits[TASK_SPLIT[split]], seed)
        if any("signal_positions" not in r for r in records):
            return [], (f"attention to signal tokens skipped: the records of task {task.name!r} carry no "
                        "'signal_positions' (token positions of the signal tokens)")
        try:
            # output_attentions holds (B, H, T, T) per block: a small batch bounds the memory.
            profile = attention_profile(parts, tokenizer, [r["prompt"] for r in records],
                                        [r["signal_positions"] for r in records],
                                        batch_size=min(evaluator.settings.batch_size, 16),
                                        signal_prefix=getattr(task, "signal_token_prefix", None))
        except ValueError as e:  # positions that do not fit this tokenizer: report, do not fail the run
            return [], f"attention to signal tokens skipped: {e}"
        rows += attention_rows(profile, split=split, step=step, seed=seed)
    impl = rows[0]["attention_implementation"] if rows else ""
    return rows, f"attention to signal tokens measured with {impl}"


def scaling_stage(parts, tokenizer, task, evaluator: Evaluator, step: int, analyses, policy: str = "first"
                  ) -> tuple[list[dict], str]:
    """Fit the residual scales on each test split; rows of :func:`~inforidge.scaling.residual_scale_rows`."""
    from .scaling import fit_residual_scales, residual_scale_rows

    seed = int(evaluator.settings.seeds[0])
    rows, notes = [], []
    for split in evaluator.splits:
        records = task.splits[TASK_SPLIT[split]]
        train = subsample_complement(evaluator, records, seed)[: analyses.scaling_max_records]
        held_out = subsample_records(evaluator, split, records, seed)
        if not train:
            notes.append(f"{split}: no records outside the subsample; fitted on the subsample itself")
            train = held_out
        fit = fit_residual_scales(parts, tokenizer, train, epochs=analyses.scaling_epochs, lr=analyses.scaling_lr,
                                  batch_size=32, seed=seed, eval_records=held_out, multi_token_target=policy)
        rows += residual_scale_rows(fit, split=split, step=step)
    return rows, "; ".join(notes) or "residual scales fitted on each split's records outside the subsample"


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


def _drop_rows(table, prefix: str, step: int) -> None:
    frame = table.frame
    if frame.empty:
        return
    keep = ~(frame["metric"].astype(str).str.startswith(prefix) & (frame["step"] == step))
    table._frames = [frame[keep].reset_index(drop=True)]


def run_analyses(config, load_parts, tokenizer, task, evaluator: Evaluator, table, *,
                 stages: Sequence[str] | None = None, force: bool = False) -> AnalysesOutcome:
    """Run the analysis stages on the final checkpoint and append their rows to ``table``.

    load_parts: a callable returning the :class:`~inforidge.model.ModelParts` of the final
    model, called only when a stage has work to do. stages: default :func:`wanted_stages`.
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
    parts = load_parts()
    policy = config.task.multi_token_target
    for stage in todo:
        t0 = time.time()
        if stage == "ridge":
            n_boot = config.tracking.ridge_bootstrap or 200
            rows = ridge_rows(evaluator, evaluator.extract(parts), step, n_boot=n_boot)
            msg = f"ridge statistics: {n_boot} bootstrap draws"
        elif stage == "attention":
            rows, msg = attention_stage(parts, tokenizer, task, evaluator, step)
        elif stage == "kernels":
            rows = kernel_ablation_rows(evaluator, evaluator.extract(parts), step)
            others = [k for k in ABLATION_KERNELS if k != evaluator.settings.kernel]
            msg = f"kernel ablation: predictive information re-measured with the {' and '.join(others)} kernels"
        else:
            rows, msg = scaling_stage(parts, tokenizer, task, evaluator, step, config.analyses, policy)
        if force:
            _drop_rows(table, STAGE_PREFIX[stage], step)
        table.append(rows)
        if force and not rows:
            table.save()
        outcome.rows += len(rows)
        outcome.seconds[stage] = round(time.time() - t0, 2)
        outcome.messages.append(f"{msg} [{outcome.seconds[stage]} s]")
        log.info("%s", outcome.messages[-1])
    return outcome


def final_model_loader(config, run_dir: Path, model=None):
    """A callable giving the final model's parts: ``model`` when given, else ``run_dir/model``."""
    from .model import load_causal_lm, locate_parts

    paths = {"block_path": config.model.block_path, "final_norm_path": config.model.final_norm_path}

    def load():
        m = model
        if m is None:
            kw = {k: v for k, v in config.model.from_pretrained_kwargs().items() if k != "revision"}
            m = load_causal_lm(run_dir / "model", **kw)
            if "device_map" not in kw and torch.cuda.is_available():
                m = m.to("cuda")
        return locate_parts(m.eval(), **paths)

    return load


def analyze_run(run_dir: str | Path, stages: Sequence[str] | None = None, *, progress: bool = False):
    """Run analyses on a finished run's saved model (no retraining); rewrite figures and report.

    stages: default every stage in :data:`STAGES` (attention is skipped with a message on tasks
    without signal positions). Returns (AnalysesOutcome, report path).
    """
    from .config import load_config
    from .measure import one_multi_token_warning
    from .plots import save_figures
    from .report import write_report
    from .results import ResultsTable
    from .run import build_task
    from .tasks.tokenizer import build_word_tokenizer

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists() or not (run_dir / "model" / "config.json").exists():
        raise FileNotFoundError(f"{run_dir} is not a finished run (needs config.yaml and model/)")
    config = load_config(run_dir / "config.yaml")
    task = build_task(config)
    if config.model.name_or_path:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    else:  # the task's word tokenizer, rebuilt exactly as the run built it
        tokenizer = build_word_tokenizer(task.vocabulary)
    with one_multi_token_warning():
        evaluator = Evaluator(tokenizer, {"id": task.splits["test_id"], "ood": task.splits["test_ood"]},
                              config.tracking.measure, multi_token_target=config.task.multi_token_target)
    table = ResultsTable(run_dir)
    outcome = run_analyses(config, final_model_loader(config, run_dir), tokenizer, task, evaluator, table,
                           stages=list(stages or STAGES), force=True)
    figures = save_figures(table.frame, run_dir / "figures")
    report_path, _ = write_report(table.frame, run_dir, config, figures, evaluator)
    return outcome, report_path
