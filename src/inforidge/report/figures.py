"""matplotlib, set up once for every report: figures built outside pyplot and written to files.

Figures are :class:`matplotlib.figure.Figure` objects made here, not through ``pyplot``: no
global figure state to leak and no backend to select, so importing a report module leaves the
user's backend (an interactive one in a notebook) as it was, and saving works headless.

matplotlib is the optional extra ``plots``: it is imported when a figure is first drawn. The
writers of a run's standard figures call :func:`figures_available` first and skip the figures
(with a warning naming the extra) when it is missing, so a core install still writes every
table and report.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from inforidge._optional import available, install_hint, require

log = logging.getLogger(__name__)


def figures_available() -> bool:
    """True if matplotlib is installed; else logs once per call that figures are skipped."""
    if available("matplotlib"):
        return True
    log.warning("matplotlib is not installed: no figures (install them with %s)", install_hint("matplotlib"))
    return False


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, **subplots_kw):
    """A new Figure and its grid of axes, like ``pyplot.subplots`` (same arguments) without pyplot."""
    fig = require("matplotlib.figure", "the figures").Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **subplots_kw)


def palette(colormap: str, positions) -> np.ndarray:
    """RGBA colours (len(positions), 4) of ``colormap`` at ``positions`` in [0, 1]."""
    return require("matplotlib", "the figures").colormaps[colormap](positions)


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
