"""What every report prints, one of each: split names, units, numbers and markdown tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLIT_NAME = {"id": "in-distribution", "ood": "out-of-distribution", "all": "all"}
"""Split label of the table -> its name in reports and figure legends."""


def split_name(split: str) -> str:
    """The name of ``split`` in reports (the label itself when it has none, e.g. a token group)."""
    return SPLIT_NAME.get(split, split)


def format_number(x, nd: int = 3) -> str:
    """A float with ``nd`` decimals; "—" for None/NaN; never "-0.000" (a value that rounds to zero
    prints without a sign)."""
    if x is None or pd.isna(x):
        return "—"
    text = f"{x:.{nd}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _cell(v) -> str:
    """A table cell: floats via :func:`format_number`; ``|`` escaped and newlines flattened so a
    value cannot break the table."""
    text = format_number(v) if isinstance(v, float) else str(v)
    return text.replace("|", "\\|").replace("\n", " ")


def format_p_value(p, n_draws=None) -> str:
    """A p-value: 3 decimals, scientific notation below 0.001; "—" for None/NaN.

    n_draws: the resampling draws B behind a p of the form (k + 1) / (B + 1). At its smallest
    value, 1 / (B + 1), the p says its resolution, rounded up: "≤ 0.048 (smallest with 20 draws)".
    """
    if p is None or pd.isna(p):
        return "—"
    if n_draws is not None and not pd.isna(n_draws) and p <= (1 + 1e-9) / (int(n_draws) + 1):
        floor = 1 / (int(n_draws) + 1)
        unit = 10.0 ** (np.floor(np.log10(floor)) - 1)  # round up to 2 significant digits
        bound = np.ceil(floor / unit - 1e-9) * unit
        text = f"{bound:.3f}" if bound >= 0.001 else f"{bound:.1e}"
        return f"≤ {text} (smallest with {int(n_draws)} draws)"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub markdown table; floats get 3 decimals, other values print as they are."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(_cell(str(c)) for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in frame.itertuples(index=False):  # itertuples keeps ints as ints
        lines.append("| " + " | ".join(_cell(v) for v in r) + " |")
    return "\n".join(lines)


def base_units(base: float) -> str:
    """The unit of an entropy in log base ``base``: bits, nats or log<base>."""
    return "bits" if base == 2 else "nats" if abs(base - np.e) < 1e-9 else f"log{base:g}"


def table_units(df: pd.DataFrame) -> str:
    """The unit of the information values of a results table (its ``base`` column; bits when absent)."""
    return base_units(float(df["base"].dropna().iloc[0]) if "base" in df and df["base"].notna().any() else 2.0)
