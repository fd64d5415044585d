"""Table 1: linearity without the residual before and after fine-tuning, per (model, task) cell."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import plots
from ..book.glue import figure_page
from ..claims import NOT_REPLICATED, PARTLY, REPLICATED, Claim
from ..experiments.finetuning import FinetuningConfig, finetuning_deltas
from . import name_of

NAME = name_of(__name__)
CONFIG = FinetuningConfig(
    models=("stories260K", "zoo:cpu-small-baseline", "zoo:cpu-large-baseline", "minilm"),
    tasks=("multirc", "boolq", "cb", "hh-rlhf"), seeds=(0, 1, 2), steps=24, batch_size=8, lr=3e-4, warmup_steps=3,
    weight_decay=0.01, grad_clip=1.0, max_len=128, heldout_fraction=0.5, eval_examples=128, task_tokens=4096,
    corpus="tinystories", corpus_split="validation", corpus_tokens=4096, seq_len=256, exclude_bos=True,
    dtype="float32", device="cpu", num_threads=1)

#: the paper's column names of the tasks
TASK_NAMES = {"multirc": "MultiRC", "boolq": "BoolQ", "cb": "CB", "hh-rlhf": "reward modelling (HH)"}

#: the full table's columns (every seed)
RUN_COLUMNS = ["model", "arch", "task", "seed", "acc_before", "acc_after", "baseline", "learned", "loss_first",
               "loss_last", "nores_before_corpus", "delta_corpus", "nores_before_task", "delta_task",
               "n_tokens_corpus", "n_tokens_task", "d", "chance_corpus", "chance_task"]


def tables(config: FinetuningConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> pd.DataFrame | None:
    """One row per (model, task, seed): :func:`lin_utils.experiments.finetuning_deltas`."""
    return finetuning_deltas(config, profile=profile, force=force, cache_only=cache_only, progress=progress)


def cells(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 1 per (model, task) cell from the per-seed runs of :func:`tables`.

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


def counts(runs: pd.DataFrame) -> dict:
    """Counts of Table 1's cells: positive, positive beyond their std, learned; for the main delta
    (fixed corpus) and the task's held-out inputs; the range of the mean deltas; the run sizes."""
    c = cells(runs)
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
    n = counts(runs)
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


CLAIMS = [
    Claim("Table 1", "Fine-tuning raises linearity without the residual",
          "all 28 deltas positive (7 models x MultiRC, BoolQ, CB, HH-RLHF reward modelling)",
          "per (model, task) cell, the mean over seeds of the delta (after - before) of linearity without the residual "
          "averaged over blocks, on the fixed TinyStories corpus; replicated if every cell's mean delta is positive by "
          "more than its standard deviation over seeds; partly if more than half of the cells have a positive mean; "
          "cells whose model learned nothing count alike, and are named", judge_finetuning, order=60),
]


def numbers(runs: pd.DataFrame) -> dict:
    """The prose's numbers: :func:`counts` and the verdict."""
    out = counts(runs)
    out["verdict_finetuning"] = judge_finetuning(runs)[1]
    return out


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 1 layout: one row per model, one column per task. A cell reads
    ``Δ mean ± std`` (the delta on the fixed corpus, over seeds), then the mean held-out accuracy
    after fine-tuning against the majority-class baseline; a cell whose model learned nothing
    (:func:`cells`) says so."""
    out = {}
    for c in cells(runs).itertuples():
        std = "n/a" if pd.isna(c.delta_std) else f"{c.delta_std:.4f}"
        text = f"{c.delta:+.4f} ± {std} (acc {c.acc_after:.2f} vs {c.baseline:.2f}"
        text += f", learned {c.learned_seeds}/{c.n_seeds})" if c.learned else f"; learned nothing, {c.learned_seeds}/{c.n_seeds})"
        out.setdefault(c.model, {"model": c.model.replace("zoo:", ""), "kind": c.arch})[TASK_NAMES.get(c.task, c.task)] = text
    return pd.DataFrame(list(out.values()))


page_numbers = numbers  # from what tables() returns


def show(config: FinetuningConfig, *, profile: str, force: bool = False) -> pd.DataFrame:
    runs = tables(config, profile=profile, force=force)
    figure_page(NAME, profile, plots.finetuning_deltas(runs), numbers=numbers(runs), summary=summary(runs),
                table=runs[RUN_COLUMNS], formats={c: "+.4f" for c in ("delta_corpus", "delta_task")})
    return runs
