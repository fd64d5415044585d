"""Synthetic result tables shaped like the experiments' output, for rule and figure tests."""
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
