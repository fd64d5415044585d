"""Fig 4: per-block linearity of zoo models pretrained with and without the cosine regularizer."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import plots
from ..book.glue import figure_page, glue_markdown
from ..claims import NOT_RUN, Claim, Evidence, Judgement, Test, judge_effect
from ..experiments.linearity import ProfilesConfig, linearity_profiles
from . import name_of
from ._scans import PROFILE_COLUMNS, profile_summary, scan_differences
from ._zoo_pairs import entry_of, seeds_text, size_pairs, zoo_models_text
from ._zoo_pairs import zoo_pairs as pairs

NAME = name_of(__name__)
CONFIG = ProfilesConfig(models=("zoo:cpu-small-baseline", "zoo:cpu-small-baseline-s1",
                                "zoo:cpu-small-baseline-s2", "zoo:cpu-small-cos0.5", "zoo:cpu-small-cos0.5-s1",
                                "zoo:cpu-small-cos0.5-s2", "zoo:cpu-large-baseline",
                                "zoo:cpu-large-baseline-s1", "zoo:cpu-large-baseline-s2",
                                "zoo:cpu-large-cos0.5", "zoo:cpu-large-cos0.5-s1", "zoo:cpu-large-cos0.5-s2"))


def tables(config: ProfilesConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> pd.DataFrame | None:
    """One row per (model, block): :func:`lin_utils.experiments.linearity_profiles`."""
    return linearity_profiles(config.models, config.params(), profile=profile, force=force, cache_only=cache_only,
                              progress=progress)


BY_SEEDS = Test("no-residual score (mean over blocks), cosine − baseline, per training-run pair (a baseline and its "
                "cosine model of the same size and seed)", -1, "training-run pairs (size × seed)")
BY_BLOCKS = Test("no-residual score, cosine − baseline, per block of the same size (one seed per arm: the spread "
                 "is over blocks, not over training runs)", -1, "blocks")


def differences(t: pd.DataFrame, col: str = "score_nores") -> tuple[Test, np.ndarray]:
    """The test that the table can carry and its units' differences cosine − baseline of ``col``:
    per (size, seed) pair when there are at least three; else per block within each size pair."""
    found = size_pairs(t.model.unique(), "cos0.5")
    if len(found) >= BY_SEEDS.min_units:
        means = t.groupby("model", sort=False)[col].mean()
        return BY_SEEDS, np.array([means[c] - means[b] for _, b, c in found])
    diffs = []
    for _, b, c in found:
        base, cos = t[t.model == b].set_index("block")[col], t[t.model == c].set_index("block")[col]
        diffs.extend((cos - base.reindex(cos.index)).dropna().tolist())
    return BY_BLOCKS, np.array(diffs, dtype=float)


def _per_size(t: pd.DataFrame, col: str) -> list[tuple[str, float, float, float, float, int]]:
    """Per zoo size: ``(size, baseline mean, baseline sd, cosine mean, cosine sd, seeds)`` of each
    model's mean over blocks of ``col``, over the size's seeds (sd NaN with one seed)."""
    means = t.groupby("model", sort=False)[col].mean()
    by_size: dict = {}
    for _, b, c in size_pairs(means.index, "cos0.5"):
        e = entry_of(b)
        by_size.setdefault(f"{e.profile}-{e.size}", []).append((means[b], means[c]))
    out = []
    for size, runs in by_size.items():
        v = np.array(runs)
        sd = (lambda x: float(x.std(ddof=1)) if len(x) > 1 else np.nan)
        out.append((size, float(v[:, 0].mean()), sd(v[:, 0]), float(v[:, 1].mean()), sd(v[:, 1]), len(v)))
    return out


def _pm(mean: float, sd: float) -> str:
    return f"{mean:.3f}" if np.isnan(sd) else f"{mean:.3f} ± {sd:.3f}"


def judge_regularizer(t) -> Judgement:
    found = pairs(t, "cos0.5", "score_nores")
    if not found:
        return Judgement("no baseline / cosine pair in the table", NOT_RUN, "no pair")
    test, diffs = differences(t)
    ev = Evidence.of(diffs)
    _, held = differences(t, "heldout_nores")
    ours = "; ".join(f"{size}: baseline {_pm(b, bs)}, cosine {_pm(c, cs)}" + (f" ({n} seeds, ± sd)" if n > 1 else "")
                     for size, b, bs, c, cs, n in _per_size(t, "score_nores"))
    ours += (f" (no-residual score; difference {ev.effect:+.3f} ± {ev.se:.3f} over {ev.n} {test.unit}, held out "
             f"{held.mean():+.3f}; with the residual: " +
             "; ".join(f"{size} {b:.3f} → {c:.3f}" for size, b, _, c, _, _ in _per_size(t, "score")) + ")")
    return judge_effect(test, ev, ours)


CLAIMS = [
    Claim("Fig 4", "A cosine regularizer lowers per-layer linearity (without the residual)",
          "lower linearity at lambda 0.5 (the paper's conclusion: of its layers w/o residual components)",
          "", judge_regularizer, order=70, test=BY_SEEDS),
]


def effects(t: pd.DataFrame) -> dict:
    """Per size (``small``, ``large``): the baselines' and the cosine models' mean score over blocks,
    with and without the residual, each the mean over the size's seeds (and its standard deviation
    over seeds, ``_sd``; NaN with one seed)."""
    found = size_pairs(t.model.unique(), "cos0.5")
    out: dict = dict(n_sizes=len({entry_of(b).size for _, b, _ in found}), n_pairs=len(found),
                     seeds=seeds_text([m for _, b, c in found for m in (b, c)]))
    means = {col: t.groupby("model", sort=False)[col].mean() for col in ("score", "score_nores")}
    out["frac_lower"] = float(np.mean([means["score"][c] < means["score"][b] for _, b, c in found])) if found else np.nan
    by_size: dict = {}
    for _, b, c in found:
        by_size.setdefault(entry_of(b).size, []).append((b, c))
    for size, runs in by_size.items():
        for col, suffix in (("score", ""), ("score_nores", "_nores")):
            for k, name in ((0, "baseline"), (1, "cos")):
                v = np.array([means[col][r[k]] for r in runs])
                out[f"{size}_{name}{suffix}"] = float(v.mean())
                out[f"{size}_{name}{suffix}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else np.nan
    return out


def numbers(t: pd.DataFrame) -> dict:
    j = judge_regularizer(t)
    out = {**effects(t), "verdict_regularizer": j.verdict, "reason_regularizer": j.reason,
           "diff": j.evidence.effect if j.evidence else np.nan, "diff_se": j.evidence.se if j.evidence else np.nan,
           "diff_n": j.evidence.n if j.evidence else 0,
           "diff_unit": (j.test.unit if j.test else ""), "heldout_diff": float(differences(t, "heldout_nores")[1].mean())
           if pairs(t) else np.nan}
    medians = t.groupby("model", sort=False).norm_ratio.median()
    found = size_pairs(medians.index, "cos0.5")
    out["ratio_base_median"] = float(np.median([medians[b] for _, b, _ in found])) if found else np.nan
    out["ratio_cos_median"] = float(np.median([medians[c] for _, _, c in found])) if found else np.nan
    return out


page_numbers = numbers  # from what tables() returns


def show(config: ProfilesConfig, *, profile: str, force: bool = False) -> pd.DataFrame:
    table = tables(config, profile=profile, force=force)
    glue_markdown("differences", scan_differences(config, table).replace("trained decoders", "zoo models") + (
        " The paper trains one Mistral model of 150M and one of 650M parameters per arm on TinyStories; ours are "
        f"the zoo's {zoo_models_text(config.models)}."))
    figure_page(NAME, profile, plots.linearity_profiles(table), numbers=numbers(table),
                summary=profile_summary(table), table=table[PROFILE_COLUMNS])
    return table
