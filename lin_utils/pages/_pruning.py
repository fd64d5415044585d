"""What the pruning pages (Figs 6, 7 and 8) share: not a page itself.

Each pruning page shows one model's :func:`lin_utils.experiments.pruning_study` (its ``CONFIG`` a
:class:`~lin_utils.experiments.pruning.PruningConfig`): the figure (perplexity or ARC-Easy), the
numbers its prose quotes, the k-by-k text (glued as ``kbyk``), the summary and the full table.
The comparisons and judges here are those of the pages' claims (the perplexity claim over every
pruning page, the ARC-Easy claim over its page).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from .. import plots
from ..book.glue import figure_page, glue_markdown
from ..claims import NOT_RUN, Evidence, Judgement, Test, judge_effect
from ..errors import LinUtilsError
from ..experiments.pruning import PruningConfig, pruning_study
from ..prune import CRITERIA
from ._zoo_pairs import zoo_seed_text

__all__ = ["ARC_TEST", "PPL_TEST", "PPL_UNIT_WHY", "arc_comparisons", "arc_evidence", "differences", "judge_arc", "judge_ppl", "kbyk",
           "arc_kbyk", "numbers", "ppl_comparisons", "ppl_evidence", "results_over", "show", "summary", "table",
           "tables"]

#: the perplexity claim of Figs 6-7, declared once (its rule sentence is generated from it)
PPL_TEST = Test(
    quantity="mean log perplexity ratio ln(distilled / removed) of the paper's blocks, over (model, k, corpus) cases",
    direction=-1,
    unit="(model, k, corpus) cases")

#: why the cases are the unit (the pages' prose)
PPL_UNIT_WHY = ("Each perplexity is measured on thousands of tokens, so its own sampling error is small next to how "
                "much the ratio varies between models, numbers of blocks and corpora, and the claim is about that "
                "variation: the unit is the (model, k, corpus) case. Cases of one model share its blocks, so they are "
                "not fully independent, and the standard error is if anything too small.")

#: the ARC-Easy claim of Fig 8
ARC_TEST = Test(
    quantity="mean ARC-Easy accuracy difference distilled − removed of the paper's blocks, over k >= 1 (paired by k: "
             "the same blocks)",
    direction=+1,
    unit="ARC-Easy questions (binomial standard errors of the two accuracies, combined as if independent)")

#: the paper's pruned models, for "How this differs from the paper"
PAPER_MODELS = "OPT-1.3B (Figs 6 and 8: 24 blocks, 2,048 wide) and Llama-2-7B (Fig 7: 32 blocks, 4,096 wide)"

_PPL = {"wikitext": ("ppl_wikitext", "WikiText-2"), "tinystories": ("ppl_tinystories", "TinyStories")}


def tables(config: PruningConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> dict[str, pd.DataFrame] | None:
    """The study's four tables (results, blocks, distill, sleb): :func:`lin_utils.experiments.pruning_study`."""
    return pruning_study(config, profile=profile, force=force, cache_only=cache_only, progress=progress)


def results_over(configs: Iterable[PruningConfig], profile: str) -> pd.DataFrame | None:
    """The ``results`` tables of several studies (e.g. every pruning page's), one after the other;
    None when one is not cached."""
    parts = []
    for cfg in configs:
        t = tables(cfg, profile=profile, cache_only=True)
        if t is None:
            return None
        parts.append(t["results"])
    return pd.concat(parts, ignore_index=True) if parts else None


def _prose(criterion: str) -> str:
    """A criterion's name in the text (the registry's ``prose``)."""
    return CRITERIA[criterion].prose if criterion in CRITERIA else criterion


# -------------------------------------------------------------------------------------------------
# The claims' comparisons and judges


def _paper_rows(t: pd.DataFrame, method: str) -> pd.DataFrame:
    """The paper's criterion (most linear first) under ``method``, one row per (model, k)."""
    return t[(t.method == method) & (t.criterion == "linearity")].set_index(["model", "k"])


def ppl_comparisons(t: pd.DataFrame) -> pd.DataFrame:
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


def ppl_evidence(t: pd.DataFrame) -> Evidence:
    """:data:`PPL_TEST`'s evidence: the log ratios ln(distilled / removed) of every (model, k, corpus)
    case with a distilled model, their mean and its standard error (sample std / sqrt(n))."""
    c = ppl_comparisons(t).dropna(subset=["distill"])
    r = np.log(c.distill.to_numpy(float) / c.remove.to_numpy(float))
    if len(r) == 0:
        return Evidence(math.nan, math.nan, 0)
    se = float(r.std(ddof=1) / math.sqrt(len(r))) if len(r) > 1 else math.nan
    return Evidence(float(r.mean()), se, len(r))


def judge_ppl(t: pd.DataFrame) -> Judgement:
    """The perplexity claim over a results table (one model or several), under :data:`PPL_TEST`."""
    c = ppl_comparisons(t)
    c = c.dropna(subset=["distill"])
    if c.empty:
        return Judgement("no distilled model in the table", NOT_RUN, "no distilled model in the table")
    ev = ppl_evidence(t)
    wins, lin_wins = int((c.distill < c.remove).sum()), int((c.linear < c.remove).sum())
    se = f" ± {ev.se:.3f}" if math.isfinite(ev.se) else ""
    ours = (f"ln(distilled / removed) {ev.effect:+.3f}{se} over {len(c)} (model, k, corpus) cases (perplexity ratio "
            f"{math.exp(ev.effect):.2f}, geometric mean); linear + distillation below removal in {wins} of {len(c)}, "
            f"linear maps alone in {lin_wins} of {len(c)}")
    return judge_effect(PPL_TEST, ev, ours)


def arc_comparisons(t: pd.DataFrame) -> pd.DataFrame:
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


def dense_at_chance(t: pd.DataFrame) -> list[str]:
    """The models whose dense ARC-Easy accuracy is within 2 standard errors of chance."""
    dense = t[(t.k == 0) & t.arc_acc.notna()]
    return [m for m, g in dense.groupby("model")
            if abs(g.arc_acc.iloc[0] - g.arc_chance.iloc[0]) < 2 * g.arc_acc_se.iloc[0]]


def arc_evidence(t: pd.DataFrame) -> Evidence:
    """:data:`ARC_TEST`'s evidence: the mean over k of distilled − removed accuracy, its standard
    error ``sqrt(Σ se_k²) / K`` and ``n`` the questions each model answers; ``at_chance`` when a dense model is within 2 standard errors of
    chance (then the test is inconclusive whatever the difference)."""
    c = arc_comparisons(t)
    if c.empty:
        return Evidence(math.nan, math.nan, 0)
    se = float(math.sqrt(float(np.sum(c.se.to_numpy(float) ** 2))) / len(c))
    n = int(t[(t.k >= 1) & t.arc_acc.notna()].arc_n.min())
    return Evidence(float(c["diff"].mean()), se, n, at_chance=bool(dense_at_chance(t)))


def judge_arc(t: pd.DataFrame) -> Judgement:
    """The ARC-Easy claim over a results table, under :data:`ARC_TEST`."""
    c = arc_comparisons(t)
    if c.empty:
        return Judgement("no ARC-Easy result for a distilled model in the table", NOT_RUN,
                         "no ARC-Easy result for a distilled model")
    ev = arc_evidence(t)
    better, worse = int((c["diff"] > 2 * c.se).sum()), int((c["diff"] < -2 * c.se).sum())
    ours = (f"accuracy difference distilled − removed {ev.effect:+.3f} ± {ev.se:.3f} on average over k = "
            f"{c.k.min()}..{c.k.max()} (per k {c['diff'].min():+.3f} to {c['diff'].max():+.3f}); more than 2 SE better "
            f"at {better} of {len(c)} k, worse at {worse}")
    at_chance = dense_at_chance(t)
    if at_chance:
        dense = t[(t.k == 0) & t.arc_acc.notna()].iloc[0]
        ours = (f"the dense model ({', '.join(at_chance)}) answers {dense.arc_acc:.3f} ± {dense.arc_acc_se:.3f} against "
                f"chance {dense.arc_chance:.3f}, so ARC-Easy cannot separate the methods here; " + ours)
    return judge_effect(ARC_TEST, ev, ours)


# -------------------------------------------------------------------------------------------------
# What a page shows


def _by_criterion(res: pd.DataFrame, method: str, col: str) -> pd.DataFrame:
    """(k x criterion) of ``col`` under ``method``; random is the mean over seeds."""
    sub = res[res.method == method]
    return sub.groupby(["k", "criterion"], sort=False)[col].mean().unstack("criterion")


def numbers(results: pd.DataFrame, distill: pd.DataFrame | None = None) -> dict:
    """The numbers a pruning page's prose quotes, and its verdicts (this model alone)."""
    res = results
    dense = res[res.k == 0].iloc[0]
    k_max = int(res.k.max())
    top = res[res.k == k_max]
    out = dict(model=dense.model, n_blocks=int(dense.n_blocks), k_max=k_max, calib_tokens=int(dense.calib_tokens),
               ppl_tokens=int(dense.ppl_tokens_wikitext), dense_wikitext=dense.ppl_wikitext,
               dense_tinystories=dense.ppl_tinystories, n_models=int(res.drop_duplicates(["method", "mapping", "blocks"]).shape[0]),
               params_frac_remove=float(top[top.method == "remove"].params_frac.min()),
               speedup_remove=float(top[top.method == "remove"].speedup.median()),
               speedup_linear=float(top[top.method == "linear"].speedup.median()))
    if distill is not None and len(distill):
        first = distill.sort_values("step").groupby("k").loss.first()
        last = distill.sort_values("step").groupby("k").loss.last()
        out.update(distill_steps=int(distill.step.max()), distill_first=float(first.mean()), distill_last=float(last.mean()))
    for key, j in (("ppl", judge_ppl(res)), *((("arc", judge_arc(res)),) if res.arc_acc.notna().any() else ())):
        ev = j.evidence
        out.update({f"verdict_{key}": j.verdict, f"ours_{key}": j.ours, f"reason_{key}": j.reason,
                    f"effect_{key}": ev.effect if ev else math.nan, f"se_{key}": ev.se if ev else math.nan,
                    f"mde_{key}": ev.mde if ev else math.nan})
    out["ppl_unit"] = PPL_UNIT_WHY
    if res.arc_acc.notna().any():
        out.update(arc_n=int(dense.arc_n), dense_arc=dense.arc_acc, dense_arc_se=dense.arc_acc_se, arc_chance=dense.arc_chance)
    return out


def kbyk(results: pd.DataFrame) -> str:
    """k by k, in words: does linear replacement (+ distillation) beat removal of the paper's blocks,
    and where does the paper's criterion stand against the others (removal, WikiText-2)?"""
    c = ppl_comparisons(results)
    lines = []
    for k, g in c.groupby("k"):
        parts = []
        for r in g.itertuples():
            name = _PPL[r.corpus][1]
            dist = f" → + distillation {r.distill:.1f}" if pd.notna(r.distill) else ""
            beat = ("beats" if r.distill < r.remove else "does **not** beat") if pd.notna(r.distill) else "—"
            parts.append(f"{name}: removal {r.remove:.1f} → linear maps {r.linear:.1f}{dist} "
                         f"(linear + distillation {beat} removal)")
        lines.append(f"- **k = {k}** (blocks {g.blocks.iloc[0]}): " + "; ".join(parts) + ".")
    by_crit = _by_criterion(results, "remove", "ppl_wikitext")
    lines.append("")
    lines.append("Where the paper's criterion stands (plain removal, WikiText-2 perplexity, lower is better):")
    lines.append("")
    for k, row in by_crit.iterrows():
        if k == 0 or "linearity" not in row:
            continue
        ranked = row.dropna().sort_values()
        mine = row["linearity"]
        place = 1 + int((ranked.drop("linearity") < mine).sum())
        ties = int((ranked.drop("linearity") == mine).sum())
        tie = f", tied with {ties} (the same blocks)" if ties else ""
        others = ", ".join(f"{_prose(cr)} {v:.1f}" for cr, v in ranked.items() if cr != "linearity")
        lines.append(f"- **k = {k}**: the paper's {mine:.1f}, rank {place} of {len(ranked)}{tie} "
                     f"(others: {others}).")
    return "\n".join(lines)


def arc_kbyk(results: pd.DataFrame) -> str:
    """k by k: ARC-Easy accuracy after removal vs linear replacement + distillation (paper's criterion)."""
    c = arc_comparisons(results)
    lines = []
    for r in c.itertuples():
        verdict = ("better by more than 2 SE" if r.diff > 2 * r.se else "worse by more than 2 SE" if r.diff < -2 * r.se
                   else "within 2 SE")
        lines.append(f"- **k = {r.k}**: removal {r.remove:.3f}, linear + distillation {r.distill:.3f}: "
                     f"difference {r.diff:+.3f} ± {r.se:.3f}, {verdict} (chance {r.chance:.3f}).")
    by_crit = _by_criterion(results.dropna(subset=["arc_acc"]), "remove", "arc_acc")
    lines += ["", "Plain removal by criterion (ARC-Easy acc):", ""]
    for k, row in by_crit.iterrows():
        if k == 0:
            continue
        lines.append(f"- **k = {k}**: " + ", ".join(f"{_prose(cr)} {v:.3f}" for cr, v in row.dropna().items()) + ".")
    return "\n".join(lines)


def summary(results: pd.DataFrame, col: str = "ppl_wikitext") -> pd.DataFrame:
    """One row per method (the paper's criterion removed / linear / distilled, the other criteria's
    removal, ReplaceMe's span map) and one column per number of blocks pruned, so that the table
    stays as narrow as the text column whatever the number of criteria."""
    rows = []
    rem, lin = _by_criterion(results, "remove", col), _by_criterion(results, "linear", col)
    dis = _by_criterion(results, "distill", col)
    spans = [c for c in lin.columns if c in CRITERIA and CRITERIA[c].spans]
    for k in rem.index:
        row = {"k": int(k)}
        if "linearity" in rem:
            row["paper: removed"] = rem.loc[k, "linearity"]
            row["paper: linear"] = lin.loc[k, "linearity"]
            if "linearity" in dis and k in dis.index:
                row["paper: + distill"] = dis.loc[k, "linearity"]
        for crit in rem.columns:
            if crit != "linearity":
                row[f"{crit}: removed"] = rem.loc[k, crit]
        for crit in spans:
            row["ReplaceMe span map" if len(spans) == 1 else f"{crit}: span map"] = lin.loc[k, crit]
        rows.append(row)
    wide = pd.DataFrame(rows).set_index("k")
    out = wide.T.rename(columns=lambda k: f"k = {k}").rename_axis("method").reset_index()
    fmt = ".3f" if col.startswith("arc") else ".1f"
    out.attrs["formats"] = {c: fmt for c in out.columns if c != "method"}
    return out


def table(results: pd.DataFrame, figure: str = "perplexity") -> pd.DataFrame:
    """The full results table a page shows (one row per method, criterion, seed and k), narrow
    enough for the text column: a random order's seed joins its criterion ("random 1"), the
    perplexity pages show the perplexities and the ARC page ARC-Easy accuracy (its standard errors
    are in the figure), and parameters are a fraction of the dense model's. The result table in
    the cache keeps every column."""
    out = pd.DataFrame({"model": results["model"], "method": results["method"]})
    seed = results["seed"] if "seed" in results else pd.Series(np.nan, index=results.index)
    out["criterion"] = [f"{c} {int(s)}" if c in CRITERIA and CRITERIA[c].seeded and pd.notna(s) else str(c)
                        for c, s in zip(results["criterion"], seed)]
    out["k"] = results["k"]
    out["blocks"] = results["blocks"].fillna("").astype(str)
    if figure == "arc":
        for col, label in (("arc_acc", "ARC-Easy acc"), ("arc_acc_norm", "acc_norm")):
            if col in results:
                out[label] = results[col]
    else:
        for col, label in (("ppl_wikitext", "WikiText-2"), ("ppl_tinystories", "TinyStories")):  # perplexities
            if col in results:
                out[label] = results[col]
    for col in ("params_frac", "speedup"):
        if col in results:
            out[col.replace("_frac", "")] = results[col]
    out.attrs["formats"] = {"WikiText-2": ".1f", "TinyStories": ".2f", "ARC-Easy acc": ".3f", "acc_norm": ".3f",
                            "params": ".2f", "speedup": ".2f", "k": "d"}
    return out


def differences(config: PruningConfig, results: pd.DataFrame) -> str:
    """"How this differs from the paper" for a pruning page, from its configuration and results."""
    dense = results[results.k == 0].iloc[0]
    arc = (f"ARC-Easy on the first {int(dense.arc_n):,} test questions" if config.arc_limit != 0 and
           pd.notna(dense.get("arc_acc", np.nan)) else "no ARC-Easy on this page's model")
    return ("**How this differs from the paper.** "
            f"Here: {config.model.replace('zoo:', '')}{zoo_seed_text([config.model])}, {int(dense.n_blocks)} blocks × "
            f"{int(dense.d)} wide, trained on TinyStories only, with k = 0..{config.k_max} blocks pruned; the blocks are ranked and the maps "
            f"fitted on {config.calib_tokens:,} {config.calib_dataset} {config.calib_split} tokens in rows of "
            f"{config.seq_len} ({'BOS left out' if config.exclude_bos else 'BOS included'}); the paper's criterion "
            f"ranks by the score {'with' if config.linearity_metric == 'score' else 'without'} the residual; "
            f"distillation trains the maps only, {config.distill_steps} Adam steps at lr {config.distill_lr:g}; "
            f"perplexity on {int(dense.ppl_tokens_wikitext):,} WikiText-2 test and "
            f"{int(dense.ppl_tokens_tinystories):,} TinyStories validation tokens in windows of "
            f"{config.ppl_seq_len}; {arc}; one model per page, one training run (no seeds). "
            f"The paper: {PAPER_MODELS}, pretrained on web-scale text.")


def page_numbers(t: dict) -> dict:
    """The glued numbers from what :func:`tables` returns."""
    return numbers(t["results"], t["distill"])


#: what a pruning page draws: the perplexity figure (Figs 6 and 7) or the ARC-Easy one (Fig 8)
FIGURES = ("perplexity", "arc")


def show(name: str, config: PruningConfig, *, profile: str, force: bool = False, figure: str = "perplexity") -> dict:
    """A pruning page (Fig 6, 7 or 8) in one call: the figure, the numbers, the k-by-k text (glued
    as ``kbyk``), the summary and the full table (``figure``: ``perplexity`` or ``arc``). Returns the numbers."""
    if figure not in FIGURES:
        raise LinUtilsError(f"figure must be one of {', '.join(FIGURES)}, got {figure!r}")
    t = tables(config, profile=profile, force=force)
    res, curve = t["results"], t["distill"]
    values = numbers(res, curve)
    if figure == "arc":
        fig, text, compact = plots.pruning_arc(res), arc_kbyk(res), summary(res, "arc_acc")
    else:
        fig, text, compact = plots.pruning_perplexity(res, curve), kbyk(res), summary(res, "ppl_wikitext")
    glue_markdown("kbyk", text)
    glue_markdown("differences", differences(config, res))
    figure_page(name, profile, fig, numbers=values, summary=compact, table=table(res, figure))
    return values
