"""Fig 3: the size of each block's output next to the residual stream it adds to."""
from __future__ import annotations

import pandas as pd

from .. import plots
from ..book.glue import figure_page
from ..book.tables import per_model
from ..claims import NOT_REPLICATED, PARTLY, REPLICATED, Claim
from ..experiments.linearity import ProfilesConfig, linearity_profiles
from . import name_of
from ._scans import trained_decoders

NAME = name_of(__name__)
CONFIG = ProfilesConfig(models=("stories260K", "random:stories260K", "minilm"), max_tokens=32768)
TABLE_COLUMNS = ["model", "arch", "trained", "block", "norm_resid", "norm_block", "norm_ratio", "cosine", "score"]


def tables(config: ProfilesConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> pd.DataFrame | None:
    """One row per (model, block): the scans of Fig 1 (:func:`lin_utils.experiments.linearity_profiles`)."""
    return linearity_profiles(config.models, config.params(), profile=profile, force=force, cache_only=cache_only,
                              progress=progress)


def ratios(t: pd.DataFrame) -> dict[str, float]:
    d = trained_decoders(t)
    return dict(ratio_median=d.norm_ratio.median(), ratio_max=d.norm_ratio.max(), ratio_min=d.norm_ratio.min(),
                frac_below_one=float((d.norm_ratio < 1).mean()))


def judge_norms(t):
    n = ratios(t)
    ours = f"||block output|| / ||residual|| median {n['ratio_median']:.2f} ({n['ratio_min']:.2f} to {n['ratio_max']:.2f})"
    verdict = REPLICATED if n["ratio_max"] < 1 else PARTLY if n["ratio_median"] < 1 else NOT_REPLICATED
    return ours, verdict


CLAIMS = [
    Claim("Fig 3", "Block outputs are small next to the residual stream", "small relative norm in every layer",
          "replicated if the ratio < 1 for every block; partly if the median < 1", judge_norms, order=30),
]


def numbers(table: pd.DataFrame) -> dict:
    return {**ratios(table), "verdict_norms": judge_norms(table)[1]}


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model: the block-output / residual-stream norm ratio over blocks, and the mean cosine."""
    return per_model(table, lambda g: {
        "ratio, median": g.norm_ratio.median(), "min": g.norm_ratio.min(), "max": g.norm_ratio.max(),
        "blocks below 1": float((g.norm_ratio < 1).mean()), "mean cosine": g.cosine.mean(),
    }, {"ratio, median": ".2f", "min": ".2f", "max": ".2f", "blocks below 1": ".0%", "mean cosine": ".3f"})


page_numbers = numbers  # from what tables() returns


def show(config: ProfilesConfig, *, profile: str, force: bool = False) -> pd.DataFrame:
    table = tables(config, profile=profile, force=force)
    figure_page(NAME, profile, plots.block_norms(table), numbers=numbers(table), summary=summary(table),
                table=table[TABLE_COLUMNS])
    return table
