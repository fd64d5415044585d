"""Section 4's evaluations: benchmarks (Table 2) and per-layer linear probes (Fig 5).

* :func:`benchmark_scores` (Table 2): lm-evaluation-harness on the paper's SuperGLUE and
  xStoryCloze columns (:mod:`lin_utils.evaluate.harness`), one cached table per model.
* :func:`table2_layout`: the paper's column layout with the mean, standard errors and chance.
* :func:`probe_accuracy` (Fig 5): linear probes at every block boundary on xStoryCloze-en
  (:mod:`lin_utils.evaluate.probes`), one cached table per model.

Each model is cached on its own (keyed by its spec and, for ``zoo:`` models, its weight key), so
adding a model to a profile computes only that model.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import results
from ..scan import model_key

__all__ = ["BENCHMARKS", "PROBES", "HEADLINE", "benchmark_scores", "compare_to_baseline", "probe_accuracy",
           "table2_layout"]

BENCHMARKS = "benchmarks"
PROBES = "probes"

#: the one metric of each task that enters Table 2's mean (every other task: ``acc``)
HEADLINE = {"cb": "acc", "record": "f1"}


def _per_model(computation: str, models: Sequence[str], params: dict, compute, *, profile: str, force: bool,
               cache_only: bool) -> pd.DataFrame | None:
    frames = []
    for spec in models:
        key = {**model_key(spec), **params}
        if cache_only:
            t = results.load_table(computation, "scores", key, profile)
            if t is None:
                return None
        else:
            t = results.cached(computation, "scores", key, lambda spec=spec: compute(spec), profile=profile,
                               force=force)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def benchmark_scores(models: Sequence[str], tasks: Sequence[str] | None = None, *, limit: int | None = None,
                     batch_size: int = 16, max_length: int | None = None, seed: int = 0, device: str = "cpu",
                     profile: str, force: bool = False, cache_only: bool = False,
                     progress: bool = True) -> pd.DataFrame | None:
    """Zero-shot lm-eval scores of every model on ``tasks`` (default: the paper's Table 2 columns).

    Args:
        limit: lm-eval's ``limit``: the first ``limit`` documents of each task (None: all). The
            table's ``n`` says how many were scored.
        batch_size: lm-eval's batch size (does not enter the cache key).
        max_length: context length in tokens (default: the model's).

    Returns:
        One row per (model, task, metric): ``model, task, metric, value, stderr, n, n_total,
        chance, source, split, limit, seconds`` (``seconds``: lm-eval's wall time for the whole
        model, repeated on its rows). None with ``cache_only`` when a model's table is missing.
    """
    import torch

    from ..evaluate.harness import PAPER_TASKS, run_harness
    from ..models import load_model

    tasks = list(PAPER_TASKS if tasks is None else tasks)

    def compute(spec: str) -> pd.DataFrame:
        model, tok = load_model(spec, dtype=torch.float32, device=device)
        run = run_harness(model, tok, tasks, limit=limit, batch_size=batch_size, max_length=max_length, seed=seed)
        t = run.table.drop(columns=["lm_eval_task"])
        t.insert(0, "model", spec)
        t["seconds"] = run.seconds
        return t

    params = dict(tasks=tasks, limit=limit, max_length=max_length, seed=seed, num_fewshot=0)
    return _per_model(BENCHMARKS, models, params, compute, profile=profile, force=force, cache_only=cache_only)


def table2_layout(scores: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 2 layout: one row per model, one column per (task, metric), plus ``mean``.

    Columns are ``<task>`` for accuracy-only tasks and ``<task> <metric>`` otherwise; each has a
    ``... se`` twin (standard error) and the frame carries a ``chance`` row. ``mean`` averages
    each task's headline metric (:data:`HEADLINE`, else ``acc``), one number per task, and its
    standard error is sqrt(sum se^2) / n_tasks (tasks scored on different documents are
    independent).
    """
    multi = scores.groupby("task").metric.nunique()
    s = scores.assign(column=[t if multi[t] == 1 else f"{t} {m}" for t, m in zip(scores.task, scores.metric)])
    order = list(dict.fromkeys(s.column))
    value = s.pivot(index="model", columns="column", values="value")[order]
    se = s.pivot(index="model", columns="column", values="stderr")[order].add_suffix(" se")
    head = s[[HEADLINE.get(t, "acc") == m for t, m in zip(s.task, s.metric)]]
    mean = head.groupby("model").value.mean()
    mean_se = head.groupby("model").stderr.apply(lambda e: math.sqrt((e**2).sum()) / len(e))
    out = pd.concat([value, se], axis=1)
    out["mean"], out["mean se"] = mean, mean_se
    out = out.loc[list(dict.fromkeys(scores.model))]
    chance = s.groupby("column").chance.first()
    chance_row = {c: chance[c] for c in order}
    chance_row["mean"] = head.groupby("task").chance.first().mean()
    out.loc["chance"] = pd.Series(chance_row)
    cols = [c for pair in zip(order + ["mean"], [f"{c} se" for c in order] + ["mean se"]) for c in pair]
    return out[cols].rename_axis("model").reset_index()


def compare_to_baseline(layout: pd.DataFrame, variants: Sequence[str] = ("cos0.5", "mse0.5", "mse2.0")) -> pd.DataFrame:
    """Each regularized zoo model against its baseline of the same size, column by column.

    Returns one row per (model, column): ``model, baseline, column, diff`` (model − baseline)
    and ``z`` = diff / sqrt(se_model² + se_baseline²).
    """
    t = layout.set_index("model")
    cols = [c for c in t.columns if not c.endswith(" se")]
    rows = []
    for model in t.index:
        if not model.startswith("zoo:") or not model.endswith(tuple(f"-{v}" for v in variants)):
            continue
        base = model.rsplit("-", 1)[0] + "-baseline"
        if base not in t.index:
            continue
        for c in cols:
            diff = t.at[model, c] - t.at[base, c]
            se = math.hypot(t.at[model, f"{c} se"], t.at[base, f"{c} se"])
            rows.append(dict(model=model, baseline=base, column=c, diff=diff, z=diff / se if se > 0 else np.nan))
    return pd.DataFrame(rows, columns=["model", "baseline", "column", "diff", "z"])


def probe_accuracy(models: Sequence[str], *, max_train: int | None = None, max_test: int | None = None,
                   cv: int = 5, C: float = 1.0, batch_size: int = 16, seed: int = 0, device: str = "cpu",
                   profile: str, force: bool = False, cache_only: bool = False,
                   progress: bool = True) -> pd.DataFrame | None:
    """Fig 5: linear-probe accuracy at every block boundary of every model on xStoryCloze-en.

    See :func:`lin_utils.evaluate.probes.linear_probes` (pooling: mean over the ending's
    tokens; trained on ``en_train``, tested on ``en_eval``; grouped 5-fold CV over both).

    Returns:
        One row per (model, boundary): ``model, n_blocks, depth`` (boundary / n_blocks), the
        columns of ``linear_probes`` and ``test_se`` = sqrt(acc (1 − acc) / n_test).
    """
    import torch

    from ..arch import decoder_blocks
    from ..evaluate.probes import linear_probes
    from ..models import load_model

    def compute(spec: str) -> pd.DataFrame:
        model, tok = load_model(spec, dtype=torch.float32, device=device)
        t = linear_probes(model, tok, max_train=max_train, max_test=max_test, cv=cv, C=C, batch_size=batch_size,
                          device=device, seed=seed, progress=progress)
        n_blocks = len(decoder_blocks(model))
        t.insert(0, "model", spec)
        t.insert(1, "n_blocks", n_blocks)
        t.insert(3, "depth", t.boundary / n_blocks)
        t["test_se"] = np.sqrt(t.test_acc * (1 - t.test_acc) / t.n_test)
        return t

    params = dict(max_train=max_train, max_test=max_test, cv=cv, C=C, seed=seed, pooling="mean over ending tokens")
    return _per_model(PROBES, models, params, compute, profile=profile, force=force, cache_only=cache_only)
