"""Fig 2: linearity averaged over blocks at each checkpoint of pretraining."""
from __future__ import annotations

import math

import pandas as pd

from .. import plots
from ..book.glue import figure_page, glue_markdown
from ..book.tables import md_table
from ..claims import Claim, Evidence, Judgement, Test, judge_effect
from ..experiments.linearity import DynamicsConfig
from ..experiments.pretraining import training_dynamics
from . import name_of
from ._scans import PAPER_SCAN
from ._zoo_pairs import BASELINE, entry_of, pm, zoo_models_text

NAME = name_of(__name__)
CONFIG = DynamicsConfig(models=("zoo:cpu-small-baseline", "zoo:cpu-small-baseline-s1",
                                "zoo:cpu-small-baseline-s2", "zoo:cpu-small-cos0.5", "zoo:cpu-small-cos0.5-s1",
                                "zoo:cpu-small-cos0.5-s2", "zoo:cpu-large-baseline",
                                "zoo:cpu-large-baseline-s1", "zoo:cpu-large-baseline-s2",
                                "zoo:cpu-large-cos0.5", "zoo:cpu-large-cos0.5-s1", "zoo:cpu-large-cos0.5-s2"))


def tables(config: DynamicsConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> pd.DataFrame | None:
    """One row per (model, checkpoint): :func:`lin_utils.experiments.training_dynamics`."""
    return training_dynamics(config.models, config.params(), revisions=config.revisions, profile=profile,
                             force=force, cache_only=cache_only, progress=progress)


#: the checkpoint after the initial transient: the first at or past this share of training
POST_TRANSIENT = 0.05


def unregularized(t: pd.DataFrame) -> pd.DataFrame:
    """The rows of models pretrained without a regularizer (the zoo's baselines by its metadata;
    any model that is not a zoo entry, e.g. Pythia's revisions): the regularized ones' term
    pushes this very score up, so they do not test the paper's claim."""
    keep = [m for m in t.model.unique() if (e := entry_of(m)) is None or e.variant == BASELINE]
    return t[t.model.isin(keep)]


def dynamics(t: pd.DataFrame) -> dict:
    """Per unregularized model: the mean score over blocks at the first checkpoint at or past
    :data:`POST_TRANSIENT` of its training and at the last; the random initialisation (step 0) apart."""
    rows = []
    u = unregularized(t)
    for model in u.model.unique():  # in the table's order
        g = u[u.model == model].sort_values("step")
        last = g.iloc[-1]
        after = g[g.step >= POST_TRANSIENT * last.step]
        start = after.iloc[0] if len(after) else last
        init = g[g.step == 0]
        rows.append(dict(model=model, start_step=int(start.step), start=float(start.score), end=float(last.score),
                         nores_start=float(start.score_nores), nores_end=float(last.score_nores),
                         init=float(init.score.iloc[0]) if len(init) else math.nan, last_step=int(last.step)))
    return {"models": pd.DataFrame(rows, columns=["model", "start_step", "start", "end", "nores_start", "nores_end",
                                                  "init", "last_step"])}


FALLS = Test(f"mean over unregularized training runs (every seed of every size) of the score (mean over blocks) at "
             f"the first checkpoint past {POST_TRANSIENT:.0%} of training minus the score at the last", +1,
             "unregularized runs")


def judge_dynamics(t) -> Judgement:
    m = dynamics(t)["models"]
    drop = (m.start - m.end).to_numpy(float)
    ev = Evidence.of(drop)
    ours = "; ".join(f"{r.model.replace('zoo:', '')}: {r.start:.3f} at step {r.start_step} → {r.end:.3f} at step "
                     f"{r.last_step}" for r in m.itertuples())
    ours += f" (drop {ev.effect:.3f} ± {ev.se:.3f} over {ev.n} runs)"
    return judge_effect(FALLS, ev, ours)


CLAIMS = [
    Claim("Fig 2", "Linearity (averaged over layers) falls during pretraining", "decreasing over checkpoints",
          "", judge_dynamics, order=50, test=FALLS),
]


def numbers(table: pd.DataFrame) -> dict:
    m = dynamics(table)["models"]
    j = judge_dynamics(table)
    first = table.sort_values("step").groupby("model", sort=False).first()
    last = table.sort_values("step").groupby("model", sort=False).last()
    drop = first.score - last.score  # from the random initialisation to the end, every model
    return dict(n_models=len(first), n_unregularized=len(m), start_mean=first.score.mean(), end_mean=last.score.mean(),
                drop_min=drop.min(), drop_max=drop.max(),
                nores_start_mean=first.score_nores.mean(), nores_end_mean=last.score_nores.mean(),
                post_start_mean=m.start.mean(), post_end_mean=m.end.mean(), post_step_min=int(m.start_step.min()),
                drop=j.evidence.effect, drop_se=j.evidence.se, last_step=int(last.step.max()),
                verdict_dynamics=j.verdict, reason_dynamics=j.reason)


page_numbers = numbers  # from what tables() returns


def seed_spread(table: pd.DataFrame) -> pd.DataFrame:
    """Per arm (a zoo size and variant, over its seeds): the number of seeds and the mean and
    standard deviation over seeds of the score (mean over blocks) at the first checkpoint past
    :data:`POST_TRANSIENT` of training and at the last, with and without the residual."""
    rows = []
    arms = plots.arms(table.model)
    for model, g in table.sort_values("step").groupby("model", sort=False):
        after = g[g.step >= POST_TRANSIENT * g.step.max()]
        start, last = (after.iloc[0] if len(after) else g.iloc[-1]), g.iloc[-1]
        rows.append(dict(arm=arms[model], start=start.score, end=last.score, nores_start=start.score_nores,
                         nores_end=last.score_nores))
    per = pd.DataFrame(rows)
    out = []
    for arm, g in per.groupby("arm", sort=False):
        row = {"arm": arm.replace("zoo:", ""), "seeds": len(g)}
        for col, label in (("start", f"score past {POST_TRANSIENT:.0%}"), ("end", "score, last"),
                           ("nores_start", f"no residual past {POST_TRANSIENT:.0%}"), ("nores_end", "no residual, last")):
            row[label] = g[col].mean()
            row[f"{label} sd"] = g[col].std(ddof=1) if len(g) > 1 else float("nan")
        out.append(row)
    return pd.DataFrame(out)


def seed_spread_view(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`seed_spread` as the page shows it: each score as "mean ± sd over seeds" in one cell."""
    s = seed_spread(table)
    out = s[["arm", "seeds"]].copy()
    for label in [c for c in s.columns if c not in ("arm", "seeds") and not c.endswith(" sd")]:
        out[label] = [pm(m, sd) for m, sd in zip(s[label], s[f"{label} sd"])]
    out.attrs["formats"] = {"seeds": "d"}
    return out


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


def differences(config: DynamicsConfig, table: pd.DataFrame) -> str:
    """How this page differs from the paper's Fig 2."""
    steps = int(table.step.max())
    n = int(table.n_tokens.min())
    return ("**How this differs from the paper.** The paper follows the public training checkpoints of "
            f"Pythia models and scans {PAPER_SCAN.split(', on ')[0]}. Here: the log-spaced checkpoints (step 0 to "
            f"{steps:,}) of the zoo models ({zoo_models_text(table.model.unique())}), scanned on "
            f"{n:,} tokens of the {config.dataset} {config.split} split; the claim is judged on the unregularized "
            f"models only, from the first checkpoint past {POST_TRANSIENT:.0%} of training (the score first rises "
            "from the random initialisation, a transient the paper's curves start after), and the random "
            "initialisation is reported as its own observation.")


def show(config: DynamicsConfig, *, profile: str, force: bool = False) -> pd.DataFrame:
    table = tables(config, profile=profile, force=force)
    glue_markdown("differences", differences(config, table))
    glue_markdown("seed_spread", md_table(seed_spread_view(table)))
    figure_page(NAME, profile, plots.training_dynamics(table), numbers=numbers(table), summary=summary(table),
                table=table)
    return table
