"""Fig 1: per-block linearity of trained and random-init models, with and without the residual."""
from __future__ import annotations

import pandas as pd

from .. import plots
from ..book.glue import figure_page
from ..claims import NOT_REPLICATED, PARTLY, REPLICATED, Claim
from ..experiments.linearity import ProfilesConfig, linearity_profiles
from . import name_of
from ._scans import PROFILE_COLUMNS, profile_summary, trained_decoders

NAME = name_of(__name__)
CONFIG = ProfilesConfig(
    models=("stories260K", "random:stories260K", "minilm", "random:minilm", "zoo:cpu-small-baseline",
            "zoo:cpu-large-baseline"),
    max_tokens=32768)


def tables(config: ProfilesConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> pd.DataFrame | None:
    """One row per (model, block): :func:`lin_utils.experiments.linearity_profiles`."""
    return linearity_profiles(config.models, config.params(), profile=profile, force=force, cache_only=cache_only,
                              progress=progress)


def scores(t: pd.DataFrame) -> dict[str, float]:
    """Summary numbers of the table, over trained decoders (the paper's subject)."""
    d = trained_decoders(t)
    r = t[(t.arch == "decoder") & ~t.trained]
    return dict(
        random_score_mean=r.score.mean(), random_nores_mean=r.score_nores.mean(),
        score_mean=d.score.mean(), score_min=d.score.min(), score_max=d.score.max(),
        nores_mean=d.score_nores.mean(), heldout_nores_mean=d.heldout_nores.mean(),
        chance_max=d.chance.max(), n_tokens_min=d.n_tokens.min(), d_max=d.d.max(),
        drop=d.score.mean() - d.score_nores.mean(),
    )


def judge_score(t):
    n = scores(t)
    ours = f"{n['score_mean']:.3f} mean, {n['score_min']:.3f} to {n['score_max']:.3f} over blocks (chance {n['chance_max']:.3f})"
    verdict = REPLICATED if n["score_min"] >= 0.95 else PARTLY if n["score_mean"] >= 0.9 else NOT_REPLICATED
    return ours, verdict


def judge_nores(t):
    n = scores(t)
    ours = f"{n['nores_mean']:.3f} without vs {n['score_mean']:.3f} with (held-out {n['heldout_nores_mean']:.3f})"
    verdict = REPLICATED if n["drop"] >= 0.1 else PARTLY if n["drop"] > 0.02 else NOT_REPLICATED
    return ours, verdict


CLAIMS = [
    Claim("Fig 1", "Consecutive layers are almost perfectly linearly related",
          "about 0.99 for every layer (GPT-2, OPT, Llama-2, BLOOM, Pythia)",
          "replicated if every block >= 0.95; partly if the mean >= 0.90", judge_score, order=10),
    Claim("Fig 1", "Without the residual the score drops a lot", "markedly lower than with the residual",
          "replicated if the mean drops by >= 0.10; partly if by > 0.02", judge_nores, order=20),
]


def numbers(table: pd.DataFrame) -> dict:
    """The prose's numbers: :func:`scores`, the two verdicts and the effect of training."""
    out = scores(table)
    out["verdict_score"], out["verdict_nores"] = judge_score(table)[1], judge_nores(table)[1]
    trained, random = out["score_mean"], out["random_score_mean"]
    if pd.isna(random):
        out["training_effect"] = "not measured here (no random-init model in this profile)"
    elif random > trained:
        out["training_effect"] = "less linear than at initialisation, the direction of the paper's Figure 2 (linearity falls during pretraining)"
    else:
        out["training_effect"] = "at least as linear as at initialisation, unlike the paper's Figure 2 (linearity falls during pretraining)"
    return out


page_numbers = numbers  # from what tables() returns


def show(config: ProfilesConfig, *, profile: str, force: bool = False) -> pd.DataFrame:
    table = tables(config, profile=profile, force=force)
    figure_page(NAME, profile, plots.linearity_profiles(table), numbers=numbers(table),
                summary=profile_summary(table), table=table[PROFILE_COLUMNS])
    return table
