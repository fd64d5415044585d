"""Fig 5: linear-probe accuracy on xStoryCloze-en at every block boundary of the zoo's baseline and
cosine-regularized models."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import plots
from ..book.glue import figure_page
from ..claims import NOT_RUN, Claim
from ..experiments.evaluation import ProbesConfig, probe_accuracy
from . import name_of
from ._zoo_pairs import beyond_two_se, size_pairs

NAME = name_of(__name__)
CONFIG = ProbesConfig(models=("zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5"), max_train=None, max_test=None,
                      cv=5, C=1.0, batch_size=16, seed=0, device="cpu")

#: the full table's columns
PROBE_COLUMNS = ["model", "boundary", "test_acc", "test_se", "cv_mean", "cv_std", "n_train", "n_test", "chance", "d"]


def tables(config: ProbesConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> pd.DataFrame | None:
    """One row per (model, boundary): :func:`lin_utils.experiments.probe_accuracy`."""
    return probe_accuracy(config, profile=profile, force=force, cache_only=cache_only, progress=progress)


def pairs(table: pd.DataFrame) -> list[dict]:
    """Per zoo size: mean probe test accuracy over boundaries of the baseline and the cosine
    model, the difference, how many boundaries favour the cosine model, and z = diff / the mean
    per-boundary standard error of the difference (conservative: boundaries are correlated)."""
    out = []
    for size, base, cos in size_pairs(table.model):
        a = table[table.model == base].set_index("boundary")
        b = table[table.model == cos].set_index("boundary")
        common = a.index.intersection(b.index)
        a, b = a.loc[common], b.loc[common]
        diff = b.test_acc - a.test_acc
        se = np.sqrt(a.test_se**2 + b.test_se**2).mean()
        out.append(dict(size=size, baseline=a.test_acc.mean(), cosine=b.test_acc.mean(), diff=diff.mean(),
                        z=diff.mean() / se, higher=int((diff > 0).sum()), n=len(common)))
    return out


def judge_probes(table):
    found = pairs(table)
    if not found:
        return "no baseline / cosine pair in the table", NOT_RUN
    ours = "; ".join(f"{p['size']}: mean test accuracy {p['baseline']:.3f} baseline, {p['cosine']:.3f} cosine "
                     f"({p['diff']:+.3f}, z = {p['z']:+.1f}; higher at {p['higher']} of {p['n']} boundaries)"
                     for p in found)
    return ours, beyond_two_se(found)


CLAIMS = [
    Claim("Fig 5", "The regularizer raises linear-probe accuracy on xStoryCloze", "higher per-layer probe accuracy",
          "replicated if the cosine model's test accuracy, averaged over boundaries, beats its baseline's by more "
          "than 2 standard errors at every size; partly if at some", judge_probes, order=80),
]


def numbers(table: pd.DataFrame) -> dict:
    """Fig 5's prose: the best boundary of any model, and each size's baseline/cosine means."""
    best = table.loc[table.test_acc.idxmax()]
    out = dict(n_models=table.model.nunique(), best_acc=best.test_acc, best_model=best.model.replace("zoo:", ""),
               best_boundary=int(best.boundary), acc_min=table.test_acc.min(), n_test=int(table.n_test.max()),
               n_train=int(table.n_train.max()), se=float(table.test_se.mean()))
    ours, verdict = judge_probes(table)
    out.update(verdict_probes=verdict, pairs_text=ours)
    return out


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model: test accuracy at the first, best and last boundary, and the mean over boundaries."""
    rows = []
    for m, g in table.groupby("model", sort=False):
        g = g.sort_values("boundary")
        best = g.loc[g.test_acc.idxmax()]
        rows.append({"model": m.replace("zoo:", ""), "boundaries": len(g), "embeddings": g.test_acc.iloc[0],
                     "best": best.test_acc, "best boundary": int(best.boundary), "last": g.test_acc.iloc[-1],
                     "mean": g.test_acc.mean(), "CV mean": g.cv_mean.mean()})
    out = pd.DataFrame(rows)
    out.attrs["formats"] = {"boundaries": "d", "best boundary": "d"}
    return out


page_numbers = numbers  # from what tables() returns


def show(config: ProbesConfig, *, profile: str, force: bool = False) -> pd.DataFrame:
    table = tables(config, profile=profile, force=force)
    figure_page(NAME, profile, plots.probe_accuracy(table), numbers=numbers(table), summary=summary(table),
                table=table[PROBE_COLUMNS])
    return table
