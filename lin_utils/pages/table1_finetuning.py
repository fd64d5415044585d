"""Table 1: linearity without the residual before and after fine-tuning, per (model, task) cell,
against a shuffled-label control.

The claim is about decoders: it is judged on the decoders' cells only (the MiniLM encoder stays
on the page as a contrast). The unit of replication is the seed: each seed's run is paired with
the same model before fine-tuning (and, for the control, with the same seed's shuffled-label
run), so a cell's effect is the mean over seeds of its paired deltas and its standard error the
spread of those deltas over seeds.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import plots
from ..book.glue import figure_page, glue_markdown
from ..claims import Claim, Evidence, Judgement, Test, judge_effect
from ..experiments.finetuning import FinetuningConfig, finetuning_deltas
from . import name_of
from ._zoo_pairs import zoo_seed_text

NAME = name_of(__name__)
CONFIG = FinetuningConfig(
    models=("stories260K", "zoo:cpu-small-baseline", "zoo:cpu-large-baseline", "minilm"),
    tasks=("multirc", "boolq", "cb", "hh-rlhf"), seeds=(0, 1, 2), control=True, steps=64, batch_size=8, lr=3e-4,
    warmup_steps=3, weight_decay=0.01, grad_clip=1.0, max_len=128, heldout_fraction=0.5, eval_examples=128,
    task_tokens=4096, corpus="tinystories", corpus_split="validation", corpus_tokens=4096, seq_len=256,
    exclude_bos=True, dtype="float32", device="cpu", num_threads=1)

#: the paper's column names of the tasks
TASK_NAMES = {"multirc": "MultiRC", "boolq": "BoolQ", "cb": "CB", "hh-rlhf": "reward modelling (HH)"}

#: the full table's columns (every seed and condition)
RUN_COLUMNS = ["model", "arch", "task", "seed", "condition", "acc_before", "acc_after", "baseline", "learned",
               "loss_first", "loss_last", "nores_before_corpus", "delta_corpus", "nores_before_task", "delta_task",
               "n_tokens_corpus", "n_tokens_task", "d", "chance_corpus", "chance_task"]

#: the paper's setup for "How this differs from the paper" (its Section 3.2 and Table 1); its models
#: are the `full` profile's
PAPER_SETUP = ("fine-tuned on MultiRC, BoolQ and CB and as reward models on Anthropic-Helpful, its Table 1 giving "
               "mean ± std over seeds, with no control")

#: the claim's test, declared once: its rule sentence on the claims page is generated from it
TEST = Test(
    quantity="mean delta (after − before, each seed's run paired with its model before fine-tuning) of linearity "
             "without the residual, averaged over blocks on the fixed TinyStories corpus, over the decoders' (model, "
             "task) cells",
    direction=+1,
    unit="seeds")


def _condition(runs: pd.DataFrame, condition: str) -> pd.DataFrame:
    """The rows of one condition (``task`` or ``shuffled``); a table without the column is all task."""
    if "condition" not in runs:
        return runs if condition == "task" else runs.iloc[0:0]
    return runs[runs.condition == condition]


def _mean_se(values) -> tuple[float, float, float]:
    """(mean, sample std, standard error of the mean) of ``values``; std and se NaN for one value."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    if len(v) == 1:
        return float(v[0]), math.nan, math.nan
    std = float(v.std(ddof=1))
    return float(v.mean()), std, std / math.sqrt(len(v))


def cells(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 1 per (model, task) cell from the per-seed runs of :func:`tables`.

    Columns: ``model, arch, task, n_seeds``; ``delta``, ``delta_std``, ``delta_se`` (mean, sample
    std and standard error over seeds of the delta on the fixed corpus, the main number) and the
    same for ``delta_task`` (on the task's held-out inputs); ``positive`` (mean delta > 0),
    ``beyond_se`` (mean delta > 2 se; False with one seed); mean ``acc_before``, ``acc_after``
    and ``baseline``; ``learned_seeds`` (seeds whose held-out accuracy beat the majority baseline
    by 2 standard errors) and ``learned`` (a majority of the seeds did); for the shuffled-label
    control (NaN without one): ``control``, ``control_se`` (its delta on the corpus),
    ``control_acc_after``, and ``excess``, ``excess_se``: the task's delta minus the control's,
    paired by seed (the same seed's head init and example order).
    """
    task, ctrl = _condition(runs, "task"), _condition(runs, "shuffled")
    rows = []
    for (model, name), g in task.groupby(["model", "task"], sort=False):
        row = dict(model=model, arch=g.arch.iloc[0], task=name, n_seeds=len(g))
        for col, key in (("delta_corpus", "delta"), ("delta_task", "delta_task")):
            mean, std, se = _mean_se(g[col])
            row.update({key: mean, f"{key}_std": std, f"{key}_se": se})
        row.update(positive=row["delta"] > 0, beyond_se=bool(row["n_seeds"] > 1 and row["delta"] > 2 * row["delta_se"]),
                   acc_before=float(g.acc_before.mean()), acc_after=float(g.acc_after.mean()),
                   baseline=float(g.baseline.mean()), learned_seeds=int(g.learned.sum()),
                   learned=bool(2 * int(g.learned.sum()) > len(g)))
        c = ctrl[(ctrl.model == model) & (ctrl.task == name)]
        if len(c):
            paired = g.set_index("seed").delta_corpus - c.set_index("seed").delta_corpus
            paired = paired.dropna()
            cm, _, cse = _mean_se(c.delta_corpus)
            em, _, ese = _mean_se(paired)
            row.update(control=cm, control_se=cse, control_acc_after=float(c.acc_after.mean()), excess=em,
                       excess_se=ese)
        else:
            row.update(control=math.nan, control_se=math.nan, control_acc_after=math.nan, excess=math.nan,
                       excess_se=math.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=[
        "model", "arch", "task", "n_seeds", "delta", "delta_std", "delta_se", "delta_task", "delta_task_std",
        "delta_task_se", "positive", "beyond_se", "acc_before", "acc_after", "baseline", "learned_seeds", "learned",
        "control", "control_se", "control_acc_after", "excess", "excess_se"])


def pooled(means, ses) -> tuple[float, float]:
    """The mean of independent cell means and its standard error, ``sqrt(Σ se²) / n`` (NaN when a
    cell has no standard error)."""
    means, ses = np.asarray(means, dtype=float), np.asarray(ses, dtype=float)
    if len(means) == 0:
        return math.nan, math.nan
    return float(means.mean()), float(math.sqrt(float(np.sum(ses ** 2))) / len(means))


def evidence(runs: pd.DataFrame, column: str = "delta", learned_only: bool = False) -> Evidence:
    """The claim's :class:`~lin_utils.claims.Evidence` over the decoders' cells: ``column``
    (``delta``: the task's delta; ``control``: the shuffled-label control's; ``excess``: task minus
    control, paired by seed) as the mean of the cells' means with the standard error of
    :func:`pooled`; ``n`` is the number of seeds (the fewest of a cell). ``learned_only``: the
    cells whose model learned the task (a majority of seeds)."""
    c = cells(runs)
    c = c[(c.arch == "decoder") & (c.learned | (not learned_only))]
    se_col = f"{column}_se"
    effect, se = pooled(c[column], c[se_col])
    return Evidence(effect=effect, se=se, n=int(c.n_seeds.min()) if len(c) else 0)


def _signed(ev: Evidence) -> str:
    return f"{ev.effect:+.4f} ± {ev.se:.4f}" if math.isfinite(ev.se) else f"{ev.effect:+.4f} (no standard error)"


def control_reading(runs: pd.DataFrame) -> str:
    """Where the rise comes from, in a sentence: the task's delta against the shuffled-label
    control's, both over the decoders' cells (2 standard errors decide each comparison)."""
    task, ctrl, excess = evidence(runs, "delta"), evidence(runs, "control"), evidence(runs, "excess")
    if not math.isfinite(ctrl.effect):
        return "no shuffled-label control was run, so the page cannot say whether the rise comes from learning the task"
    if not math.isfinite(excess.se):
        return "the control has no standard error (one seed), so the page cannot say where the rise comes from"
    beyond = excess.effect > 2 * excess.se
    below = excess.effect < -2 * excess.se
    ctrl_up = ctrl.effect > 2 * ctrl.se
    if beyond:
        return (f"learning the task adds to the rise: the task's delta exceeds the shuffled-label control's by "
                f"{_signed(excess)}" + (f", while the control alone also rises ({_signed(ctrl)})" if ctrl_up else ""))
    if below:
        return (f"the shuffled-label control changes linearity more than the task does (task − control "
                f"{_signed(excess)}), so learning the task does not explain the change")
    if ctrl_up:
        return (f"any update raises it: the shuffled-label control rises by {_signed(ctrl)}, and the task's delta "
                f"is within 2 standard errors of the control's (task − control {_signed(excess)})")
    return (f"neither the control ({_signed(ctrl)}) nor the difference task − control ({_signed(excess)}) is beyond "
            f"2 standard errors (task {_signed(task)})")


def counts(runs: pd.DataFrame) -> dict:
    """The prose's numbers about the cells: how many, positive, beyond 2 se, learned (decoders and all)."""
    c = cells(runs)
    dec = c[c.arch == "decoder"]
    learned = dec[dec.learned]
    task_runs = _condition(runs, "task")
    return dict(
        n_cells=len(c), n_models=c.model.nunique(), n_tasks=c.task.nunique(),
        n_seeds_min=int(c.n_seeds.min()), steps=int(task_runs.steps.max()), batch_size=int(task_runs.batch_size.max()),
        n_decoder_cells=len(dec), n_decoders=dec.model.nunique(),
        n_positive=int(dec.positive.sum()), n_beyond=int(dec.beyond_se.sum()),
        n_learned=len(learned), n_learned_all=int(c.learned.sum()),
        n_positive_learned=int(learned.positive.sum()), n_beyond_learned=int(learned.beyond_se.sum()),
        n_control_beyond=int((dec.control > 2 * dec.control_se).sum()),
        n_excess_beyond=int((dec.excess > 2 * dec.excess_se).sum()),
        delta_min=float(dec.delta.min()), delta_max=float(dec.delta.max()), delta_median=float(dec.delta.median()),
        not_positive=", ".join(f"{m.split(':')[-1]} / {t}" for m, t, p in zip(dec.model, dec.task, dec.positive)
                               if not p) or "none",
        not_learned=", ".join(f"{m.split(':')[-1]} / {t}" for m, t, ok in zip(dec.model, dec.task, dec.learned)
                              if not ok) or "none",
    )


def judge_finetuning(runs: pd.DataFrame) -> Judgement:
    """The Table 1 claim (decoders only) under :data:`TEST`."""
    n = counts(runs)
    ev = evidence(runs)
    ours = (f"mean delta {_signed(ev)} (standard error over seeds) over {n['n_decoder_cells']} decoder cells; "
            f"{n['n_positive']} of them positive, {n['n_beyond']} beyond 2 se; the models learned in "
            f"{n['n_learned']} of the {n['n_decoder_cells']}; control: {control_reading(runs)}")
    return judge_effect(TEST, ev, ours)


CLAIMS = [
    Claim("Table 1", "Fine-tuning raises the linearity of decoders without the residual",
          "all 28 deltas positive (7 decoders x MultiRC, BoolQ, CB, HH-RLHF reward modelling); the paper's Table 1 "
          "values are not stored in the project's data, so its effect is not weighed here",
          "", judge_finetuning, order=60, test=TEST),
]


def numbers(runs: pd.DataFrame) -> dict:
    """The prose's numbers: :func:`counts`, the evidence (task, control, task − control) and the verdict."""
    out = counts(runs)
    j = judge_finetuning(runs)
    for key, col, only in (("", "delta", False), ("control_", "control", False), ("excess_", "excess", False),
                           ("excess_learned_", "excess", True)):
        ev = evidence(runs, col, learned_only=only)
        out.update({f"{key}effect": ev.effect, f"{key}se": ev.se, f"{key}mde": ev.mde})
    out.update(n_runs=int((_condition(runs, "task").arch == "decoder").sum()), verdict_finetuning=j.verdict,
               reason_finetuning=j.reason, control_reading=control_reading(runs), rule=TEST.rule())
    return out


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 1 layout: one row per model, one column per task. A cell reads
    ``Δ mean ± se`` (the delta on the fixed corpus, se over seeds), then the shuffled-label
    control's delta (where run), then the mean held-out accuracy after fine-tuning against the
    majority-class baseline; a cell whose model learned nothing says so."""
    out = {}
    for c in cells(runs).itertuples():
        se = "n/a" if pd.isna(c.delta_se) else f"{c.delta_se:.4f}"
        text = f"{c.delta:+.4f} ± {se}"
        if not pd.isna(c.control):
            text += f" (control {c.control:+.4f})"
        text += f"; acc {c.acc_after:.2f} vs {c.baseline:.2f}"
        text += f", learned {c.learned_seeds}/{c.n_seeds}" if c.learned else f", learned nothing ({c.learned_seeds}/{c.n_seeds})"
        out.setdefault(c.model, {"model": c.model.replace("zoo:", ""), "kind": c.arch})[TASK_NAMES.get(c.task, c.task)] = text
    return pd.DataFrame(list(out.values()))


def differences(config: FinetuningConfig, runs: pd.DataFrame) -> str:
    """"How this differs from the paper", generated from the configuration and the runs."""
    task = _condition(runs, "task")
    sizes = []
    for m, g in task.groupby("model", sort=False):
        sizes.append(f"{m.replace('zoo:', '')} ({g.arch.iloc[0]}, {int(g.n_blocks.iloc[0])} blocks × {int(g.d.iloc[0])} wide)"
                     if {"n_blocks", "d"} <= set(g.columns) else m.replace("zoo:", ""))
    n_ft = task.groupby("task").n_finetune.first().to_dict() if "n_finetune" in task else {}
    parts = ", ".join(f"{TASK_NAMES.get(t, t)} {int(n_ft[t]):,}" for t in config.tasks if t in n_ft)
    seeds = f"{len(config.seeds)} fine-tuning seed{'s' if len(config.seeds) != 1 else ''}"
    from . import config as page_config
    paper_models = page_config(__name__.rsplit(".", 1)[-1], "full").models
    n_corpus = int(task.n_tokens_corpus.min()) if "n_tokens_corpus" in task and len(task) else config.corpus_tokens
    bos = "position 0 (BOS) left out" if config.exclude_bos else "BOS included"
    control = ("each decoder is fine-tuned a second time per seed on shuffled labels (same steps, rate and seeds; "
               "the encoder gets no control)" if config.control else "no shuffled-label control")
    return ("**How this differs from the paper.** "
            f"Here: {', '.join(sizes)}{zoo_seed_text(config.models)}; {seeds}; {config.steps} AdamW steps of {config.batch_size} "
            f"examples (lr {config.lr:g}, inputs cut to {config.max_len} tokens), with a linear head on the last "
            f"token; offline there are only the validation sets (HH: its test set), each split in two by a hash, "
            f"so the models are fine-tuned on {parts or 'half of each'} examples and scored on the other half. "
            f"CB is binary (entailment against contradiction and neutral merged), as the paper casts its "
            f"classification tasks. Linearity is measured on {n_corpus:,} tokens of the {config.corpus} "
            f"{config.corpus_split} text in rows of {config.seq_len}, {bos}; {control}. "
            f"The paper: {len(paper_models)} pretrained decoders ({', '.join(m.split('/')[-1] for m in paper_models)}; "
            f"the `full` profile runs them), {PAPER_SETUP}; its linearity toolkit reads 128 random 512-character enwik8 windows, BOS "
            "included.")


page_numbers = numbers  # from what tables() returns


def tables(config: FinetuningConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> pd.DataFrame | None:
    """One row per (model, task, seed, condition): :func:`lin_utils.experiments.finetuning_deltas`."""
    return finetuning_deltas(config, profile=profile, force=force, cache_only=cache_only, progress=progress)


def show(config: FinetuningConfig, *, profile: str, force: bool = False) -> pd.DataFrame:
    runs = tables(config, profile=profile, force=force)
    glue_markdown("differences", differences(config, runs))
    columns = [c for c in RUN_COLUMNS if c in runs]
    figure_page(NAME, profile, plots.finetuning_deltas(runs), numbers=numbers(runs), summary=summary(runs),
                table=runs[columns], formats={c: "+.4f" for c in ("delta_corpus", "delta_task")})
    return runs
