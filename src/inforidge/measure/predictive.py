"""Measurement of one model state: per-layer information and early-exit accuracy -> rows.

Data flow: evaluation records -> fixed seeded subsamples -> one extraction pass over their
union -> estimators per seed -> tidy rows (see :mod:`inforidge.results.table`).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch

from inforidge.config.settings import MeasureSettings
from inforidge.extract.last_position import LayerStates, extract_batched
from inforidge.info import estimate_information
from inforidge.models.parts import ModelParts
from inforidge.tasks.tokenize import target_token_ids


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
