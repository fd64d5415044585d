"""One figure style for the whole book, and the figures drawn from result tables.

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


# -------------------------------------------------------------------------------------------------
# the book's figures, drawn from result tables (lin_utils.experiments)


def model_kind(row) -> str:
    """'decoder, trained', 'encoder, random init', ... from a row's ``arch`` and ``trained``."""
    if "arch" not in row or "trained" not in row:
        return ""
    return f"{row['arch']}, {'trained' if row['trained'] else 'random init'}"


def _x(table) -> tuple[str, str]:
    """Relative depth when the table has it (models of different depth share an axis)."""
    if "depth" in table.columns:
        return "depth", "relative depth (block / last block)"
    return "block", "block"


def _legend(fig, colors: dict, styles: dict[str, dict]) -> None:
    """One legend to the right of the panels: a line per model (colour), then per measure (style)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, label=m) for m, c in colors.items()]
    handles += [Line2D([], [], label=lab, **{"color": "0.3", **kw}) for lab, kw in styles.items()]
    fig.legend(handles=handles, loc="outside right upper")


Y_FLOOR = -0.25  # lowest score drawn in Fig 1


def linearity_profiles(table):
    """Fig 1: per-block linearity with and without the residual, held-out R^2 and chance level.

    ``table``: one row per (model, block) with ``score``, ``heldout``, ``score_nores``,
    ``heldout_nores`` and ``chance`` (see :func:`lin_utils.experiments.linearity_profiles`).
    Solid: in-sample score; dotted: held-out R^2; grey band: chance level d/(n-1).
    """
    fig, axes = new_figure(ncols=2, sharex=True, panel_size=(5.0, 3.8))
    colors = model_palette(table["model"])
    x, xlabel = _x(table)
    panels = [("score", "heldout", "with residual"), ("score_nores", "heldout_nores", "without residual")]
    for ax, (score, heldout, title) in zip(axes, panels):
        for model, grp in table.groupby("model", sort=False):
            grp = grp.sort_values(x)
            c = colors[model]
            ax.fill_between(grp[x], 0, grp["chance"], color="0.5", alpha=0.15, linewidth=0)
            ax.plot(grp[x], grp[score], color=c, marker="o")
            ax.plot(grp[x], grp[heldout], color=c, linestyle=":")
        ax.set(title=title, xlabel=xlabel, ylabel="linearity score (R²)")
        low = table[[score, heldout]].min().min()
        if low < Y_FLOOR:  # a held-out R² far below 0 (overfitting at small n) would flatten the rest
            ax.set_ylim(Y_FLOOR, 1.02)
            ax.text(0.02, 0.02, f"clipped: lowest value {low:.3g}", transform=ax.transAxes, fontsize=7, color="0.3")
    _legend(fig, colors, {"in-sample": dict(marker="o"), "held-out": dict(linestyle=":"),
                          "chance d/(n−1)": dict(linewidth=6, alpha=0.3, color="0.5")})
    return fig


def block_norms(table):
    """Fig 3: mean norm of the residual stream and of each block's output, and their ratio.

    ``table``: one row per (model, block) with ``norm_resid`` (mean ||h_i||), ``norm_block``
    (mean ||h_{i+1} - h_i||) and ``norm_ratio``.
    """
    fig, (left, right) = new_figure(ncols=2, sharex=True)
    colors = model_palette(table["model"])
    x, xlabel = _x(table)
    for model, grp in table.groupby("model", sort=False):
        grp = grp.sort_values(x)
        c = colors[model]
        left.plot(grp[x], grp["norm_resid"], color=c, marker="o")
        left.plot(grp[x], grp["norm_block"], color=c, marker="s", linestyle="--")
        right.plot(grp[x], grp["norm_ratio"], color=c, marker="o")
    left.set(yscale="log", title="mean norms", xlabel=xlabel, ylabel="L2 norm")
    right.set(title="block output / residual stream", xlabel=xlabel, ylabel="norm ratio")
    _legend(fig, colors, {"residual stream ‖h_i‖": dict(marker="o"),
                          "block output ‖Δh‖": dict(marker="s", linestyle="--")})
    return fig


def error_tails(sample):
    """Fig 9: the long tail of the per-token relative error of the linear approximation.

    ``sample``: one row per sampled token with ``model``, ``arch``, ``trained``, ``block``, ``error`` and
    ``is_bos``. One panel per model: the complementary ECDF P(error > x) of every block on
    log-log axes (colour = depth), with BOS tokens marked (x) on their block's curve.
    """
    import numpy as np
    from matplotlib.ticker import NullFormatter

    models = list(dict.fromkeys(sample["model"]))
    fig, axes = new_figure(ncols=len(models), squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models):
        grp = sample[sample["model"] == model]
        blocks = sorted(grp["block"].unique())
        cmap = mpl.colormaps["viridis"]
        for j, (block, g) in enumerate(grp.groupby("block")):
            order = np.argsort(g["error"].to_numpy(dtype=float), kind="stable")
            e = g["error"].to_numpy(dtype=float)[order]
            survival = 1.0 - np.arange(len(e)) / len(e)  # P(error >= e_i), > 0 for log axes
            c = cmap(j / max(len(blocks) - 1, 1))
            ax.plot(e, survival, color=c, label=f"block {block}")
            bos = g["is_bos"].to_numpy(dtype=bool)[order]
            ax.plot(e[bos], survival[bos], color=c, marker="x", linestyle="none")
        kind = model_kind(grp.iloc[0])
        ax.set(xscale="log", yscale="log", xlabel="relative error (units of RMS target norm)",
               title=f"{model} ({kind})" if kind else model)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=7, title="x = BOS token", title_fontsize=7)
    axes[0][0].set_ylabel("P(error > x)")
    return fig
