"""The checkpoint section of the report that ``inforidge sweep`` writes."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from inforidge.report.markdown import markdown_table
from inforidge.results.summaries import checkpoint_summary


def checkpoint_section(df: pd.DataFrame, warnings: Sequence[str] = ()) -> list[str]:
    """Markdown lines of the "Checkpoints" section (checkpoint, step, weight hash, ridge) of a sweep's table."""
    lines = [
        "## Checkpoints",
        "weight_hash = sha256 of the loaded weights (state_dict tensors, not the files); "
        "peak / ridge: null-corrected predictive information, post view.",
        "",
        markdown_table(checkpoint_summary(df)),
        "",
    ]
    if warnings:
        lines += ["**Warnings**", "", *[f"- {w}" for w in warnings], ""]
    return lines
