"""Markdown helpers shared by every report (run, analyses, sweep, paper)."""

from __future__ import annotations

import pandas as pd


def format_number(x, nd: int = 3) -> str:
    """A float with ``nd`` decimals; "—" for None/NaN."""
    return "—" if x is None or pd.isna(x) else f"{x:.{nd}f}"


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub markdown table; floats get 3 decimals, other values print as they are."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for r in frame.itertuples(index=False):  # itertuples keeps ints as ints
        lines.append("| " + " | ".join(format_number(v) if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(lines)
