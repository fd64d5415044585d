"""The model zoo: the project's own small Mistral models pretrained on TinyStories, with and without
the paper's regularizers, and the recipe sweep that chose their training recipe."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import plots
from ..book.glue import figure_page, glue_figure, glue_markdown
from ..experiments.pretraining import ZooConfig, recipe_sweep, sweep_numbers, zoo_training
from . import name_of

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


def page_numbers(t: dict) -> dict:
    """The glued numbers from what :func:`tables` returns."""
    return numbers(t["summary"])


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
            "strengths are the paper's and were not tuned. The zoo trained with the chosen recipe replaces the one "
            "above when it is retrained; until then the curves above are the earlier recipe's.")


def _placeholder():
    fig, ax = plots.new_figure()
    ax.text(0.5, 0.5, "no recipe sweep at this profile yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def show(config: ZooConfig, *, profile: str, force: bool = False) -> dict:
    t = tables(config, profile=profile, force=force)
    glue_markdown("sweep_text", sweep_text(t["sweep"], config))
    glue_figure(plots.recipe_sweep(t["sweep"]) if t["sweep"] is not None else _placeholder(), "sweep_figure")
    figure_page(NAME, profile, plots.training_curves(t["curves"]), numbers=page_numbers(t), prefix="model",
                summary=summary(t["summary"]), table=t["curves"])
    plt.close("all")
    return t
