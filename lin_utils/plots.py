"""One figure style for the whole book.

Notebooks call :func:`apply_style` once, make axes with :func:`new_figure`, colour models with
:func:`model_palette` and write files with :func:`save`::

    plots.apply_style()
    fig, ax = plots.new_figure()
    colors = plots.model_palette(models)
    ...
    plots.save(fig, "figures/fig1.png")
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterable

import matplotlib as mpl
import matplotlib.pyplot as plt
import seaborn as sns

# Colour-blind safe and stable: the n-th model of a figure always gets the n-th colour.
PALETTE = sns.color_palette("colorblind", 10)
PANEL_SIZE = (4.0, 3.0)  # inches per subplot (width, height)
FONT_SIZE = 9

_RC = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE + 1,
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": FONT_SIZE - 1,
    "ytick.labelsize": FONT_SIZE - 1,
    "legend.fontsize": FONT_SIZE - 1,
    "legend.title_fontsize": FONT_SIZE - 1,
    "legend.frameon": False,
    "lines.linewidth": 1.5,
    "lines.markersize": 4,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def apply_style() -> None:
    """Set the seaborn theme, font sizes, palette and dpi used by every figure."""
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE, rc=_RC)


def new_figure(
    ncols: int = 1,
    nrows: int = 1,
    *,
    panel_size: tuple[float, float] = PANEL_SIZE,
    sharex: bool = False,
    sharey: bool = False,
    squeeze: bool = True,
    **subplots_kw,
):
    """A figure with ``nrows x ncols`` panels of ``panel_size`` inches each.

    Returns ``(fig, axes)`` like :func:`matplotlib.pyplot.subplots` (one Axes when squeezed to a
    single panel). Uses the constrained layout so labels never overlap.
    """
    apply_style()
    width, height = panel_size
    return plt.subplots(
        nrows,
        ncols,
        figsize=(width * ncols, height * nrows),
        sharex=sharex,
        sharey=sharey,
        squeeze=squeeze,
        layout="constrained",
        **subplots_kw,
    )


def model_palette(names: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """Map model names to colours, in the given order (duplicates ignored).

    Pass the same full list of models to every figure so a model keeps its colour across figures.
    Beyond 10 models the colours repeat.
    """
    unique = list(dict.fromkeys(names))
    return dict(zip(unique, itertools.cycle(PALETTE)))


def save(fig: mpl.figure.Figure, path: str | Path, **savefig_kw) -> Path:
    """Save ``fig`` to ``path`` (format from the suffix), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **savefig_kw)
    return path
