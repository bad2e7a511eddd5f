"""Markdown helpers shared by every report (run, analyses, sweep, paper)."""

from __future__ import annotations

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SPLIT_NAME = {"id": "in-distribution", "ood": "out-of-distribution"}


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


SPLIT_LABEL = {"id": "in-distribution", "ood": "out-of-distribution", "all": "all"}


def base_units(base: float) -> str:
    """The unit of an entropy in log base ``base``: bits, nats or log<base>."""
    return "bits" if base == 2 else "nats" if abs(base - np.e) < 1e-9 else f"log{base:g}"


def _units(df) -> str:
    return base_units(float(df["base"].dropna().iloc[0]) if "base" in df and df["base"].notna().any() else 2.0)


SPLIT_NAME = {"id": "in-distribution", "ood": "out-of-distribution"}
