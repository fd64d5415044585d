"""One figure style for the whole book, and the figures drawn from result tables.

Figures are drawn for a page's text column: :data:`FIG_WIDTH` inches wide at :data:`FONT_SIZE`
points, so that shown at the column's width (about 700 px) the labels read at about the size
of the text. Panels that share an axis are stacked rather than squeezed side by side.

A model has one colour everywhere (:func:`model_colour`): the models of the profiles have fixed
colours, any other model a colour picked by a stable hash of its name.

Notebooks call :func:`apply_style` once, make axes with :func:`new_figure`, colour models with
:func:`model_palette` and write files with :func:`save`::

    plots.apply_style()
    fig, ax = plots.new_figure()
    colors = plots.model_palette(models)
    ...
    plots.save(fig, "figures/fig1.png")
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from . import zoo
from .vocab import MODEL_COLOURS, MODEL_SLOTS, QUANTITIES

# Colour-blind safe (seaborn's "colorblind", after Okabe & Ito). Grey (7) is kept for references
# such as the chance level, never for a model.
PALETTE = sns.color_palette("colorblind", 10)
GREY = PALETTE[7]
FIG_WIDTH = 7.0  # inches: a figure shown at the text column's width
PANEL_SIZE = (FIG_WIDTH, 3.0)  # inches per panel (width, height); panels stack
FONT_SIZE = 11

_RC = {
    "figure.dpi": 100,
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
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
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


def _hash_slot(name: str) -> int:
    return int(hashlib.sha256(name.encode("utf-8")).hexdigest(), 16) % len(MODEL_SLOTS)


def model_colour(name: str) -> tuple[float, float, float]:
    """The colour of model ``name`` on every page: fixed for :data:`MODEL_COLOURS`, else by hash."""
    slot = MODEL_COLOURS.get(name)
    return PALETTE[slot if slot is not None else MODEL_SLOTS[_hash_slot(name)]]


def model_palette(names: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """Map model names to colours, in the given order (duplicates ignored).

    Each model gets :func:`model_colour`, the same on every page. Only when two models of one
    figure would share a colour does the later one (known models first, then the others by name)
    move to the next free colour, so a figure never shows two models alike; beyond
    ``len(MODEL_SLOTS)`` models colours repeat.
    """
    unique = list(dict.fromkeys(names))
    order = [n for n in unique if n in MODEL_COLOURS] + sorted(n for n in unique if n not in MODEL_COLOURS)
    taken: dict[str, int] = {}
    for name in order:
        slot = MODEL_COLOURS[name] if name in MODEL_COLOURS else MODEL_SLOTS[_hash_slot(name)]
        if slot in taken.values() and len(taken) < len(MODEL_SLOTS):
            start = MODEL_SLOTS.index(slot)
            free = [MODEL_SLOTS[(start + k) % len(MODEL_SLOTS)] for k in range(len(MODEL_SLOTS))]
            slot = next(x for x in free if x not in taken.values())
        taken[name] = slot
    return {name: PALETTE[taken[name]] for name in unique}


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


def arms(models: Iterable[str]) -> dict[str, str]:
    """Each model's arm, from the zoo's metadata: a ``zoo:`` spec's seed-0 entry
    (``zoo:cpu-small-cos0.5-s2`` -> ``zoo:cpu-small-cos0.5``); any other spec is its own arm."""
    out = {}
    for m in dict.fromkeys(models):
        name = m[len("zoo:"):] if m.startswith("zoo:") else None
        out[m] = f"zoo:{zoo.arm(name)}" if name in zoo.ENTRIES else m
    return out


def seeded(models: Iterable[str]) -> bool:
    """True when some arm among ``models`` has more than one seed (the figures then draw each seed
    thin and the arm's mean over seeds bold)."""
    a = list(arms(models).values())
    return len(set(a)) < len(a)


def arm_palette(models: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """:func:`model_palette` of the arms: every seed of an arm in its arm's colour."""
    a = arms(models)
    colours = model_palette(a.values())
    return {m: colours[arm] for m, arm in a.items()}


def _arm_legend(models: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """Legend entries for the arms: ``label (n seeds)`` -> colour."""
    a = arms(models)
    colours = model_palette(a.values())
    counts = {arm: list(a.values()).count(arm) for arm in colours}
    return {(f"{arm} ({counts[arm]} seeds)" if counts[arm] > 1 else arm): c for arm, c in colours.items()}


def _per_arm(ax, table, x: str, col: str, held: str | None, colours: dict, marker: str = "o") -> None:
    """Each seed of each arm thin, and the arm's mean over seeds (at each ``x``) bold, held-out dotted."""
    a = arms(table["model"])
    t = table.assign(_arm=table["model"].map(a))
    for arm, g in t.groupby("_arm", sort=False):
        c = colours[arm]
        for _, s in g.groupby("model", sort=False):
            s = s.sort_values(x)
            ax.plot(s[x], s[col], color=c, alpha=0.35, linewidth=0.9)
        mean = g.groupby(x, sort=True)[[col] + ([held] if held else [])].mean()
        ax.plot(mean.index, mean[col], color=c, marker=marker, linewidth=1.8)
        if held:
            ax.plot(mean.index, mean[held], color=c, linestyle=":")


def _x(table) -> tuple[str, str]:
    """Relative depth when the table has it (models of different depth share an axis)."""
    if "depth" in table.columns:
        return "depth", "relative depth (block / last block)"
    return "block", "block"


def _legend(fig, colors: dict, styles: dict[str, dict]) -> None:
    """One legend below the panels: a line per model (colour), then per measure (style)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, label=m) for m, c in colors.items()]
    handles += [Line2D([], [], label=lab, **{"color": "0.3", **kw}) for lab, kw in styles.items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(3, len(handles)))


Y_FLOOR = -0.25  # lowest score drawn in Fig 1


def linearity_profiles(table):
    """Fig 1: per-block linearity with and without the residual, held-out R^2 and chance level.

    ``table``: one row per (model, block) with ``score``, ``heldout``, ``score_nores``,
    ``heldout_nores`` and ``chance`` (see :func:`lin_utils.experiments.linearity_profiles`).
    Solid: in-sample score; dotted: held-out R^2; grey band: chance level d/(n-1).
    """
    fig, axes = new_figure(nrows=2, sharex=True)
    by_seed = seeded(table["model"])
    colors = _arm_legend(table["model"]) if by_seed else model_palette(table["model"])
    arm_colours = model_palette(arms(table["model"]).values())
    x, xlabel = _x(table)
    panels = [("score", "heldout", r"with the residual: $X = h_i,\ Y = h_{i+1}$"),
              ("score_nores", "heldout_nores", r"without the residual: $X = h_i,\ Y = h_{i+1} - h_i$")]
    for ax, (score, heldout, title) in zip(axes, panels):
        for model, grp in table.groupby("model", sort=False):
            grp = grp.sort_values(x)
            ax.fill_between(grp[x], 0, grp["chance"], color=GREY, alpha=0.2, linewidth=0)
            if not by_seed:
                c = colors[model]
                ax.plot(grp[x], grp[score], color=c, marker="o")
                ax.plot(grp[x], grp[heldout], color=c, linestyle=":")
        if by_seed:
            _per_arm(ax, table, x, score, heldout, arm_colours)
        ax.set(title=title, ylabel="linearity score (R²)")
        low = table[[score, heldout]].min().min()
        if low < Y_FLOOR:  # a held-out R² far below 0 (overfitting at small n) would flatten the rest
            ax.set_ylim(Y_FLOOR, 1.02)
            ax.text(0.01, 0.03, f"clipped: lowest value {low:.3g}", transform=ax.transAxes,
                    fontsize=FONT_SIZE - 2, color="0.3")
    axes[-1].set_xlabel(xlabel)
    _legend(fig, colors, {"in-sample": dict(marker="o"), "held-out": dict(linestyle=":"),
                          **({"one seed (thin; bold: mean over seeds)": dict(alpha=0.35)} if by_seed else {}),
                          "chance d/(n−1)": dict(linewidth=8, alpha=0.35, color=GREY)})
    return fig


def block_norms(table):
    """Fig 3: mean norm of the residual stream and of each block's output, and their ratio.

    ``table``: one row per (model, block) with ``norm_resid`` (mean ||h_i||), ``norm_block``
    (mean ||h_{i+1} - h_i||) and ``norm_ratio``; with ``ratio_out`` (block / the stream it makes,
    ||h_{i+1}||: the paper's ratio) the bottom panel draws that, solid, and ``norm_ratio`` dotted.
    """
    fig, (left, right) = new_figure(nrows=2, sharex=True)
    paper = "ratio_out" in table
    colors = model_palette(table["model"])
    x, xlabel = _x(table)
    for model, grp in table.groupby("model", sort=False):
        grp = grp.sort_values(x)
        c = colors[model]
        left.plot(grp[x], grp["norm_resid"], color=c, marker="o")
        left.plot(grp[x], grp["norm_block"], color=c, marker="s", linestyle="--")
        if paper:
            right.plot(grp[x], grp["ratio_out"], color=c, marker="o")
            right.plot(grp[x], grp["norm_ratio"], color=c, linestyle=":", linewidth=1.5)
        else:
            right.plot(grp[x], grp["norm_ratio"], color=c, marker="o")
    left.set(yscale="log", title="mean norm per token", ylabel="L2 norm")
    right.axhline(1.0, color="0.35", linewidth=1.2, linestyle="--", zorder=1.5)
    right.set(title="block output / residual stream (1 = as large as the stream)", xlabel=xlabel,
              ylabel="norm ratio", yscale="log" if paper else "linear")
    styles = {r"residual stream $\|h_i\|$": dict(marker="o"),
              r"block output $\|h_{i+1} - h_i\|$": dict(marker="s", linestyle="--")}
    if paper:
        styles[r"ratio to $\|h_{i+1}\|$ (paper)"] = dict(marker="o")
        styles[r"ratio to $\|h_i\|$"] = dict(linestyle=":")
    _legend(fig, colors, styles)
    return fig


def error_tails(sample, summary=None):
    """Fig 9: the long tail of the per-token relative error of the linear approximation.

    ``sample``: one row per sampled token with ``model``, ``arch``, ``trained``, ``block``, ``error``
    and ``is_bos``. One panel per model (stacked): the complementary ECDF P(error > x) of every
    block on log-log axes (colour = block, see the colour bar), with BOS tokens marked (x) on their
    block's curve.

    ``summary`` (optional; one row per model and block with ``median``, ``p999``,
    ``gauss_median`` and ``gauss_p999``, all in the errors' unit) adds the reference the claim is
    judged by: for each block, where Gaussian errors of the same covariance would put their
    median (at P = 0.5) and their 99.9th percentile (at P = 0.001), as open circles, next to the
    observed 99.9th percentile over all tokens (filled diamonds). A tail heavier than Gaussian
    puts the diamond to the right of the circle on the dashed 1-in-1000 line.
    """
    import numpy as np
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    models = list(dict.fromkeys(sample["model"]))
    fig, axes = new_figure(nrows=len(models), squeeze=False, sharex=True,
                           panel_size=(FIG_WIDTH, 4.2 if len(models) == 1 else 3.2))
    axes = axes[:, 0]
    n_colours = max(int(sample["block"].max()) + 1, 2)
    cmap = ListedColormap(mpl.colormaps["viridis"](np.linspace(0, 0.88, n_colours)))
    norm = BoundaryNorm(np.arange(n_colours + 1) - 0.5, n_colours)
    floor = 1.0
    for ax, model in zip(axes, models):
        grp = sample[sample["model"] == model]
        for block, g in grp.groupby("block"):
            order = np.argsort(g["error"].to_numpy(dtype=float), kind="stable")
            e = g["error"].to_numpy(dtype=float)[order]
            survival = 1.0 - np.arange(len(e)) / len(e)  # P(error >= e_i), > 0 for log axes
            floor = min(floor, survival[-1])
            c = cmap(norm(block))
            ax.plot(e, survival, color=c)
            bos = g["is_bos"].to_numpy(dtype=bool)[order]
            ax.plot(e[bos], survival[bos], color=c, marker="x", linestyle="none")
        if summary is not None:
            ref = summary[summary["model"] == model]
            for row in ref.itertuples():
                c = cmap(norm(row.block))
                ax.plot([row.gauss_median, row.gauss_p999], [0.5, 1e-3], color=c, marker="o",
                        markerfacecolor="white", markersize=6, linestyle="none")
                ax.plot([row.p999], [1e-3], color=c, marker="D", markersize=6, linestyle="none")
            floor = min(floor, 1e-3)
            ax.axhline(1e-3, color=GREY, linewidth=1, linestyle="--", zorder=0)
        kind = model_kind(grp.iloc[0])
        ax.set(xscale="log", yscale="log", ylabel="P(error > x)", ylim=(floor * 0.5, 1.5),
               title=f"{model} ({kind})" if kind else model)
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[-1].set_xlabel("relative error of the token (units of the RMS target norm)")
    bar = fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=list(axes), label="block",
                       aspect=30 * len(axes), pad=0.02)
    bar.set_ticks(range(n_colours) if n_colours <= 12 else np.linspace(0, n_colours - 1, 6).round())
    handles = [Line2D([], [], color="0.3", label="sampled tokens"),
               Line2D([], [], color="0.3", marker="x", linestyle="none", label="BOS token")]
    if summary is not None:
        handles += [Line2D([], [], color="0.3", marker="D", linestyle="none", label="p99.9, all tokens"),
                    Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle="none",
                           label="Gaussian errors, same covariance:\nmedian and p99.9")]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)))
    return fig


# -------------------------------------------------------------------------------------------------
# Section 4: the model zoo, Fig 2, Table 3


def _by_size(models: Iterable[str]) -> dict[str, list[str]]:
    """Zoo specs grouped by their profile and size from the zoo's metadata (``zoo:cpu-small-cos0.5``
    -> ``cpu-small``), in order; any other spec alone under its own name."""
    groups: dict[str, list[str]] = {}
    for m in dict.fromkeys(models):
        name = m.split(":", 1)[-1].split("@")[0]
        e = zoo.ENTRIES.get(name) if m.startswith("zoo:") else None
        groups.setdefault(f"{e.profile}-{e.size}" if e is not None else name, []).append(m)
    return groups


def _size_panels(models):
    """One panel per zoo size, stacked: ``(fig, axes, colours, [(ax, (size, models)), ...])``."""
    groups = _by_size(models)
    fig, axes = new_figure(nrows=len(groups), squeeze=False)
    return fig, axes, model_palette(models), list(zip(axes[:, 0], groups.items()))


def training_curves(curves):
    """The zoo notebook: training loss (thin) and validation loss (markers) against tokens seen,
    one panel per model size.

    ``curves``: one row per logged step with ``model``, ``tokens``, ``loss`` and ``val_loss``.
    """
    fig, axes, colors, panels = _size_panels(curves["model"])
    if seeded(curves["model"]):  # every seed of an arm in its arm's colour
        colors, legend = arm_palette(curves["model"]), _arm_legend(curves["model"])
    else:
        legend = colors
    for ax, (size, models) in panels:
        for m in models:
            g = curves[curves.model == m].sort_values("tokens")
            train = g.dropna(subset=["loss"])
            ax.plot(train.tokens, train.loss.rolling(5, min_periods=1).mean(), color=colors[m], alpha=0.6,
                    linewidth=1.0)
            val = g.dropna(subset=["val_loss"])
            ax.plot(val.tokens, val.val_loss, color=colors[m], marker="o", markersize=3.5, linestyle="none")
        ax.set(title=size, xscale="log", ylabel="loss (nats / token)")
    axes[-1, 0].set_xlabel("training tokens seen")
    _legend(fig, legend, {"training loss (5-step mean)": dict(), "validation loss": dict(marker="o", linestyle="none")})
    return fig


def training_dynamics(table):
    """Fig 2: linearity averaged over blocks against training step, with (top) and without (bottom)
    the residual; step 0 is the random initialisation (symlog x axis).

    ``table``: one row per (model, step) with ``score``, ``score_nores``, ``heldout_nores``, ``chance``.
    """
    fig, axes = new_figure(nrows=2, sharex=True)
    by_seed = seeded(table["model"])
    colors = _arm_legend(table["model"]) if by_seed else model_palette(table["model"])
    arm_colours = model_palette(arms(table["model"]).values())
    for ax, col, held, title in ((axes[0], "score", "heldout", "with the residual (mean over blocks)"),
                                 (axes[1], "score_nores", "heldout_nores", "without the residual (mean over blocks)")):
        for m, g in table.groupby("model", sort=False):
            g = g.sort_values("step")
            if not by_seed:
                ax.plot(g.step, g[col], color=colors[m], marker="o")
                ax.plot(g.step, g[held], color=colors[m], linestyle=":")
            ax.fill_between(g.step, 0, g.chance, color=GREY, alpha=0.2, linewidth=0)
        if by_seed:
            _per_arm(ax, table, "step", col, held, arm_colours)
        ax.set(title=title, ylabel="linearity score (R²)", xscale="symlog")
    axes[-1].set_xlabel("training step (0 = random initialisation)")
    _legend(fig, colors, {"in-sample": dict(marker="o"), "held-out": dict(linestyle=":"),
                          **({"one seed (thin; bold: mean over seeds)": dict(alpha=0.35)} if by_seed else {}),
                          "chance d/(n−1)": dict(linewidth=8, alpha=0.35, color=GREY)})
    return fig


def story_quality(summary):
    """Table 3: per model, the judge's grades when there are any, else the automatic proxies,
    as points with standard-error bars (one panel per measure)."""
    judged = "judged" in summary and summary.judged.sum() > 0
    measures = (["grammar", "creativity", "consistency", "plot"] if judged
                else ["scorer_ppl", "distinct_2", "repetition_4"])
    labels = {"scorer_ppl": "perplexity under the scorer (proxy)", "distinct_2": "distinct-2 (proxy)",
              "repetition_4": "4-gram repetition rate (proxy)"}
    fig, axes = new_figure(nrows=len(measures), panel_size=(FIG_WIDTH, 1.9), squeeze=False)
    colors = model_palette(summary["model"])
    y = np.arange(len(summary))
    for ax, m in zip(axes[:, 0], measures):
        err = summary.get(f"{m}_se")
        for i, row in enumerate(summary.itertuples()):
            ax.errorbar(getattr(row, m), i, xerr=None if err is None else err.iloc[i], color=colors[row.model],
                        marker="o", capsize=3)
        ax.set(title=labels.get(m, f"{m} (judge, 1–10)"), yticks=y, yticklabels=list(summary.model))
        ax.invert_yaxis()
    return fig


# -------------------------------------------------------------------------------------------------
# Section 4: Table 2 and Fig 5


def benchmark_scores(layout):
    """Table 2 as dots: one panel per column of the paper's layout (and the mean), one row per
    model, ± one standard error, the chance level as a dashed line.

    ``layout``: :func:`lin_utils.experiments.evaluation.table2_layout` (with its ``chance`` row).
    """
    t = layout.set_index("model")
    chance = t.loc["chance"]
    t = t.drop(index="chance")
    cols = [c for c in t.columns if not c.endswith(" se")]
    ncols = 4
    nrows = -(-len(cols) // ncols)
    fig, axes = new_figure(ncols=ncols, nrows=nrows, panel_size=(FIG_WIDTH / ncols, 0.25 * len(t) + 1.0),
                           sharey=True, squeeze=False)
    colors = model_palette(t.index)
    y = np.arange(len(t))
    for ax, c in zip(axes.flat, cols):
        for i, (m, row) in enumerate(t.iterrows()):
            ax.errorbar(row[c], i, xerr=row[f"{c} se"], color=colors[m], marker="o", markersize=4, capsize=2)
        ax.axvline(chance[c], color=GREY, linestyle="--", linewidth=1)
        ax.set_title(c, fontsize="medium")
        ax.set(yticks=y, yticklabels=[m.replace("zoo:", "") for m in t.index])
    axes.flat[0].invert_yaxis()  # shared y: first model on top in every panel
    for ax in axes.flat[len(cols):]:
        ax.set_visible(False)
    fig.supxlabel("score (± 1 standard error); dashed: chance")
    return fig


def probe_accuracy(table):
    """Fig 5: linear-probe accuracy against block boundary, one panel per model size: test
    accuracy on en_eval (± 1 binomial standard error) and the grouped 5-fold CV mean ± its
    std over folds (band); chance 0.5 dashed.

    ``table``: :func:`lin_utils.experiments.evaluation.probe_accuracy`.
    """
    fig, axes, colors, panels = _size_panels(table["model"])
    for ax, (size, models) in panels:
        for m in models:
            g = table[table.model == m].sort_values("boundary")
            ax.errorbar(g.boundary, g.test_acc, yerr=g.test_se, color=colors[m], marker="o", capsize=3)
            ax.fill_between(g.boundary, g.cv_mean - g.cv_std, g.cv_mean + g.cv_std, color=colors[m], alpha=0.15,
                            linewidth=0)
            ax.plot(g.boundary, g.cv_mean, color=colors[m], linestyle=":")
        ax.axhline(0.5, color=GREY, linestyle="--", linewidth=1)
        ax.set(title=size, ylabel="probe accuracy")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[-1, 0].set_xlabel("block boundary (0 = embeddings, i = output of block i−1)")
    _legend(fig, colors, {"test accuracy (en_eval) ± 1 se": dict(marker="o"),
                          "5-fold CV mean ± std": dict(linestyle=":"), "chance": dict(linestyle="--", color=GREY)})
    return fig


# -------------------------------------------------------------------------------------------------
# Section 4 with seeds: each arm (size × variant) as its seeds and their mean ± sd over seeds


def _arm_groups(models, arm_of) -> dict[str, list[str]]:
    """``models`` grouped by their arm label (``arm_of``: model -> label; a model not in it is its
    own arm, shown without ``zoo:``), in order of first appearance."""
    out: dict[str, list[str]] = {}
    for m in dict.fromkeys(models):
        out.setdefault((arm_of or {}).get(m, m.replace("zoo:", "")), []).append(m)
    return out


def _seed_dots(ax, x, y: float, color, *, horizontal: bool = True) -> None:
    """One arm's seeds at row ``y``: an open point per seed (spread a little across the row) and
    their mean, filled, ± one standard deviation over the seeds (none with one seed)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if not len(x):
        return
    offsets = np.linspace(-0.18, 0.18, len(x)) if len(x) > 1 else np.zeros(1)
    sd = float(x.std(ddof=1)) if len(x) > 1 else None
    if horizontal:
        ax.scatter(x, y + offsets, facecolors="none", edgecolors=[color], s=16, linewidths=1, zorder=3)
        ax.errorbar(x.mean(), y, xerr=sd, color=color, marker="o", markersize=5, capsize=3, zorder=4)
    else:
        ax.scatter(y + offsets, x, facecolors="none", edgecolors=[color], s=16, linewidths=1, zorder=3)
        ax.errorbar(y, x.mean(), yerr=sd, color=color, marker="o", markersize=5, capsize=3, zorder=4)


def benchmark_scores_by_seed(layout, arm_of=None):
    """Table 2 with seeds: one panel per column of the paper's layout (and the mean), one row per
    arm; each seed's score an open point, the arm's mean over seeds filled ± one standard deviation
    over seeds; the chance level dashed.

    ``layout``: :func:`lin_utils.experiments.evaluation.table2_layout` (with its ``chance`` row);
    ``arm_of``: model -> arm label (a model not in it is an arm of its own).
    """
    t = layout.set_index("model")
    chance = t.loc["chance"]
    t = t.drop(index="chance")
    cols = [c for c in t.columns if not c.endswith(" se")]
    groups = _arm_groups(t.index, arm_of)
    ncols = 4
    nrows = -(-len(cols) // ncols)
    fig, axes = new_figure(ncols=ncols, nrows=nrows, panel_size=(FIG_WIDTH / ncols, 0.3 * len(groups) + 1.0),
                           sharey=True, squeeze=False)
    colors = model_palette(groups)
    y = np.arange(len(groups))
    for ax, c in zip(axes.flat, cols):
        for i, (arm, models) in enumerate(groups.items()):
            _seed_dots(ax, t.loc[models, c], i, colors[arm])
        ax.axvline(chance[c], color=GREY, linestyle="--", linewidth=1)
        ax.set_title(c, fontsize="medium")
        ax.set(yticks=y, yticklabels=list(groups))
    axes.flat[0].invert_yaxis()  # shared y: first arm on top in every panel
    for ax in axes.flat[len(cols):]:
        ax.set_visible(False)
    fig.supxlabel("score: open, each seed; filled, mean over seeds ± 1 sd over seeds; dashed: chance")
    return fig


def probe_accuracy_by_seed(table, arm_of=None):
    """Fig 5 with seeds: probe test accuracy against block boundary, one panel per model size; per
    arm a thin line per seed and the mean over seeds ± one standard deviation over seeds (thick,
    with markers); chance 0.5 dashed.

    ``table``: :func:`lin_utils.experiments.evaluation.probe_accuracy`; ``arm_of``: model -> arm label.
    """
    fig, axes, _, panels = _size_panels(table["model"])
    groups = _arm_groups(table["model"], arm_of)
    colors = model_palette(groups)
    for ax, (size, models) in panels:
        for arm, members in groups.items():
            members = [m for m in members if m in models]
            if not members:
                continue
            wide = table[table.model.isin(members)].pivot_table(index="boundary", columns="model", values="test_acc")
            for m in members:
                if m in wide:
                    ax.plot(wide.index, wide[m], color=colors[arm], linewidth=0.8, alpha=0.45)
            sd = wide.std(axis=1, ddof=1) if wide.shape[1] > 1 else None
            ax.errorbar(wide.index, wide.mean(axis=1), yerr=sd, color=colors[arm], marker="o", capsize=3)
        ax.axhline(0.5, color=GREY, linestyle="--", linewidth=1)
        ax.set(title=size, ylabel="probe accuracy")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[-1, 0].set_xlabel("block boundary (0 = embeddings, i = output of block i−1)")
    _legend(fig, colors, {"mean over seeds ± 1 sd (test, en_eval)": dict(marker="o"),
                          "each seed": dict(linewidth=0.8, alpha=0.45), "chance": dict(linestyle="--", color=GREY)})
    return fig


def story_quality_by_seed(summary, arm_of=None):
    """Table 3 with seeds: per arm, the judge's grades when there are any, else the automatic
    proxies; each seed an open point, the mean over seeds filled ± one standard deviation over
    seeds (one panel per measure).

    ``summary``: one row per model (:func:`lin_utils.experiments.story_quality`); ``arm_of``: model ->
    arm label.
    """
    judged = "judged" in summary and summary.judged.sum() > 0
    measures = (["grammar", "creativity", "consistency", "plot"] if judged
                else ["scorer_ppl", "distinct_2", "repetition_4"])
    labels = {"scorer_ppl": "perplexity under the scorer (proxy)", "distinct_2": "distinct-2 (proxy)",
              "repetition_4": "4-gram repetition rate (proxy)"}
    groups = _arm_groups(summary["model"], arm_of)
    fig, axes = new_figure(nrows=len(measures), panel_size=(FIG_WIDTH, 0.3 * len(groups) + 1.0), squeeze=False)
    colors = model_palette(groups)
    t = summary.set_index("model")
    y = np.arange(len(groups))
    for ax, m in zip(axes[:, 0], measures):
        for i, (arm, models) in enumerate(groups.items()):
            _seed_dots(ax, t.loc[models, m], i, colors[arm])
        ax.set(title=labels.get(m, f"{m} (judge, 1–10)"), yticks=y, yticklabels=list(groups))
        ax.invert_yaxis()
    fig.supxlabel("open: each seed; filled: mean over seeds ± 1 sd over seeds")
    return fig


# -------------------------------------------------------------------------------------------------
# Section 5: pruning (Figs 6, 7 and 8)

# Each criterion's colour, legend label, offset and whether it is seeded come from the criteria's
# registry (lin_utils.prune.CRITERIA); a name it does not hold is drawn grey under its own name.


def _criterion(name: str):
    """The registered criterion ``name``, or None."""
    from .prune.criteria import CRITERIA

    return CRITERIA.get(name)


def _criterion_colour(name: str):
    c = _criterion(name)
    return GREY if c is None else c.colour


def _seeded(name: str) -> bool:
    c = _criterion(name)
    return c is not None and c.seeded


def _pruning_lines(ax, res, method: str, col: str, err: str | None = None) -> None:
    """One line per criterion of ``method`` (random: the mean over seeds and its min-max band)."""
    sub = res[res.method == method]
    groups = sorted(sub.groupby("criterion", sort=False), key=lambda cg: cg[0] == "linearity")  # the paper's on top
    for crit, g in groups:
        colour = _criterion_colour(crit)
        lw = 2.4 if crit == "linearity" else 1.5
        if _seeded(crit):
            agg = g.groupby("k")[col].agg(["mean", "min", "max"]).reset_index()
            ax.plot(agg.k, agg["mean"], color=colour, marker="o", linestyle="-.", linewidth=lw)
            ax.fill_between(agg.k, agg["min"], agg["max"], color=colour, alpha=0.2, linewidth=0)
            continue
        g = g.sort_values("k")
        x = g.k + (_criterion(crit).dodge if _criterion(crit) else 0.0)
        if err is not None:
            ax.errorbar(x, g[col], yerr=g[err], color=colour, marker="o", capsize=2, linewidth=lw)
        else:
            ax.plot(x, g[col], color=colour, marker="o", linewidth=lw)


def _log_minor_label(v: float, _pos=None) -> str:
    """Minor ticks of a log axis: label only 2x and 5x a power of ten (the rest would collide)."""
    if v <= 0:
        return ""
    lead = round(v / 10 ** np.floor(np.log10(v)))
    return f"{v:g}" if lead in (2, 5) else ""


def _distill_line(ax, res, col: str, err: str | None = None) -> None:
    g = res[res.method == "distill"].sort_values("k")
    if len(g):
        kw = dict(color=_criterion_colour("linearity"), marker="s", linestyle="--", linewidth=2.4)
        x = g.k + 0.03
        if err is not None:
            ax.errorbar(x, g[col], yerr=g[err], capsize=2, **kw)
        else:
            ax.plot(x, g[col], **kw)


def _pruning_legend(fig, res) -> None:
    from matplotlib.lines import Line2D

    crits = list(dict.fromkeys(res.criterion))
    handles = [Line2D([], [], color=_criterion_colour(c), marker="o",
                      label=_criterion(c).label if _criterion(c) else c,
                      linestyle="-." if _seeded(c) else "-", linewidth=2.4 if c == "linearity" else 1.5)
               for c in crits]
    if (res.method == "distill").any():
        handles.append(Line2D([], [], color=_criterion_colour("linearity"), marker="s", linestyle="--", linewidth=2.4,
                              label="most linear first + linear maps + distillation"))
    fig.legend(handles=handles, loc="outside lower center", ncols=2)


def pruning_perplexity(results, distill=None):
    """Figs 6 and 7: perplexity against the number of blocks pruned, for one model.

    Columns: removal (left) and linear replacement (right; the angular criterion's contiguous
    spans get one map per span, ReplaceMe's variant; the dashed line adds distillation). Rows:
    WikiText-2 test and TinyStories validation perplexity (log scale, shared within a row). With
    ``distill`` (the loss curves) a bottom panel shows the distillation loss of each k.

    ``results``: the ``results`` table of :func:`lin_utils.experiments.pruning_study` for one model.
    """
    res = results
    rows = [("ppl_wikitext", "WikiText-2"), ("ppl_tinystories", "TinyStories")]
    has_curve = distill is not None and len(distill) > 0
    apply_style()
    fig = plt.figure(figsize=(FIG_WIDTH, 2.6 * len(rows) + (2.0 if has_curve else 0) + 1.0), layout="constrained")
    grid = fig.add_gridspec(len(rows) + int(has_curve), 2, height_ratios=[1] * len(rows) + ([0.8] if has_curve else []))
    k_max = int(res.k.max())
    for r, (col, title) in enumerate(rows):
        left = fig.add_subplot(grid[r, 0])
        right = fig.add_subplot(grid[r, 1], sharey=left)
        _pruning_lines(left, res, "remove", col)
        _pruning_lines(right, res, "linear", col)
        _distill_line(right, res, col)
        dense = float(res.loc[res.k == 0, col].iloc[0])
        others = res.loc[~res.criterion.map(_seeded).astype(bool), col]
        log = float(others.max()) / float(others.min()) > 5  # a log axis only where the range is wide
        for ax, name in ((left, "removed"), (right, "linear maps")):
            ax.axhline(dense, color=GREY, linestyle=":", linewidth=1)
            ax.set(xticks=range(k_max + 1), title=f"{title}: {name}")
            if log:
                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(mpl.ticker.FuncFormatter(_log_minor_label))
            if r == len(rows) - 1:
                ax.set_xlabel("blocks pruned (k)")
        left.set_ylabel("perplexity")
        right.tick_params(labelleft=False)
        # random orders that hit a critical block can be orders of magnitude worse: keep the scale
        # of the other methods and say what runs off the top
        top = float(others.max()) * (1.3 if log else 1.08)
        left.set_ylim(float(others.min()) * (0.9 if log else 0.97), top)
        for ax, method in ((left, "remove"), (right, "linear")):
            for crit in dict.fromkeys(c for c in res.criterion if _seeded(c)):
                rnd = res[(res.criterion == crit) & (res.method == method)]
                if len(rnd) and float(rnd[col].max()) > top:
                    ax.text(0.02, 0.97, f"{crit}: up to {float(rnd[col].max()):,.0f} (off scale)",
                            transform=ax.transAxes, va="top", fontsize=FONT_SIZE - 2, color=_criterion_colour(crit))
    if has_curve:
        ax = fig.add_subplot(grid[len(rows), :])
        ks = sorted(distill.k.unique())
        shades = sns.light_palette(_criterion_colour("linearity"), n_colors=len(ks) + 2)[2:]
        for k, shade in zip(ks, shades):
            g = distill[distill.k == k].sort_values("step")
            ax.plot(g.step, g.loss, color=shade, label=f"k = {k}")
        ax.set(title="distillation: layerwise normalised MSE against the original model", xlabel="step",
               ylabel="loss", yscale="log")
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), title="blocks")
    _pruning_legend(fig, res)
    fig.suptitle(f"{res.model.iloc[0]} ({int(res.n_blocks.iloc[0])} blocks); dotted: the dense model")
    return fig


def pruning_arc(results):
    """Fig 8: ARC-Easy accuracy (top) and length-normalised accuracy (bottom) against blocks pruned,
    removal (left) and linear replacement (+ distillation, dashed) right; bars are standard errors,
    the grey dashed line the chance level."""
    res = results.dropna(subset=["arc_acc"])
    fig, axes = new_figure(ncols=2, nrows=2, panel_size=(FIG_WIDTH / 2, 2.8), sharey="row", squeeze=False)
    k_max = int(res.k.max())
    chance = float(res.arc_chance.iloc[0])
    for r, (col, title) in enumerate((("arc_acc", "acc"), ("arc_acc_norm", "acc_norm"))):
        _pruning_lines(axes[r, 0], res, "remove", col, f"{col}_se")
        _pruning_lines(axes[r, 1], res, "linear", col, f"{col}_se")
        _distill_line(axes[r, 1], res, col, f"{col}_se")
        for ax, name in ((axes[r, 0], "removed"), (axes[r, 1], "linear maps")):
            ax.axhline(chance, color=GREY, linestyle="--", linewidth=1.2)
            ax.set(xticks=range(k_max + 1), title=f"{title}: {name}")
        axes[r, 0].set_ylabel("accuracy")
    for ax in axes[-1]:
        ax.set_xlabel("blocks pruned (k)")
    _pruning_legend(fig, res)
    n = int(res.arc_n.iloc[0])
    fig.suptitle(f"{res.model.iloc[0]}: {n:,} ARC-Easy test questions; dashed grey: chance ({chance:.3f})")
    return fig


# -------------------------------------------------------------------------------------------------
# Section 3.2: Table 1


def finetuning_deltas(runs):
    """Table 1: the change of linearity without the residual after fine-tuning, per task (x) and
    model (colour): mean over seeds with a ±1 std bar, each seed a small dot; filled where the
    model learned the task (a majority of seeds beat the majority-class baseline), hollow where it
    learned nothing. Top: on the fixed corpus (the main number); bottom: on the task's held-out
    inputs. The dashed line is no change.

    ``runs``: one row per (model, task, seed) with ``delta_corpus``, ``delta_task`` and ``learned``
    (:func:`lin_utils.experiments.finetuning_deltas`); rows whose ``condition`` is ``shuffled``
    (the shuffled-label control) are drawn as a cross at their mean.
    """
    from matplotlib.lines import Line2D

    control = runs[runs["condition"] == "shuffled"] if "condition" in runs else runs.iloc[0:0]
    runs = runs[runs["condition"] == "task"] if "condition" in runs else runs
    tasks = list(dict.fromkeys(runs["task"]))
    models = list(dict.fromkeys(runs["model"]))
    colors = model_palette(models)
    width = 0.7 / max(len(models), 1)
    fig, axes = new_figure(nrows=2, sharex=True)
    for ax, col, title in ((axes[0], "delta_corpus", "on the fixed corpus (main number)"),
                           (axes[1], "delta_task", "on the task's held-out inputs")):
        ax.axhline(0, color=GREY, linestyle="--", linewidth=1)
        for j, m in enumerate(models):
            for i, t in enumerate(tasks):
                g = runs[(runs.model == m) & (runs.task == t)]
                if g.empty:
                    continue
                x = i + (j - (len(models) - 1) / 2) * width
                vals = g[col].to_numpy(dtype=float)
                std = vals.std(ddof=1) if len(vals) > 1 else 0.0
                learned = 2 * int(g["learned"].sum()) > len(g)
                ax.errorbar(x, vals.mean(), yerr=std, color=colors[m], marker="o", capsize=3,
                            markerfacecolor=colors[m] if learned else "white", markeredgewidth=1.5)
                ax.plot(np.full(len(vals), x + width * 0.25), vals, color=colors[m], marker=".", linestyle="none",
                        alpha=0.5, markersize=4)
                c = control[(control.model == m) & (control.task == t)]
                if len(c):
                    ax.plot(x, c[col].mean(), color=colors[m], marker="x", linestyle="none", markersize=7)
        ax.set(title=title, ylabel="Δ linearity, no residual")
    axes[-1].set(xticks=range(len(tasks)), xticklabels=tasks, xlabel="fine-tuning task")
    handles = [Line2D([], [], color=c, marker="o", label=m.replace("zoo:", "")) for m, c in colors.items()]
    handles += [Line2D([], [], color="0.3", marker="o", linestyle="none", label="learned the task"),
                Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle="none",
                       label="learned nothing"),
                Line2D([], [], color="0.3", marker=".", linestyle="none", alpha=0.5, label="one seed")]
    if len(control):
        handles.append(Line2D([], [], color="0.3", marker="x", linestyle="none", label="shuffled-label control"))
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig


# -------------------------------------------------------------------------------------------------
# beyond the paper: the scaling study (the `scaling` page)


def scaling(tables):
    """The scaling page: what moves (1 − score) with size, tokens and norm placement.

    ``tables``: :func:`lin_utils.experiments.scaling_study`'s dict. Panels:

    * top: geometric mean over blocks of (1 − score) against the number of blocks, one colour per
      width, trained (solid) and random init (dashed), log-log, with the trained fit's
      extrapolation (stars, 95% interval) to the paper's shapes and the paper's 0.99 (grey);
    * middle: the two factors of 1 − score = (1 − score_nores) · ‖B_c‖²/‖Y_c‖² per block against
      its relative position, one colour per depth, at the widest width;
    * bottom left: the three quantities against training tokens (the token series);
    * bottom right: the three quantities for the norm-placement pairs (pre-norm ``mistral`` vs
      sublayer-output-norm ``olmo2``), trained (filled) and random init (hollow).
    """
    import math

    from matplotlib.lines import Line2D

    blocks, models, extra = tables["blocks"], tables["models"], tables["extrapolation"]
    apply_style()
    fig = plt.figure(figsize=(FIG_WIDTH, 11.0), layout="constrained")
    axd = fig.subplot_mosaic([["size", "size"], ["nores", "ratio"], ["tokens", "norm"]],
                             height_ratios=[1.3, 1, 1])
    labels = QUANTITIES
    qcolors = dict(zip(labels, [PALETTE[0], PALETTE[1], PALETTE[2]]))
    mist = models[models.family == "mistral"]
    trained = mist[mist.init == "trained"]
    grid_tokens = int(trained.train_tokens.mode().iloc[0]) if len(trained) else 0
    grid = trained[trained.train_tokens == grid_tokens]
    widths = sorted(grid.width.unique())
    wcol = {w: PALETTE[MODEL_SLOTS[i % len(MODEL_SLOTS)]] for i, w in enumerate(widths)}

    ax = axd["size"]
    for w in widths:
        for init, ls in (("trained", "-"), ("random", "--")):
            src = grid if init == "trained" else mist[mist.init == "random"]
            g = src[src.width == w].sort_values("n_blocks")
            ax.plot(g.n_blocks, g.gm_one_minus_score, color=wcol[w], linestyle=ls, marker="o",
                    markerfacecolor=wcol[w] if init == "trained" else "white")
    e = extra[(extra.target == "one_minus_score")] if len(extra) else extra
    for row in e.itertuples():
        ax.errorbar(row.blocks, row.pred, yerr=[[row.pred - math.exp(row.lo)], [math.exp(row.hi) - row.pred]],
                    color="0.2", marker="*", markersize=10, capsize=3)
        ax.annotate(f"{row.shape} (d={row.width})", (row.blocks, row.pred), textcoords="offset points",
                    xytext=(6, 4), fontsize=FONT_SIZE - 2)
    ax.axhline(0.01, color=GREY, linestyle=":", linewidth=1.5)
    seen = _finite_values([grid.gm_one_minus_score, mist[mist.init == "random"].gm_one_minus_score,
                             np.exp(e.log_pred) if len(e) else []])
    ax.set(xscale="log", yscale="log", xlabel="blocks (depth)", ylabel="1 − score (geometric mean over blocks)",
           title=f"depth and width at {grid_tokens:,} training tokens",
           ylim=(min(seen.min(), 0.01) / 10, 1.5) if seen.size else None)
    ticks = sorted(set(grid.n_blocks.astype(int)) | set(e.blocks.astype(int) if len(e) else []))
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    handles = [Line2D([], [], color=wcol[w], marker="o", label=f"d = {w}") for w in widths]
    handles += [Line2D([], [], color="0.3", label="trained"), Line2D([], [], color="0.3", linestyle="--",
                                                                    marker="o", markerfacecolor="white", label="random init"),
                Line2D([], [], color="0.2", marker="*", markersize=10, linestyle="none", label="trend at the paper's shapes"),
                Line2D([], [], color=GREY, linestyle=":", label="paper: score 0.99")]
    ax.legend(handles=handles, fontsize=FONT_SIZE - 2, ncols=2, loc="best")

    wmax = max(widths) if widths else None
    g = blocks[(blocks.family == "mistral") & (blocks.width == wmax)
               & (((blocks.init == "trained") & (blocks.train_tokens == grid_tokens)) | (blocks.init == "random"))]
    depths = sorted(g.n_blocks.unique())
    dcol = {L: PALETTE[MODEL_SLOTS[i % len(MODEL_SLOTS)]] for i, L in enumerate(depths)}
    for key, title in (("nores", "one_minus_nores"), ("ratio", "ratio_sq")):
        ax = axd[key]
        for (L, init), h in g.groupby(["n_blocks", "init"]):
            h = h.sort_values("depth")
            ax.plot(h.depth, h[title], color=dcol[L], linestyle="-" if init == "trained" else "--", marker=".",
                    markerfacecolor=dcol[L] if init == "trained" else "white")
        ax.set(yscale="log", xlabel="relative position (block / last block)", ylabel=labels[title],
               title=f"{labels[title]} (d = {wmax})")
    axd["nores"].legend(handles=[Line2D([], [], color=dcol[L], label=f"{L} blocks") for L in depths]
                        + [Line2D([], [], color="0.3", linestyle="--", label="random init")],
                        fontsize=FONT_SIZE - 2, loc="best")

    ax = axd["tokens"]
    ax.set(xscale="log", yscale="log", xlabel="training tokens", ylabel="geometric mean over blocks")
    shapes = trained.groupby(["n_blocks", "width"]).train_tokens.nunique()
    series = shapes[shapes > 1]
    if len(series):
        L, d = series.index[0]
        s = trained[(trained.n_blocks == L) & (trained.width == d)].sort_values("train_tokens")
        for t, lab in labels.items():
            ax.plot(s.train_tokens, s[f"gm_{t}"], color=qcolors[t], marker="o", label=lab)
        ax.set(title=f"token series, {L} blocks, d={d}")
        ax.set_xticks(list(s.train_tokens), [_short_count(t) for t in s.train_tokens])
        ax.legend(fontsize=FONT_SIZE - 2, loc="best")
    else:
        ax.set(title="training tokens (no token series)")
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())

    ax = axd["norm"]
    fams = sorted(models.family.unique())
    pairs = models[models.train_tokens.isin([0, grid_tokens])]
    norm_shapes = sorted({(r.n_blocks, r.width) for r in pairs.itertuples() if r.family != "mistral"})
    markers = ["o", "s", "^", "D"]
    ticks = []
    for i, fam in enumerate(fams):
        for j, (L, d) in enumerate(norm_shapes):
            for init in ("trained", "random"):
                h = pairs[(pairs.family == fam) & (pairs.n_blocks == L) & (pairs.width == d) & (pairs.init == init)]
                if h.empty:
                    continue
                for k, t in enumerate(labels):
                    x = i + (k - 1) * 0.25 + (j - (len(norm_shapes) - 1) / 2) * 0.06
                    ax.plot(x, h[f"gm_{t}"].iloc[0], color=qcolors[t], marker=markers[j % len(markers)],
                            linestyle="none", markerfacecolor=qcolors[t] if init == "trained" else "white")
        ticks.append(fam)
    ax.set(xticks=range(len(fams)), xticklabels=[{"mistral": "pre-norm\n(mistral)", "olmo2": "output norm\n(olmo2)"}.get(f, f)
                                                  for f in ticks], yscale="log", ylabel="geometric mean over blocks",
           title="norm placement (blocks×d): " + ", ".join(f"{L}×{d}" for L, d in norm_shapes))
    ax.legend(handles=[Line2D([], [], color=qcolors[t], marker="o", linestyle="none", label=lab) for t, lab in labels.items()]
              + [Line2D([], [], color="0.3", marker="o", linestyle="none", markerfacecolor="white", label="random init")]
              + [Line2D([], [], color="0.3", marker=markers[j % len(markers)], linestyle="none", label=f"{L} blocks")
                 for j, (L, _) in enumerate(norm_shapes)], fontsize=FONT_SIZE - 3, loc="best")
    return fig


def _short_count(n: float) -> str:
    """12288 -> '12k', 1499136 -> '1.5M' (tick labels)."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:g}"


def _finite_values(parts) -> np.ndarray:
    """The finite values of several 1-D array-likes, as one float array (for axis limits)."""
    vals = np.concatenate([np.asarray(p, dtype=float).ravel() for p in parts]) if parts else np.array([])
    return vals[np.isfinite(vals)]


def recipe_sweep(runs):
    """The zoo page's recipe sweep: loss on held-out training text against the peak learning rate,
    one panel per model size, a line per warmup and initialisation std; the chosen run (the
    lowest held-out loss of its size) ringed.

    ``runs``: one row per sweep run with ``size``, ``lr``, ``warmup``, ``warmup_steps``,
    ``init_std``, ``heldout_loss`` and ``chosen``.
    """
    sizes = list(dict.fromkeys(runs["size"]))
    fig, axes = new_figure(ncols=len(sizes), panel_size=(FIG_WIDTH / len(sizes), 3.0), sharey=True, squeeze=False)
    series = list(dict.fromkeys(zip(runs.warmup.astype(str), runs.init_std)))
    colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}
    labels = {}
    for ax, size in zip(axes[0], sizes):
        g = runs[runs["size"] == size]
        for (w, std) in series:
            s = g[(g.warmup.astype(str) == w) & (g.init_std == std)].sort_values("lr")
            if s.empty:
                continue
            steps = int(s.warmup_steps.iloc[0])
            label = f"warmup {steps} steps, init std {std:g}"
            labels[label] = colors[(w, std)]
            ax.plot(s.lr, s.heldout_loss, color=colors[(w, std)], marker="o")
        best = g[g.chosen.astype(bool)]
        ax.plot(best.lr, best.heldout_loss, marker="o", markersize=14, markerfacecolor="none",
                markeredgecolor="0.2", linestyle="none")
        ax.set(title=size, xscale="log", xlabel="peak learning rate")
        lrs = sorted(runs.lr.unique())
        ax.set_xticks(lrs, [f"{v:g}" for v in lrs])  # the swept rates, not a log axis' own ticks
        ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
    axes[0, 0].set_ylabel("held-out training loss (nats / token)")
    _legend(fig, labels, {"chosen": dict(marker="o", markersize=10, markerfacecolor="none", linestyle="none")})
    return fig


def zoo_curves(curves, summary):
    """The zoo page: training loss (5-step mean) and validation loss (markers) against tokens
    seen, one panel per model size, one colour per variant; each seed is its own thin line, so
    the spread between seeds of an arm shows.

    ``curves``: one row per logged step with ``model``, ``tokens``, ``loss``, ``val_loss``;
    ``summary``: one row per model with ``model``, ``size`` and ``variant`` (and ``seed``).
    """
    meta = summary[summary.variant != "reference"].set_index("model")
    sizes = list(dict.fromkeys(meta["size"]))
    variants = list(dict.fromkeys(meta.variant))
    colors = {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(variants)}
    fig, axes = new_figure(nrows=len(sizes), squeeze=False, sharex=True)
    for ax, size in zip(axes[:, 0], sizes):
        for m, row in meta[meta["size"] == size].iterrows():
            g = curves[curves.model == m].sort_values("tokens")
            train = g.dropna(subset=["loss"])
            ax.plot(train.tokens, train.loss.rolling(5, min_periods=1).mean(), color=colors[row.variant],
                    alpha=0.7, linewidth=1.0)
            val = g.dropna(subset=["val_loss"])
            ax.plot(val.tokens, val.val_loss, color=colors[row.variant], marker="o", markersize=3, linestyle="none")
        ax.set(title=size, xscale="log", ylabel="loss (nats / token)")
    axes[-1, 0].set_xlabel("training tokens seen (one line per seed)")
    _legend(fig, colors, {"training loss (5-step mean)": dict(), "validation loss": dict(marker="o", linestyle="none")})
    return fig
