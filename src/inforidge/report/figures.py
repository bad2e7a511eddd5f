"""matplotlib, set up once for every report: figures built outside pyplot and written to files.

Figures are :class:`matplotlib.figure.Figure` objects made here, not through ``pyplot``: no
global figure state to leak and no backend to select, so importing a report module leaves the
user's backend (an interactive one in a notebook) as it was, and saving works headless.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, **subplots_kw):
    """A new Figure and its grid of axes, like ``pyplot.subplots`` (same arguments) without pyplot."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **subplots_kw)


def palette(colormap: str, positions) -> np.ndarray:
    """RGBA colours (len(positions), 4) of ``colormap`` at ``positions`` in [0, 1]."""
    return colormaps[colormap](positions)


def write_figures(figs: dict, folder: Path) -> dict[str, Path]:
    """Save each figure (or a zero-argument function drawing it, so only one is held at a time)
    as ``<folder>/<name>.png``; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, fig in figs.items():
        fig = fig() if callable(fig) else fig
        paths[name] = folder / f"{name}.png"
        fig.savefig(paths[name], dpi=110)
        del fig
    return paths
