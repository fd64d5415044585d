"""Synthetic result tables shaped like the experiments' output, for rule and figure tests."""
import math

import numpy as np
import pandas as pd


def profile_table(score, nores, ratio, arch="decoder", trained=True, model="m"):
    """A Fig 1/3 table (one row per block) with the given per-block values."""
    n = len(score)
    return pd.DataFrame(dict(
        model=model, arch=arch, trained=trained, n_blocks=n, block=range(n), n_tokens=5000, d=16, chance=16 / 4999,
        score=score, score_nores=nores, heldout=np.array(score) - 0.01, heldout_nores=np.array(nores) - 0.01,
        norm_ratio=ratio, norm_resid=10.0, norm_block=np.array(ratio) * 10, cosine=0.9, depth=np.linspace(0, 1, n),
    ))


def harness_scores(models, rng):
    """A harness-shaped table: the paper's tasks, with cb's two metrics and record's two."""
    rows = []
    metrics = {"boolq": ["acc"], "cb": ["acc", "f1"], "copa": ["acc"], "record": ["f1", "em"], "wic": ["acc"]}
    chance = {("boolq", "acc"): 0.5, ("cb", "acc"): 1 / 3, ("cb", "f1"): 0.3, ("copa", "acc"): 0.5,
              ("record", "f1"): 0.14, ("record", "em"): 0.13, ("wic", "acc"): 0.5}
    for m in models:
        for task, ms in metrics.items():
            for metric in ms:
                rows.append(dict(model=m, task=task, metric=metric, value=rng.uniform(0.2, 0.8),
                                 stderr=rng.uniform(0.01, 0.05), n=100, n_total=200, chance=chance[task, metric],
                                 seconds=1.0))
    return pd.DataFrame(rows)


HARNESS_MODELS = ["zoo:cpu-small-baseline", "zoo:cpu-small-cos0.5", "zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5",
                  "stories260K"]


def probe_table(acc_base, acc_cos, n_test=3000):
    """Fig 5's probe table: a baseline and its cosine model, one row per boundary."""
    rows = []
    for m, accs in (("zoo:cpu-large-baseline", acc_base), ("zoo:cpu-large-cos0.5", acc_cos)):
        for b, a in enumerate(accs):
            rows.append(dict(model=m, boundary=b, test_acc=a, test_se=math.sqrt(a * (1 - a) / n_test), cv_mean=a,
                             cv_std=0.01, n_test=n_test, n_train=720))
    return pd.DataFrame(rows)


def zoo_cosine_pairs(profile: str = "cpu", variant: str = "cos0.5") -> list[tuple[str, str]]:
    """``(baseline, regularized)`` zoo specs of every training-run pair of ``profile`` (each size
    and seed), from the zoo's metadata: the cpu zoo has six cosine pairs (two sizes × three seeds)."""
    from lin_utils import zoo

    p = zoo.pairs(profile, variant)
    return list(zip(p.baseline, p.model))


def seeded_models(profile: str = "cpu") -> list[str]:
    """Every zoo spec of ``profile`` (all arms and seeds), then stories260K."""
    from lin_utils import zoo

    return list(zoo.table(profile).model) + ["stories260K"]


def probe_table_seeded(acc: dict, n_test: int = 3000):
    """Fig 5's probe table for several models: ``acc`` maps a model to its per-boundary accuracies."""
    rows = []
    for m, accs in acc.items():
        for b, a in enumerate(accs):
            rows.append(dict(model=m, boundary=b, test_acc=a, test_se=math.sqrt(a * (1 - a) / n_test), cv_mean=a,
                             cv_std=0.01, n_test=n_test, n_train=720))
    return pd.DataFrame(rows)
