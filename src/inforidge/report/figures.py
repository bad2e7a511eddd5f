"""matplotlib, set up once for every report: figures built outside pyplot and written to files.

Figures are :class:`matplotlib.figure.Figure` objects made here, not through ``pyplot``: no
global figure state to leak and no backend to select, so importing a report module leaves the
user's backend (an interactive one in a notebook) as it was, and saving works headless.

Every plot function of the report modules takes ``ax=`` (draw into the given axes; a sequence
of axes for a figure of several panels) and returns the figure it drew into. Sizes and fonts
come from a style (:data:`STYLE_RC`, :func:`figure_size`): ``notebook`` or ``paper`` (3.3 in
single-column and 6.8 in double-column widths, 8-pt text, 7-pt legends). Figures use constrained
layout, so labels are never clipped. :func:`write_figures` draws and saves them in the formats,
dpi and style of a :class:`~inforidge.config.settings.FigureSettings`.

matplotlib is the optional extra ``plots``: it is imported when a figure is first drawn. The
writers of a run's standard figures call :func:`figures_available` first and skip the figures
(with a warning naming the extra) when it is missing, so a core install still writes every
table and report.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from inforidge._optional import available, install_hint, require
from inforidge.config.settings import FigureSettings

log = logging.getLogger(__name__)

LAYER_LABEL = "layer l (0 = embeddings)"
"""x-axis label of every by-layer figure."""
DEPTH_FRACTION_LABEL = "depth fraction l / L (0 = embeddings)"

DIVERGING_MAP = "RdBu_r"
"""Colour map of signed values (null-corrected information), centred at 0."""
SEQUENTIAL_MAP = "viridis"

STYLE_RC = {
    "notebook": {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9,
                 "ytick.labelsize": 9, "legend.fontsize": 8, "legend.title_fontsize": 8, "figure.titlesize": 10},
    "paper": {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 8,
              "ytick.labelsize": 8, "legend.fontsize": 7, "legend.title_fontsize": 7, "figure.titlesize": 8, "lines.linewidth": 1.0,
              "lines.markersize": 3, "axes.linewidth": 0.6, "legend.handlelength": 1.5,
              "legend.borderaxespad": 0.3, "pdf.fonttype": 42},
}
"""rcParams of each style (applied while a figure is drawn and saved by :func:`write_figures`)."""
_COMMON_RC = {"svg.fonttype": "none", "pdf.fonttype": 42, "legend.framealpha": 0.85}

WIDTHS = {"notebook": {"single": 5.5, "double": 11.0}, "paper": {"single": 3.3, "double": 6.8}}
"""Figure widths in inches: single-column and double-column."""
ROW_HEIGHTS = {"notebook": {"single": 4.0, "double": 4.0}, "paper": {"single": 2.5, "double": 2.6}}

_style: contextvars.ContextVar[str] = contextvars.ContextVar("inforidge_figure_style", default="notebook")


def figures_available() -> bool:
    """True if matplotlib is installed; else logs once per call that figures are skipped."""
    if available("matplotlib"):
        return True
    log.warning("matplotlib is not installed: no figures (install them with %s)", install_hint("matplotlib"))
    return False


def current_style() -> str:
    """The style figures are drawn in now (``notebook`` unless inside :func:`figure_style`)."""
    return _style.get()


@contextlib.contextmanager
def figure_style(style: str = "notebook") -> Iterator[None]:
    """Draw (and save) figures in ``style`` inside this block: its sizes and its rcParams
    (matplotlib.rc_context; the user's rcParams are restored on exit, no pyplot involved)."""
    if style not in STYLE_RC:
        raise ValueError(f"figure style must be one of {', '.join(STYLE_RC)}; got {style!r}")
    mpl = require("matplotlib", "the figures")
    token = _style.set(style)
    try:
        with mpl.rc_context({**_COMMON_RC, **STYLE_RC[style]}):
            yield
    finally:
        _style.reset(token)


def figure_size(columns: str = "single", rows: int = 1, style: str | None = None) -> tuple[float, float]:
    """(width, height) in inches of a figure ``columns`` ("single" | "double") wide with ``rows`` rows of panels."""
    style = style or current_style()
    return WIDTHS[style][columns], ROW_HEIGHTS[style][columns] * rows


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
               columns: str | None = None, **subplots_kw):
    """A new Figure (constrained layout) and its grid of axes, like ``pyplot.subplots`` without pyplot.
    Without ``figsize`` the size is :func:`figure_size` of the current style: ``columns``
    (default single for one panel a row, double for more) by ``nrows`` rows."""
    if figsize is None:
        figsize = figure_size(columns or ("double" if ncols > 1 else "single"), nrows)
    fig = require("matplotlib.figure", "the figures").Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols, **subplots_kw)


def panels(ax, n: int, *, columns: str | None = None, **subplots_kw):
    """(figure, list of ``n`` axes) to draw into: new ones in a 1 x n row when ``ax`` is None,
    else ``ax`` itself (one Axes for n = 1, a sequence of n axes otherwise)."""
    if ax is None:
        fig, axes = new_figure(1, n, columns=columns, squeeze=False, **subplots_kw)
        return fig, list(axes[0])
    axes = list(np.ravel(ax)) if isinstance(ax, Sequence | np.ndarray) else [ax]
    if len(axes) != n:
        raise ValueError(f"ax must be {'one Axes' if n == 1 else f'a sequence of {n} axes'}; got {len(axes)}")
    return axes[0].figure, axes


def integer_ticks(ax, axis: str = "x") -> None:
    """Whole-number ticks only (layers, blocks) on ``axis`` of ``ax``."""
    locator = require("matplotlib.ticker", "the figures").MaxNLocator(integer=True)
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(locator)


def palette(colormap: str, positions) -> np.ndarray:
    """RGBA colours (len(positions), 4) of ``colormap`` at ``positions`` in [0, 1]."""
    return require("matplotlib", "the figures").colormaps[colormap](positions)


def color_limits(values, vmin: float | None = None, vmax: float | None = None, *, centred: bool = False):
    """(vmin, vmax) over all ``values`` (arrays of several panels share one scale); ``centred``:
    symmetric about 0. Given limits are kept."""
    finite = np.concatenate([np.asarray(v, dtype=float).ravel() for v in values] or [np.array([])])
    finite = finite[np.isfinite(finite)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if centred:
        m = max(abs(lo), abs(hi), 1e-12)
        lo, hi = -m, m
    return (lo if vmin is None else vmin), (hi if vmax is None else vmax)


def color_norm(vmin: float, vmax: float, *, centred: bool = False):
    """A Normalize for [vmin, vmax]; ``centred`` (signed values): a TwoSlopeNorm with its centre at 0."""
    colors = require("matplotlib.colors", "the figures")
    if centred and vmin < 0 < vmax:
        return colors.TwoSlopeNorm(vcenter=0.0, vmin=vmin, vmax=vmax)
    return colors.Normalize(vmin=vmin, vmax=vmax)


def write_figures(figs: dict, folder: Path, settings: FigureSettings | None = None) -> dict[str, Path]:
    """Save each figure (or a zero-argument function drawing it, so only one is held at a time,
    drawn in the settings' style) as ``<folder>/<name>.<format>`` for every format of ``settings``
    (default: PNG, 150 dpi, notebook style); returns name -> path of the first format (the one
    reports embed)."""
    settings = settings or FigureSettings()
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    with figure_style(settings.style):
        for name, fig in figs.items():
            fig = fig() if callable(fig) else fig
            for i, fmt in enumerate(settings.formats):
                path = folder / f"{name}.{fmt}"
                fig.savefig(path, dpi=settings.dpi, format=fmt)
                if i == 0:
                    paths[name] = path
            del fig
    return paths
