"""Table 3: quality of the stories the zoo's models write, graded by a judge when one is configured,
else by automatic proxies that never give a verdict.

With a judge, the claim is judged item by item inside each training-run pair (a baseline and its
cosine model of the same size and seed): every model completes the same openings, so the cosine
model's grade (the mean of the four) is compared with its baseline's opening by opening (a paired
test over completions, :func:`lin_utils.pages._zoo_pairs.paired`). The claim's unit of
replication is the pair (:data:`TEST`): its effect is the mean of the pairs' gains and its
standard error their spread over seeds; with fewer pairs than the test needs (one seed per arm)
it falls back to the pairs' completion-level standard errors pooled over sizes
(:data:`BY_COMPLETIONS`), and says so. Without a judge the claim is "not run", with its reason.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import plots
from ..book.glue import figure_page, glue_markdown
from ..book.tables import md_table
from ..claims import MDE_Z, NOT_RUN, Claim, Evidence, Judgement, Test, judge_effect
from ..experiments.pretraining import StoriesConfig, story_quality
from . import name_of
from ._zoo_pairs import (arm_label, paired, pm, pooled, replication_text, seed_summary, size_pairs,
                         zoo_models_text)

NAME = name_of(__name__)
CONFIG = StoriesConfig(
    models=("zoo:cpu-small-baseline", "zoo:cpu-small-baseline-s1", "zoo:cpu-small-baseline-s2",
            "zoo:cpu-small-cos0.5", "zoo:cpu-small-cos0.5-s1", "zoo:cpu-small-cos0.5-s2",
            "zoo:cpu-small-mse0.5", "zoo:cpu-small-mse0.5-s1", "zoo:cpu-small-mse0.5-s2",
            "zoo:cpu-small-mse2.0", "zoo:cpu-small-mse2.0-s1", "zoo:cpu-small-mse2.0-s2",
            "zoo:cpu-large-baseline", "zoo:cpu-large-baseline-s1", "zoo:cpu-large-baseline-s2",
            "zoo:cpu-large-cos0.5", "zoo:cpu-large-cos0.5-s1", "zoo:cpu-large-cos0.5-s2", "stories260K"),
    n_stories=50, max_new_tokens=120, temperature=0.8, top_k=50, seed=0, scorer="stories260K", judge_model=None)

GRADES = ("grammar", "creativity", "consistency", "plot")  # the judge's four columns, as in the paper
#: the full table's columns (one row per completion)
ITEM_COLUMNS = ["model", "item", "n_words", "scorer_tokens", "scorer_nll", "distinct_2", "repetition_4"]


def tables(config: StoriesConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> dict[str, pd.DataFrame] | None:
    """``{"summary": one row per model, "items": one row per completion}``:
    :func:`lin_utils.experiments.story_quality`."""
    return story_quality(config, profile=profile, force=force, cache_only=cache_only, progress=progress)


#: the claim's test: one unit per training-run pair (a baseline and its cosine model of one size and seed)
TEST = BY_SEEDS = Test(
    quantity="judge grade (the mean of grammar, creativity, consistency and plot, 1–10), cosine − baseline, "
             "averaged over the training-run pairs (a baseline and its cosine model of the same size and seed; "
             "inside a pair, paired by opening)",
    direction=+1, unit="training-run pairs (size × seed)", paper_effect=None, paper_source="")
#: the fallback with fewer training-run pairs than :data:`BY_SEEDS` needs (one seed per arm)
BY_COMPLETIONS = Test(
    quantity="judge grade (the mean of grammar, creativity, consistency and plot, 1–10), cosine − baseline, paired "
             "by opening, pooled over the zoo sizes (too few training-run pairs: the spread is over completions, "
             "not over training runs)",
    direction=+1, unit="completions (paired: both models complete the same openings)", paper_effect=None,
    paper_source="")


def _grade(items: pd.DataFrame) -> pd.Series:
    return items[list(GRADES)].mean(axis=1, skipna=False)


def paired_grades(items: pd.DataFrame) -> pd.DataFrame:
    """Per zoo size: the cosine model's judge grade against its baseline's on the same openings
    (completions both have grades for): ``size, model, baseline, n, baseline_mean, cosine_mean,
    effect, se, mde, z`` (grade points) and ``constant`` (both give every completion the same
    grade)."""
    key = "opening" if "opening" in items else "item"
    rows = []
    for size, base, model in size_pairs(items.model):
        a = items[items.model == model].assign(grade=lambda t: _grade(t)).set_index(key).grade
        b = items[items.model == base].assign(grade=lambda t: _grade(t)).set_index(key).grade
        j = pd.concat([a.rename("m"), b.rename("b")], axis=1, join="inner").dropna()
        if j.empty:
            continue
        effect, se, n = paired(j.m - j.b, scale=1.0)
        rows.append(dict(size=size, model=model, baseline=base, n=n, baseline_mean=float(j.b.mean()),
                         cosine_mean=float(j.m.mean()), effect=effect, se=se, mde=MDE_Z * se,
                         z=effect / se if se and se > 0 else math.nan,
                         constant=bool(j.m.nunique() == 1 and j.b.nunique() == 1)))
    return pd.DataFrame(rows, columns=["size", "model", "baseline", "n", "baseline_mean", "cosine_mean", "effect",
                                       "se", "mde", "z", "constant"])


def judge_stories(t) -> Judgement:
    """Table 3's verdict from the page's tables: judge grades, paired by opening, when present;
    automatic proxies alone give none ("not run", with the reason)."""
    from ..evaluate.judge import judge_status  # lin_utils.evaluate imports lm-eval's tasks: only when judging

    items = t.get("items") if isinstance(t, dict) else None
    status = judge_status(items) if items is not None else None
    summary_ = t["summary"] if isinstance(t, dict) else t
    if "judged" not in summary_ or summary_.judged.sum() == 0:
        said = "no judge configured" if status is None or not status["configured"] else status["text"]
        st = seed_summary(summary_, ["scorer_ppl"])
        ours = (f"{said}, so no verdict; automatic proxies only (perplexity under the scorer"
                + (", mean ± sd over seeds" if (st.seeds > 1).any() else "") + ": "
                + ", ".join(f"{r['arm']} {pm(r['scorer_ppl'], r['scorer_ppl sd'], '.2f')}" for _, r in st.iterrows())
                + ")")
        return Judgement(ours, NOT_RUN, said)
    if items is None or not set(GRADES) <= set(items.columns):
        return Judgement("—", NOT_RUN, "the per-completion grades are not stored")
    m = paired_grades(items)
    if m.empty:
        return Judgement("no baseline / cosine pair was judged", NOT_RUN, "no baseline / cosine pair was judged")
    test, ev = grade_evidence(m)
    parts = [f"{r.size}: baseline {r.baseline_mean:.2f}, cosine {r.cosine_mean:.2f} ({r.effect:+.2f} ± {r.se:.2f} "
             f"over {r.n} openings, MDE {r.mde:.2f})" for r in m.itertuples()]
    if test is BY_SEEDS:
        head = (f"{ev.effect:+.2f} ± {ev.se:.2f}, the mean over {ev.n} {test.unit} with its standard error over "
                f"the pairs (MDE {ev.mde:.2f})" if not ev.constant else f"{len(m)} {test.unit}, every grade alike in each")
        return judge_effect(test, ev, head + "; per pair (± its standard error over openings): " + "; ".join(parts))
    if len(m) > 1:
        parts.append(f"pooled {ev.effect:+.2f} ± {ev.se:.2f} (MDE {ev.mde:.2f})")
    return judge_effect(test, ev, f"{len(m)} training-run pair{'s' if len(m) != 1 else ''}, fewer than "
                                  f"{BY_SEEDS.min_units}: standard errors over openings, not over training runs; "
                        + "; ".join(parts))


def grade_evidence(m: pd.DataFrame) -> tuple[Test, Evidence]:
    """The claim's test and :class:`Evidence` from :func:`paired_grades`: with at least
    ``BY_SEEDS.min_units`` training-run pairs, :data:`BY_SEEDS` (the mean of the informative
    pairs' gains, its standard error over the pairs, ``n`` the pairs); with fewer,
    :data:`BY_COMPLETIONS` (the gains pooled with their completion-level standard errors, ``n``
    the completions); ``constant`` when every pair grades every completion alike."""
    by_seeds = len(m) >= BY_SEEDS.min_units
    test = BY_SEEDS if by_seeds else BY_COMPLETIONS
    use = m[~m.constant]
    if use.empty:
        return test, Evidence(0.0, 0.0, len(m) if by_seeds else int(m.n.sum()), constant=True)
    if by_seeds:
        return test, Evidence.of(use.effect)
    effect, se = pooled(list(use.effect), list(use.se))
    return test, Evidence(effect, se, int(use.n.sum()))


CLAIMS = [
    Claim("Table 3", "The regularizer raises judged story quality", "higher GPT-4 scores", "", judge_stories,
          order=100, test=TEST),
]


def numbers(summary_: pd.DataFrame, items: pd.DataFrame | None = None) -> dict:
    """The prose's numbers: models, stories, judged completions, the verdict (and, with the
    ``items``, whether a configured judge failed) and the proxies' ranges."""
    judged = int(summary_.judged.sum()) if "judged" in summary_ else 0
    j = judge_stories({"summary": summary_, "items": items})
    out = dict(n_models=len(summary_), n_stories=int(summary_.n.max()), judged=judged, verdict_stories=j.verdict,
               judge_text=j.ours, reason_stories=j.reason, ppl_min=summary_.scorer_ppl.min(),
               ppl_max=summary_.scorer_ppl.max(), rep_min=summary_.repetition_4.min(),
               rep_max=summary_.repetition_4.max(), unit=j.test.unit if j.test else "—",
               by_seeds=bool(j.test is BY_SEEDS), min_units=BY_SEEDS.min_units)
    st = seed_table(summary_)
    zoo_arms = st[st.seed_list != "—"]
    sd = zoo_arms.get("scorer_ppl sd", pd.Series(dtype=float))
    out.update(seeds_min=int(zoo_arms.seeds.min()) if len(zoo_arms) else 0,
               seeds_max=int(zoo_arms.seeds.max()) if len(zoo_arms) else 0,
               ppl_sd_min=float(sd.min()) if sd.notna().any() else math.nan,
               ppl_sd_max=float(sd.max()) if sd.notna().any() else math.nan,
               seed_ppl_text="; ".join(f"{r['arm']} {pm(r['scorer_ppl'], r['scorer_ppl sd'], '.2f')}"
                                       for _, r in zoo_arms.iterrows()) or "no zoo arm")
    return out


#: the automatic proxies per model (the summary's columns) summarised over seeds
PROXIES = {"scorer_ppl": "scorer ppl (proxy)", "distinct_2": "distinct-2 (proxy)", "repetition_4": "repetition (proxy)"}


def seed_table(summary_: pd.DataFrame) -> pd.DataFrame:
    """Per arm (size × variant): the seeds and, for each judge grade present and each automatic
    proxy (scorer perplexity, distinct-2, repetition), its mean, standard deviation and range over
    the seeds (:func:`lin_utils.pages._zoo_pairs.seed_summary`)."""
    judged = "judged" in summary_ and summary_.judged.sum() > 0
    cols = [c for c in ((*GRADES,) if judged else ()) + tuple(PROXIES) if c in summary_]
    return seed_summary(summary_, cols)


def seeds_summary(summary_: pd.DataFrame) -> pd.DataFrame:
    """Mean ± standard deviation over seeds, one row per arm (size × variant, its seeds): the judge
    grades when there are any, then the automatic proxies."""
    st = seed_table(summary_)
    out = pd.DataFrame({"arm": st.arm, "seeds": st.seed_list})
    for c in [c for c in st.columns if c in GRADES or c in PROXIES]:
        fmt = ".2f" if c in GRADES or c == "scorer_ppl" else ".3f"
        out[PROXIES.get(c, c)] = [pm(r[c], r[f"{c} sd"], fmt) for _, r in st.iterrows()]
    return out


def differences(config: StoriesConfig, summary_: pd.DataFrame) -> str:
    """"How this differs from the paper", generated from the configuration and the summary."""
    judged = int(summary_.judged.sum()) if "judged" in summary_ else 0
    judge = (f"graded by {config.judge_model or 'the configured judge'} ({judged:,} completions)" if judged
             else "no judge configured, so no grades: automatic proxies only, which give no verdict")
    return ("**How this differs from the paper.** "
            f"Here: {zoo_models_text(config.models)}; {int(summary_.n.max())} held-out TinyStories openings per "
            f"model, up to {config.max_new_tokens} new tokens sampled at temperature {config.temperature:g} (top-k "
            f"{config.top_k}, sampling seed {config.seed}); {judge}; "
            f"{replication_text(config.models, 'opening', BY_SEEDS.min_units)}. The paper: Mistral models of 150M and "
            "650M parameters pretrained on TinyStories, one training run per arm, completions graded by GPT-4 for "
            "grammar, creativity, consistency and plot with the TinyStories rubric, one number per model and grade, "
            "without standard errors.")


def summary(summary_: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 3 layout: one row per model, the four judge columns, then the proxies."""
    def pm(col):
        return [f"{m:.2f} ± {e:.2f}" if pd.notna(m) and pd.notna(e) else ("—" if pd.isna(m) else f"{m:.2f}")
                for m, e in zip(summary_[col], summary_.get(f"{col}_se", pd.Series(np.nan, index=summary_.index)))]
    out = pd.DataFrame({"model": summary_.model.str.replace("zoo:", "", regex=False)})
    if "judged" in summary_ and summary_.judged.sum() > 0:  # without a judge the four columns are empty
        for col in GRADES:
            out[col] = pm(col)
    out["scorer ppl (proxy)"] = summary_.scorer_ppl
    out["distinct-2 (proxy)"] = pm("distinct_2")
    out["repetition (proxy)"] = pm("repetition_4")
    out.attrs["formats"] = {"scorer ppl (proxy)": ".2f"}
    return out


def page_numbers(t: dict) -> dict:
    """The glued numbers from what :func:`tables` returns."""
    return numbers(t["summary"], t["items"])


def show(config: StoriesConfig, *, profile: str, force: bool = False) -> dict[str, pd.DataFrame]:
    t = tables(config, profile=profile, force=force)
    glue_markdown("differences", differences(config, t["summary"]))
    glue_markdown("seeds", md_table(seeds_summary(t["summary"])))
    arms = {m: arm_label(m) for m in t["summary"].model}
    figure_page(NAME, profile, plots.story_quality_by_seed(t["summary"], arms), numbers=page_numbers(t),
                summary=summary(t["summary"]), table=t["items"][ITEM_COLUMNS])
    return t
