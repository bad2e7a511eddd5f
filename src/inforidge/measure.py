"""Measurement of one model state: per-layer information and early-exit accuracy -> rows.

Data flow: evaluation records -> fixed seeded subsamples -> one extraction pass over their
union -> estimators per seed -> tidy rows (see :mod:`inforidge.results`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .extract import FINAL_NORM_VIEWS, LABEL_VIEWS, LayerStates, extract_batched
from .info import estimate_information
from .model import ModelParts

log = logging.getLogger(__name__)


@dataclass
class MeasureSettings:
    """How each measurement is made (recorded with every row)."""

    n_samples: int = 100
    """Samples per subsample (the paper uses 50-100)."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    """One subsample per seed; mean and spread over seeds are reported."""
    n_permutations: int = 20
    """Draws of the permutation null per subsample."""
    alpha: float = 1.0
    """Renyi order (1 = von Neumann)."""
    base: float = 2.0
    """Log base: 2 gives bits."""
    kernel: str = "gaussian"
    """gaussian | laplacian | polynomial | linear."""
    sigma: float | str = 1.0
    """Gaussian bandwidth: a number (paper: 1) or 'median'."""
    label_view: str = "embedding_output"
    """Label embedding y: 'embedding_output' (the paper's) or 'token_embedding'."""
    final_norm_views: list[str] = field(default_factory=lambda: ["post", "pre"])
    """Views of the last layer: 'post' (after the final norm, HF) and/or 'pre' (raw)."""
    batch_size: int = 64
    """Forward-pass batch size during extraction."""

    def __post_init__(self) -> None:
        if self.n_samples < 2:
            raise ValueError(f"n_samples must be >= 2 for a Gram matrix; got {self.n_samples}")
        if not self.seeds:
            raise ValueError("seeds must list at least one subsampling seed")
        if self.label_view not in LABEL_VIEWS:
            raise ValueError(f"label_view must be one of {LABEL_VIEWS}; got {self.label_view!r}")
        bad = [v for v in self.final_norm_views if v not in FINAL_NORM_VIEWS]
        if bad or not self.final_norm_views:
            raise ValueError(f"final_norm_views must be a non-empty subset of {FINAL_NORM_VIEWS}; got {self.final_norm_views}")

    def row_settings(self) -> dict:
        return {
            "alpha": self.alpha, "kernel": self.kernel, "sigma": str(self.sigma), "base": self.base,
            "label_view": self.label_view, "n_permutations": self.n_permutations,
        }

    def kernel_kw(self) -> dict:
        return {"sigma": self.sigma} if self.kernel == "gaussian" else {}


MULTI_TOKEN_POLICIES = ("first", "error")


@dataclass
class _MultiTokenTally:
    affected: int = 0
    total: int = 0
    example: str = ""


_tally: ContextVar[_MultiTokenTally | None] = ContextVar("inforidge_multi_token_tally", default=None)


def _warn_multi_token(affected: int, total: int, example: str) -> None:
    log.warning(
        "%d of %d targets are longer than one token; the next-token analysis keeps the first "
        "token of each (multi_token_target='first'), e.g. %s", affected, total, example,
    )


@contextmanager
def one_multi_token_warning():
    """Inside the block, :func:`target_token_ids` counts multi-token targets instead of
    warning per call; ONE warning with the total is logged at the end (used by a run,
    which tokenises train, validation and both test splits separately)."""
    tally = _MultiTokenTally()
    token = _tally.set(tally)
    try:
        yield tally
    finally:
        _tally.reset(token)
        if tally.affected:
            _warn_multi_token(tally.affected, tally.total, tally.example)


def target_token_ids(tokenizer, targets: Sequence[str], multi_token: str = "error") -> torch.Tensor:
    """(N,) ids of the targets' tokens, each tokenised on its own (no special tokens).

    ``multi_token``: what to do with a target longer than one token: 'error' raises naming
    the first one; 'first' keeps its first token and logs one warning counting them.
    A target that is the unknown token, or no token at all, always raises.
    """
    if multi_token not in MULTI_TOKEN_POLICIES:
        raise ValueError(f"multi_token must be one of {MULTI_TOKEN_POLICIES}; got {multi_token!r}")
    ids, affected, example = [], 0, ""
    for t in targets:
        enc = tokenizer(t, add_special_tokens=False)["input_ids"]
        if not enc:
            raise ValueError(
                f"target {t!r} tokenises to no token; give every record a non-empty target the "
                f"tokenizer ({type(tokenizer).__name__}) can encode"
            )
        if len(enc) > 1:
            if multi_token == "error":
                raise ValueError(
                    f"target {t!r} is {len(enc)} tokens {enc}, but the next-token analysis needs "
                    "exactly one; use a single-token label (e.g. a leading space for BPE tokenizers) "
                    "or task.multi_token_target=first to keep the first token"
                )
            affected += 1
            example = example or f"{t!r} -> {tokenizer.convert_ids_to_tokens(enc[:1])[0]!r}"
        if enc[0] == tokenizer.unk_token_id:
            raise ValueError(f"target {t!r} is the unknown token; add it to the vocabulary")
        ids.append(enc[0])
    tally = _tally.get()
    if tally is not None:
        tally.affected += affected
        tally.total += len(ids)
        tally.example = tally.example or example
    elif affected:
        _warn_multi_token(affected, len(ids), example)
    return torch.tensor(ids, dtype=torch.long)


class Evaluator:
    """Measures a model on fixed, seeded subsamples of the evaluation splits.

    ``eval_splits`` maps a split label ("id", "ood") to records with "prompt" and "target".
    The subsamples are drawn once, so every checkpoint is measured on the same samples.
    ``multi_token_target``: policy for targets longer than one token (see :func:`target_token_ids`).
    """

    def __init__(self, tokenizer, eval_splits: dict[str, list[dict]], settings: MeasureSettings | None = None,
                 multi_token_target: str = "error"):
        self.tokenizer = tokenizer
        self.settings = settings or MeasureSettings()
        self.splits = {}
        for name, records in eval_splits.items():
            n = len(records)
            if n < self.settings.n_samples:
                raise ValueError(
                    f"split {name!r} has {n} samples but n_samples={self.settings.n_samples}; "
                    "lower n_samples or add data"
                )
            subsets = {
                s: np.random.default_rng(s).choice(n, self.settings.n_samples, replace=False)
                for s in self.settings.seeds
            }
            pool = np.unique(np.concatenate(list(subsets.values())))
            where = {int(i): k for k, i in enumerate(pool)}
            self.splits[name] = {
                "prompts": [records[i]["prompt"] for i in pool],
                "targets": target_token_ids(tokenizer, [records[i]["target"] for i in pool], multi_token_target),
                "subsets": {s: torch.tensor([where[int(i)] for i in idx]) for s, idx in subsets.items()},
            }

    def extract(self, parts: ModelParts) -> dict[str, LayerStates]:
        return {
            name: extract_batched(parts, self.tokenizer, sp["prompts"], sp["targets"], self.settings.batch_size)
            for name, sp in self.splits.items()
        }

    def measure(self, parts: ModelParts, step: int) -> list[dict]:
        """All rows for one model state at training step ``step``."""
        st = self.settings
        states = self.extract(parts)
        rows: list[dict] = []
        base = {"step": int(step), "n_samples": st.n_samples, **st.row_settings()}
        for split, sp in self.splits.items():
            s = states[split]
            stacks = {
                "predictive_information": (*s.views_stacked(st.final_norm_views), 0),
                "incremental_gain": (*s.views_stacked(st.final_norm_views, deltas=True), 1),
            }
            for seed, idx in sp["subsets"].items():
                y = s.labels[st.label_view][idx]
                common = {**base, "split": split, "seed": seed}
                for metric, (x, index, first_layer) in stacks.items():
                    est = estimate_information(
                        x[:, idx], y, alpha=st.alpha, base=st.base, kernel=st.kernel,
                        n_permutations=st.n_permutations, seed=seed, **st.kernel_kw(),
                    )
                    for view, ix in index.items():
                        series = {
                            metric: est.mi, f"{metric}_null": est.null_mean,
                            f"{metric}_null_std": est.null_std, f"{metric}_corrected": est.corrected,
                        }
                        if metric == "predictive_information":
                            series["representation_entropy"] = est.entropy_x
                        for name, values in series.items():
                            rows += [
                                {**common, "final_norm": view, "metric": name, "layer": first_layer + layer,
                                 "value": float(v)}
                                for layer, v in enumerate(values[ix])
                            ]
                        if metric == "predictive_information":
                            rows.append({**common, "final_norm": view, "metric": "label_entropy",
                                         "layer": -1, "value": float(est.entropy_y)})
                acc = (s.early_exit[:, idx] == s.target_ids[idx]).float().mean(1)
                rows += [
                    {**common, "final_norm": view, "metric": "early_exit_accuracy", "layer": layer, "value": float(v)}
                    for view in st.final_norm_views
                    for layer, v in enumerate(acc)
                ]
        rows += self._accuracy_all(states, base)
        return rows

    def _accuracy_all(self, states: dict[str, LayerStates], base: dict) -> list[dict]:
        """Early-exit accuracy over the union of every split's subsample, per seed."""
        rows = []
        for seed in self.settings.seeds:
            correct = torch.cat([
                (states[n].early_exit[:, sp["subsets"][seed]] == states[n].target_ids[sp["subsets"][seed]]).float()
                for n, sp in self.splits.items()
            ], 1)
            for view in self.settings.final_norm_views:
                rows += [
                    {**base, "split": "all", "seed": seed, "final_norm": view, "metric": "early_exit_accuracy",
                     "layer": layer, "value": float(v), "n_samples": correct.shape[1]}
                    for layer, v in enumerate(correct.mean(1))
                ]
        return rows

    def describe(self) -> dict:
        return {"splits": {k: len(v["prompts"]) for k, v in self.splits.items()}, **asdict(self.settings)}
