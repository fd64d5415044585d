"""The model zoo: the project's own small Mistral models pretrained on TinyStories, with and without
the paper's regularizers, and the recipe sweep that chose their training recipe."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import plots, zoo
from ..book.glue import figure_page, glue_figure, glue_markdown
from ..book.tables import md_table
from ..experiments.pretraining import ZooConfig, recipe_sweep, sweep_numbers, zoo_training
from . import name_of
from ._zoo_pairs import pm

NAME = name_of(__name__)
CONFIG = ZooConfig(entries=("cpu-small-baseline", "cpu-small-baseline-s1", "cpu-small-baseline-s2",
                            "cpu-small-cos0.5", "cpu-small-cos0.5-s1", "cpu-small-cos0.5-s2",
                            "cpu-small-mse0.5", "cpu-small-mse0.5-s1", "cpu-small-mse0.5-s2",
                            "cpu-small-mse2.0", "cpu-small-mse2.0-s1", "cpu-small-mse2.0-s2",
                            "cpu-large-baseline", "cpu-large-baseline-s1", "cpu-large-baseline-s2",
                            "cpu-large-cos0.5", "cpu-large-cos0.5-s1", "cpu-large-cos0.5-s2"),
                   sweep="cpu")
CLAIMS: list = []


def tables(config: ZooConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> dict[str, pd.DataFrame] | None:
    """``{"summary", "curves"}`` of :func:`lin_utils.experiments.zoo_training` (the entries trained when
    missing), and ``"sweep"``: the recipe sweep's runs when its table is computed (None otherwise:
    the sweep runs by ``python -m lin_utils.zoo sweep PROFILE``, never from this page)."""
    t = zoo_training(config.entries, reference=config.reference, profile=profile, force=force,
                     cache_only=cache_only, device=config.device, progress=progress)
    if t is None:
        return None
    sweep = None if config.sweep is None else recipe_sweep(config.sweep, profile=profile, cache_only=True)
    return {**t, "sweep": None if sweep is None else sweep["runs"]}


def _pairs(summary: pd.DataFrame) -> list[tuple]:
    """(size, seed, baseline row, regularized row) for each regularized model with its baseline."""
    zoo = summary[summary.variant != "reference"]
    seed = zoo["seed"] if "seed" in zoo else pd.Series(0, index=zoo.index)
    zoo = zoo.assign(pair_seed=seed.fillna(0).astype(int))
    base = {(r.size, r.pair_seed): r for r in zoo[zoo.variant == "baseline"].itertuples()}
    return [(r.size, r.pair_seed, base[(r.size, r.pair_seed)], r) for r in zoo.itertuples()
            if r.variant != "baseline" and (r.size, r.pair_seed) in base]


def numbers(summary: pd.DataFrame) -> dict:
    """Validation loss of each regularized model minus its baseline (same size and seed), the range of
    bits per byte, and the reference's."""
    zoo = summary[summary.variant != "reference"]
    deltas = [r.val_loss - b.val_loss for _, _, b, r in _pairs(summary)]
    ref = summary[summary.variant == "reference"]
    return dict(n_models=len(zoo), tokens_min=zoo.tokens.min(), tokens_max=zoo.tokens.max(),
                best_bpb=zoo.val_bpb.min(), worst_bpb=zoo.val_bpb.max(),
                delta_min=min(deltas) if deltas else np.nan, delta_max=max(deltas) if deltas else np.nan,
                reference_bpb=float(ref.val_bpb.iloc[0]) if len(ref) else np.nan,
                reference=str(ref.model.iloc[0]) if len(ref) else "none")


#: the recipe's targets (issue 24): the best baseline at or below this many bits per byte on the validation head
BPB_TARGET = 1.05


def _train_cpu_s(zoo: pd.DataFrame) -> pd.Series:
    """CPU-seconds of each model's training: its tokens over its measured tokens per CPU-second."""
    return zoo.tokens / zoo.tokens_per_cpu_s


def arms(summary_: pd.DataFrame) -> pd.DataFrame:
    """Per arm (size and variant, over its seeds): the number of seeds and, over the seeds, the mean
    and standard deviation (ddof 1) of the validation loss, bits per byte and held-out training
    loss, and of the validation loss minus the baseline's of the same size and seed; training
    CPU-seconds per model (mean)."""
    zoo = summary_[summary_.variant != "reference"]
    delta = {r.model: r.val_loss - b.val_loss for _, _, b, r in _pairs(summary_)}
    zoo = zoo.assign(delta=[delta.get(m, np.nan) for m in zoo.model], cpu_s=_train_cpu_s(zoo))
    rows = []
    for (size, variant), g in zoo.groupby(["size", "variant"], sort=False):
        row = {"size": size, "variant": variant, "seeds": len(g)}
        for col, label in (("val_loss", "val loss"), ("val_bpb", "bits / byte"), ("heldout_loss", "held-out loss"),
                           ("delta", "− baseline")):
            row[label] = g[col].mean()
            row[f"{label} sd"] = g[col].std(ddof=1) if len(g) > 1 else np.nan
        row["CPU-s per model"] = g.cpu_s.mean()
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["formats"] = {"seeds": "d", "CPU-s per model": ",.0f"}
    return out


def arms_view(summary_: pd.DataFrame) -> pd.DataFrame:
    """:func:`arms` as the page shows it: each quantity as "mean ± sd over seeds" in one cell."""
    a = arms(summary_)
    out = a[["size", "variant", "seeds"]].copy()
    for label in ("val loss", "bits / byte", "held-out loss", "− baseline"):
        out[label] = [pm(m, sd) for m, sd in zip(a[label], a[f"{label} sd"])]
    out["CPU-s / model"] = a["CPU-s per model"]
    out.attrs["formats"] = {"seeds": "d", "CPU-s / model": ",.0f"}
    return out


def targets(summary_: pd.DataFrame) -> dict:
    """The recipe's targets, over the seeds: each size's baseline validation loss (mean over seeds),
    the deeper size's minus the shallower's, the best baseline's bits per byte against
    :data:`BPB_TARGET`; and the training time (CPU-seconds, per size and in all)."""
    zoo = summary_[summary_.variant != "reference"]
    base = zoo[zoo.variant == "baseline"]
    out: dict = {"bpb_target": BPB_TARGET}
    sizes = list(dict.fromkeys(base["size"]))
    for label, size in zip(("small", "large"), sizes):
        g = base[base["size"] == size]
        out[f"{label}_base_loss"], out[f"{label}_base_bpb"] = float(g.val_loss.mean()), float(g.val_bpb.mean())
        out[f"{label}_base_loss_sd"] = float(g.val_loss.std(ddof=1)) if len(g) > 1 else np.nan
        out[f"{label}_cpu_s"] = float(_train_cpu_s(zoo[zoo["size"] == size]).sum())
    if len(sizes) >= 2:
        out["large_minus_small"] = out["large_base_loss"] - out["small_base_loss"]
        out["deeper_no_worse"] = "yes" if out["large_minus_small"] <= 0 else "no"
    out["best_base_bpb"] = float(base.val_bpb.min()) if len(base) else np.nan
    out["bpb_target_met"] = "met" if out["best_base_bpb"] <= BPB_TARGET else "not met"
    out["cpu_s"] = float(_train_cpu_s(zoo).sum())
    out["cpu_h"] = out["cpu_s"] / 3600
    return out


def page_numbers(t: dict) -> dict:
    """The glued numbers from what :func:`tables` returns."""
    return {**numbers(t["summary"]), **targets(t["summary"])}


def summary(summary_: pd.DataFrame) -> pd.DataFrame:
    """Per model: regularizer, λ, parameters, tokens, validation loss and bits per byte."""
    out = pd.DataFrame({
        "model": summary_.model.str.replace("zoo:", "", regex=False),
        "regularizer": [f"{r} {lam:g}" if r != "none" else "none"
                        for r, lam in zip(summary_.regularizer, summary_.reg_lambda)],
        "parameters": summary_.n_params, "tokens": summary_.tokens,
        "val loss": summary_.val_loss, "bits / byte": summary_.val_bpb,
    })
    out.attrs["formats"] = {"parameters": ",.0f", "tokens": ",.0f", "val loss": ".3f", "bits / byte": ".3f"}
    return out


def sweep_text(runs: pd.DataFrame | None, config: ZooConfig) -> str:
    """How the recipe was chosen, from the sweep's table; or that the sweep has not run at this profile."""
    if runs is None:
        return (f"The recipe sweep (`python -m lin_utils.zoo sweep {config.sweep}`) has no committed table at this "
                "profile yet, so this page cannot show how the recipe was chosen: the zoo above was trained with "
                "the recipe of the earlier zoo (peak learning rate 0.002, 20 warmup steps, initialisation std 0.02), "
                "not one chosen by a sweep.")
    n = sweep_numbers(runs)
    return (f"A short sweep chose the baseline's recipe at each size: {n['n_runs']} baseline runs of {n['steps']} "
            f"steps ({n['tokens']:,} tokens each) over the peak learning rate and the warmup, plus a larger "
            "initialisation std at two learning rates. Each run is scored by its loss on the last 500 stories of the "
            "training corpus, which no sweep run trains on, never on the validation head that the pages report. "
            f"The lowest held-out loss chose, at {n['small_size']}, a peak learning rate of {n['small_lr']:g} with "
            f"{n['small_warmup']} warmup steps and initialisation std {n['small_init_std']:g} (held-out loss "
            f"{n['small_heldout']:.3f} nats per token; the worst run of the grid {n['small_worst']:.3f}) and, at "
            f"{n['large_size']}, {n['large_lr']:g} with {n['large_warmup']} warmup steps and std "
            f"{n['large_init_std']:g} ({n['large_heldout']:.3f}; worst {n['large_worst']:.3f}). The regularizer "
            f"strengths are the paper's and were not tuned. {recipe_text(runs, config)}")


def recipe_text(runs: pd.DataFrame, config: ZooConfig) -> str:
    """Whether the zoo above trains with the sweep's choice at each size (peak learning rate, warmup
    as the same fraction of the run, initialisation std), read from the zoo's configurations."""
    n = sweep_numbers(runs)
    out = []
    for label in ("small", "large"):
        size = n.get(f"{label}_size")
        cfgs = [e.config for e in map(zoo.entry, config.entries) if e.config.size == size]
        if not cfgs:
            continue
        c = cfgs[0]
        same = (c.lr == n[f"{label}_lr"] and c.init_std == n[f"{label}_init_std"]
                and abs(c.warmup_steps / c.steps - n[f"{label}_warmup"] / n["steps"]) < 1e-9)
        out.append(f"{size}: {'the chosen recipe' if same else 'NOT the chosen recipe'} (peak learning rate "
                   f"{c.lr:g}, {c.warmup_steps} warmup steps of {c.steps:,}, std {c.init_std:g}, {c.max_tokens:,} "
                   "tokens)")
    return ("The zoo above trains with, at " + "; at ".join(out) + ".") if out else ""


def _placeholder():
    fig, ax = plots.new_figure()
    ax.text(0.5, 0.5, "no recipe sweep at this profile yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def show(config: ZooConfig, *, profile: str, force: bool = False) -> dict:
    t = tables(config, profile=profile, force=force)
    glue_markdown("sweep_text", sweep_text(t["sweep"], config))
    glue_figure(plots.recipe_sweep(t["sweep"]) if t["sweep"] is not None else _placeholder(), "sweep_figure")
    glue_markdown("arms", md_table(arms_view(t["summary"])))
    figure_page(NAME, profile, plots.training_curves(t["curves"]), numbers=page_numbers(t), prefix="model",
                summary=summary(t["summary"]), table=t["curves"])
    plt.close("all")
    return t
