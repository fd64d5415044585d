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
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import results
from ..config import StudyConfig, check_int, check_number, check_str, check_str_list
from ..errors import LinUtilsError
from ..scan import model_key

__all__ = ["BENCHMARKS", "PROBES", "HEADLINE", "BenchmarksConfig", "ProbesConfig", "benchmark_scores",
           "probe_accuracy", "table2_layout"]

BENCHMARKS = "benchmarks"
PROBES = "probes"

#: the one metric of each task that enters Table 2's mean (every other task: ``acc``)
HEADLINE = {"cb": "acc", "record": "f1"}


@dataclass(frozen=True)
class BenchmarksConfig(StudyConfig):
    """Table 2: lm-eval zero-shot scores of every model.

    Attributes:
        models: :func:`lin_utils.models.load_model` specs, one cached table each.
        tasks: lm-eval task names (None: the paper's Table 2 columns,
            :data:`lin_utils.evaluate.harness.PAPER_TASKS`).
        limit: lm-eval's ``limit``: the first ``limit`` documents of each task (None: all).
        batch_size: lm-eval's batch size (not in the cache key).
        max_length: context length in tokens (None: the model's).
        seed: lm-eval's seeds; device: where the models run (not in the cache key).
    """

    models: tuple[str, ...] = ("stories260K",)
    tasks: tuple[str, ...] | None = None
    limit: int | None = None
    batch_size: int = 16
    max_length: int | None = None
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        object.__setattr__(self, "models", check_str_list("models", self.models))
        object.__setattr__(self, "tasks", check_str_list("tasks", self.tasks, none=True))
        check_int("limit", self.limit, minimum=1, none=True)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("max_length", self.max_length, minimum=1, none=True)
        check_int("seed", self.seed)
        check_str("device", self.device)

    def task_list(self) -> list[str]:
        from ..evaluate.harness import PAPER_TASKS  # lm-eval: heavy, only where scores are computed

        return list(PAPER_TASKS if self.tasks is None else self.tasks)

    def key(self) -> dict:
        """The cache key of each model's table (besides the model's own :func:`model_key`)."""
        return dict(tasks=self.task_list(), limit=self.limit, max_length=self.max_length, seed=self.seed,
                    num_fewshot=0)


@dataclass(frozen=True)
class ProbesConfig(StudyConfig):
    """Fig 5: linear probes at every block boundary on xStoryCloze-en.

    Attributes:
        models: :func:`lin_utils.models.load_model` specs, one cached table each.
        max_train, max_test: the first stories of ``en_train`` / ``en_eval`` (None: all).
        cv: folds of the grouped cross-validation (< 2: none).
        C: inverse L2 strength of the logistic regression.
        batch_size, device: how the features are extracted (not in the cache key); seed.
    """

    models: tuple[str, ...] = ("stories260K",)
    max_train: int | None = None
    max_test: int | None = None
    cv: int = 5
    C: float = 1.0
    batch_size: int = 16
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        object.__setattr__(self, "models", check_str_list("models", self.models))
        check_int("max_train", self.max_train, minimum=1, none=True)
        check_int("max_test", self.max_test, minimum=1, none=True)
        check_int("cv", self.cv, minimum=0)
        if check_number("C", self.C) <= 0:
            raise LinUtilsError(f"C must be a positive number, got {self.C!r}")
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("seed", self.seed)
        check_str("device", self.device)

    def key(self) -> dict:
        """The cache key of each model's table (besides the model's own :func:`model_key`)."""
        return dict(max_train=self.max_train, max_test=self.max_test, cv=self.cv, C=self.C, seed=self.seed,
                    pooling="mean over ending tokens")


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


def benchmark_scores(config: BenchmarksConfig, *, profile: str, force: bool = False, cache_only: bool = False,
                     progress: bool = True) -> pd.DataFrame | None:
    """Zero-shot lm-eval scores of every model of ``config`` (:class:`BenchmarksConfig`).

    Returns:
        One row per (model, task, metric): ``model, task, metric, value, stderr, n, n_total,
        chance, source, split, limit, seconds`` (``n``: the documents scored; ``seconds``:
        lm-eval's wall time for the whole model, repeated on its rows). None with ``cache_only``
        when a model's table is missing.
    """
    import torch

    from ..evaluate.harness import run_harness
    from ..models import load_model

    c = config

    def compute(spec: str) -> pd.DataFrame:
        model, tok = load_model(spec, dtype=torch.float32, device=c.device)
        run = run_harness(model, tok, c.task_list(), limit=c.limit, batch_size=c.batch_size, max_length=c.max_length,
                          seed=c.seed)
        t = run.table.drop(columns=["lm_eval_task"])
        t.insert(0, "model", spec)
        t["seconds"] = run.seconds
        return t

    return _per_model(BENCHMARKS, c.models, c.key(), compute, profile=profile, force=force, cache_only=cache_only)


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


def probe_accuracy(config: ProbesConfig, *, profile: str, force: bool = False, cache_only: bool = False,
                   progress: bool = True) -> pd.DataFrame | None:
    """Fig 5: linear-probe accuracy at every block boundary of every model of ``config``
    (:class:`ProbesConfig`) on xStoryCloze-en.

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

    c = config

    def compute(spec: str) -> pd.DataFrame:
        model, tok = load_model(spec, dtype=torch.float32, device=c.device)
        t = linear_probes(model, tok, max_train=c.max_train, max_test=c.max_test, cv=c.cv, C=c.C,
                          batch_size=c.batch_size, device=c.device, seed=c.seed, progress=progress)
        n_blocks = len(decoder_blocks(model))
        t.insert(0, "model", spec)
        t.insert(1, "n_blocks", n_blocks)
        t.insert(3, "depth", t.boundary / n_blocks)
        t["test_se"] = np.sqrt(t.test_acc * (1 - t.test_acc) / t.n_test)
        return t

    return _per_model(PROBES, c.models, c.key(), compute, profile=profile, force=force, cache_only=cache_only)
