"""The figure of ``lin-utils profile --plot``: any model's linearity profile, Figs 1 and 3 in one.

Three stacked panels share the x axis (the block index, or the relative depth when the models
differ in depth):

1. the linearity score **with** the residual (``X = h_i``, ``Y = h_{i+1}``),
2. the score **without** it (``Y = h_{i+1} - h_i``),
3. the block/stream norm ratio ``||h_{i+1} - h_i|| / ||h_i||`` of Fig 3.

Solid lines with dots are the in-sample scores, dotted lines the held-out R², the grey band the
chance level ``d/(n-1)``. One colour per model (:func:`lin_utils.plots.model_palette`); the
legend names each model with its width ``d`` and token count ``n``.

Drawn from the tables alone: one row per (model, block) as :func:`lin_utils.scan.scan_blocks`
returns them (and ``lin-utils profile --out`` writes them)::

    from lin_utils.plots_profile import profile_figure, save_profile
    fig = profile_figure(table)            # a matplotlib Figure
    save_profile(table, "profile.png")     # or .svg
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from . import plots
from .errors import LinUtilsError

__all__ = ["FORMATS", "REQUIRED", "check_plot_path", "profile_figure", "save_profile"]

FORMATS = (".png", ".svg")  # what --plot writes, from the path's suffix
REQUIRED = ("model", "block", "n_tokens", "d", "chance", "score", "heldout", "score_nores", "heldout_nores",
            "norm_ratio")
PANEL = (plots.FIG_WIDTH, 2.6)  # inches per panel: three panels stack into one text-column figure
LOG_RATIO_SPAN = 30.0  # the norm-ratio panel turns logarithmic when max/min exceeds this


def check_plot_path(path: str | Path) -> Path:
    """``path`` if a figure can be written there: a ``.png`` or ``.svg`` name in an existing folder,
    not itself a folder. Raises :class:`~lin_utils.errors.LinUtilsError` with a one-line message
    (checked before any model is loaded, so a typo costs no scan)."""
    text = str(path).strip()
    if not text:
        raise LinUtilsError("--plot: empty path")
    p = Path(text).expanduser()
    if p.suffix.lower() not in FORMATS:
        got = f"{p.suffix!r}" if p.suffix else "no suffix"
        raise LinUtilsError(f"--plot {text}: the format comes from the suffix, .png or .svg (got {got})")
    if p.is_dir():
        raise LinUtilsError(f"--plot {text}: is a folder, not a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise LinUtilsError(f"--plot {text}: folder {parent} does not exist")
    return p


def _x(table: pd.DataFrame) -> tuple[str, str]:
    """Block index when every model has the same depth, else relative depth."""
    if "n_blocks" in table.columns and table.groupby("model", sort=False)["n_blocks"].first().nunique() > 1 \
            and "depth" in table.columns:
        return "depth", "relative depth (block / last block)"
    return "block", "block"


def _label(model: str, grp: pd.DataFrame) -> str:
    d = int(grp["d"].iloc[0])
    n = int(grp["n_tokens"].min())
    return f"{model} (d={d:,}, n={n:,})"


def profile_figure(table: pd.DataFrame, *, title: str | None = None):
    """The three-panel profile of every model in ``table`` (see the module docstring).

    ``table``: one row per (model, block) with the :data:`REQUIRED` columns. Models are drawn in
    the order they first appear. Returns the matplotlib Figure (the caller saves or closes it).
    """
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise LinUtilsError(f"profile table lacks column(s) {', '.join(missing)}")
    if table.empty:
        raise LinUtilsError("profile table is empty: nothing to draw")

    fig, axes = plots.new_figure(nrows=3, sharex=True, panel_size=PANEL)
    colors = plots.model_palette(table["model"])
    x, xlabel = _x(table)
    groups = [(m, g.sort_values(x)) for m, g in table.groupby("model", sort=False)]
    panels = [("score", "heldout", r"with the residual: $X = h_i,\ Y = h_{i+1}$"),
              ("score_nores", "heldout_nores", r"without the residual: $X = h_i,\ Y = h_{i+1} - h_i$")]
    for ax, (score, heldout, panel_title) in zip(axes, panels):
        for model, grp in groups:
            c = colors[model]
            ax.fill_between(grp[x], 0, grp["chance"], color=plots.GREY, alpha=0.25, linewidth=0, step=None)
            ax.plot(grp[x], grp[score], color=c, marker="o")
            ax.plot(grp[x], grp[heldout], color=c, linestyle=":", linewidth=2.0)
        values = table[[score, heldout]].to_numpy(dtype=float)
        low = np.nanmin(values) if np.isfinite(values).any() else 0.0
        bottom = max(min(low, 0.0) - 0.03, plots.Y_FLOOR)
        ax.set_ylim(bottom, 1.03)
        if low < plots.Y_FLOOR:  # a held-out R² far below 0 (too few tokens) would flatten the rest
            ax.text(0.01, 0.04, f"clipped: lowest value {low:.3g}", transform=ax.transAxes,
                    fontsize=plots.FONT_SIZE - 2, color="0.3")
        ax.set_title(panel_title, loc="left")
        ax.set_ylabel("linearity (R²)")
    ratio_ax = axes[2]
    for model, grp in groups:
        ratio_ax.plot(grp[x], grp["norm_ratio"], color=colors[model], marker="o")
    ratios = table["norm_ratio"].to_numpy(dtype=float)
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    if len(ratios) and ratios.max() / ratios.min() > LOG_RATIO_SPAN:
        ratio_ax.set_yscale("log")
    if len(ratios) and ratios.max() >= 0.5:  # the "as large as the stream" line, when it is near
        ratio_ax.axhline(1.0, color="0.35", linewidth=1.2, linestyle="--", zorder=1.5)
    else:
        ratio_ax.set_ylim(bottom=0)
    ratio_ax.set_title(r"block output / residual stream: $\|h_{i+1} - h_i\| \,/\, \|h_i\|$", loc="left")
    ratio_ax.set(ylabel="norm ratio", xlabel=xlabel)
    if x == "block":
        ratio_ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    handles = [Line2D([], [], color=colors[m], marker="o", label=_label(m, g)) for m, g in groups]
    handles += [Line2D([], [], color="0.3", marker="o", label="in-sample"),
                Line2D([], [], color="0.3", linestyle=":", linewidth=2.0, label="held-out R²"),
                Line2D([], [], color=plots.GREY, linewidth=8, alpha=0.45, label="chance d/(n−1)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(2 if len(groups) > 1 else 3, len(handles)))
    return fig


def save_profile(table: pd.DataFrame, path: str | Path, *, title: str | None = None) -> Path:
    """Draw :func:`profile_figure` and write it to ``path`` (``.png`` at 200 dpi, or ``.svg``)."""

    path = check_plot_path(path)
    fig = profile_figure(table, title=title)
    try:
        fig.savefig(path, format=path.suffix.lower().lstrip("."), facecolor="white")
    finally:
        plt.close(fig)
    return path
