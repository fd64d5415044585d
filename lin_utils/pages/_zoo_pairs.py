"""The zoo's regularized models next to their baselines, for the pages of Section 4 (Figs 4 and 5,
Tables 2 and 3).

Models pair by the zoo's metadata (:func:`lin_utils.zoo.entry`): two ``zoo:`` models pair when
they share profile, size and training seed and differ in their variant (``baseline``,
``cos0.5``...), never by the spelling of their names. A spec that is not a zoo entry
(``stories260K``, a checkpoint ``zoo:NAME@STEP``, a name the zoo does not know) pairs with nothing.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .. import zoo
from ..claims import Evidence
from ..errors import ModelNotFoundError

__all__ = ["BASELINE", "COSINE", "REGULARIZED", "arm_label", "arms_of", "compare_to_baseline", "entry_of", "paired",
           "pm", "pooled", "seed_numbers_of", "replication_text", "seed_summary", "seeds_text", "size_groups", "size_label", "size_pairs", "variant_label",
           "zoo_models_text", "zoo_pairs"]

BASELINE, COSINE = "baseline", "cos0.5"
REGULARIZED = ("cos0.5", "mse0.5", "mse2.0")  # the regularized variants Table 2 compares with their baseline
_ZOO = "zoo:"


def entry_of(spec: str) -> zoo.ZooEntry | None:
    """The zoo entry of a ``zoo:NAME`` spec; None for any other spec (or an unknown name)."""
    if not isinstance(spec, str) or not spec.startswith(_ZOO):
        return None
    try:
        return zoo.entry(spec[len(_ZOO):])
    except ModelNotFoundError:
        return None


def _group(e: zoo.ZooEntry) -> tuple:
    """What a baseline and its regularized models share: profile, size and training seed."""
    return e.profile, e.size, e.seed


def size_label(spec: str) -> str:
    """A model's size as the pages print it: profile and size, and the seed unless 0
    (``zoo:cpu-small-cos0.5`` -> ``cpu-small``, ``zoo:cpu-small-cos0.5-s1`` -> ``cpu-small-s1``);
    any other spec without ``zoo:``."""
    e = entry_of(spec)
    if e is None:
        return spec.replace(_ZOO, "")
    return f"{e.profile}-{e.size}" + (f"-s{e.seed}" if e.seed else "")


def variant_label(spec: str) -> str:
    """A model within its size: its variant (``cos0.5``); any other spec without ``zoo:``."""
    e = entry_of(spec)
    return spec.replace(_ZOO, "") if e is None else e.variant


def size_pairs(models: Iterable[str], variant: str = COSINE) -> list[tuple[str, str, str]]:
    """``(size, baseline, variant model)`` for each zoo size among ``models`` that has both, in
    the order of the baselines."""
    models = list(dict.fromkeys(models))
    entries = {m: entry_of(m) for m in models}
    out = []
    for m, e in entries.items():
        if e is None or e.variant != BASELINE:
            continue
        other = next((o for o, f in entries.items()
                      if f is not None and f.variant == variant and _group(f) == _group(e)), None)
        if other is not None:
            out.append((size_label(m), m, other))
    return out


def size_groups(models: Sequence[str]) -> list[list[str]]:
    """``models`` grouped by zoo size (profile, size, seed), in order; a model alone in its group
    (stories260K) joins the previous one, so that it shows beside the last size."""
    groups: dict = {}
    for m in models:
        e = entry_of(m)
        groups.setdefault(("model", m) if e is None else _group(e), []).append(m)
    out: list[list[str]] = []
    for g in groups.values():
        if len(g) == 1 and out:
            out[-1] += g
        else:
            out.append(list(g))
    return out


def zoo_pairs(t: pd.DataFrame, variant: str = COSINE, col: str = "score") -> list[tuple[str, float, float]]:
    """``(size, baseline mean, variant mean)`` of ``col`` over each model's rows, for each zoo
    size of ``t`` that has both, in table order."""
    means = t.groupby("model", sort=False)[col].mean()
    return [(size, float(means[base]), float(means[other])) for size, base, other in size_pairs(means.index, variant)]


def compare_to_baseline(layout: pd.DataFrame, variants: Sequence[str] = REGULARIZED) -> pd.DataFrame:
    """Each regularized zoo model of Table 2's layout against its baseline of the same size,
    column by column.

    Returns one row per (model, column): ``model, baseline, column, diff`` (model − baseline)
    and ``z`` = diff / sqrt(se_model² + se_baseline²).
    """
    t = layout.set_index("model")
    cols = [c for c in t.columns if not c.endswith(" se")]
    baselines = {}
    for variant in variants:
        for _, base, model in size_pairs(t.index, variant):
            baselines[model] = base
    rows = []
    for model in t.index:
        base = baselines.get(model)
        if base is None:
            continue
        for c in cols:
            diff = t.at[model, c] - t.at[base, c]
            se = math.hypot(t.at[model, f"{c} se"], t.at[base, f"{c} se"])
            rows.append(dict(model=model, baseline=base, column=c, diff=diff, z=diff / se if se > 0 else np.nan))
    return pd.DataFrame(rows, columns=["model", "baseline", "column", "diff", "z"])


def paired(diff, scale: float = 100.0) -> tuple[float, float, int]:
    """``(effect, se, n)`` of per-item differences ``diff`` (model − baseline on the same items):
    the mean and its standard error sd(diff)/sqrt(n) (ddof 1), times ``scale`` (100: points).

    This is the paired test: for 0/1 items it is McNemar's test in its normal form (only the
    discordant items move the mean). NaN with fewer than two items."""
    ev = Evidence.of(scale * np.asarray(diff, dtype=float))
    return (ev.effect, ev.se, ev.n) if ev.n >= 2 else (math.nan, math.nan, ev.n)


def pooled(effects: Sequence[float], ses: Sequence[float]) -> tuple[float, float]:
    """The mean of independent ``effects`` and its standard error sqrt(Σ se²)/k (NaN when empty)."""
    k = len(effects)
    if k == 0:
        return math.nan, math.nan
    return float(np.mean(effects)), math.sqrt(float(np.sum(np.square(ses)))) / k


def arm_label(spec: str) -> str:
    """A model's arm (its profile, size and variant, every seed alike): ``zoo:cpu-small-cos0.5-s1``
    -> ``cpu-small cos0.5``; any other spec without ``zoo:`` (an arm of its own)."""
    e = entry_of(spec)
    return spec.replace(_ZOO, "") if e is None else f"{e.profile}-{e.size} {e.variant}"


def arms_of(models: Iterable[str]) -> dict[str, list[str]]:
    """``models`` grouped by arm (:func:`arm_label`), arms in order of first appearance, each
    arm's models by seed."""
    out: dict[str, list[str]] = {}
    for m in dict.fromkeys(models):
        out.setdefault(arm_label(m), []).append(m)
    seed = {m: (e.seed if (e := entry_of(m)) is not None else 0) for ms in out.values() for m in ms}
    return {a: sorted(ms, key=seed.__getitem__) for a, ms in out.items()}


def seed_summary(t: pd.DataFrame, cols: Sequence[str], model: str = "model") -> pd.DataFrame:
    """Per arm (size × variant) of ``t`` (one row per model): how many seeds (``seeds``, and which:
    ``seed_list``) and, for each of ``cols``, its mean over the seeds (``col``), standard deviation
    over the seeds (``col sd``, ddof 1: NaN with one seed) and range (``col min``, ``col max``).

    A model that is not a zoo entry (stories260K) is an arm of its own with one "seed". Arms in
    order of first appearance: ``arm``, ``size`` (``cpu-small``, or the spec), ``variant``."""
    rows = []
    for arm, models in arms_of(t[model]).items():
        g = t[t[model].isin(models)]
        entries = [entry_of(m) for m in models]
        seeds = [e.seed for e in entries if e is not None]
        e0 = entries[0]
        row = dict(arm=arm, size=arm if e0 is None else f"{e0.profile}-{e0.size}",
                   variant=arm if e0 is None else e0.variant, seeds=len(models),
                   seed_list=", ".join(map(str, seeds)) if seeds else "—")
        for c in cols:
            v = g[c].astype(float)
            row.update({c: float(v.mean()), f"{c} sd": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
                        f"{c} min": float(v.min()), f"{c} max": float(v.max())})
        rows.append(row)
    return pd.DataFrame(rows, columns=["arm", "size", "variant", "seeds", "seed_list"] +
                        [f"{c}{s}" for c in cols for s in ("", " sd", " min", " max")])


def seed_numbers_of(st: pd.DataFrame) -> dict:
    """The seeds in a page's prose, from its :func:`seed_summary` table with a ``mean`` column:
    seeds per zoo arm (the fewest and the most), the smallest and largest standard deviation over
    seeds of an arm's ``mean``, and each zoo arm's mean ± sd (its seeds named)."""
    zoo_arms = st[st.seed_list != "—"]
    if zoo_arms.empty:
        return dict(seeds_min=0, seeds_max=0, mean_sd_min=math.nan, mean_sd_max=math.nan, seed_means_text="no zoo arm")
    sd = zoo_arms["mean sd"]
    return dict(seeds_min=int(zoo_arms.seeds.min()), seeds_max=int(zoo_arms.seeds.max()),
                mean_sd_min=float(sd.min()) if sd.notna().any() else math.nan,
                mean_sd_max=float(sd.max()) if sd.notna().any() else math.nan,
                seed_means_text="; ".join(f"{r['arm']} {pm(r['mean'], r['mean sd'])} (seeds {r['seed_list']})"
                                          for _, r in zoo_arms.iterrows()))


def pm(mean: float, sd: float, fmt: str = ".3f") -> str:
    """``mean ± sd`` as a table cell; the mean alone when there is no spread (one seed)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    return f"{mean:{fmt}}" if sd is None or math.isnan(sd) else f"{mean:{fmt}} ± {sd:{fmt}}"


_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def _number(k: int) -> str:
    return _WORDS.get(k, f"{k:,}")


def _seeds_of_arms(models: Iterable[str]) -> dict[str, list[int]]:
    return {a: [entry_of(m).seed for m in ms] for a, ms in arms_of(m for m in models if entry_of(m) is not None).items()}


def seeds_text(models: Iterable[str]) -> str:
    """The zoo models' training seeds in words: "seed 0 only", "three seeds per arm (0, 1, 2)", or
    per arm when the arms differ ("seeds per arm: cpu-small baseline 0, 1, 2; cpu-large cos0.5 0")."""
    arms = _seeds_of_arms(models)
    if not arms:
        return "no zoo models"
    sets = {tuple(v) for v in arms.values()}
    if len(sets) == 1:
        [seeds] = sets
        if len(seeds) == 1:
            return f"seed {seeds[0]} only"
        return f"{_number(len(seeds))} seeds per arm ({', '.join(map(str, seeds))})"
    return "seeds per arm: " + "; ".join(f"{a} {', '.join(map(str, s))}" for a, s in arms.items())


def zoo_seed_text(models: Iterable[str]) -> str:
    """Which pretraining seed of the zoo a page's models are, for a page that shows one seed per
    arm: " (the zoo's seed 0 of three)"; empty without zoo models."""
    entries = [e for m in models if (e := entry_of(m)) is not None]
    if not entries:
        return ""
    seeds = sorted({e.seed for e in entries})
    n = max(zoo.ARMS[(e.profile, e.size)][e.variant] for e in entries)
    which = f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))
    return f" (the zoo's {which} of {_number(n)} pretraining seeds per arm)"


def zoo_models_text(models: Iterable[str]) -> str:
    """The zoo architectures among ``models`` in words: "cpu-small (4 blocks × 128 wide), cpu-large
    (8 blocks × 128 wide), pretrained on 4,096,000 TinyStories tokens, three seeds per arm (0, 1, 2)"
    (:func:`seeds_text`: "seed 0 only" with one seed each)."""
    from ..train.configs import SIZES

    models = list(models)
    archs, tokens = {}, set()
    for m in models:
        e = entry_of(m)
        if e is None:
            continue
        a = SIZES.get(e.arch, {})
        archs[e.arch] = (f"{e.arch} ({a['num_hidden_layers']} blocks × {a['hidden_size']} wide)" if a else e.arch)
        tokens.add(e.config.max_tokens)
    if not archs:
        return "no zoo models"
    tok = ", ".join(f"{t:,}" for t in sorted(tokens))
    return f"{', '.join(archs.values())}, pretrained on {tok} TinyStories tokens, {seeds_text(models)}"


def replication_text(models: Iterable[str], items: str, min_units: int = 3, variant: str = COSINE) -> str:
    """How a page's claim replicates, in words, from its models: with at least ``min_units``
    baseline / ``variant`` training-run pairs (same size and seed), "the claim's unit is the
    training-run pair: 6 baseline / cos0.5 pairs (size × seed), compared ``items`` by ``items``
    inside each pair; its standard error is the spread of the pairs' gains over seeds"; with fewer,
    that the standard error is over ``items``, not over training runs."""
    found = size_pairs(models, variant)
    k = len(found)
    pairs = f"{_number(k)} baseline / {variant} training-run pair{'s' if k != 1 else ''} (size × seed)"
    if k >= min_units:
        sizes = {(entry_of(b).profile, entry_of(b).size) for _, b, _ in found}
        return (f"the claim's unit is the training-run pair: {pairs}, compared {items} by {items} inside each "
                f"pair; its standard error is the spread of the pairs' gains over seeds"
                + (" and sizes" if len(sizes) > 1 else ""))
    return (f"{pairs}, fewer than {_number(min_units)}: the claim's standard error is over {items}s pooled over "
            f"sizes, not over training runs")
