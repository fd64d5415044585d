"""Table 2: zero-shot SuperGLUE and xStoryCloze scores of the zoo's regularized models and baselines.

Inside each training-run pair (a baseline and its regularized model of the same size and seed)
the models are compared item by item on the same documents (:func:`item_comparison`, a paired
test: the mean per-document difference and its standard error, McNemar's test in its normal form
for 0/1 scores), per task and on the mean over tasks (:func:`mean_comparison`). A task on which
the two models give the same answer to every document, or each gives one answer to every
document, carries no information about the comparison: it is flagged and left out of the mean,
and the page says so.

The claim's unit of replication is the training-run pair (:data:`TEST`): its effect is the mean
over the (size, seed) pairs of each pair's mean gain and its standard error their spread over
seeds (which holds each seed's item noise too). With fewer pairs than the test needs (one seed
per arm) the claim falls back to the pairs' item-level standard errors pooled over sizes
(:data:`BY_DOCUMENTS`), and says so.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from .. import paper, plots
from ..book.glue import figure_page, glue_markdown
from ..book.tables import md_table
from ..claims import MDE_Z, NOT_RUN, Claim, Evidence, Judgement, Test, judge_effect
from ..experiments.evaluation import HEADLINE, BenchmarksConfig, benchmark_items, benchmark_scores, table2_layout
from . import name_of
from ._zoo_pairs import (seed_numbers_of, COSINE, REGULARIZED, arm_label, compare_to_baseline, paired, pm, pooled,
                         replication_text, seed_summary, size_groups, size_label, size_pairs, variant_label,
                         zoo_models_text)

NAME = name_of(__name__)
CONFIG = BenchmarksConfig(
    models=("zoo:cpu-small-baseline", "zoo:cpu-small-baseline-s1", "zoo:cpu-small-baseline-s2",
            "zoo:cpu-small-cos0.5", "zoo:cpu-small-cos0.5-s1", "zoo:cpu-small-cos0.5-s2",
            "zoo:cpu-small-mse0.5", "zoo:cpu-small-mse0.5-s1", "zoo:cpu-small-mse0.5-s2",
            "zoo:cpu-small-mse2.0", "zoo:cpu-small-mse2.0-s1", "zoo:cpu-small-mse2.0-s2",
            "zoo:cpu-large-baseline", "zoo:cpu-large-baseline-s1", "zoo:cpu-large-baseline-s2",
            "zoo:cpu-large-cos0.5", "zoo:cpu-large-cos0.5-s1", "zoo:cpu-large-cos0.5-s2", "stories260K"),
    tasks=("boolq", "cb", "copa", "multirc", "record", "rte", "wic", "xstorycloze_en"),
    limit=200, batch_size=32, max_length=None, seed=0, device="cpu")


def tables(config: BenchmarksConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> dict[str, pd.DataFrame] | None:
    """``{"scores": one row per (model, task, metric), "layout": the paper's layout, "items": one
    row per (model, task, document) or None when not stored}``
    (:func:`lin_utils.experiments.benchmark_scores`, :func:`lin_utils.experiments.table2_layout`,
    :func:`lin_utils.experiments.benchmark_items`)."""
    scores = benchmark_scores(config, profile=profile, force=force, cache_only=cache_only, progress=progress)
    if scores is None:
        return None
    items = benchmark_items(config, profile=profile, cache_only=True)  # computed with the scores (same key)
    return {"scores": scores, "layout": table2_layout(scores), "items": items}


#: the paper's Table 2 mean gains of the cosine models, stored with their source (data/paper/table2.csv)
PAPER_MEAN_GAINS = paper.table2_mean_effects()

_PAPER = dict(paper_effect=float(PAPER_MEAN_GAINS.value.min()),
              paper_source="the smaller of the paper's Table 2 mean gains, data/paper/table2.csv")

#: the claim's test: one unit per training-run pair (a baseline and its cosine model of one size and seed)
TEST = BY_SEEDS = Test(
    quantity="Table 2 mean score, cosine − baseline, in points, averaged over the training-run pairs (a baseline "
             "and its cosine model of the same size and seed); each pair's gain is the mean over tasks of the "
             "paired per-document difference, tasks on which the two models answer every document alike left out",
    direction=+1, unit="training-run pairs (size × seed)", **_PAPER)
#: the fallback with fewer training-run pairs than :data:`BY_SEEDS` needs (one seed per arm)
BY_DOCUMENTS = Test(
    quantity="Table 2 mean score, cosine − baseline, in points (the mean over tasks of the paired per-document "
             "difference; tasks on which the two models answer every document alike left out), pooled over the "
             "zoo sizes (too few training-run pairs: the spread is over documents, not over training runs)",
    direction=+1, unit="documents (paired: both models on the same documents)", **_PAPER)

#: the per-task comparison's columns
ITEM_COLUMNS = ["size", "variant", "model", "baseline", "task", "n", "model_score", "baseline_score", "baseline_se",
                "chance", "effect", "se", "mde", "z", "better", "worse", "same_answers", "same_scores",
                "model_constant", "baseline_constant", "constant"]


def _chance(scores: pd.DataFrame | None) -> dict[str, float]:
    if scores is None:
        return {}
    head = scores[[HEADLINE.get(t, "acc") == m for t, m in zip(scores.task, scores.metric)]]
    return {t: 100 * float(c) for t, c in head.groupby("task").chance.first().items()}


def item_comparison(items: pd.DataFrame, scores: pd.DataFrame | None = None,
                    variants=REGULARIZED) -> pd.DataFrame:
    """Each regularized model against its baseline of the same size, task by task, on the same
    documents (a paired test, :func:`lin_utils.pages._zoo_pairs.paired`).

    Returns one row per (model, task) (:data:`ITEM_COLUMNS`), in points: both scores, the
    baseline's standard error, the chance level (from ``scores``), the effect (model − baseline),
    its standard error, MDE (2.8 se) and z; ``better``/``worse``: documents the model scores above
    / below its baseline (the discordant pairs); ``same_answers``: both give the same answer to
    every document; ``same_scores``: both score every document alike (no discordant document, so
    no variance to test with: ReCoRD's 32 passages); ``model_constant``/``baseline_constant``: the
    model gives one answer to every document; ``constant``: the comparison carries no information
    (same answers, same scores, or both constant).
    """
    chance = _chance(scores)
    models = list(dict.fromkeys(items.model))
    rows = []
    for variant in variants:
        for size, base, model in size_pairs(models, variant):
            cols = ["task", "doc_id", "pred", "value"]
            j = items.loc[items.model == model, cols].merge(items.loc[items.model == base, cols], on=["task", "doc_id"],
                                                            suffixes=("_m", "_b"))
            for task, g in j.groupby("task", sort=False):
                effect, se, n = paired(g.value_m - g.value_b)
                base_score, base_se, _ = paired(g.value_b)
                same = bool((g.pred_m == g.pred_b).all())
                alike = bool((g.value_m == g.value_b).all())  # no discordant document: nothing to test
                cm, cb = bool(g.pred_m.nunique() == 1), bool(g.pred_b.nunique() == 1)
                rows.append(dict(size=size, variant=variant, model=model, baseline=base, task=task, n=n,
                                 model_score=100 * float(g.value_m.mean()), baseline_score=base_score,
                                 baseline_se=base_se, chance=chance.get(task, math.nan), effect=effect, se=se,
                                 mde=MDE_Z * se, z=effect / se if se > 0 else math.nan,
                                 better=int((g.value_m > g.value_b).sum()), worse=int((g.value_m < g.value_b).sum()),
                                 same_answers=same, same_scores=alike, model_constant=cm, baseline_constant=cb,
                                 constant=same or alike or (cm and cb)))
    return pd.DataFrame(rows, columns=ITEM_COLUMNS)


MEAN_COLUMNS = ["size", "variant", "model", "baseline", "tasks", "left_out", "effect", "se", "mde", "z",
                "baseline_mean", "baseline_se", "chance_mean", "at_chance"]


def mean_comparison(cmp: pd.DataFrame) -> pd.DataFrame:
    """Per (model, baseline) of :func:`item_comparison`: the mean over the informative tasks (not
    ``constant``) of the per-task effects, its standard error sqrt(Σ se²)/k (tasks are scored on
    different documents: independent), MDE and z; ``left_out``: the constant tasks; and whether
    the baseline's mean over the same tasks is within 2 standard errors of their chance mean
    (``at_chance``)."""
    rows = []
    for (size, variant, model, base), g in cmp.groupby(["size", "variant", "model", "baseline"], sort=False):
        use = g[~g.constant]
        effect, se = pooled(list(use.effect), list(use.se))
        bm, bse = pooled(list(use.baseline_score), list(use.baseline_se))
        cm = float(use.chance.mean()) if len(use) else math.nan
        rows.append(dict(size=size, variant=variant, model=model, baseline=base, tasks=len(use),
                         left_out=", ".join(g[g.constant].task), effect=effect, se=se, mde=MDE_Z * se,
                         z=effect / se if se and se > 0 else math.nan, baseline_mean=bm, baseline_se=bse,
                         chance_mean=cm, at_chance=bool(len(use)) and abs(bm - cm) <= 2 * bse))
    return pd.DataFrame(rows, columns=MEAN_COLUMNS)


def paired_evidence(items: pd.DataFrame, scores: pd.DataFrame | None = None,
                    variant: str = COSINE) -> tuple[Test, Evidence, pd.DataFrame] | None:
    """The claim's test and :class:`Evidence`, with the per-pair rows (:func:`mean_comparison`);
    None without a pair.

    With at least ``BY_SEEDS.min_units`` training-run pairs (size × seed) in the table:
    :data:`BY_SEEDS`, the mean of the informative pairs' mean gains and its standard error over
    the pairs (:meth:`Evidence.of`), ``n`` the pairs. With fewer: :data:`BY_DOCUMENTS`, the gains
    pooled with their item-level standard errors (:func:`lin_utils.pages._zoo_pairs.pooled`),
    ``n`` the documents. Either way ``at_chance`` when the baselines' pooled mean over the
    informative tasks is within 2 (item-level) standard errors of their chance mean, and
    ``constant`` when no pair has an informative task."""
    m = mean_comparison(item_comparison(items, scores, variants=(variant,)))
    if m.empty:
        return None
    by_seeds = len(m) >= BY_SEEDS.min_units
    test = BY_SEEDS if by_seeds else BY_DOCUMENTS
    use = m[m.tasks > 0]
    n = len(m) if by_seeds else int(items[items.model.isin(m.model)].groupby("model").size().sum())
    if use.empty:
        return test, Evidence(0.0, 0.0, n, constant=True), m
    bm, bse = pooled(list(use.baseline_mean), list(use.baseline_se))
    at_chance = abs(bm - float(use.chance_mean.mean())) <= 2 * bse
    if by_seeds:
        return test, dataclasses.replace(Evidence.of(use.effect), at_chance=at_chance), m
    effect, se = pooled(list(use.effect), list(use.se))
    return test, Evidence(effect, se, n, at_chance=at_chance), m


def _pair_text(r, short: bool = False) -> str:
    if not r.tasks:
        return (f"{r.size}: no task carries information (constant answers, or no document scored differently: "
                f"{r.left_out})")
    if short:
        return (f"{r.size} {r.effect:+.1f} ± {r.se:.1f} over {r.tasks} task{'s' if r.tasks != 1 else ''}"
                + (f" (left out: {r.left_out})" if r.left_out else ""))
    left = (f"; left out, no information (constant answers, or no document scored differently): {r.left_out}"
            if r.left_out else "")
    return (f"{r.size}: {r.effect:+.1f} ± {r.se:.1f} points over {r.tasks} task{'s' if r.tasks != 1 else ''} (MDE {r.mde:.1f}; "
            f"baseline {r.baseline_mean:.1f} ± {r.baseline_se:.1f} against chance {r.chance_mean:.1f}{left})")


def arm_effects(m: pd.DataFrame) -> pd.DataFrame:
    """Per zoo size (every seed of it): the pairs, their mean gain and its standard deviation over
    seeds (points; NaN with one seed), from the informative pairs of :func:`mean_comparison`."""
    use = m[m.tasks > 0].assign(arm=lambda t: [arm_label(b).split(" ")[0] for b in t.baseline])
    return use.groupby("arm", sort=False).effect.agg(pairs="size", mean="mean", sd="std").reset_index()


def paired_text(m: pd.DataFrame, ev: Evidence, test: Test = BY_SEEDS) -> str:
    """The paired comparison in a sentence. By seeds: the mean over the training-run pairs with
    its standard error over them, then per size the mean ± sd over seeds, then each pair (its gain
    ± its item-level standard error); by documents: per pair, then pooled over sizes."""
    if test is BY_SEEDS:
        if ev.constant:
            return f"{len(m)} {test.unit}, none with an informative task: " + "; ".join(map(_pair_text, m.itertuples()))
        if ev.n < 2:  # one informative pair: no spread over pairs to estimate
            return (f"{ev.effect:+.1f} points from the only informative training-run pair of {len(m)}: no standard "
                    "error over pairs; per pair (± its standard error over the items): "
                    + ", ".join(_pair_text(r, short=True) for r in m.itertuples()))
        arms = "; ".join(f"{r.arm} {r.mean:+.1f} ± {r.sd:.1f} (sd over {r.pairs} seeds)" if r.pairs > 1
                         else f"{r.arm} {r.mean:+.1f} (one seed)" for r in arm_effects(m).itertuples())
        return (f"{ev.effect:+.1f} ± {ev.se:.1f} points, the mean over {ev.n} {test.unit} with its standard error "
                f"over the pairs (MDE {ev.mde:.1f}), against the paper's {test.paper_effect:+.1f}; per size, mean ± sd over seeds: "
                f"{arms}; per pair (± its standard error over documents): "
                + ", ".join(_pair_text(r, short=True) for r in m.itertuples()))
    parts = [_pair_text(r) for r in m.itertuples()]
    pooled_ = (f"pooled over sizes {ev.effect:+.1f} ± {ev.se:.1f} points (MDE {ev.mde:.1f}) against the paper's "
               f"{test.paper_effect:+.1f}" if len(m) > 1 else "")
    return (f"{len(m)} training-run pair{'s' if len(m) != 1 else ''}, fewer than {BY_SEEDS.min_units}: standard errors "
            f"over documents, not over training runs; " + "; ".join(parts + ([pooled_] if pooled_ else [])))


def judge_paired(tables_: dict) -> Judgement:
    """The claim's verdict: the paired comparison of the cosine models with their baselines."""
    items = tables_.get("items") if isinstance(tables_, dict) else None
    if items is None:
        return Judgement("—", NOT_RUN, "its per-document table (items) is not computed yet")
    found = paired_evidence(items, tables_.get("scores"))
    if found is None:
        return Judgement("no baseline / cosine pair in the table", NOT_RUN, "no baseline / cosine pair")
    test, ev, m = found
    return judge_effect(test, ev, paired_text(m, ev, test))


def pairs(layout: pd.DataFrame) -> list[dict]:
    """Per zoo size: the baseline's and the cosine model's Table 2 mean, their difference and z."""
    t = layout.set_index("model")
    out = []
    for size, base, cos in size_pairs(t.index):
        diff = t.at[cos, "mean"] - t.at[base, "mean"]
        se = float(np.hypot(t.at[cos, "mean se"], t.at[base, "mean se"]))
        out.append(dict(size=size, baseline=t.at[base, "mean"], cosine=t.at[cos, "mean"], diff=diff, z=diff / se))
    return out


def pairs_text(layout: pd.DataFrame) -> str:
    """The unpaired comparison of the Table 2 means (each model's own standard error), per size."""
    return "; ".join(f"{p['size']}: mean {p['baseline']:.3f} baseline, {p['cosine']:.3f} cosine "
                     f"({p['diff']:+.3f}, z = {p['z']:+.1f})" for p in pairs(layout))


CLAIMS = [
    Claim("Table 2", "The regularizer raises SuperGLUE scores",
          f"higher average score ({PAPER_MEAN_GAINS.value.min():+.1f} to {PAPER_MEAN_GAINS.value.max():+.1f} points)", "",
          judge_paired, order=90, test=TEST),
]


def constant_text(cmp: pd.DataFrame) -> str:
    """Which tasks carry no information, in how many of the regularized/baseline pairs."""
    if cmp.empty:
        return "no pair compared"
    n_pairs = cmp.groupby(["model", "baseline"]).ngroups
    per = cmp.groupby("task", sort=False).constant.sum()
    parts = [f"{t} ({int(k)} of {n_pairs})" for t, k in per.items() if k]
    return ", ".join(parts) if parts else "none"


def numbers(layout: pd.DataFrame, scores: pd.DataFrame, items: pd.DataFrame | None = None) -> dict:
    """Table 2's prose: how many cells sit within 2 standard errors of chance, how many
    regularized-vs-baseline differences exceed 2 standard errors (unpaired), the paired
    comparison (effect, standard error, MDE, the tasks left out) and the verdict."""
    t = layout.set_index("model")
    chance = t.loc["chance"]
    t = t.drop(index="chance")
    cols = [c for c in t.columns if not c.endswith(" se") and c != "mean"]
    near = [abs(t.at[m, c] - chance[c]) <= 2 * t.at[m, f"{c} se"] for m in t.index for c in cols]
    cmp = compare_to_baseline(layout)
    cmp = cmp[cmp.column != "mean"]
    n = scores.drop_duplicates("task").set_index("task").n
    j = judge_paired({"items": items, "scores": scores})
    ev = j.evidence
    out = dict(n_models=len(t), n_columns=len(cols), n_min=n.min(), n_max=n.max(),
               near_chance=int(sum(near)), n_cells=len(near), frac_near_chance=float(np.mean(near)),
               n_diffs=len(cmp), diffs_up=int((cmp.z > 2).sum()), diffs_down=int((cmp.z < -2).sum()),
               mean_min=t["mean"].min(), mean_max=t["mean"].max(), chance_mean=chance["mean"],
               seconds_max=scores.groupby("model").seconds.first().max(),
               near_chance_text=("most of these benchmarks cannot tell these models from guessing" if np.mean(near) > 0.5
                                 else "most cells are distinguishable from guessing"),
               verdict_benchmarks=j.verdict, reason_benchmarks=j.reason, paired_text=j.ours,
               pairs_text=pairs_text(layout), paper_effect=TEST.paper_effect,
               effect=ev.effect if ev else math.nan, se=ev.se if ev else math.nan, mde=ev.mde if ev else math.nan,
               n_units=ev.n if ev else 0, unit=j.test.unit if j.test else "—",
               by_seeds=bool(j.test is BY_SEEDS), min_units=BY_SEEDS.min_units, **seed_numbers(layout))
    if items is not None:
        ic = item_comparison(items, scores)
        out.update(constant_text=constant_text(ic), n_pairs=int(ic.groupby(["model", "baseline"]).ngroups),
                   n_task_pairs=len(ic), n_constant=int(ic.constant.sum()))
    else:
        out.update(constant_text="per-document answers not stored", n_pairs=0, n_task_pairs=0, n_constant=0)
    ev_paper = paper.evidence_table()
    ev_paper = ev_paper[ev_paper.artifact == "Table 2"]
    mean_rows = ev_paper[ev_paper.what.str.startswith("mean")]
    near_const = ev_paper[ev_paper.verdict == "at a constant answer"]
    out.update(paper_z_text="; ".join(f"{r.what}: {r.paper:+.1f} points, se ≤ {r.se:.2f}, z ≥ {r.z:.2f}, MDE ≤ "
                                      f"{r.mde:.1f}" for r in mean_rows.itertuples()),
               paper_constant_text="; ".join(f"{r.what.split(' against')[0]} {r.paper:.2f} against "
                                             f"{r.what.split('against ')[1]} (z = {r.z:+.2f})"
                                             for r in ev_paper[~ev_paper.what.str.startswith("mean")].itertuples()),
               paper_near_constant=len(near_const), paper_n_scores=int((~ev_paper.what.str.startswith("mean")).sum()))
    return out


def seed_table(layout: pd.DataFrame) -> pd.DataFrame:
    """Per arm (size × variant): the seeds, and for each column of the layout (and the mean) its
    mean, standard deviation, minimum and maximum over the seeds
    (:func:`lin_utils.pages._zoo_pairs.seed_summary`); a model outside the zoo is an arm of its own."""
    t = layout[layout.model != "chance"]
    return seed_summary(t, [c for c in t.columns if c != "model" and not c.endswith(" se")])


def seed_numbers(layout: pd.DataFrame) -> dict:
    """The seeds in the prose: seeds per arm (the fewest and the most over the zoo's arms), the
    largest and smallest standard deviation over seeds of an arm's mean score, and each zoo arm's
    mean score as mean ± sd over seeds."""
    return seed_numbers_of(seed_table(layout))


def seeds_summary(layout: pd.DataFrame, scores: pd.DataFrame) -> str:
    """Mean ± standard deviation over seeds, one table per zoo size (as :func:`summary`): one row
    per column of the layout (and the mean), one column per arm (its seeds in the header), the
    models outside the zoo beside the last size (their one run), then the chance level."""
    st = seed_table(layout).set_index("arm")
    t = layout.set_index("model")
    cols = [c for c in t.columns if not c.endswith(" se")]
    n = scores.drop_duplicates("task").set_index("task").n
    rows = [f"{c} (n = {int(n[c.split(' ')[0]]):,})" if c != "mean" and c.split(" ")[0] in n.index else c
            for c in cols]
    sizes: dict[str, list[str]] = {}
    for arm, r in st.iterrows():
        key = r["size"] if r.seed_list != "—" or not sizes else list(sizes)[-1]
        sizes.setdefault(key, []).append(arm)
    parts = []
    for size, arms in sizes.items():
        out = pd.DataFrame(index=rows)
        for arm in arms:
            r = st.loc[arm]
            head = (f"{r.variant} (seeds {r.seed_list})" if r.seed_list != "—" else arm)
            out[head] = [pm(r[c], r[f"{c} sd"]) for c in cols]
        out["chance"] = [f"{v:.3f}" for v in t.loc["chance", cols].to_numpy(dtype=float)]
        parts.append(f"**{size}**\n\n" + md_table(out.rename_axis("column").reset_index()))
    return "\n\n".join(parts)


def _left_out_why(r) -> str:
    if r.same_answers:
        return "left out: the same answer to every document"
    if r.model_constant and r.baseline_constant:
        return "left out: each gives one answer to every document"
    return "left out: no document scored differently"


def paired_table(items: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """The paired comparison for the page: one row per (regularized model, task) and its mean."""
    ic = item_comparison(items, scores)
    m = mean_comparison(ic)
    rows = []
    for r in ic.itertuples():
        rows.append({"model": r.model.replace("zoo:", ""), "task": r.task, "n": r.n,
                     "model − baseline (points)": _left_out_why(r) if r.constant else f"{r.effect:+.1f} ± {r.se:.1f}",
                     "MDE": math.nan if r.constant else r.mde, "better / worse": f"{r.better} / {r.worse}",
                     "baseline": r.baseline_score, "chance": r.chance})
    for r in m.itertuples():
        rows.append({"model": r.model.replace("zoo:", ""), "task": f"mean of {r.tasks}",
                     "n": int(ic[(ic.model == r.model) & ~ic.constant].n.sum()),
                     "model − baseline (points)": f"{r.effect:+.1f} ± {r.se:.1f}" if r.tasks else "no informative task",
                     "MDE": r.mde, "better / worse": "", "baseline": r.baseline_mean, "chance": r.chance_mean})
    out = pd.DataFrame(rows)
    out.attrs["formats"] = {"n": ",d", "MDE": ".1f", "baseline": ".1f", "chance": ".1f"}
    return out


def paper_table() -> pd.DataFrame:
    """The paper's own Table 2 numbers weighed by the same rule (:func:`lin_utils.paper.evidence_table`)."""
    t = paper.evidence_table()
    t = t[t.artifact == "Table 2"].drop(columns=["artifact"])
    t.attrs["formats"] = {"paper": ".2f", "se": ".2f", "z": "+.2f", "mde": ".2f"}
    return t


#: the paper's setup of Table 2 (its text)
PAPER_SETUP = ("Mistral models of 150M and 650M parameters pretrained on TinyStories, one training run per arm, "
               "scored zero-shot on the full validation sets")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def differences(config: BenchmarksConfig, scores: pd.DataFrame) -> str:
    """"How this differs from the paper", generated from the configuration and the scores."""
    n = scores.drop_duplicates("task").set_index("task")
    sizes = paper.TASK_SIZES
    scored = ", ".join(f"{t} {int(r.n):,} of {sizes.get(t, int(r.n_total)):,}" for t, r in n.iterrows())
    record = ("ReCoRD on its 32 labelled FewGLUE training passages (the mirror has no ReCoRD validation set); "
              if "record" in n.index and str(n.at["record", "split"]) != "validation" else "")
    cut = f"contexts cut to {config.max_length} tokens" if config.max_length else         "contexts left-truncated to each model's own context (256 tokens for the zoo)"
    return ("**How this differs from the paper.** "
            f"Here: {zoo_models_text(config.models)}; documents scored per task: {scored} "
            f"(lm-eval's limit {config.limit} takes the first documents); {record}CB scored as lm-eval's 3-class "
            f"accuracy (the mean uses it), MultiRC per answer option in lm-eval's built-in wording; {cut}; each "
            f"model scored once. {_sentence(replication_text(config.models, 'document', BY_SEEDS.min_units))}; "
            f"tasks with constant answers, or on which no document is scored differently, are left out. "
            f"The paper: {PAPER_SETUP}; it reports one number per cell, without standard errors or seeds.")


def summary(layout: pd.DataFrame, scores: pd.DataFrame) -> str:
    """The paper's layout transposed, one table per zoo size (so that each fits the text column):
    one row per task column (and the mean), one column per model, then the chance level. The row's
    label gives the documents scored and the largest standard error over the models (a task's n is
    the same for every model, so its standard errors differ little). Markdown, tables one below
    the other."""
    t = layout.set_index("model")
    cols = [c for c in t.columns if not c.endswith(" se")]
    n = scores.drop_duplicates("task").set_index("task").n
    models = [m for m in t.index if m != "chance"]
    se = {c: t.loc[models, f"{c} se"].max() for c in cols}
    rows = [f"{c} (n = {int(n[c.split(' ')[0]]):,}, se ≤ {se[c]:.3f})" if c != "mean" else f"mean (se ≤ {se[c]:.3f})"
            for c in cols]
    parts = []
    for group in size_groups(models):
        size = size_label(group[0])
        out = t.loc[group, cols].T.rename(columns=lambda m: variant_label(m) if size_label(m) == size
                                          else m.replace("zoo:", ""))
        out["chance"] = t.loc["chance", cols].to_numpy(dtype=float)
        out.index = rows
        parts.append(f"**{size}**\n\n" + md_table(out.rename_axis("column").reset_index(),
                                                 {c: ".3f" for c in out.columns}))
    return "\n\n".join(parts)


def full_table(scores: pd.DataFrame) -> pd.DataFrame:
    """The full table, one row per (model, task, metric): value ± standard error, chance, the
    documents scored out of the split's, and the split."""
    out = pd.DataFrame({
        "model": scores.model, "task": scores.task, "metric": scores.metric,
        "value ± se": [f"{v:.3f} ± {e:.3f}" for v, e in zip(scores.value, scores.stderr)],
        "chance": scores.chance, "n of total": [f"{n:,} of {t:,}" for n, t in zip(scores.n, scores.n_total)],
        "split": scores.split, "seconds": scores.seconds,
    })
    out.attrs["formats"] = {"chance": ".3f", "seconds": ".1f"}
    return out


def page_numbers(t: dict) -> dict:
    """The glued numbers from what :func:`tables` returns."""
    return numbers(t["layout"], t["scores"], t.get("items"))


def show(config: BenchmarksConfig, *, profile: str, force: bool = False) -> dict[str, pd.DataFrame]:
    t = tables(config, profile=profile, force=force)
    layout, scores, items = t["layout"], t["scores"], t["items"]
    glue_markdown("differences", differences(config, scores))
    glue_markdown("paired", md_table(paired_table(items, scores)) if items is not None
                  else "The per-document answers are not stored yet.")
    glue_markdown("paper_evidence", md_table(paper_table()))
    glue_markdown("seeds", seeds_summary(layout, scores))
    arms = {m: arm_label(m) for m in layout.model if m != "chance"}
    figure_page(NAME, profile, plots.benchmark_scores_by_seed(layout, arms), numbers=page_numbers(t),
                summary=summary(layout, scores), table=full_table(scores))
    return t
