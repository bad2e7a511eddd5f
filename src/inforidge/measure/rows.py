"""The row schema of every results table: key columns and metric-name prefixes."""

from __future__ import annotations

COLUMNS = [
    "step", "split", "metric", "layer", "value", "seed", "n_samples",
    "alpha", "kernel", "sigma", "base", "final_norm", "label_view", "n_permutations",
]


# The columns that identify a row; a second row with the same key is a duplicate.
KEY = ["step", "split", "metric", "layer", "seed", "final_norm", "label_view", "kernel", "sigma", "alpha"]


# Rows of each stage: metric names start with these prefixes.
STAGE_PREFIX = {"ridge": "ridge_", "attention": "attention_", "scaling": "residual_scale",
                "kernels": "kernel_ablation_"}
