"""Writing matplotlib figures to files."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt  # noqa: E402


def write_figures(figs: dict, folder: Path) -> dict[str, Path]:
    """Save each figure (or a zero-argument function drawing it, so only one is open at a time)
    as ``<folder>/<name>.png`` and close it; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, fig in figs.items():
        fig = fig() if callable(fig) else fig
        paths[name] = folder / f"{name}.png"
        fig.savefig(paths[name], dpi=110)
        plt.close(fig)
    return paths
