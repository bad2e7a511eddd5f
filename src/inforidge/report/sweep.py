"""The checkpoint section that ``inforidge sweep`` adds to its report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from inforidge.report.markdown import markdown_table
from inforidge.results.summaries import checkpoint_summary


def append_checkpoint_section(report: Path, df: pd.DataFrame, warnings: Sequence[str] = ()) -> None:
    """Add a "Checkpoints" section (checkpoint, step, weight hash, ridge) to a report."""

    lines = [
        "",
        "## Checkpoints",
        "weight_hash = sha256 of the loaded weights (state_dict tensors, not the files); "
        "peak / ridge: null-corrected predictive information, post view.",
        "",
        markdown_table(checkpoint_summary(df)),
        "",
    ]
    if warnings:
        lines += ["**Warnings**", "", *[f"- {w}" for w in warnings], ""]
    tmp = report.with_suffix(".md.tmp")
    tmp.write_text(report.read_text() + "\n".join(lines))
    tmp.replace(report)
