"""The paper's claims next to our numbers, with verdicts computed from the result tables.

Each claim names the notebook whose evidence it is judged from and how to load that
notebook's table: the same experiment function the notebook calls, with the parameters the
profile selects for that notebook (:func:`lin_utils.runner.notebook_parameters`) and
``cache_only=True``. So the claims page judges exactly the tables the figure pages show, never
"the newest file". Its verdict is one of ``replicated``, ``partly``, ``not replicated`` or
``not run`` (no result table for those parameters yet). Thresholds are stated in each claim's
``rule`` so that a reader can disagree with them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import experiments

REPLICATED, PARTLY, NOT_REPLICATED, NOT_RUN = "replicated", "partly", "not replicated", "not run"


@dataclass(frozen=True)
class Claim:
    artifact: str
    claim: str
    paper: str
    rule: str
    notebook: str | None = None  # the page that carries the evidence
    load: Callable[[dict, str], pd.DataFrame | None] | None = None  # (notebook params, profile) -> table
    judge: Callable[[pd.DataFrame], tuple[str, str]] | None = None  # table -> (ours, verdict)


def _trained_decoders(t: pd.DataFrame) -> pd.DataFrame:
    return t[(t.arch == "decoder") & t.trained]


def fig1_numbers(t: pd.DataFrame) -> dict[str, float]:
    """Summary numbers of the Fig 1 table, over trained decoders (the paper's subject)."""
    d = _trained_decoders(t)
    r = t[(t.arch == "decoder") & ~t.trained]
    return dict(
        random_score_mean=r.score.mean(), random_nores_mean=r.score_nores.mean(),
        score_mean=d.score.mean(), score_min=d.score.min(), score_max=d.score.max(),
        nores_mean=d.score_nores.mean(), heldout_nores_mean=d.heldout_nores.mean(),
        chance_max=d.chance.max(), n_tokens_min=d.n_tokens.min(), d_max=d.d.max(),
        drop=d.score.mean() - d.score_nores.mean(),
    )


def judge_score(t):
    n = fig1_numbers(t)
    ours = f"{n['score_mean']:.3f} mean, {n['score_min']:.3f} to {n['score_max']:.3f} over blocks (chance {n['chance_max']:.3f})"
    verdict = REPLICATED if n["score_min"] >= 0.95 else PARTLY if n["score_mean"] >= 0.9 else NOT_REPLICATED
    return ours, verdict


def judge_nores(t):
    n = fig1_numbers(t)
    ours = f"{n['nores_mean']:.3f} without vs {n['score_mean']:.3f} with (held-out {n['heldout_nores_mean']:.3f})"
    verdict = REPLICATED if n["drop"] >= 0.1 else PARTLY if n["drop"] > 0.02 else NOT_REPLICATED
    return ours, verdict


def fig3_numbers(t: pd.DataFrame) -> dict[str, float]:
    d = _trained_decoders(t)
    return dict(ratio_median=d.norm_ratio.median(), ratio_max=d.norm_ratio.max(), ratio_min=d.norm_ratio.min(),
                frac_below_one=float((d.norm_ratio < 1).mean()))


def judge_norms(t):
    n = fig3_numbers(t)
    ours = f"||block output|| / ||residual|| median {n['ratio_median']:.2f} ({n['ratio_min']:.2f} to {n['ratio_max']:.2f})"
    verdict = REPLICATED if n["ratio_max"] < 1 else PARTLY if n["ratio_median"] < 1 else NOT_REPLICATED
    return ours, verdict


def fig9_numbers(t: pd.DataFrame) -> dict[str, float]:
    d = _trained_decoders(t)
    return dict(tail_ratio_median=float(np.median(d.tail_ratio)), gauss_tail_ratio_median=float(np.median(d.gauss_tail_ratio)),
                excess_median=float(np.median(d.excess_tail)), excess_min=d.excess_tail.min(),
                p999_max=d.p999.max(), median_max=d["median"].max())


def judge_tail(t):
    n = fig9_numbers(t)
    ours = (f"p99.9 / median of the per-token error {n['tail_ratio_median']:.2f}, vs {n['gauss_tail_ratio_median']:.2f} "
            f"for Gaussian errors of the same covariance (median over blocks)")
    verdict = REPLICATED if n["excess_min"] >= 1.5 else PARTLY if n["excess_median"] >= 1.5 else NOT_REPLICATED
    return ours, verdict


def _profiles(p: dict, profile: str) -> pd.DataFrame | None:
    return experiments.linearity_profiles(p["models"], p, profile=profile, cache_only=True)


def _error_summary(p: dict, profile: str) -> pd.DataFrame | None:
    tables = experiments.token_error_distribution(p["models"], p, sample_per_block=p["sample_per_block"],
                                                  profile=profile, cache_only=True)
    return None if tables is None else tables["summary"]


CLAIMS: list[Claim] = [
    Claim("Fig 1", "Consecutive layers are almost perfectly linearly related",
          "about 0.99 for every layer (GPT-2, OPT, Llama-2, BLOOM, Pythia)",
          "replicated if every block >= 0.95; partly if the mean >= 0.90",
          "fig1_linearity_profiles", _profiles, judge_score),
    Claim("Fig 1", "Without the residual the score drops a lot", "markedly lower than with the residual",
          "replicated if the mean drops by >= 0.10; partly if by > 0.02",
          "fig1_linearity_profiles", _profiles, judge_nores),
    Claim("Fig 3", "Block outputs are small next to the residual stream", "small relative norm in every layer",
          "replicated if the ratio < 1 for every block; partly if the median < 1",
          "fig3_block_norms", _profiles, judge_norms),
    Claim("Fig 9", "The per-token error of the linear map has a long tail", "long-tailed L2 error distribution",
          "tail = p99.9 / median; replicated if it is >= 1.5x the Gaussian reference's for every block; partly if for the median block",
          "fig9_error_distribution", _error_summary, judge_tail),
    Claim("Fig 2", "Linearity (averaged over layers) falls during pretraining", "decreasing over checkpoints", "pending"),
    Claim("Table 1", "Fine-tuning raises linearity without the residual", "positive deltas on MultiRC, BoolQ, CB, HH-RLHF", "pending"),
    Claim("Fig 4", "A cosine regularizer lowers per-layer linearity", "lower linearity at lambda 0.5", "pending"),
    Claim("Fig 5", "The regularizer raises linear-probe accuracy on xStoryCloze", "higher per-layer probe accuracy", "pending"),
    Claim("Table 2", "The regularizer raises SuperGLUE scores", "higher average score", "pending"),
    Claim("Table 3", "The regularizer raises judged story quality", "higher GPT-4 scores", "pending"),
    Claim("Figs 6-8", "Replacing the most linear layers by linear maps (and distilling) hurts less than removing them",
          "lower perplexity and higher ARC-Easy than plain removal", "pending"),
]


def claims_table(profile: str) -> pd.DataFrame:
    """One row per claim: artifact, claim, paper, ours, verdict, rule, notebook.

    Each table is the one the profile's parameters for the claim's notebook select; a claim whose
    table is not in the cache (the notebook has not run with those parameters) is ``not run``.
    """
    from .runner import notebook_parameters

    rows = []
    for c in CLAIMS:
        table = None
        if c.load is not None:
            table = c.load(notebook_parameters(c.notebook, profile), profile)
        if table is None or c.judge is None:
            ours, verdict = "—", NOT_RUN
        else:
            ours, verdict = c.judge(table)
        rows.append(dict(artifact=c.artifact, claim=c.claim, paper=c.paper, ours=ours, verdict=verdict,
                         rule=c.rule, notebook=c.notebook or ""))
    return pd.DataFrame(rows)
