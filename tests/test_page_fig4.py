"""Fig 4's page: its numbers and claim rule on small tables whose answers are known by construction; zoo pairs from the zoo's metadata."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from lin_utils import claims
from lin_utils.pages import fig4_regularized_profiles as page

R, P, N, NOT_RUN = claims.REPLICATED, claims.PARTLY, claims.NOT_REPLICATED, claims.NOT_RUN



# ------------------------------------------------------------------------------------------------
# Fig 4: the cosine regularizer, per zoo size

SMALL_BASE = ([0.90, 0.96, 0.99], [0.2, 0.3, 0.7])  # (score, score_nores) per block: means 0.95, 0.4
SMALL_COS = ([0.70, 0.90, 0.95], [0.1, 0.2, 0.6])  # 0.85, 0.3
LARGE_BASE = ([0.93, 0.99, 0.99], [0.4, 0.5, 0.9])  # 0.97, 0.6
LARGE_COS = ([0.96, 0.99, 0.99], [0.3, 0.4, 0.8])  # 0.98, 0.5
LARGE_COS_LOWER = ([0.90, 0.95, 0.99], [0.3, 0.4, 0.8])  # 0.9467
OTHERS = {  # never part of a pair
    "stories260K": ([0.99, 0.98, 0.90], [0.5, 0.5, 0.5]),
    "zoo:cpu-tiny-baseline": ([0.80, 0.85, 0.99], [0.1, 0.1, 0.4]),  # no cosine partner
    "zoo:cpu-small-cos0.005": ([0.5, 0.5, 0.6], [0.9, 0.9, 0.9]),  # cut 8 letters, add cos0.5: a real model
    "zoo:cpu-small-mse0.5": ([0.6, 0.6, 0.7], [0.8, 0.8, 0.8]),
    "local-baseline": ([0.9, 0.9, 0.9], [0.4, 0.4, 0.4]),  # not from the zoo
    "local-cos0.5": ([0.1, 0.1, 0.1], [0.9, 0.9, 0.9]),
}


def zoo_table(models: dict[str, tuple[list[float], list[float]]]) -> pd.DataFrame:
    """One row per (model, block), models in the order given."""
    return pd.DataFrame([dict(model=m, block=i, score=s, score_nores=r)
                         for m, (score, nores) in models.items() for i, (s, r) in enumerate(zip(score, nores))])


def fig4_table(small_cos=SMALL_COS, large_cos=LARGE_COS):
    # The small size comes first, so pairs come out in the table's order, not alphabetically.
    return zoo_table({"stories260K": OTHERS["stories260K"], "zoo:cpu-small-baseline": SMALL_BASE,
                      "zoo:cpu-small-cos0.005": OTHERS["zoo:cpu-small-cos0.005"],
                      "zoo:cpu-tiny-baseline": OTHERS["zoo:cpu-tiny-baseline"],
                      "zoo:cpu-small-cos0.5": small_cos, "zoo:cpu-small-mse0.5": OTHERS["zoo:cpu-small-mse0.5"],
                      "local-baseline": OTHERS["local-baseline"], "zoo:cpu-large-baseline": LARGE_BASE,
                      "local-cos0.5": OTHERS["local-cos0.5"], "zoo:cpu-large-cos0.5": large_cos})


@pytest.mark.parametrize("variant, col, expected", [
    ("cos0.5", "score", [("cpu-small", 0.95, 0.85), ("cpu-large", 0.97, 0.98)]),
    ("cos0.5", "score_nores", [("cpu-small", 0.4, 0.3), ("cpu-large", 0.6, 0.5)]),
    ("mse0.5", "score", [("cpu-small", 0.95, (0.6 + 0.6 + 0.7) / 3)]),
    ("mse2.0", "score", []),
])
def test_zoo_pairs_are_per_size_means_in_table_order(variant, col, expected):
    pairs = page.pairs(fig4_table(), variant, col)
    assert [p[0] for p in pairs] == [e[0] for e in expected]
    assert [p[1:] for p in pairs] == [pytest.approx(e[1:]) for e in expected]
    assert all(isinstance(x, float) for p in pairs for x in p[1:])


def test_zoo_pairs_default_to_the_score():
    assert page.pairs(fig4_table(), "cos0.5") == page.pairs(fig4_table(), "cos0.5", "score")


def test_fig4_numbers():
    assert page.effects(fig4_table()) == pytest.approx(dict(
        n_sizes=2, frac_lower=0.5,
        small_baseline=0.95, small_cos=0.85, small_baseline_nores=0.4, small_cos_nores=0.3,
        large_baseline=0.97, large_cos=0.98, large_baseline_nores=0.6, large_cos_nores=0.5))


def test_fig4_keys_are_the_last_part_of_the_size():
    t = zoo_table({"zoo:gpu-large-baseline": LARGE_BASE, "zoo:gpu-large-cos0.5": LARGE_COS})
    assert page.effects(t) == pytest.approx(dict(n_sizes=1, frac_lower=0.0, large_baseline=0.97, large_cos=0.98,
                                                        large_baseline_nores=0.6, large_cos_nores=0.5))


def test_regularizer_text():
    ours, verdict = page.judge_regularizer(fig4_table())
    assert ours == "cpu-small: baseline 0.950, cosine 0.850; cpu-large: baseline 0.970, cosine 0.980"
    assert verdict == P


@pytest.mark.parametrize("small_cos, large_cos, frac, verdict", [
    (SMALL_COS, LARGE_COS_LOWER, 1.0, R),
    (SMALL_COS, LARGE_COS, 0.5, P),
    (SMALL_COS, LARGE_BASE, 0.5, P),  # equal means are not lower
    (SMALL_BASE, LARGE_COS, 0.0, N),
    (SMALL_BASE, LARGE_BASE, 0.0, N),
])
def test_regularizer_verdicts(small_cos, large_cos, frac, verdict):
    t = fig4_table(small_cos, large_cos)
    assert page.effects(t)["frac_lower"] == pytest.approx(frac)
    assert page.judge_regularizer(t)[1] == verdict


def test_without_a_baseline_cosine_pair_the_regularizer_is_not_run():
    t = zoo_table({**OTHERS, "zoo:cpu-large-cos0.5": LARGE_COS})  # a cosine model without its baseline
    assert page.pairs(t, "cos0.5") == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice" on the page either
        assert page.effects(t) == pytest.approx(dict(n_sizes=0, frac_lower=np.nan), nan_ok=True)
    assert page.judge_regularizer(t) == ("no baseline / cosine pair in the table", NOT_RUN)
