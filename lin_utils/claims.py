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


def fig2_numbers(t: pd.DataFrame) -> dict[str, float]:
    """Per model: mean score over blocks at initialisation (first step) and after training (last)."""
    first = t.sort_values("step").groupby("model", sort=False).first()
    last = t.sort_values("step").groupby("model", sort=False).last()
    drop = first.score - last.score
    return dict(n_models=len(first), start_mean=first.score.mean(), end_mean=last.score.mean(),
                nores_start_mean=first.score_nores.mean(), nores_end_mean=last.score_nores.mean(),
                drop_min=drop.min(), drop_max=drop.max(), frac_falling=float((drop > 0.01).mean()),
                last_step=int(last.step.max()))


def judge_dynamics(t):
    n = fig2_numbers(t)
    ours = (f"mean score {n['start_mean']:.3f} at initialisation, {n['end_mean']:.3f} after training "
            f"(drop {n['drop_min']:.3f} to {n['drop_max']:.3f} over {n['n_models']} models)")
    verdict = REPLICATED if n["frac_falling"] == 1 else PARTLY if n["frac_falling"] > 0 else NOT_REPLICATED
    return ours, verdict


def _zoo_pairs(t: pd.DataFrame, variant: str, col: str = "score") -> list[tuple[str, float, float]]:
    """(size, baseline mean, ``variant`` mean) of ``col`` over blocks, for each zoo size that has both."""
    means = t.groupby("model", sort=False)[col].mean()
    out = []
    for model, base in means.items():
        if model.startswith("zoo:") and model.endswith("-baseline"):
            other = model[: -len("baseline")] + variant
            if other in means:
                out.append((model[len("zoo:"):-len("-baseline")], float(base), float(means[other])))
    return out


def fig4_numbers(t: pd.DataFrame) -> dict:
    pairs = _zoo_pairs(t, "cos0.5")
    nores = {size: (b, c) for size, b, c in _zoo_pairs(t, "cos0.5", "score_nores")}
    out: dict = dict(n_sizes=len(pairs), frac_lower=float(np.mean([c < b for _, b, c in pairs])) if pairs else np.nan)
    for size, b, c in pairs:
        key = size.split("-")[-1]
        out[f"{key}_baseline"], out[f"{key}_cos"] = b, c
        out[f"{key}_baseline_nores"], out[f"{key}_cos_nores"] = nores[size]
    return out


def judge_regularizer(t):
    pairs = _zoo_pairs(t, "cos0.5")
    if not pairs:
        return "no baseline / cosine pair in the table", NOT_RUN
    ours = "; ".join(f"{size}: baseline {b:.3f}, cosine {c:.3f}" for size, b, c in pairs)
    lower = sum(c < b for _, b, c in pairs)
    verdict = REPLICATED if lower == len(pairs) else PARTLY if lower else NOT_REPLICATED
    return ours, verdict


def judge_stories(t):
    """Table 3's summary: judge grades when present; proxies alone give no verdict."""
    if "judged" not in t or t.judged.sum() == 0:
        ours = ("no judge configured, so no verdict; automatic proxies only (perplexity under the scorer "
                + ", ".join(f"{m.split(':')[-1]} {v:.2f}" for m, v in zip(t.model, t.scorer_ppl)) + ")")
        return ours, NOT_RUN
    grade = t[["grammar", "creativity", "consistency", "plot"]].mean(axis=1)
    scores = dict(zip(t.model, grade))
    pairs = [(m, scores[m], scores[m[: -len("baseline")] + "cos0.5"]) for m in scores
             if m.endswith("-baseline") and m[: -len("baseline")] + "cos0.5" in scores]
    if not pairs:
        return "no baseline / cosine pair was judged", NOT_RUN
    ours = "; ".join(f"{m.split(':')[-1][:-len('-baseline')]}: baseline {b:.2f}, cosine {c:.2f}" for m, b, c in pairs)
    higher = sum(c > b for _, b, c in pairs)
    return ours, REPLICATED if higher == len(pairs) else PARTLY if higher else NOT_REPLICATED


def _profiles(p: dict, profile: str) -> pd.DataFrame | None:
    return experiments.linearity_profiles(p["models"], p, profile=profile, cache_only=True)


def _error_summary(p: dict, profile: str) -> pd.DataFrame | None:
    tables = experiments.token_error_distribution(p["models"], p, sample_per_block=p["sample_per_block"],
                                                  profile=profile, cache_only=True)
    return None if tables is None else tables["summary"]


def _dynamics(p: dict, profile: str) -> pd.DataFrame | None:
    return experiments.training_dynamics(p["models"], p, revisions=p.get("revisions"), profile=profile,
                                         cache_only=True)


def _stories(p: dict, profile: str) -> pd.DataFrame | None:
    keys = ("n_stories", "max_new_tokens", "temperature", "top_k", "seed", "scorer")
    tables = experiments.story_quality(p["models"], **{k: p[k] for k in keys if k in p}, profile=profile,
                                       cache_only=True)
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
    Claim("Fig 2", "Linearity (averaged over layers) falls during pretraining", "decreasing over checkpoints",
          "replicated if the mean score falls by > 0.01 from initialisation to the last checkpoint for every model; "
          "partly if for some", "fig2_training_dynamics", _dynamics, judge_dynamics),
    Claim("Table 1", "Fine-tuning raises linearity without the residual", "positive deltas on MultiRC, BoolQ, CB, HH-RLHF", "pending"),
    Claim("Fig 4", "A cosine regularizer lowers per-layer linearity", "lower linearity at lambda 0.5",
          "replicated if the cosine-regularized model's mean score is below its baseline's at every size; partly if at some",
          "fig4_regularized_profiles", _profiles, judge_regularizer),
    Claim("Fig 5", "The regularizer raises linear-probe accuracy on xStoryCloze", "higher per-layer probe accuracy", "pending"),
    Claim("Table 2", "The regularizer raises SuperGLUE scores", "higher average score", "pending"),
    Claim("Table 3", "The regularizer raises judged story quality", "higher GPT-4 scores",
          "replicated if the cosine model's mean judge grade beats its baseline's at every size; partly if at some; "
          "automatic proxies never give a verdict", "table3_story_quality", _stories, judge_stories),
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
