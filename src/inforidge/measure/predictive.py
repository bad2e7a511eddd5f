"""Measurement of one model state: per-layer information and early-exit accuracy -> rows.

Data flow: evaluation records -> fixed seeded subsamples (drawn once, kept as
:attr:`Evaluator.record_indices`) -> :meth:`Evaluator.extract`: one extraction pass over their
union -> :meth:`Evaluator.rows`: estimators per seed -> tidy rows (:mod:`inforidge.measure.rows`).
Analyses of the same model state call :meth:`~Evaluator.extract` once and build every set of
rows from those states. The information is estimated exactly or matrix-free
(``MeasureSettings.estimator``, :meth:`Evaluator.estimator_for`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
import torch
from transformers import PreTrainedModel

from inforidge.config.settings import (
    STOCHASTIC,
    WHOLE,
    MeasureSettings,
    bandwidth_columns,
    check_information_estimator,
    check_whole_target_estimator,
    check_whole_target_label,
)
from inforidge.extract.batching import BatchSizer
from inforidge.extract.generated import target_embeddings
from inforidge.extract.last_position import LayerStates, extract_batched
from inforidge.info import (
    choose_estimator,
    estimate_information,
    gram_matrix,
    information_from_grams,
    stochastic_information,
)
from inforidge.info.sequence_kernel import mean_embedding_gram
from inforidge.measure.rows import (
    EARLY_EXIT_ACCURACY,
    INCREMENTAL_GAIN,
    LABEL_ENTROPY,
    PREDICTIVE_INFORMATION,
    ROBUST_PREFIX,
    dominant_dimension_rows,
    estimate_rows,
    flag_massive_dimensions,
)
from inforidge.models.parts import ModelParts, locate_parts
from inforidge.models.validate import validate_parts
from inforidge.tasks.tokenize import check_unknown_tokens, target_token_ids

log = logging.getLogger(__name__)


def draw_subsample(n_records: int, n_samples: int, seed: int) -> np.ndarray:
    """The indices (n_samples,) of the seeded subsample of ``n_records`` records, in draw order."""
    return np.random.default_rng(seed).choice(n_records, n_samples, replace=False)


NULL_PLAIN = "permutation"
NULL_WITHIN_LENGTH = "permutation_within_length"
_WEAK_NULL_SHARE = 0.2  # samples alone in their length group: they stay in place in every permutation


def label_carries_position(labels: torch.Tensor, target_ids: torch.Tensor, lengths: torch.Tensor) -> bool:
    """Whether the label embeddings (B, D) of one target token differ with the prompt length
    (B,): a label view that adds a position embedding (GPT-2's wte + wpe), which then ties
    the label to the prompt length. Undecidable (no token seen at two lengths): True, the safe
    side, since the stratified null is valid either way."""
    seen_at_two_lengths = False
    for token in target_ids.unique():
        rows = (target_ids == token).nonzero().flatten()
        if lengths[rows].unique().numel() < 2:
            continue
        seen_at_two_lengths = True
        group = labels[rows].double()
        scale = group.abs().amax().clamp_min(1e-30)
        if bool(((group - group[0]).abs().amax() / scale) > 1e-6):
            return True
    return not seen_at_two_lengths


def _warn_if_weak(groups: torch.Tensor, split: str, seed: int) -> None:
    _, counts = groups.unique(return_counts=True)
    alone = int(counts[counts == 1].sum())
    if alone > _WEAK_NULL_SHARE * groups.numel():
        log.warning(
            "split %r, seed %d: %d of %d samples are the only one of their prompt length, so the "
            "within-length permutation null cannot move them and the corrected MI leans towards 0; "
            "use more samples, fewer distinct lengths, or label_view=token_embedding",
            split, seed, alone, groups.numel(),
        )


CONSTANT_STATES = "constant_states"


def check_finite_states(states: LayerStates, split: str) -> None:
    """A layer with NaN or inf states (fp16 overflow, a broken hook) is an error, never a number."""
    bad = [layer for layer, h in enumerate(states.hidden) if not bool(torch.isfinite(h).all())]
    if not bool(torch.isfinite(states.final_normed).all()):
        bad.append(f"{len(states.hidden) - 1} (after the final norm)")
    if bad:
        raise ValueError(
            f"split {split!r}: the states of layer(s) {', '.join(map(str, bad))} are not finite (NaN or inf); "
            "a half-precision overflow or a broken model part. Load the model in float32 (model.dtype=float32) "
            "or check the parts (model.block_path / model.final_norm_path)"
        )


def check_two_classes(labels: torch.Tensor, target_ids: torch.Tensor, split: str, seed: int) -> None:
    """Labels (N, D) of one class (every target the same token, or every label state identical)
    carry no information: their Gram is all ones and every MI would read 0 by construction, so
    such rows are never written as numbers."""
    one_token = bool((target_ids == target_ids[0]).all())
    if one_token or bool(constant_layers(labels.unsqueeze(0))[0]):
        what = f"every target is token id {int(target_ids[0])}" if one_token else "every label state is identical"
        raise ValueError(
            f"split {split!r}, seed {seed}: the labels have fewer than two classes ({what}), so the information "
            "about them is 0 by construction, not a measurement; use a task or split with at least two distinct "
            "targets (or a larger n_samples so the subsample holds more than one)"
        )


def as_records(records, split: str) -> list[dict]:
    """A split's records as a list of dicts, from a list of dicts, a pandas ``DataFrame`` or a
    ``datasets.Dataset`` (columns ``prompt`` and ``target``, other columns kept)."""
    if hasattr(records, "to_dict") and hasattr(records, "columns"):  # pandas.DataFrame
        return records.reset_index(drop=True).to_dict("records")
    if hasattr(records, "column_names") and hasattr(records, "to_list"):  # datasets.Dataset
        return records.to_list()
    if isinstance(records, (list, tuple)):
        return list(records)
    raise TypeError(f"split {split!r}: give the records as a list of dicts, a pandas DataFrame or a datasets.Dataset "
                    f"with 'prompt' and 'target'; got {type(records).__name__}")


def as_parts(model, tokenizer=None) -> ModelParts:
    """``model`` as :class:`ModelParts`: as given, or located (and validated once) for a causal LM."""
    if isinstance(model, ModelParts):
        return model
    if isinstance(model, PreTrainedModel):
        parts = locate_parts(model)
        validate_parts(parts, tokenizer)
        return parts
    raise TypeError(f"expected a causal LM (a transformers PreTrainedModel) or its ModelParts; got {type(model).__name__}")


def _whole_target_ids(states: LayerStates, idx: torch.Tensor) -> torch.Tensor:
    """(n,) an id per distinct whole target (its token embeddings and mask), for the class check."""
    flat = torch.cat([states.label_tokens[idx].flatten(1), states.label_mask[idx].flatten(1).to(states.label_tokens.dtype)], 1)
    return torch.unique(flat, dim=0, return_inverse=True)[1]


def constant_layers(stack: torch.Tensor) -> torch.Tensor:
    """(M,) True where the states (M, N, D) are the same for every sample (all zero included):
    their Gram is all ones and every MI is 0 by construction, not by measurement."""
    spread = (stack - stack[:, :1]).abs().amax((1, 2))
    scale = stack.abs().amax((1, 2))
    return spread <= 1e-6 * scale


def flag_constant_layers(rows: list[dict], constant: torch.Tensor, index: dict[str, torch.Tensor],
                         first_layer: int) -> list[dict]:
    """Mark the rows of constant layers (``flag`` = constant_states), per final-norm view."""
    flagged = {view: {first_layer + j for j, m in enumerate(ix.tolist()) if bool(constant[m])}
               for view, ix in index.items()}
    for r in rows:
        if r["layer"] in flagged.get(r["final_norm"], ()):
            r["flag"] = CONSTANT_STATES
    return rows


class Evaluator:
    """Measures a model on fixed, seeded subsamples of the evaluation splits.

    ``eval_splits`` maps a split label ("id", "ood") to records with "prompt" and "target".
    The subsamples are drawn once, so every checkpoint is measured on the same samples:
    ``record_indices[split][seed]`` holds the (n_samples,) indices into ``records[split]``.
    ``multi_token_target``: policy for targets longer than one token (see :func:`target_token_ids`).
    Under 'whole' the label of a sample is its whole target: the label Gram is the sequence
    (mean-embedding) kernel over the target's token embeddings (:meth:`label_gram`), and the
    early-exit accuracy is that of the target's FIRST token (two targets sharing it, e.g.
    'father' and 'father-in-law', both count as right when it is predicted).
    ``allow_unknown_tokens``: measure prompts that are mostly the tokenizer's unknown token
    (otherwise an error above 50 %, a warning above 5 %; see :func:`check_unknown_tokens`).
    The information rows use the estimator of :meth:`estimator_for`.
    """

    def __init__(self, tokenizer, eval_splits: dict[str, list[dict]], settings: MeasureSettings | None = None,
                 multi_token_target: str = "error", *, allow_unknown_tokens: bool = False):
        self.tokenizer = tokenizer
        self.settings = settings or MeasureSettings()
        self.batches = BatchSizer(self.settings.batch_size)  # "auto" remembers the size it found
        check_whole_target_label(multi_token_target, self.settings.label_view)
        check_whole_target_estimator(multi_token_target, self.settings.estimator)
        self.whole = multi_token_target == WHOLE
        self.records: dict[str, list[dict]] = {}
        self.record_indices: dict[str, dict[int, np.ndarray]] = {}
        self.splits = {}
        for name, records in eval_splits.items():
            records = as_records(records, name)
            n = len(records)
            bad = next((i for i, r in enumerate(records) if not isinstance(r, dict) or not all(
                isinstance(r.get(k), str) for k in ("prompt", "target"))), None)
            if bad is not None:
                raise ValueError(f"split {name!r}, record {bad}: every record needs a 'prompt' and a 'target' "
                                 f"string; got {records[bad]!r}"[:400])
            if n < self.settings.n_samples:
                raise ValueError(
                    f"split {name!r} has {n} samples but n_samples={self.settings.n_samples}; "
                    "lower n_samples or add data"
                )
            subsets = {s: draw_subsample(n, self.settings.n_samples, s) for s in self.settings.seeds}
            self.records[name] = list(records)
            self.record_indices[name] = subsets
            # One extraction over the union of the seeds' subsamples ("pool"); each seed's
            # subsample is a set of positions into that pool.
            pool = np.unique(np.concatenate(list(subsets.values())))
            where = {int(i): k for k, i in enumerate(pool)}
            prompts = [records[i]["prompt"] for i in pool]
            check_unknown_tokens(tokenizer, prompts, f"prompts of split {name!r}", allow=allow_unknown_tokens)
            lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
            if 0 in lengths:  # its "last position" would be padding
                raise ValueError(f"split {name!r}: prompt {prompts[lengths.index(0)]!r} tokenises to no token; "
                                 "give every record a non-empty prompt")
            self.splits[name] = {
                "prompts": prompts,
                "target_texts": [records[i]["target"] for i in pool],
                "targets": target_token_ids(tokenizer, [records[i]["target"] for i in pool], multi_token_target),
                "subsets": {s: torch.tensor([where[int(i)] for i in idx]) for s, idx in subsets.items()},
                # tokens per prompt as extraction sees it: the target's position
                "lengths": torch.tensor(lengths),
            }

    def seed(self, seed: int | None = None) -> int:
        """``seed``, or the first of the settings' seeds when None."""
        return int(self.settings.seeds[0] if seed is None else seed)

    def positions(self, split: str, seed: int | None = None) -> torch.Tensor:
        """(n_samples,) positions of the subsample of ``seed`` in the extracted states of ``split``."""
        return self.splits[split]["subsets"][self.seed(seed)]

    def subsample(self, split: str, seed: int | None = None) -> list[dict]:
        """The records of the subsample of ``seed`` (default: the first seed), in draw order."""
        records = self.records[split]
        return [records[int(i)] for i in self.record_indices[split][self.seed(seed)]]

    def complement(self, split: str, seed: int | None = None) -> list[dict]:
        """The records of ``split`` outside the subsample of ``seed`` (default: the first seed), in order."""
        chosen = set(self.record_indices[split][self.seed(seed)].tolist())
        return [r for i, r in enumerate(self.records[split]) if i not in chosen]

    def extract(self, parts: ModelParts | PreTrainedModel) -> dict[str, LayerStates]:
        """Split -> the states of every pooled sample (one forward pass per batch); under
        'whole' with the token embeddings of every target token (``label_tokens``).
        ``parts``: a causal LM's :class:`ModelParts`, or the model itself (its parts are
        located and validated here)."""
        parts = as_parts(parts, self.tokenizer)
        states = {
            name: extract_batched(parts, self.tokenizer, sp["prompts"], sp["targets"], self.batches)
            for name, sp in self.splits.items()
        }
        if self.whole:
            for name, sp in self.splits.items():
                states[name].label_tokens, states[name].label_mask, _ = target_embeddings(
                    parts, self.tokenizer, sp["target_texts"])
        return states

    def label_gram(self, states: LayerStates, idx: torch.Tensor, kernel: str, **kernel_kw) -> torch.Tensor:
        """(n, n) label Gram of the samples at positions ``idx`` (n,) of ``states``: ``kernel`` on
        the label view's (n, D) first-token embeddings, or under 'whole' the mean-embedding
        (sequence) kernel over each whole target's (T, D) token embeddings."""
        if not self.whole:
            return gram_matrix(states.labels[self.settings.label_view][idx], kernel, **kernel_kw)
        if states.label_tokens is None:
            raise ValueError("these states hold no whole-target embeddings (multi_token_target=whole); "
                             "extract them with Evaluator.extract")
        return mean_embedding_gram(states.label_tokens[idx], states.label_mask[idx], kernel, **kernel_kw)

    def measure(self, parts: ModelParts | PreTrainedModel, step: int = 0) -> list[dict]:
        """All rows for one model state at training step ``step``: ``rows(extract(parts), step)``;
        ``parts``: :class:`ModelParts` or a ``PreTrainedModel`` causal LM."""
        return self.rows(self.extract(parts), step)

    def rows(self, states: dict[str, LayerStates], step: int, settings: MeasureSettings | None = None) -> list[dict]:
        """All rows of extracted ``states`` (from :meth:`extract`) at training step ``step``.

        settings: estimator settings other than the Evaluator's own (e.g. another kernel); the
        subsamples stay the Evaluator's.
        """
        st = settings or self.settings
        rows = self.information_rows(states, step, st)
        return rows + self._accuracy_all(states, self._base(step, st), st)

    def estimator_for(self, settings: MeasureSettings | None = None) -> str:
        """"exact" or "stochastic": the estimator of the information rows under ``settings``.

        ``auto`` is exact up to N = n_samples <= inforidge.info.EXACT_MAX_N and stochastic above,
        where the stochastic estimator applies: a Gaussian kernel and labels given as features
        (not the sequence-kernel Gram of multi_token_target=whole); elsewhere it stays exact.
        An explicit ``stochastic`` where it does not apply is an error (the configs refuse it
        when they are built)."""
        st = settings or self.settings
        check_information_estimator(st.estimator, st.kernel)
        check_whole_target_estimator(WHOLE if self.whole else "", st.estimator)
        choice = choose_estimator(st.n_samples, st.estimator)
        if choice == STOCHASTIC and (st.kernel != "gaussian" or self.whole):
            log.info("estimator=auto, N=%d: exact, as the stochastic estimator needs the Gaussian kernel and feature "
                     "labels (kernel=%s%s)", st.n_samples, st.kernel, ", whole targets" if self.whole else "")
            return "exact"
        return choice

    def _base(self, step: int, st: MeasureSettings) -> dict:
        return {"step": int(step), "n_samples": st.n_samples, **st.row_settings()}

    def information_rows(self, states: dict[str, LayerStates], step: int, settings: MeasureSettings | None = None,
                         *, predictive_only: bool = False) -> list[dict]:
        """Per split and seed: the predictive information, incremental gain and early-exit accuracy
        rows of ``states``; ``predictive_only``: the predictive-information rows alone (no
        entropies, gains or accuracies; the kernel ablation)."""
        st = settings or self.settings
        base = self._base(step, st)
        stochastic = self.estimator_for(st) == STOCHASTIC
        rows: list[dict] = []
        # the robustness bandwidth: Gaussian kernel only, not in the kernel ablation, not twice
        robust = st.robustness_sigma
        if predictive_only or st.kernel != "gaussian" or robust is None or str(robust) == str(st.sigma):
            robust = None
        for split, sp in self.splits.items():
            s = states[split]
            check_finite_states(s, split)
            stacks = {PREDICTIVE_INFORMATION: (*s.views_stacked(st.final_norm_views), 0)}
            if not predictive_only:  # gains start at layer 1: block l's gain over layer l - 1
                stacks[INCREMENTAL_GAIN] = (*s.views_stacked(st.final_norm_views, deltas=True), 1)
            # whole targets are labelled by token embeddings alone: no position to stratify on
            stratify = not self.whole and label_carries_position(s.labels[st.label_view], s.target_ids, sp["lengths"])
            for seed, idx in sp["subsets"].items():
                y = s.labels[st.label_view][idx]
                if self.whole:  # whole targets may share their first token: compare the whole targets
                    check_two_classes(s.label_tokens[idx].flatten(1), _whole_target_ids(s, idx), split, seed)
                else:
                    check_two_classes(y, s.target_ids[idx], split, seed)
                ky = self.label_gram(s, idx, st.kernel, **st.kernel_kw()) if self.whole else None
                groups = sp["lengths"][idx] if stratify and sp["lengths"][idx].unique().numel() > 1 else None
                common = {**base, "split": split, "seed": seed,
                          "null": NULL_PLAIN if groups is None else NULL_WITHIN_LENGTH}
                if self.whole:
                    common["target_kernel"] = f"sequence_mean_{st.kernel}"
                if groups is not None:
                    _warn_if_weak(groups, split, seed)
                for metric, (x, index, first_layer) in stacks.items():
                    if stochastic:  # the same permutations (seed, groups) as the exact path draws
                        est = stochastic_information(
                            x[:, idx], y, alpha=st.alpha, base=st.base, sigma=st.sigma,
                            n_permutations=st.n_permutations, seed=seed, groups=groups, **st.stochastic_kw(),
                        )
                    elif ky is None:
                        est = estimate_information(
                            x[:, idx], y, alpha=st.alpha, base=st.base, kernel=st.kernel,
                            n_permutations=st.n_permutations, seed=seed, groups=groups, **st.kernel_kw(),
                        )
                    else:
                        est = information_from_grams(
                            gram_matrix(x[:, idx], st.kernel, **st.kernel_kw()), ky, alpha=st.alpha, base=st.base,
                            n_permutations=st.n_permutations, seed=seed, groups=groups,
                        )
                    entropies = metric == PREDICTIVE_INFORMATION and not predictive_only
                    new = estimate_rows(est, index, common, metric, first_layer=first_layer, entropy_x=entropies,
                                        entropy_y=LABEL_ENTROPY if entropies else None)
                    new = flag_constant_layers(new, constant_layers(x[:, idx]), index, first_layer)
                    if metric == PREDICTIVE_INFORMATION and not predictive_only:  # one dimension dominating the states
                        dominant = dominant_dimension_rows(x[:, idx], index, common, first_layer)
                        rows += dominant
                        new = flag_massive_dimensions(new, dominant)
                    rows += new
                    if metric == PREDICTIVE_INFORMATION and robust is not None:
                        # same states, same permutations (same seed and groups), other bandwidth
                        if stochastic:
                            est = stochastic_information(
                                x[:, idx], y, alpha=st.alpha, base=st.base, sigma=robust,
                                n_permutations=st.n_permutations, seed=seed, groups=groups, **st.stochastic_kw(),
                            )
                        elif ky is None:
                            est = estimate_information(
                                x[:, idx], y, alpha=st.alpha, base=st.base, kernel="gaussian",
                                n_permutations=st.n_permutations, seed=seed, groups=groups, sigma=robust,
                            )
                        else:
                            est = information_from_grams(
                                gram_matrix(x[:, idx], "gaussian", sigma=robust),
                                self.label_gram(s, idx, "gaussian", sigma=robust), alpha=st.alpha, base=st.base,
                                n_permutations=st.n_permutations, seed=seed, groups=groups,
                            )
                        new = estimate_rows(est, index, {**common, **bandwidth_columns(robust)}, ROBUST_PREFIX + metric,
                                            first_layer=first_layer, entropy_x=False)
                        rows += flag_constant_layers(new, constant_layers(x[:, idx]), index, first_layer)
                if not predictive_only:
                    acc = (s.early_exit[:, idx] == s.target_ids[idx]).float().mean(1)
                    rows += [
                        {**common, "final_norm": view, "metric": EARLY_EXIT_ACCURACY, "layer": layer,
                         "value": float(v)}
                        for view in st.final_norm_views
                        for layer, v in enumerate(acc)
                    ]
        return rows

    def _accuracy_all(self, states: dict[str, LayerStates], base: dict, st: MeasureSettings) -> list[dict]:
        """Early-exit accuracy over the union of every split's subsample, per seed."""
        rows = []
        for seed in self.settings.seeds:  # the seeds of the drawn subsamples
            correct = torch.cat([
                (states[n].early_exit[:, sp["subsets"][seed]] == states[n].target_ids[sp["subsets"][seed]]).float()
                for n, sp in self.splits.items()
            ], 1)
            for view in st.final_norm_views:
                rows += [
                    {**base, "split": "all", "seed": seed, "final_norm": view, "metric": EARLY_EXIT_ACCURACY,
                     "layer": layer, "value": float(v), "n_samples": correct.shape[1]}
                    for layer, v in enumerate(correct.mean(1))
                ]
        return rows

    def describe(self) -> dict:
        return {"splits": {k: len(v["prompts"]) for k, v in self.splits.items()}, **asdict(self.settings)}
