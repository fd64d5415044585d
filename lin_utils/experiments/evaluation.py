"""Section 4's evaluations: benchmarks (Table 2) and per-layer linear probes (Fig 5).

* :func:`benchmark_scores` (Table 2): lm-evaluation-harness on the paper's SuperGLUE and
  xStoryCloze columns (:mod:`lin_utils.evaluate.harness`), one cached table per model.
* :func:`table2_layout`: the paper's column layout with the mean, standard errors and chance.
* :func:`probe_accuracy` (Fig 5): linear probes at every block boundary on xStoryCloze-en
  (:mod:`lin_utils.evaluate.probes`), one cached table per model.
* :func:`benchmark_items` and :func:`probe_items`: the same computations' per-item tables (each
  document's answer and score; each probe's prediction on each test example), stored as a second
  table (``items``) of the same computation and key, so that a regularized model and its baseline
  are compared item by item (a paired test, :mod:`lin_utils.pages._zoo_pairs`). A model whose
  ``scores`` were stored before the items existed is recomputed once, both tables together.

Each model is cached on its own (keyed by its spec and, for ``zoo:`` models, its weight key), so
adding a model to a profile computes only that model.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .. import results
from ..arch import decoder_blocks
from ..config import StudyConfig, check_int, check_number, check_str, check_str_list
from ..errors import LinUtilsError
from ..evaluate.harness import PAPER_TASKS, run_harness
from ..evaluate.probes import linear_probes
from ..models import load_model
from ..scan import model_key

__all__ = ["BENCHMARKS", "PROBES", "ITEMS", "HEADLINE", "BenchmarksConfig", "ProbesConfig", "benchmark_items",
           "benchmark_scores", "probe_accuracy", "probe_items", "table2_layout"]

BENCHMARKS = "benchmarks"
PROBES = "probes"
#: the per-item table of both computations (beside ``scores``)
ITEMS = "items"
SCORES = "scores"

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
               cache_only: bool, table: str = SCORES) -> pd.DataFrame | None:
    """``table`` of every model, concatenated; ``compute(spec)`` returns ``{SCORES, ITEMS}``, cached
    together (:func:`lin_utils.results.cached_tables`): a model whose ``scores`` are stored without
    its ``items`` is computed again (both tables). With ``cache_only``, None when a model's
    ``table`` is missing."""
    frames = []
    for spec in models:
        key = {**model_key(spec), **params}
        if cache_only:
            t = results.load_table(computation, table, key, profile)
            if t is None:
                return None
        else:
            t = results.cached_tables(computation, [SCORES, ITEMS], key, lambda spec=spec: compute(spec),
                                      profile=profile, force=force)[table]
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def _benchmark_compute(c: BenchmarksConfig):
    def compute(spec: str) -> dict[str, pd.DataFrame]:
        model, tok = load_model(spec, dtype=torch.float32, device=c.device)
        run = run_harness(model, tok, c.task_list(), limit=c.limit, batch_size=c.batch_size, max_length=c.max_length,
                          seed=c.seed)
        t = run.table.drop(columns=["lm_eval_task"])
        t.insert(0, "model", spec)
        t["seconds"] = run.seconds
        items = run.items(HEADLINE)
        items.insert(0, "model", spec)
        return {SCORES: t, ITEMS: items}

    return compute


def benchmark_scores(config: BenchmarksConfig, *, profile: str, force: bool = False, cache_only: bool = False,
                     progress: bool = True) -> pd.DataFrame | None:
    """Zero-shot lm-eval scores of every model of ``config`` (:class:`BenchmarksConfig`).

    Returns:
        One row per (model, task, metric): ``model, task, metric, value, stderr, n, n_total,
        chance, source, split, limit, seconds`` (``n``: the documents scored; ``seconds``:
        lm-eval's wall time for the whole model, repeated on its rows). None with ``cache_only``
        when a model's table is missing.
    """
    return _per_model(BENCHMARKS, config.models, config.key(), _benchmark_compute(config), profile=profile,
                      force=force, cache_only=cache_only)


def benchmark_items(config: BenchmarksConfig, *, profile: str, force: bool = False, cache_only: bool = False,
                    progress: bool = True) -> pd.DataFrame | None:
    """The per-document answers behind :func:`benchmark_scores` (same computation and key).

    Returns:
        One row per (model, task, document): ``model, task, doc_id, n_choices, gold, pred, metric,
        value, logliks`` (:meth:`lin_utils.evaluate.harness.HarnessRun.items`; ``value``: the
        document's score in the task's headline metric, :data:`HEADLINE`). None with
        ``cache_only`` when a model's table is missing.
    """
    return _per_model(BENCHMARKS, config.models, config.key(), _benchmark_compute(config), profile=profile,
                      force=force, cache_only=cache_only, table=ITEMS)


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


def _probe_compute(c: ProbesConfig, progress: bool):
    def compute(spec: str) -> dict[str, pd.DataFrame]:
        model, tok = load_model(spec, dtype=torch.float32, device=c.device)
        t, items = linear_probes(model, tok, max_train=c.max_train, max_test=c.max_test, cv=c.cv, C=c.C,
                                 batch_size=c.batch_size, device=c.device, seed=c.seed, progress=progress,
                                 predictions=True)
        n_blocks = len(decoder_blocks(model))
        t.insert(0, "model", spec)
        t.insert(1, "n_blocks", n_blocks)
        t.insert(3, "depth", t.boundary / n_blocks)
        t["test_se"] = np.sqrt(t.test_acc * (1 - t.test_acc) / t.n_test)
        items.insert(0, "model", spec)
        return {SCORES: t, ITEMS: items}

    return compute


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
    return _per_model(PROBES, config.models, config.key(), _probe_compute(config, progress), profile=profile,
                      force=force, cache_only=cache_only)


def probe_items(config: ProbesConfig, *, profile: str, force: bool = False, cache_only: bool = False,
                progress: bool = True) -> pd.DataFrame | None:
    """Each probe's prediction on each test example, behind :func:`probe_accuracy` (same key).

    Returns:
        One row per (model, boundary, test example): ``model, boundary, item, story, label, pred,
        correct``. None with ``cache_only`` when a model's table is missing.
    """
    return _per_model(PROBES, config.models, config.key(), _probe_compute(config, progress), profile=profile,
                      force=force, cache_only=cache_only, table=ITEMS)
