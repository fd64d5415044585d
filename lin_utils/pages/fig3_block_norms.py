"""Fig 3: the size of each block's output next to the residual stream it makes."""
from __future__ import annotations

import pandas as pd

from .. import plots
from ..book.glue import figure_page, glue_markdown
from ..book.tables import per_model
from ..claims import Claim, Evidence, Judgement, Test, judge_effect
from ..experiments.linearity import ProfilesConfig, linearity_profiles
from . import name_of
from ._scans import scan_differences, trained_decoders

NAME = name_of(__name__)
CONFIG = ProfilesConfig(models=("stories260K", "random:stories260K", "minilm", "zoo:cpu-small-baseline",
                                "zoo:cpu-large-baseline"), max_tokens=32768)
TABLE_COLUMNS = ["model", "arch", "trained", "block", "norm_resid", "norm_out", "norm_block", "ratio_out", "norm_ratio",
                 "cosine", "score"]


def tables(config: ProfilesConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> pd.DataFrame | None:
    """One row per (model, block): the scans of Fig 1 (:func:`lin_utils.experiments.linearity_profiles`),
    with :func:`with_output_ratio`."""
    t = linearity_profiles(config.models, config.params(), profile=profile, force=force, cache_only=cache_only,
                           progress=progress)
    return None if t is None else with_output_ratio(t)


def with_output_ratio(t: pd.DataFrame) -> pd.DataFrame:
    """``norm_out`` = mean ‖h_{i+1}‖ and ``ratio_out`` = ‖h_{i+1} − h_i‖ / ‖h_{i+1}‖, the paper's ratio.

    Scans that predate the accumulator's ``norm_out`` column take it from the next block's input
    norm (the same tokens, the same boundary): exact for every block but the last, NaN there.
    """
    t = t.copy()
    derived = t.groupby("model", sort=False).norm_resid.shift(-1)
    if "norm_out" in t:
        t["norm_out"] = t["norm_out"].fillna(derived)
    else:
        t["norm_out"] = derived
    t["ratio_out"] = t.norm_block / t.norm_out
    return t


def ratios(t: pd.DataFrame) -> dict[str, float]:
    """Over trained decoders' blocks, block 0 apart: the paper's ratio (to ‖h_{i+1}‖) and ours (to ‖h_i‖)."""
    d = trained_decoders(t)
    rest, first = d[d.block > 0].dropna(subset=["ratio_out"]), d[d.block == 0]
    return dict(ratio_median=rest.ratio_out.median(), ratio_max=rest.ratio_out.max(), ratio_min=rest.ratio_out.min(),
                frac_below_one=float((rest.ratio_out < 1).mean()), n_blocks=len(rest),
                input_ratio_median=rest.norm_ratio.median(), block0_ratio_max=first.ratio_out.max(),
                block0_input_ratio_max=first.norm_ratio.max(), n_models=d.model.nunique())


SMALL = Test("mean over trained decoders' blocks (block 0 apart) of 1 − ‖h_{i+1} − h_i‖ / ‖h_{i+1}‖", +1, "blocks")


def judge_norms(t) -> Judgement:
    d = trained_decoders(t)
    gap = (1 - d[d.block > 0].ratio_out).dropna().to_numpy(float)
    ev = Evidence.of(gap)
    n = ratios(t)
    ours = (f"‖block output‖ / ‖stream it makes‖ median {n['ratio_median']:.2f} ({n['ratio_min']:.2f} to "
            f"{n['ratio_max']:.2f}) over {n['n_blocks']} blocks of {n['n_models']} trained decoders; block 0 up to "
            f"{n['block0_ratio_max']:.2f}; to the input stream instead, median {n['input_ratio_median']:.2f}")
    return judge_effect(SMALL, ev, ours)


CLAIMS = [
    Claim("Fig 3", "Block outputs are small next to the residual stream", "small relative norm in every layer",
          "", judge_norms, order=30, test=SMALL),
]


def numbers(table: pd.DataFrame) -> dict:
    j = judge_norms(table)
    return {**ratios(table), "verdict_norms": j.verdict, "reason_norms": j.reason}


page_numbers = numbers  # from what tables() returns


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model: the paper's ratio (to the stream it makes) over blocks, ours (to the input stream)
    at the median, and the mean cosine."""
    return per_model(table, lambda g: {
        "ratio, median": g.ratio_out.median(), "min": g.ratio_out.min(), "max": g.ratio_out.max(),
        "below 1": float((g.ratio_out.dropna() < 1).mean()), "to input, median": g.norm_ratio.median(),
        "mean cosine": g.cosine.mean(),
    }, {"ratio, median": ".2f", "min": ".2f", "max": ".2f", "below 1": ".0%", "to input, median": ".2f",
        "mean cosine": ".3f"})


def show(config: ProfilesConfig, *, profile: str, force: bool = False) -> pd.DataFrame:
    table = tables(config, profile=profile, force=force)
    glue_markdown("differences", scan_differences(config, table) + (
        " The paper divides the block's output by the stream it produces, ‖h_{i+1}‖, as here; the ratio to the "
        "input stream ‖h_i‖ is shown dotted beside it."))
    figure_page(NAME, profile, plots.block_norms(table), numbers=numbers(table), summary=summary(table),
                table=table[TABLE_COLUMNS])
    return table
