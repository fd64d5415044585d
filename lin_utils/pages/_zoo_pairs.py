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

__all__ = ["BASELINE", "COSINE", "REGULARIZED", "compare_to_baseline", "entry_of", "paired",
           "pooled", "size_groups", "size_label", "size_pairs", "variant_label", "zoo_models_text", "zoo_pairs"]

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


def zoo_models_text(models: Iterable[str]) -> str:
    """The zoo architectures among ``models`` in words: "cpu-small (4 blocks × 128 wide), cpu-large
    (8 blocks × 128 wide), pretrained on 1,500,000 TinyStories tokens, seed 0" (one seed each)."""
    from ..train.configs import SIZES

    archs, tokens, seeds = {}, set(), set()
    for m in models:
        e = entry_of(m)
        if e is None:
            continue
        a = SIZES.get(e.arch, {})
        archs[e.arch] = (f"{e.arch} ({a['num_hidden_layers']} blocks × {a['hidden_size']} wide)" if a else e.arch)
        tokens.add(e.config.max_tokens)
        seeds.add(e.seed)
    if not archs:
        return "no zoo models"
    tok = ", ".join(f"{t:,}" for t in sorted(tokens))
    seed = f"seed {sorted(seeds)[0]} only" if len(seeds) == 1 else "seeds " + ", ".join(map(str, sorted(seeds)))
    return f"{', '.join(archs.values())}, pretrained on {tok} TinyStories tokens, {seed}"
