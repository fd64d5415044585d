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

import math
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
    judged = t[t.judged > 0]  # a model the judge failed on has no grades: its pair is not compared
    grade = judged[["grammar", "creativity", "consistency", "plot"]].mean(axis=1)
    scores = dict(zip(judged.model, grade))
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


def _size_pairs(models, variant: str = "cos0.5") -> list[tuple[str, str, str]]:
    """(size, baseline, variant model) for each zoo size that has both, in order."""
    models = list(dict.fromkeys(models))
    return [(m[len("zoo:"):-len("-baseline")], m, m[: -len("baseline")] + variant) for m in models
            if m.startswith("zoo:") and m.endswith("-baseline") and m[: -len("baseline")] + variant in models]


def table2_pairs(layout: pd.DataFrame) -> list[dict]:
    """Per zoo size: the baseline's and the cosine model's Table 2 mean, their difference and z."""
    t = layout.set_index("model")
    out = []
    for size, base, cos in _size_pairs(t.index):
        diff = t.at[cos, "mean"] - t.at[base, "mean"]
        se = float(np.hypot(t.at[cos, "mean se"], t.at[base, "mean se"]))
        out.append(dict(size=size, baseline=t.at[base, "mean"], cosine=t.at[cos, "mean"], diff=diff, z=diff / se))
    return out


def judge_benchmarks(layout):
    pairs = table2_pairs(layout)
    if not pairs:
        return "no baseline / cosine pair in the table", NOT_RUN
    ours = "; ".join(f"{p['size']}: mean {p['baseline']:.3f} baseline, {p['cosine']:.3f} cosine "
                     f"({p['diff']:+.3f}, z = {p['z']:+.1f})" for p in pairs)
    return ours, _beyond_two_se(pairs)


def _beyond_two_se(pairs: list[dict]) -> str:
    """Replicated if the regularized model is ahead by more than 2 standard errors at every size,
    partly if at some, else not replicated."""
    above = sum(p["z"] > 2 for p in pairs)
    return REPLICATED if above == len(pairs) else PARTLY if above else NOT_REPLICATED


def fig5_pairs(table: pd.DataFrame) -> list[dict]:
    """Per zoo size: mean probe test accuracy over boundaries of the baseline and the cosine
    model, the difference, how many boundaries favour the cosine model, and z = diff / the mean
    per-boundary standard error of the difference (conservative: boundaries are correlated)."""
    out = []
    for size, base, cos in _size_pairs(table.model):
        a = table[table.model == base].set_index("boundary")
        b = table[table.model == cos].set_index("boundary")
        common = a.index.intersection(b.index)
        a, b = a.loc[common], b.loc[common]
        diff = b.test_acc - a.test_acc
        se = np.sqrt(a.test_se**2 + b.test_se**2).mean()
        out.append(dict(size=size, baseline=a.test_acc.mean(), cosine=b.test_acc.mean(), diff=diff.mean(),
                        z=diff.mean() / se, higher=int((diff > 0).sum()), n=len(common)))
    return out


def judge_probes(table):
    pairs = fig5_pairs(table)
    if not pairs:
        return "no baseline / cosine pair in the table", NOT_RUN
    ours = "; ".join(f"{p['size']}: mean test accuracy {p['baseline']:.3f} baseline, {p['cosine']:.3f} cosine "
                     f"({p['diff']:+.3f}, z = {p['z']:+.1f}; higher at {p['higher']} of {p['n']} boundaries)"
                     for p in pairs)
    return ours, _beyond_two_se(pairs)


def _benchmarks(p: dict, profile: str) -> pd.DataFrame | None:
    from .experiments.evaluation import table2_layout

    t = experiments.benchmark_scores(p["models"], p.get("tasks"), limit=p.get("limit"), max_length=p.get("max_length"),
                                     seed=p.get("seed", 0), profile=profile, cache_only=True)
    return None if t is None else table2_layout(t)


def _probes(p: dict, profile: str) -> pd.DataFrame | None:
    keys = ("max_train", "max_test", "cv", "C", "seed")
    return experiments.probe_accuracy(p["models"], **{k: p[k] for k in keys if k in p}, profile=profile, cache_only=True)


def _paper_rows(t: pd.DataFrame, method: str) -> pd.DataFrame:
    """The paper's criterion (most linear first) under ``method``, one row per (model, k)."""
    return t[(t.method == method) & (t.criterion == "linearity")].set_index(["model", "k"])


def pruning_comparisons(t: pd.DataFrame) -> pd.DataFrame:
    """For the paper's criterion, every (model, k >= 1, corpus): perplexity after removal, linear
    replacement and linear replacement + distillation of the same blocks."""
    rows = []
    rem, lin, dis = (_paper_rows(t, m) for m in ("remove", "linear", "distill"))
    for (model, k), r in rem.iterrows():
        if k < 1 or (model, k) not in lin.index:
            continue
        for corpus in ("wikitext", "tinystories"):
            col = f"ppl_{corpus}"
            rows.append(dict(model=model, k=int(k), corpus=corpus, blocks=r["blocks"], remove=r[col],
                             linear=lin.loc[(model, k), col],
                             distill=dis.loc[(model, k), col] if (model, k) in dis.index else np.nan))
    return pd.DataFrame(rows, columns=["model", "k", "corpus", "blocks", "remove", "linear", "distill"])


def judge_pruning_ppl(t):
    c = pruning_comparisons(t)
    c = c.dropna(subset=["distill"])
    if c.empty:
        return "no distilled model in the table", NOT_RUN
    wins, lin_wins = int((c.distill < c.remove).sum()), int((c.linear < c.remove).sum())
    ratio = np.exp(np.mean(np.log(c.distill / c.remove)))
    ours = (f"linear + distillation below removal in {wins} of {len(c)} (model, k, corpus) cases, linear maps alone in "
            f"{lin_wins} of {len(c)}; perplexity ratio distilled / removed {ratio:.2f} (geometric mean)")
    return ours, REPLICATED if wins == len(c) else PARTLY if wins else NOT_REPLICATED


def pruning_arc_comparisons(t: pd.DataFrame) -> pd.DataFrame:
    """For the paper's criterion, every (model, k >= 1) with ARC-Easy: accuracy after removal and
    after linear replacement + distillation, their difference and its standard error."""
    rem, dis = _paper_rows(t, "remove"), _paper_rows(t, "distill")
    rows = []
    for (model, k), r in rem.iterrows():
        if k < 1 or (model, k) not in dis.index or pd.isna(r["arc_acc"]):
            continue
        d = dis.loc[(model, k)]
        rows.append(dict(model=model, k=int(k), remove=r["arc_acc"], distill=d["arc_acc"], diff=d["arc_acc"] - r["arc_acc"],
                         se=float(np.hypot(r["arc_acc_se"], d["arc_acc_se"])), chance=r["arc_chance"]))
    return pd.DataFrame(rows, columns=["model", "k", "remove", "distill", "diff", "se", "chance"])


def judge_pruning_arc(t):
    c = pruning_arc_comparisons(t)
    if c.empty:
        return "no ARC-Easy result for a distilled model in the table", NOT_RUN
    better, worse = int((c["diff"] > 2 * c.se).sum()), int((c["diff"] < -2 * c.se).sum())
    ours = (f"accuracy difference distilled − removed {c['diff'].min():+.3f} to {c['diff'].max():+.3f} over k = "
            f"{c.k.min()}..{c.k.max()} (standard error about {c.se.median():.3f}); more than 2 SE better at "
            f"{better} of {len(c)} k, worse at {worse}")
    dense = t[(t.k == 0) & t.arc_acc.notna()]
    at_chance = [m for m, g in dense.groupby("model") if g.arc_acc.iloc[0] - g.arc_chance.iloc[0] < 2 * g.arc_acc_se.iloc[0]]
    if at_chance:
        ours = (f"the dense model ({', '.join(at_chance)}) is within 2 SE of chance, so ARC-Easy cannot separate the "
                f"methods here; " + ours)
    verdict = REPLICATED if worse == 0 and better >= len(c) / 2 else PARTLY if better else NOT_REPLICATED
    return ours, verdict


def _pruning(p: dict, profile: str) -> pd.DataFrame | None:
    keys = ("k_max", "criteria", "random_seeds", "linearity_metric", "calib_dataset", "calib_split", "calib_tokens",
            "seq_len", "batch_size", "exclude_bos", "ridge", "sleb_tokens", "distill_steps", "distill_lr", "seed",
            "ppl_tokens", "ppl_seq_len", "arc_limit", "arc_batch_size", "speed_batch", "speed_reps", "dtype", "device")
    tables = experiments.pruning_study(p["model"], **{k: p[k] for k in keys if k in p}, profile=profile, cache_only=True)
    return None if tables is None else tables["results"]


def _pruning_both(p: dict, profile: str) -> pd.DataFrame | None:
    """Figs 6 and 7 together: the results of the Fig 6 model and of the Fig 7 model."""
    from .runner import notebook_parameters

    first = _pruning(p, profile)
    second = _pruning(notebook_parameters("fig7_pruning_second_model", profile), profile)
    if first is None or second is None:
        return None
    return pd.concat([first, second], ignore_index=True)


def table1_cells(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 1 per (model, task) cell from the per-seed runs of :func:`lin_utils.experiments.finetuning_deltas`.

    Columns: ``model, arch, task, n_seeds``; ``delta``/``delta_std`` (mean and sample std over seeds
    of the delta on the fixed corpus, the main number) and ``delta_task``/``delta_task_std`` (on the
    task's held-out inputs); mean ``acc_before``, ``acc_after`` and ``baseline``; ``learned_seeds``
    (seeds whose held-out accuracy beat the majority baseline by 2 standard errors) and ``learned``
    (a majority of the seeds did); ``positive`` (mean delta > 0) and ``beyond_std`` (mean delta >
    its std; False with a single seed, whose std is undefined), for both deltas.
    """
    rows = []
    for (model, task), g in runs.groupby(["model", "task"], sort=False):
        row = dict(model=model, arch=g.arch.iloc[0], task=task, n_seeds=len(g))
        for col, name in (("delta_corpus", "delta"), ("delta_task", "delta_task")):
            mean = float(g[col].mean())
            std = float(g[col].std(ddof=1)) if len(g) > 1 else np.nan
            row.update({name: mean, f"{name}_std": std, f"{name}_positive": mean > 0,
                        f"{name}_beyond_std": bool(len(g) > 1 and mean > std)})
        row.update(acc_before=float(g.acc_before.mean()), acc_after=float(g.acc_after.mean()),
                   baseline=float(g.baseline.mean()), learned_seeds=int(g.learned.sum()),
                   learned=bool(2 * int(g.learned.sum()) > len(g)))
        rows.append(row)
    return pd.DataFrame(rows).rename(columns={"delta_positive": "positive", "delta_beyond_std": "beyond_std"})


def table1_numbers(runs: pd.DataFrame) -> dict:
    """Counts of Table 1's cells: positive, positive beyond their std, learned; for the main delta
    (fixed corpus) and the task's held-out inputs; the range of the mean deltas; the run sizes."""
    c = table1_cells(runs)
    learned = c[c.learned]
    return dict(
        n_cells=len(c), n_models=c.model.nunique(), n_tasks=c.task.nunique(),
        n_seeds_min=int(c.n_seeds.min()), steps=int(runs.steps.max()), batch_size=int(runs.batch_size.max()),
        n_positive=int(c.positive.sum()), n_beyond=int(c.beyond_std.sum()),
        n_positive_task=int(c.delta_task_positive.sum()), n_beyond_task=int(c.delta_task_beyond_std.sum()),
        n_learned=len(learned), n_positive_learned=int(learned.positive.sum()),
        n_beyond_learned=int(learned.beyond_std.sum()),
        delta_min=float(c.delta.min()), delta_max=float(c.delta.max()), delta_median=float(c.delta.median()),
        delta_task_min=float(c.delta_task.min()), delta_task_max=float(c.delta_task.max()),
        not_positive=", ".join(f"{m.split(':')[-1]} / {t}" for m, t, p in zip(c.model, c.task, c.positive)
                               if not p) or "none",
        not_learned=", ".join(f"{m.split(':')[-1]} / {t}" for m, t, ok in zip(c.model, c.task, c.learned)
                              if not ok) or "none",
    )


def judge_finetuning(runs: pd.DataFrame) -> tuple[str, str]:
    n = table1_numbers(runs)
    ours = (f"{n['n_positive']} of {n['n_cells']} mean deltas positive, {n['n_beyond']} beyond their std over seeds "
            f"(on the fixed corpus; on the tasks' held-out inputs {n['n_positive_task']} and "
            f"{n['n_beyond_task']}); the model learned in {n['n_learned']} of {n['n_cells']} cells")
    if n["n_beyond"] == n["n_cells"]:
        verdict = REPLICATED
    elif 2 * n["n_positive"] > n["n_cells"]:
        verdict = PARTLY
    else:
        verdict = NOT_REPLICATED
    return ours, verdict


_FINETUNING_KEYS = ("steps", "batch_size", "lr", "warmup_steps", "weight_decay", "grad_clip", "max_len",
                    "heldout_fraction", "eval_examples", "task_tokens", "corpus", "corpus_split", "corpus_tokens",
                    "seq_len", "exclude_bos", "dtype", "device")


def _finetuning(p: dict, profile: str) -> pd.DataFrame | None:
    return experiments.finetuning_deltas(p["models"], p["tasks"], p["seeds"],
                                         **{k: p[k] for k in _FINETUNING_KEYS if k in p}, profile=profile,
                                         cache_only=True)


# ------------------------------------------------------------------------------------------------
# Beyond the paper: the scaling study (the `scaling` page)

_SCALING_KEYS = ("token_shape", "token_budgets", "norm_shapes", "norm_families", "jobs", "train_device", "validate")


def _shape_key(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def scaling_numbers(tables: dict) -> dict:
    """The scaling page's numbers: the trained depth-width fit of log(1 - score) and of its two
    factors, the extrapolation to the paper's shapes (and which factor carries the change from our
    largest grid shape), the token slope, the norm-placement ratios and the identity check."""
    models, fit, extra = tables["models"], tables["fit"], tables["extrapolation"]
    out: dict = {}
    trained = models[models.init == "trained"]
    out.update(n_trained=len(trained), n_random=int((models.init == "random").sum()),
               identity_gap_max=float(tables["blocks"].identity_gap.max()))

    def coef(fit_name, init, target, term):
        r = fit[(fit.fit == fit_name) & (fit.init == init) & (fit.target == target) & (fit.term == term)]
        return (float(r.coef.iloc[0]), float(r.se.iloc[0])) if len(r) else (np.nan, np.nan)

    short = {"one_minus_score": "", "one_minus_nores": "_nores", "ratio_sq": "_ratio"}
    for init in ("trained", "random"):
        pre = "" if init == "trained" else "random_"
        for t, suffix in short.items():
            for term, name in (("log_blocks", "b"), ("log_width", "c")):
                out[f"{pre}{name}{suffix}"], out[f"{pre}{name}{suffix}_se"] = coef("depth-width", init, t, term)
        r = fit[(fit.fit == "depth-width") & (fit.init == init) & (fit.target == "one_minus_score")]
        out[f"{pre}r2"] = float(r.r2.iloc[0]) if len(r) else np.nan
    for t, suffix in short.items():
        out[f"e{suffix}"], out[f"e{suffix}_se"] = coef("tokens", "trained", t, "log_tokens")
    grid_tokens = int(trained.train_tokens.mode().iloc[0])
    grid = trained[(trained.family == "mistral") & (trained.train_tokens == grid_tokens)]
    small = grid.sort_values(["n_blocks", "width"]).iloc[0]
    large = grid.sort_values(["n_blocks", "width"]).iloc[-1]
    out.update(grid_tokens=grid_tokens, depth_min=int(grid.n_blocks.min()), depth_max=int(grid.n_blocks.max()),
               width_min=int(grid.width.min()), width_max=int(grid.width.max()),
               score_smallest=float(small.score), score_largest=float(large.score),
               score_grid_min=float(grid.score.min()), score_grid_max=float(grid.score.max()))
    e = extra[extra.target == "one_minus_score"].set_index("shape")
    reached, reached_lo, share = 0, 0, []
    for name in e.index:
        k = _shape_key(name)
        row = e.loc[name]
        out[f"pred_{k}"], out[f"pred_{k}_lo"], out[f"pred_{k}_hi"] = row.score_pred, row.score_lo, row.score_hi
        reached += bool(row.score_pred >= 0.99)
        reached_lo += bool(row.score_lo >= 0.99)
        parts = extra[extra["shape"] == name].set_index("target").delta_log
        out[f"dlog_{k}"] = float(parts["one_minus_score"])
        out[f"dlog_nores_{k}"], out[f"dlog_ratio_{k}"] = float(parts["one_minus_nores"]), float(parts["ratio_sq"])
        share.append((float(parts["one_minus_nores"]), float(parts["ratio_sq"])))
    n = len(e)
    out["n_shapes"] = n
    out["n_reached"] = reached
    out["n_reached_lo"] = reached_lo
    out["reaches"] = (f"reaches 0.99 at {reached} of the {n} shapes by its point estimate, and at {reached_lo} "
                      f"by the lower end of its 95% interval")
    nores_sum, ratio_sum = sum(a for a, _ in share), sum(b for _, b in share)
    if not share:
        out["carried_by"] = "not measured"
    else:
        bigger = "the block's own nonlinearity (1 − score without residual)" if abs(nores_sum) > abs(ratio_sum) \
            else "the block's relative size (‖B_c‖²/‖Y_c‖²)"
        out["carried_by"] = (f"{bigger}: summed over the shapes the log of 1 − score changes by {nores_sum:+.2f} "
                             f"through the nonlinearity and {ratio_sum:+.2f} through the relative size")
    fams = models[models.family != "mistral"]
    out["norm_text"] = "not measured"
    if len(fams):
        L, d, fam = int(fams.n_blocks.iloc[0]), int(fams.width.iloc[0]), str(fams.family.iloc[0])
        texts = []
        for init in ("trained", "random"):
            pair = models[(models.n_blocks == L) & (models.width == d) & (models.init == init)
                          & (models.train_tokens.isin([0, grid_tokens]))].set_index("family")
            if fam not in pair.index or "mistral" not in pair.index:
                continue
            pre = "" if init == "trained" else "random_"
            for t, suffix in short.items():
                out[f"{pre}norm{suffix}_x"] = float(pair.loc[fam, f"gm_{t}"] / pair.loc["mistral", f"gm_{t}"])
            out[f"{pre}norm_score_mistral"] = float(pair.loc["mistral", "score"])
            out[f"{pre}norm_score_{fam}"] = float(pair.loc[fam, "score"])
            moved = "the relative size" if abs(math.log(out[f"{pre}norm_ratio_x"])) > abs(math.log(out[f"{pre}norm_nores_x"])) \
                else "the nonlinearity"
            texts.append(f"{init}: {fam} / pre-norm = ×{out[f'{pre}norm_nores_x']:.2f} in 1 − score without residual and "
                         f"×{out[f'{pre}norm_ratio_x']:.2f} in ‖B_c‖²/‖Y_c‖², so mostly {moved}")
        out["norm_text"] = "; ".join(texts) if texts else "not measured"
    return out


def judge_scaling(tables) -> tuple[str, str]:
    """Beyond the paper: does our trained depth-width trend reach 0.99 at the paper's shapes?"""
    if isinstance(tables, pd.DataFrame):
        raise TypeError("judge_scaling takes the dict of tables of experiments.scaling_study")
    n = scaling_numbers(tables)
    preds = ", ".join(f"{name} {n[f'pred_{_shape_key(name)}']:.3f} [{n[f'pred_{_shape_key(name)}_lo']:.3f}, "
                      f"{n[f'pred_{_shape_key(name)}_hi']:.3f}]" for name in tables["extrapolation"]["shape"].unique())
    ours = (f"1 − score ∝ L^{n['b']:.2f}±{n['b_se']:.2f} · d^{n['c']:.2f}±{n['c_se']:.2f} at {n['grid_tokens']:,} tokens; "
            f"predicted score {preds}; {n['reaches']}")
    verdict = (REPLICATED if n["n_shapes"] and n["n_reached_lo"] == n["n_shapes"] else PARTLY if n["n_reached"]
               else NOT_REPLICATED)
    return ours, verdict


def _scaling(p: dict, profile: str):
    return experiments.scaling_study(p["depths"], p["widths"], p["train_tokens"], p["train_config"], p["scan"],
                                     **{k: p[k] for k in _SCALING_KEYS if k in p}, profile=profile, cache_only=True)


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
    Claim("Table 1", "Fine-tuning raises linearity without the residual",
          "all 28 deltas positive (7 models x MultiRC, BoolQ, CB, HH-RLHF reward modelling)",
          "per (model, task) cell, the mean over seeds of the delta (after - before) of linearity without the residual "
          "averaged over blocks, on the fixed TinyStories corpus; replicated if every cell's mean delta is positive by "
          "more than its standard deviation over seeds; partly if more than half of the cells have a positive mean; "
          "cells whose model learned nothing count alike, and are named", "table1_finetuning", _finetuning,
          judge_finetuning),
    Claim("Fig 4", "A cosine regularizer lowers per-layer linearity", "lower linearity at lambda 0.5",
          "replicated if the cosine-regularized model's mean score is below its baseline's at every size; partly if at some",
          "fig4_regularized_profiles", _profiles, judge_regularizer),
    Claim("Fig 5", "The regularizer raises linear-probe accuracy on xStoryCloze", "higher per-layer probe accuracy",
          "replicated if the cosine model's test accuracy, averaged over boundaries, beats its baseline's by more "
          "than 2 standard errors at every size; partly if at some", "fig5_linear_probes", _probes, judge_probes),
    Claim("Table 2", "The regularizer raises SuperGLUE scores", "higher average score",
          "replicated if the cosine model's Table 2 mean beats its baseline's by more than 2 standard errors at every "
          "size; partly if at some", "table2_benchmarks", _benchmarks, judge_benchmarks),
    Claim("Table 3", "The regularizer raises judged story quality", "higher GPT-4 scores",
          "replicated if the cosine model's mean judge grade beats its baseline's at every size; partly if at some; "
          "automatic proxies never give a verdict", "table3_story_quality", _stories, judge_stories),
    Claim("Figs 6-7", "Replacing the most linear blocks by linear maps and distilling them hurts perplexity less than removing them",
          "lower WikiText perplexity than plain removal at every number of removed layers",
          "for the paper's criterion, every model of Figs 6 and 7, k >= 1, WikiText-2 and TinyStories perplexity: replicated "
          "if linear + distillation is below plain removal of the same blocks in every case; partly if in some",
          "fig6_pruning_perplexity", _pruning_both, judge_pruning_ppl),
    Claim("Fig 8", "Linear replacement plus distillation keeps ARC-Easy accuracy above plain removal",
          "higher ARC-Easy accuracy than removal (OPT-1.3B)",
          "for the paper's criterion and each k >= 1: better or worse when the accuracy difference exceeds 2 standard "
          "errors; replicated if never worse and better at half of the k or more; partly if better at some k",
          "fig8_pruning_arc_easy", _pruning, judge_pruning_arc),
    Claim("Beyond: scaling", "Our own finding, beyond the paper: trained at a fixed token budget, deeper and wider models "
          "approach the paper's 0.99",
          "about 0.99 for every layer of models with hundreds of millions of parameters (the paper does not vary size)",
          "fit log(1 − score) = a + b log(blocks) + c log(width) by least squares over the trained grid (geometric mean "
          "over blocks) and extrapolate to GPT-2-small (12, 768), GPT-2-XL (48, 1600) and OPT-1.3B (24, 2048); "
          "replicated if the lower end of the 95% interval of the predicted score is >= 0.99 at all three; partly if "
          "the point estimate is >= 0.99 at some; not replicated if at none",
          "scaling", _scaling, judge_scaling),
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
