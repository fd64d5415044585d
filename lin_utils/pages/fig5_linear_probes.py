"""Fig 5: linear-probe accuracy on xStoryCloze-en at every block boundary of the zoo's baseline and
cosine-regularized models.

The claim is judged item by item: both models' probes predict the same test examples, so the
cosine model is compared with its baseline by a paired test over stories (a story's two endings
are one unit): per story, the mean over boundaries and its two examples of (cosine correct −
baseline correct); the effect is its mean and the standard error sd/sqrt(stories)
(:func:`lin_utils.pages._zoo_pairs.paired`), which accounts for the correlation between
boundaries that the per-boundary binomial errors ignore.

That paired test runs inside each training-run pair (a baseline and its cosine model of the same
size and seed). The claim's unit of replication is the pair (:data:`TEST`): its effect is the
mean of the pairs' gains and its standard error their spread over seeds (which holds each seed's
story noise too). With fewer pairs than the test needs (one seed per arm) the claim falls back to
the pairs' story-level standard errors pooled over sizes (:data:`BY_STORIES`), and says so.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from .. import plots
from ..book.glue import figure_page, glue_markdown
from ..book.tables import md_table
from ..claims import MDE_Z, NOT_RUN, Claim, Evidence, Judgement, Test, judge_effect
from ..experiments.evaluation import ProbesConfig, probe_accuracy, probe_items
from . import name_of
from ._zoo_pairs import (seed_numbers_of, COSINE, arm_label, paired, pm, pooled, replication_text, seed_summary, size_pairs,
                         zoo_models_text)

NAME = name_of(__name__)
CONFIG = ProbesConfig(models=("zoo:cpu-large-baseline", "zoo:cpu-large-baseline-s1",
                              "zoo:cpu-large-baseline-s2", "zoo:cpu-large-cos0.5", "zoo:cpu-large-cos0.5-s1",
                              "zoo:cpu-large-cos0.5-s2"), max_train=None, max_test=None,
                      cv=5, C=1.0, batch_size=16, seed=0, device="cpu")

#: the full table's columns
PROBE_COLUMNS = ["model", "boundary", "test_acc", "test_se", "cv_mean", "cv_std", "n_train", "n_test", "chance", "d"]


def tables(config: ProbesConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> dict[str, pd.DataFrame] | None:
    """``{"probes": one row per (model, boundary), "items": one row per (model, boundary, test
    example) or None when not stored}``: :func:`lin_utils.experiments.probe_accuracy` and
    :func:`lin_utils.experiments.probe_items`."""
    table = probe_accuracy(config, profile=profile, force=force, cache_only=cache_only, progress=progress)
    if table is None:
        return None
    items = probe_items(config, profile=profile, cache_only=True)  # computed with the accuracies (same key)
    return {"probes": table, "items": items}


#: the claim's test: one unit per training-run pair (a baseline and its cosine model of one size and seed)
TEST = BY_SEEDS = Test(
    quantity="probe test accuracy averaged over block boundaries, cosine − baseline, in points, averaged over the "
             "training-run pairs (a baseline and its cosine model of the same size and seed; inside a pair both "
             "probes predict the same test examples)",
    direction=+1, unit="training-run pairs (size × seed)", paper_effect=None, paper_source="")
#: the fallback with fewer training-run pairs than :data:`BY_SEEDS` needs (one seed per arm)
BY_STORIES = Test(
    quantity="probe test accuracy averaged over block boundaries, cosine − baseline, in points (paired: the same "
             "test examples), pooled over the zoo sizes (too few training-run pairs: the spread is over stories, "
             "not over training runs)",
    direction=+1, unit="stories (paired; a story's two endings are one unit)", paper_effect=None,
    paper_source="")

#: chance of a probe: every story has one right and one wrong ending
CHANCE = 50.0


def _joined(items: pd.DataFrame, base: str, model: str) -> pd.DataFrame:
    a = items.loc[items.model == model, ["boundary", "item", "story", "pred", "correct"]]
    b = items.loc[items.model == base, ["boundary", "item", "pred", "correct"]]
    return a.merge(b, on=["boundary", "item"], suffixes=("_m", "_b")).set_index(["boundary", "item"])


def item_comparison(items: pd.DataFrame, variant: str = COSINE) -> pd.DataFrame:
    """Per zoo size and boundary: the cosine model's probe against its baseline's on the same test
    examples, paired over stories: ``size, model, baseline, boundary, n`` (stories), both
    accuracies, ``effect, se, mde, z`` (points), ``better``/``worse`` (examples one probe gets right
    and the other wrong) and ``same_answers`` (the two probes predict every example alike)."""
    rows = []
    for size, base, model in size_pairs(items.model, variant):
        j = _joined(items, base, model)
        for b, g in j.groupby(level="boundary"):
            d = (g.correct_m - g.correct_b).groupby(g.story).mean()
            effect, se, n = paired(d)
            rows.append(dict(size=size, model=model, baseline=base, boundary=int(b), n=n,
                             model_acc=100 * g.correct_m.mean(), baseline_acc=100 * g.correct_b.mean(),
                             effect=effect, se=se, mde=MDE_Z * se, z=effect / se if se > 0 else math.nan,
                             better=int((g.correct_m > g.correct_b).sum()), worse=int((g.correct_m < g.correct_b).sum()),
                             same_answers=bool((g.pred_m == g.pred_b).all())))
    return pd.DataFrame(rows, columns=["size", "model", "baseline", "boundary", "n", "model_acc", "baseline_acc",
                                       "effect", "se", "mde", "z", "better", "worse", "same_answers"])


def mean_comparison(items: pd.DataFrame, variant: str = COSINE) -> pd.DataFrame:
    """Per zoo size: the accuracy averaged over boundaries, cosine − baseline, paired over stories
    (per story, the mean over boundaries and endings of the difference), with the baseline's own
    mean and standard error over stories and whether it is within 2 standard errors of chance;
    ``constant``: the probes answer every example alike, or each predicts one label throughout."""
    rows = []
    for size, base, model in size_pairs(items.model, variant):
        j = _joined(items, base, model)
        d = (j.correct_m - j.correct_b).groupby(j.story).mean()
        effect, se, n = paired(d)
        bm, bse, _ = paired(j.correct_b.groupby(j.story).mean())
        same = bool((j.pred_m == j.pred_b).all())
        one = bool(j.groupby(level="boundary").pred_m.nunique().eq(1).all()
                   and j.groupby(level="boundary").pred_b.nunique().eq(1).all())
        rows.append(dict(size=size, model=model, baseline=base, n=n, boundaries=j.index.get_level_values(0).nunique(),
                         effect=effect, se=se, mde=MDE_Z * se, z=effect / se if se > 0 else math.nan,
                         baseline_mean=bm, baseline_se=bse, at_chance=abs(bm - CHANCE) <= 2 * bse,
                         constant=same or one))
    return pd.DataFrame(rows, columns=["size", "model", "baseline", "n", "boundaries", "effect", "se", "mde", "z",
                                       "baseline_mean", "baseline_se", "at_chance", "constant"])


def paired_evidence(items: pd.DataFrame) -> tuple[Test, Evidence, pd.DataFrame] | None:
    """The claim's test and :class:`Evidence`, with the per-pair rows (:func:`mean_comparison`);
    None without a pair.

    With at least ``BY_SEEDS.min_units`` training-run pairs (size × seed): :data:`BY_SEEDS`, the
    mean of the informative pairs' gains and its standard error over the pairs
    (:meth:`Evidence.of`), ``n`` the pairs; with fewer: :data:`BY_STORIES`, the gains pooled with
    their story-level standard errors, ``n`` the stories. Either way ``at_chance`` when the
    baselines' pooled mean is within 2 (story-level) standard errors of chance, and ``constant``
    when every pair's probes answer alike (or each predicts one label throughout)."""
    m = mean_comparison(items)
    if m.empty:
        return None
    by_seeds = len(m) >= BY_SEEDS.min_units
    test = BY_SEEDS if by_seeds else BY_STORIES
    use = m[~m.constant]
    if use.empty:
        return test, Evidence(0.0, 0.0, len(m) if by_seeds else int(m.n.sum()), constant=True), m
    bm, bse = pooled(list(use.baseline_mean), list(use.baseline_se))
    at_chance = abs(bm - CHANCE) <= 2 * bse
    if by_seeds:
        return test, dataclasses.replace(Evidence.of(use.effect), at_chance=at_chance), m
    effect, se = pooled(list(use.effect), list(use.se))
    return test, Evidence(effect, se, int(use.n.sum()), at_chance=at_chance), m


def _pair_text(r) -> str:
    return (f"{r.size}: {r.effect:+.1f} ± {r.se:.1f} points over {r.boundaries} boundaries and {r.n:,} stories "
            f"(MDE {r.mde:.1f}; baseline {r.baseline_mean:.1f} ± {r.baseline_se:.1f} against chance {CHANCE:.0f}"
            + ("; the two probes answer alike: no information" if r.constant else "") + ")")


def arm_effects(m: pd.DataFrame) -> pd.DataFrame:
    """Per zoo size (every seed of it): the informative pairs, their mean gain and its standard
    deviation over seeds (points; NaN with one seed)."""
    use = m[~m.constant].assign(arm=lambda t: [arm_label(b).split(" ")[0] for b in t.baseline])
    return use.groupby("arm", sort=False).effect.agg(pairs="size", mean="mean", sd="std").reset_index()


def paired_text(m: pd.DataFrame, ev: Evidence, test: Test = BY_SEEDS) -> str:
    """The paired comparison in a sentence. By seeds: the mean over the training-run pairs with its
    standard error over them, per size the mean ± sd over seeds, then each pair (its gain ± its
    story-level standard error); by stories: per pair, then pooled over sizes."""
    if test is BY_SEEDS:
        if ev.constant:
            return f"{len(m)} {test.unit}, in none of which the probes differ: " + "; ".join(map(_pair_text,
                                                                                             m.itertuples()))
        if ev.n < 2:  # one informative pair: no spread over pairs to estimate
            return (f"{ev.effect:+.1f} points from the only informative training-run pair of {len(m)}: no standard "
                    "error over pairs; per pair (± its standard error over the items): "
                    + ", ".join(_pair_text(r) for r in m.itertuples()))
        arms = "; ".join(f"{r.arm} {r.mean:+.1f} ± {r.sd:.1f} (sd over {r.pairs} seeds)" if r.pairs > 1
                         else f"{r.arm} {r.mean:+.1f} (one seed)" for r in arm_effects(m).itertuples())
        return (f"{ev.effect:+.1f} ± {ev.se:.1f} points, the mean over {ev.n} {test.unit} with its standard error "
                f"over the pairs (MDE {ev.mde:.1f}); per size, mean ± sd over seeds: {arms}; per pair (± its standard error over "
                f"stories): " + ", ".join(f"{r.size} {r.effect:+.1f} ± {r.se:.1f}"
                                          + (" (probes alike: left out)" if r.constant else "")
                                          for r in m.itertuples()))
    parts = [_pair_text(r) for r in m.itertuples()]
    if len(m) > 1:
        parts.append(f"pooled over sizes {ev.effect:+.1f} ± {ev.se:.1f} points (MDE {ev.mde:.1f})")
    return (f"{len(m)} training-run pair{'s' if len(m) != 1 else ''}, fewer than {BY_SEEDS.min_units}: standard "
            f"errors over stories, not over training runs; " + "; ".join(parts))


def judge_paired(t) -> Judgement:
    """The claim's verdict: the paired comparison over stories of the cosine models' probes."""
    items = t.get("items") if isinstance(t, dict) else None
    if items is None:
        return Judgement("—", NOT_RUN, "its per-example table (items) is not computed yet")
    found = paired_evidence(items)
    if found is None:
        return Judgement("no baseline / cosine pair in the table", NOT_RUN, "no baseline / cosine pair")
    test, ev, m = found
    return judge_effect(test, ev, paired_text(m, ev, test))


def pairs(table: pd.DataFrame) -> list[dict]:
    """Per zoo size: mean probe test accuracy over boundaries of the baseline and the cosine
    model, the difference, how many boundaries favour the cosine model, and z = diff / the mean
    per-boundary standard error of the difference (conservative: boundaries are correlated)."""
    out = []
    for size, base, cos in size_pairs(table.model):
        a = table[table.model == base].set_index("boundary")
        b = table[table.model == cos].set_index("boundary")
        common = a.index.intersection(b.index)
        a, b = a.loc[common], b.loc[common]
        diff = b.test_acc - a.test_acc
        se = np.sqrt(a.test_se**2 + b.test_se**2).mean()
        out.append(dict(size=size, baseline=a.test_acc.mean(), cosine=b.test_acc.mean(), diff=diff.mean(),
                        z=diff.mean() / se, higher=int((diff > 0).sum()), n=len(common)))
    return out


def pairs_text(table: pd.DataFrame) -> str:
    """The unpaired comparison (binomial errors per boundary), per size."""
    return "; ".join(f"{p['size']}: mean test accuracy {p['baseline']:.3f} baseline, {p['cosine']:.3f} cosine "
                     f"({p['diff']:+.3f}, z = {p['z']:+.1f} unpaired; higher at {p['higher']} of {p['n']} boundaries)"
                     for p in pairs(table))


CLAIMS = [
    Claim("Fig 5", "The regularizer raises linear-probe accuracy on xStoryCloze", "higher per-layer probe accuracy",
          "", judge_paired, order=80, test=TEST),
]


def numbers(table: pd.DataFrame, items: pd.DataFrame | None = None) -> dict:
    """Fig 5's prose: the best boundary of any model, each size's baseline/cosine means (unpaired),
    the paired comparison (effect, standard error, MDE) and the verdict."""
    best = table.loc[table.test_acc.idxmax()]
    out = dict(n_models=table.model.nunique(), best_acc=best.test_acc, best_model=best.model.replace("zoo:", ""),
               best_boundary=int(best.boundary), acc_min=table.test_acc.min(), n_test=int(table.n_test.max()),
               n_train=int(table.n_train.max()), se=float(table.test_se.mean()))
    j = judge_paired({"items": items})
    ev = j.evidence
    out.update(verdict_probes=j.verdict, reason_probes=j.reason, paired_text=j.ours, pairs_text=pairs_text(table),
               effect=ev.effect if ev else math.nan, se_paired=ev.se if ev else math.nan,
               mde=ev.mde if ev else math.nan, n_units=ev.n if ev else 0, unit=j.test.unit if j.test else "—",
               by_seeds=bool(j.test is BY_SEEDS), min_units=BY_SEEDS.min_units)
    out.update(seed_numbers(table))
    return out


def seed_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per arm (size × variant): the seeds and, at every block boundary and averaged over the
    boundaries, the test accuracy's mean, standard deviation and range over the seeds (columns
    ``b0``, ``b1``... and ``mean``; see :func:`lin_utils.pages._zoo_pairs.seed_summary`)."""
    wide = table.pivot_table(index="model", columns="boundary", values="test_acc", sort=False)
    wide.columns = [f"b{int(b)}" for b in wide.columns]
    wide["mean"] = wide.mean(axis=1)
    wide = wide.reindex(list(dict.fromkeys(table.model))).reset_index()
    return seed_summary(wide, [c for c in wide.columns if c != "model"])


def seed_numbers(table: pd.DataFrame) -> dict:
    """The seeds in the prose: seeds per arm (fewest, most), the largest and smallest standard
    deviation over seeds of an arm's accuracy averaged over boundaries, and each arm's mean ± sd."""
    return seed_numbers_of(seed_table(table))


def seeds_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± standard deviation over seeds of the test accuracy: one row per block boundary (and
    their mean), one column per arm (its seeds in the header)."""
    st = seed_table(table)
    cols = [c for c in st.columns if c.startswith("b") and c[1:].isdigit()] + ["mean"]
    out = pd.DataFrame({"boundary": [c[1:] for c in cols[:-1]] + ["mean over boundaries"]})
    for _, r in st.iterrows():
        head = f"{r['arm']} (seeds {r['seed_list']})" if r["seed_list"] != "—" else r["arm"]
        out[head] = [pm(r[c], r[f"{c} sd"]) for c in cols]
    return out


def paired_table(items: pd.DataFrame) -> pd.DataFrame:
    """Per boundary and on the mean: cosine − baseline, paired over stories (points)."""
    ic = item_comparison(items)
    m = mean_comparison(items)
    rows = [{"model": r.model.replace("zoo:", ""), "boundary": str(r.boundary), "stories": r.n,
             "baseline": r.baseline_acc, "cosine": r.model_acc, "cosine − baseline": f"{r.effect:+.1f} ± {r.se:.1f}",
             "MDE": r.mde, "better / worse": f"{r.better} / {r.worse}"} for r in ic.itertuples()]
    rows += [{"model": r.model.replace("zoo:", ""), "boundary": "mean", "stories": r.n, "baseline": r.baseline_mean,
              "cosine": r.baseline_mean + r.effect, "cosine − baseline": f"{r.effect:+.1f} ± {r.se:.1f}", "MDE": r.mde,
              "better / worse": ""} for r in m.itertuples()]
    out = pd.DataFrame(rows)
    out.attrs["formats"] = {"stories": ",d", "baseline": ".1f", "cosine": ".1f", "MDE": ".1f"}
    return out


def differences(config: ProbesConfig, table: pd.DataFrame) -> str:
    """"How this differs from the paper", generated from the configuration and the table."""
    n_train, n_test = int(table.n_train.max()), int(table.n_test.max())
    return ("**How this differs from the paper.** "
            f"Here: {zoo_models_text(config.models)}; probes (standardized features, logistic regression, C = "
            f"{config.C:g}) on the residual stream at every block boundary, mean-pooled over the ending's tokens, "
            f"trained on {n_train:,} en_train examples and tested on {n_test:,} en_eval examples (two per story), "
            f"once per model; {replication_text(config.models, 'story', BY_SEEDS.min_units)}. The paper: Mistral "
            f"models of 150M and 650M parameters pretrained on TinyStories, one training run per arm, probes per "
            f"layer on xStoryCloze; its pooling and splits are not stated in the text, and it reports no error bars.")


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model: test accuracy at the first, best and last boundary, and the mean over boundaries."""
    rows = []
    for m, g in table.groupby("model", sort=False):
        g = g.sort_values("boundary")
        best = g.loc[g.test_acc.idxmax()]
        rows.append({"model": m.replace("zoo:", ""), "boundaries": len(g), "embeddings": g.test_acc.iloc[0],
                     "best": best.test_acc, "best boundary": int(best.boundary), "last": g.test_acc.iloc[-1],
                     "mean": g.test_acc.mean(), "CV mean": g.cv_mean.mean()})
    out = pd.DataFrame(rows)
    out.attrs["formats"] = {"boundaries": "d", "best boundary": "d"}
    return out


def page_numbers(t: dict) -> dict:
    """The glued numbers from what :func:`tables` returns."""
    return numbers(t["probes"], t.get("items"))


def show(config: ProbesConfig, *, profile: str, force: bool = False) -> dict[str, pd.DataFrame]:
    t = tables(config, profile=profile, force=force)
    table, items = t["probes"], t["items"]
    glue_markdown("differences", differences(config, table))
    glue_markdown("paired", md_table(paired_table(items)) if items is not None
                  else "The per-example predictions are not stored yet.")
    glue_markdown("seeds", md_table(seeds_summary(table)))
    arms = {m: arm_label(m) for m in table.model.unique()}
    figure_page(NAME, profile, plots.probe_accuracy_by_seed(table, arms), numbers=page_numbers(t),
                summary=summary(table),
                table=table[PROBE_COLUMNS])
    return t
