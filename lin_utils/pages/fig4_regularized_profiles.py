"""Fig 4: per-block linearity of zoo models pretrained with and without the cosine regularizer."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import plots
from ..book.glue import figure_page
from ..claims import NOT_REPLICATED, NOT_RUN, PARTLY, REPLICATED, Claim
from ..experiments.linearity import ProfilesConfig, linearity_profiles
from . import name_of
from ._scans import PROFILE_COLUMNS, profile_summary
from ._zoo_pairs import zoo_pairs as pairs

NAME = name_of(__name__)
CONFIG = ProfilesConfig(models=("zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5", "zoo:cpu-large-baseline",
                                "zoo:cpu-large-cos0.5"))


def tables(config: ProfilesConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> pd.DataFrame | None:
    """One row per (model, block): :func:`lin_utils.experiments.linearity_profiles`."""
    return linearity_profiles(config.models, config.params(), profile=profile, force=force, cache_only=cache_only,
                              progress=progress)


def judge_regularizer(t):
    found = pairs(t, "cos0.5")
    if not found:
        return "no baseline / cosine pair in the table", NOT_RUN
    ours = "; ".join(f"{size}: baseline {b:.3f}, cosine {c:.3f}" for size, b, c in found)
    lower = sum(c < b for _, b, c in found)
    verdict = REPLICATED if lower == len(found) else PARTLY if lower else NOT_REPLICATED
    return ours, verdict


CLAIMS = [
    Claim("Fig 4", "A cosine regularizer lowers per-layer linearity", "lower linearity at lambda 0.5",
          "replicated if the cosine-regularized model's mean score is below its baseline's at every size; partly if at some",
          judge_regularizer, order=70),
]


def effects(t: pd.DataFrame) -> dict:
    """Per size: the baseline's and the cosine model's mean score, with and without the residual."""
    found = pairs(t, "cos0.5")
    nores = {size: (b, c) for size, b, c in pairs(t, "cos0.5", "score_nores")}
    out: dict = dict(n_sizes=len(found), frac_lower=float(np.mean([c < b for _, b, c in found])) if found else np.nan)
    for size, b, c in found:
        key = size.split("-")[-1]
        out[f"{key}_baseline"], out[f"{key}_cos"] = b, c
        out[f"{key}_baseline_nores"], out[f"{key}_cos_nores"] = nores[size]
    return out


def numbers(t: pd.DataFrame) -> dict:
    return {**effects(t), "verdict_regularizer": judge_regularizer(t)[1]}


page_numbers = numbers  # from what tables() returns


def show(config: ProfilesConfig, *, profile: str, force: bool = False) -> pd.DataFrame:
    table = tables(config, profile=profile, force=force)
    figure_page(NAME, profile, plots.linearity_profiles(table), numbers=numbers(table),
                summary=profile_summary(table), table=table[PROFILE_COLUMNS])
    return table
