"""Fig 9: the per-token error of each block's linear map, and how long its tail is."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import plots
from ..book.glue import figure_page, glue_markdown
from ..book.tables import per_model
from ..claims import Claim, Evidence, Judgement, Test, judge_effect
from ..experiments.linearity import ErrorsConfig, token_error_distribution
from . import name_of
from ._scans import scan_differences, trained_decoders

NAME = name_of(__name__)
CONFIG = ErrorsConfig(models=("stories260K", "minilm"), exclude_bos=False)
TABLE_COLUMNS = ["model", "arch", "trained", "block", "n_tokens", "d", "score", "median", "p999", "tail_ratio",
                 "gauss_tail_ratio", "excess_tail", "bos_median"]


def tables(config: ErrorsConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> dict[str, pd.DataFrame] | None:
    """``{"summary": one row per (model, block), "sample": tokens' errors}``
    (:func:`lin_utils.experiments.token_error_distribution`)."""
    return token_error_distribution(config.models, config.params(), sample_per_block=config.sample_per_block,
                                    profile=profile, force=force, cache_only=cache_only, progress=progress)


def tails(t: pd.DataFrame) -> dict[str, float]:
    """Medians over trained decoders' blocks of the tail ratios, from the ``summary`` table."""
    d = trained_decoders(t)
    return dict(tail_ratio_median=float(np.median(d.tail_ratio)), gauss_tail_ratio_median=float(np.median(d.gauss_tail_ratio)),
                excess_median=float(np.median(d.excess_tail)), excess_min=d.excess_tail.min(),
                p999_max=d.p999.max(), median_max=d["median"].max())


HEAVIER = Test("mean over trained decoders' blocks of log(tail / Gaussian tail), tail = p99.9 / median of the "
               "per-token error", +1, "blocks")


def judge_tail(t) -> Judgement:
    """From the page's tables (a dict) or its ``summary`` table."""
    summary_ = t["summary"] if isinstance(t, dict) else t
    n = tails(summary_)
    logs = np.log(trained_decoders(summary_).excess_tail.to_numpy(float))
    ev = Evidence.of(logs)
    ours = (f"p99.9 / median of the per-token error {n['tail_ratio_median']:.2f}, vs {n['gauss_tail_ratio_median']:.2f} "
            f"for Gaussian errors of the same covariance (median over blocks); log excess {ev.effect:+.2f} ± "
            f"{ev.se:.2f} over {ev.n} blocks")
    return judge_effect(HEAVIER, ev, ours)


CLAIMS = [
    Claim("Fig 9", "The per-token error of the linear map has a long tail", "long-tailed L2 error distribution",
          "", judge_tail, order=40, test=HEAVIER),
]


def numbers(summary: pd.DataFrame) -> dict:
    j = judge_tail(summary)
    return {**tails(summary), "verdict_tail": j.verdict, "reason_tail": j.reason, "log_excess": j.evidence.effect,
            "log_excess_se": j.evidence.se}


def summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Per model (medians over blocks): the error's median, its tail p99.9 / median, the Gaussian's."""
    return per_model(summary, lambda g: {
        "tokens": g.n_tokens.min(), "median error": g["median"].median(),
        "tail p99.9/median": g.tail_ratio.median(), "Gaussian tail": g.gauss_tail_ratio.median(),
        "excess": g.excess_tail.median(),
    }, {"tokens": ",d", "median error": ".3f", "tail p99.9/median": ".2f", "Gaussian tail": ".2f",
        "excess": ".2f"})


def page_numbers(t: dict) -> dict:
    """The glued numbers from what :func:`tables` returns."""
    return numbers(t["summary"])


def show(config: ErrorsConfig, *, profile: str, force: bool = False) -> dict[str, pd.DataFrame]:
    t = tables(config, profile=profile, force=force)
    s = t["summary"]
    glue_markdown("differences", scan_differences(config, s) + (
        " The paper draws the error histogram; here the tail is measured against Gaussian errors of the same "
        "residual covariance, which a histogram alone cannot tell from a long tail."))
    figure_page(NAME, profile, plots.error_tails(t["sample"], s), numbers=numbers(s), summary=summary(s),
                table=s[TABLE_COLUMNS])
    return t
