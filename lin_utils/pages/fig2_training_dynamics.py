"""Fig 2: linearity averaged over blocks at each checkpoint of pretraining."""
from __future__ import annotations

import pandas as pd

from .. import plots
from ..book.glue import figure_page
from ..claims import NOT_REPLICATED, PARTLY, REPLICATED, Claim
from ..experiments.linearity import DynamicsConfig
from ..experiments.pretraining import training_dynamics
from . import name_of

NAME = name_of(__name__)
CONFIG = DynamicsConfig(models=("zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5", "zoo:cpu-large-baseline",
                                "zoo:cpu-large-cos0.5"))


def tables(config: DynamicsConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> pd.DataFrame | None:
    """One row per (model, checkpoint): :func:`lin_utils.experiments.training_dynamics`."""
    return training_dynamics(config.models, config.params(), revisions=config.revisions, profile=profile,
                             force=force, cache_only=cache_only, progress=progress)


def dynamics(t: pd.DataFrame) -> dict[str, float]:
    """Per model: mean score over blocks at initialisation (first step) and after training (last)."""
    first = t.sort_values("step").groupby("model", sort=False).first()
    last = t.sort_values("step").groupby("model", sort=False).last()
    drop = first.score - last.score
    return dict(n_models=len(first), start_mean=first.score.mean(), end_mean=last.score.mean(),
                nores_start_mean=first.score_nores.mean(), nores_end_mean=last.score_nores.mean(),
                drop_min=drop.min(), drop_max=drop.max(), frac_falling=float((drop > 0.01).mean()),
                last_step=int(last.step.max()))


def judge_dynamics(t):
    n = dynamics(t)
    ours = (f"mean score {n['start_mean']:.3f} at initialisation, {n['end_mean']:.3f} after training "
            f"(drop {n['drop_min']:.3f} to {n['drop_max']:.3f} over {n['n_models']} models)")
    verdict = REPLICATED if n["frac_falling"] == 1 else PARTLY if n["frac_falling"] > 0 else NOT_REPLICATED
    return ours, verdict


CLAIMS = [
    Claim("Fig 2", "Linearity (averaged over layers) falls during pretraining", "decreasing over checkpoints",
          "replicated if the mean score falls by > 0.01 from initialisation to the last checkpoint for every model; "
          "partly if for some", judge_dynamics, order=50),
]


def numbers(table: pd.DataFrame) -> dict:
    return {**dynamics(table), "verdict_dynamics": judge_dynamics(table)[1]}


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean score with and without the residual at the first and last checkpoint."""
    rows = []
    for model, g in table.sort_values("step").groupby("model", sort=False):
        first, last = g.iloc[0], g.iloc[-1]
        rows.append({"model": model.replace("zoo:", ""), "checkpoints": len(g), "last step": int(last.step),
                     "score at init": first.score, "score, last": last.score,
                     "no residual at init": first.score_nores, "no residual, last": last.score_nores})
    out = pd.DataFrame(rows)
    out.attrs["formats"] = {"checkpoints": "d", "last step": ",d"}
    return out


page_numbers = numbers  # from what tables() returns


def show(config: DynamicsConfig, *, profile: str, force: bool = False) -> pd.DataFrame:
    table = tables(config, profile=profile, force=force)
    figure_page(NAME, profile, plots.training_dynamics(table), numbers=numbers(table), summary=summary(table),
                table=table)
    return table
