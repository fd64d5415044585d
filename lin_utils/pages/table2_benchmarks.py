"""Table 2: zero-shot SuperGLUE and xStoryCloze scores of the zoo's regularized models and baselines."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import plots
from ..book.glue import figure_page
from ..book.tables import md_table
from ..claims import NOT_RUN, Claim
from ..experiments.evaluation import BenchmarksConfig, benchmark_scores, table2_layout
from . import name_of
from ._zoo_pairs import beyond_two_se, compare_to_baseline, size_groups, size_label, size_pairs, variant_label

NAME = name_of(__name__)
CONFIG = BenchmarksConfig(
    models=("zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5", "zoo:cpu-small-mse0.5", "zoo:cpu-small-mse2.0",
            "zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5", "zoo:cpu-large-mse0.5", "zoo:cpu-large-mse2.0",
            "stories260K"),
    tasks=("boolq", "cb", "copa", "multirc", "record", "rte", "wic", "xstorycloze_en"),
    limit=200, batch_size=32, max_length=None, seed=0, device="cpu")


def tables(config: BenchmarksConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> dict[str, pd.DataFrame] | None:
    """``{"scores": one row per (model, task, metric), "layout": the paper's layout}``
    (:func:`lin_utils.experiments.benchmark_scores`, :func:`lin_utils.experiments.table2_layout`)."""
    scores = benchmark_scores(config, profile=profile, force=force, cache_only=cache_only, progress=progress)
    return None if scores is None else {"scores": scores, "layout": table2_layout(scores)}


def pairs(layout: pd.DataFrame) -> list[dict]:
    """Per zoo size: the baseline's and the cosine model's Table 2 mean, their difference and z."""
    t = layout.set_index("model")
    out = []
    for size, base, cos in size_pairs(t.index):
        diff = t.at[cos, "mean"] - t.at[base, "mean"]
        se = float(np.hypot(t.at[cos, "mean se"], t.at[base, "mean se"]))
        out.append(dict(size=size, baseline=t.at[base, "mean"], cosine=t.at[cos, "mean"], diff=diff, z=diff / se))
    return out


def judge_benchmarks(tables_: dict | pd.DataFrame):
    """The claim's verdict from the page's tables (or Table 2's layout alone)."""
    layout = tables_["layout"] if isinstance(tables_, dict) else tables_
    found = pairs(layout)
    if not found:
        return "no baseline / cosine pair in the table", NOT_RUN
    ours = "; ".join(f"{p['size']}: mean {p['baseline']:.3f} baseline, {p['cosine']:.3f} cosine "
                     f"({p['diff']:+.3f}, z = {p['z']:+.1f})" for p in found)
    return ours, beyond_two_se(found)


CLAIMS = [
    Claim("Table 2", "The regularizer raises SuperGLUE scores", "higher average score",
          "replicated if the cosine model's Table 2 mean beats its baseline's by more than 2 standard errors at every "
          "size; partly if at some", judge_benchmarks, order=90),
]


def numbers(layout: pd.DataFrame, scores: pd.DataFrame) -> dict:
    """Table 2's prose: how many cells sit within 2 standard errors of chance, how many
    regularized-vs-baseline differences exceed 2 standard errors, and the verdict."""
    t = layout.set_index("model")
    chance = t.loc["chance"]
    t = t.drop(index="chance")
    cols = [c for c in t.columns if not c.endswith(" se") and c != "mean"]
    near = [abs(t.at[m, c] - chance[c]) <= 2 * t.at[m, f"{c} se"] for m in t.index for c in cols]
    cmp = compare_to_baseline(layout)
    cmp = cmp[cmp.column != "mean"]
    ours, verdict = judge_benchmarks(layout)
    n = scores.drop_duplicates("task").set_index("task").n
    return dict(n_models=len(t), n_columns=len(cols), n_min=n.min(), n_max=n.max(),
                near_chance=int(sum(near)), n_cells=len(near), frac_near_chance=float(np.mean(near)),
                n_diffs=len(cmp), diffs_up=int((cmp.z > 2).sum()), diffs_down=int((cmp.z < -2).sum()),
                mean_min=t["mean"].min(), mean_max=t["mean"].max(), chance_mean=chance["mean"],
                seconds_max=scores.groupby("model").seconds.first().max(),
                near_chance_text=("most of these benchmarks cannot tell these models from guessing" if np.mean(near) > 0.5
                                  else "most cells are distinguishable from guessing"),
                verdict_benchmarks=verdict, pairs_text=ours)


def summary(layout: pd.DataFrame, scores: pd.DataFrame) -> str:
    """The paper's layout transposed, one table per zoo size (so that each fits the text column):
    one row per task column (and the mean), one column per model, then the chance level. The row's
    label gives the documents scored and the largest standard error over the models (a task's n is
    the same for every model, so its standard errors differ little). Markdown, tables one below
    the other."""
    t = layout.set_index("model")
    cols = [c for c in t.columns if not c.endswith(" se")]
    n = scores.drop_duplicates("task").set_index("task").n
    models = [m for m in t.index if m != "chance"]
    se = {c: t.loc[models, f"{c} se"].max() for c in cols}
    rows = [f"{c} (n = {int(n[c.split(' ')[0]]):,}, se ≤ {se[c]:.3f})" if c != "mean" else f"mean (se ≤ {se[c]:.3f})"
            for c in cols]
    parts = []
    for group in size_groups(models):
        size = size_label(group[0])
        out = t.loc[group, cols].T.rename(columns=lambda m: variant_label(m) if size_label(m) == size
                                          else m.replace("zoo:", ""))
        out["chance"] = t.loc["chance", cols].to_numpy(dtype=float)
        out.index = rows
        parts.append(f"**{size}**\n\n" + md_table(out.rename_axis("column").reset_index(),
                                                 {c: ".3f" for c in out.columns}))
    return "\n\n".join(parts)


def full_table(scores: pd.DataFrame) -> pd.DataFrame:
    """The full table, one row per (model, task, metric): value ± standard error, chance, the
    documents scored out of the split's, and the split."""
    out = pd.DataFrame({
        "model": scores.model, "task": scores.task, "metric": scores.metric,
        "value ± se": [f"{v:.3f} ± {e:.3f}" for v, e in zip(scores.value, scores.stderr)],
        "chance": scores.chance, "n of total": [f"{n:,} of {t:,}" for n, t in zip(scores.n, scores.n_total)],
        "split": scores.split, "seconds": scores.seconds,
    })
    out.attrs["formats"] = {"chance": ".3f", "seconds": ".1f"}
    return out


def page_numbers(t: dict) -> dict:
    """The glued numbers from what :func:`tables` returns."""
    return numbers(t["layout"], t["scores"])


def show(config: BenchmarksConfig, *, profile: str, force: bool = False) -> dict[str, pd.DataFrame]:
    t = tables(config, profile=profile, force=force)
    layout, scores = t["layout"], t["scores"]
    figure_page(NAME, profile, plots.benchmark_scores(layout), numbers=numbers(layout, scores),
                summary=summary(layout, scores), table=full_table(scores))
    return t
