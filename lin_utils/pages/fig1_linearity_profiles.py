"""Fig 1: per-block linearity of trained and random-init models, with and without the residual."""
from __future__ import annotations

import pandas as pd

from .. import plots
from ..book.glue import figure_page, glue_markdown
from ..claims import CONTRADICTED, INCONCLUSIVE, REPLICATED, Claim, Evidence, Judgement, Test, judge_effect
from ..experiments.linearity import ProfilesConfig, linearity_profiles
from . import name_of
from ._scans import PAPER_MIN_WIDTH, PROFILE_COLUMNS, profile_summary, scan_differences, trained_decoders

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


def judge_score(t) -> Judgement:
    """The level claim ("about 0.99 for every layer") is about the paper's models, 768 to 4,096 wide:
    judged only where the trained decoders are that wide; at narrower widths the level is reported."""
    n = scores(t)
    ours = f"{n['score_mean']:.3f} mean, {n['score_min']:.3f} to {n['score_max']:.3f} over blocks (chance {n['chance_max']:.3f})"
    if not n["d_max"] >= PAPER_MIN_WIDTH:
        return Judgement(ours + f"; widths up to {n['d_max']:.0f}", INCONCLUSIVE,
                         f"the claim is about models {PAPER_MIN_WIDTH:,} to 4,096 wide; ours are at most "
                         f"{n['d_max']:.0f} wide, so the level at the paper's widths is not tested here")
    if n["score_min"] >= 0.95:
        return Judgement(ours, REPLICATED, "every block scores at least 0.95")
    if n["score_mean"] < 0.90:
        return Judgement(ours, CONTRADICTED, "the mean over blocks is below 0.90")
    return Judgement(ours, INCONCLUSIVE, "some block is below 0.95, the mean above 0.90")


DROP = Test("mean over trained decoders' blocks of the score with the residual minus the score without it",
            +1, "blocks")


def judge_nores(t) -> Judgement:
    d = trained_decoders(t)
    drop = (d.score - d.score_nores).to_numpy(float)
    n = scores(t)
    ev = Evidence.of(drop)
    ours = (f"{n['nores_mean']:.3f} without vs {n['score_mean']:.3f} with (held-out {n['heldout_nores_mean']:.3f}); "
            f"drop {ev.effect:.3f} ± {ev.se:.3f} over {ev.n} blocks")
    return judge_effect(DROP, ev, ours)


CLAIMS = [
    Claim("Fig 1", "Consecutive layers are almost perfectly linearly related",
          "about 0.99 for every layer (GPT-2, OPT, Llama-2, BLOOM, Pythia)",
          f"judged only on trained decoders at least {PAPER_MIN_WIDTH} wide (the paper's narrowest): replicated "
          "if every block >= 0.95, contradicted if the mean is below 0.90, inconclusive otherwise; at narrower "
          "widths inconclusive, with the level reported", judge_score, order=10),
    Claim("Fig 1", "Without the residual the score drops a lot", "markedly lower than with the residual",
          "", judge_nores, order=20, test=DROP),
]


def training_effect(t: pd.DataFrame) -> str:
    """Each trained model beside its own random initialisation (``random:<model>``) when the table has it."""
    means = t.groupby("model", sort=False).score.mean()
    pairs = [(m, means[f"random:{m}"], v) for m, v in means.items() if f"random:{m}" in means]
    if not pairs:
        return "not measured here (no trained model beside its own random initialisation in this profile)"
    text = "; ".join(f"{m} {r:.3f} at initialisation → {v:.3f} trained ({'less' if v < r else 'more'} linear)"
                     for m, r, v in pairs)
    return text + " (the zoo models' own initialisations are their step 0 on the Fig 2 page)"


def numbers(table: pd.DataFrame) -> dict:
    """The prose's numbers: :func:`scores`, the two verdicts and the effect of training."""
    out = scores(table)
    score, nores = judge_score(table), judge_nores(table)
    out.update(verdict_score=score.verdict, reason_score=score.reason, verdict_nores=nores.verdict,
               drop_se=nores.evidence.se, training_effect=training_effect(table))
    return out


page_numbers = numbers  # from what tables() returns


def show(config: ProfilesConfig, *, profile: str, force: bool = False) -> pd.DataFrame:
    table = tables(config, profile=profile, force=force)
    glue_markdown("differences", scan_differences(config, table))
    figure_page(NAME, profile, plots.linearity_profiles(table), numbers=numbers(table),
                summary=profile_summary(table), table=table[PROFILE_COLUMNS])
    return table
