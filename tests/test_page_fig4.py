"""Fig 4's page: its numbers and claim rule on small tables whose answers are known by construction; zoo pairs from the zoo's metadata."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from lin_utils import claims
from lin_utils.pages import fig4_regularized_profiles as page

R, I, C, NOT_RUN = claims.REPLICATED, claims.INCONCLUSIVE, claims.CONTRADICTED, claims.NOT_RUN



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


NAN = np.nan


def _effects(t):
    out = page.effects(t)
    return out.pop("seeds"), out


def test_fig4_numbers():
    seeds, out = _effects(fig4_table())
    assert seeds == "seed 0 only"
    assert out == pytest.approx(dict(
        n_sizes=2, n_pairs=2, frac_lower=0.5,
        small_baseline=0.95, small_cos=0.85, small_baseline_nores=0.4, small_cos_nores=0.3,
        large_baseline=0.97, large_cos=0.98, large_baseline_nores=0.6, large_cos_nores=0.5,
        **{f"{k}_sd": NAN for k in ("small_baseline", "small_cos", "small_baseline_nores", "small_cos_nores",
                                     "large_baseline", "large_cos", "large_baseline_nores", "large_cos_nores")}),
        nan_ok=True)


def test_fig4_keys_are_the_size_from_the_zoo():
    t = zoo_table({"zoo:gpu-large-baseline": LARGE_BASE, "zoo:gpu-large-cos0.5": LARGE_COS})
    _, out = _effects(t)
    assert out == pytest.approx(dict(n_sizes=1, n_pairs=1, frac_lower=0.0, large_baseline=0.97, large_cos=0.98,
                                     large_baseline_nores=0.6, large_cos_nores=0.5, large_baseline_sd=NAN,
                                     large_cos_sd=NAN, large_baseline_nores_sd=NAN, large_cos_nores_sd=NAN),
                                nan_ok=True)


def _shift(arm, d):
    return [x + d for x in arm[0]], [x + d for x in arm[1]]


def seeded_table(cos_shift=(-0.1, -0.12, -0.08)):
    """Three seeds of cpu-small's baseline and cosine arms: seed s's baseline is SMALL_BASE + 0.01 s,
    its cosine model that baseline + ``cos_shift[s]`` (every block alike)."""
    runs = {}
    for s in range(3):
        suffix = f"-s{s}" if s else ""
        runs[f"zoo:cpu-small-baseline{suffix}"] = _shift(SMALL_BASE, 0.01 * s)
        runs[f"zoo:cpu-small-cos0.5{suffix}"] = _shift(SMALL_BASE, 0.01 * s + cos_shift[s])
    return zoo_table(runs)


def test_fig4_numbers_are_means_over_seeds_with_their_spread():
    seeds, out = _effects(seeded_table())
    assert seeds == "three seeds per arm (0, 1, 2)" and (out["n_sizes"], out["n_pairs"]) == (1, 3)
    assert out["small_baseline_nores"] == pytest.approx(0.41) and out["small_baseline_nores_sd"] == pytest.approx(0.01)
    cos = [0.4 - 0.1, 0.41 - 0.12, 0.42 - 0.08]
    assert out["small_cos_nores"] == pytest.approx(np.mean(cos)) and out["small_cos_nores_sd"] == pytest.approx(
        np.std(cos, ddof=1))


def test_with_three_seeds_the_unit_is_the_training_run_pair():
    t = _with_heldout(seeded_table())
    j = page.judge_regularizer(t)
    assert j.test is page.BY_SEEDS and j.evidence.n == 3
    assert j.evidence.effect == pytest.approx(-0.1) and j.evidence.se == pytest.approx(np.std([-0.1, -0.12, -0.08],
                                                                                              ddof=1) / np.sqrt(3))
    assert j.verdict == R  # -0.1 with se 0.0115: far beyond 2 standard errors
    assert j.ours.startswith("cpu-small: baseline 0.410 ± 0.010, cosine 0.310 ± 0.026 (3 seeds, ± sd)")
    noisy = page.judge_regularizer(_with_heldout(seeded_table((-0.3, 0.2, 0.0))))
    assert noisy.verdict == I and noisy.evidence.n == 3


def _with_heldout(t: pd.DataFrame) -> pd.DataFrame:
    return t.assign(heldout_nores=t.score_nores - 0.25)


def test_regularizer_is_judged_without_the_residual_per_block_with_one_seed():
    t = _with_heldout(fig4_table())
    j = page.judge_regularizer(t)
    diffs = [-0.1, -0.1, -0.1, -0.1, -0.1, -0.1]  # every block 0.1 lower without the residual
    assert j.test.unit == "blocks" and j.evidence.n == len(diffs)
    assert j.evidence.effect == pytest.approx(-0.1) and j.evidence.se == pytest.approx(0.0, abs=1e-12)
    assert j.verdict == R  # no spread at all: beyond any number of standard errors
    assert j.ours.startswith("cpu-small: baseline 0.400, cosine 0.300; cpu-large: baseline 0.600, cosine 0.500 "
                             "(no-residual score; difference -0.100 ± 0.000 over 6 blocks")
    assert "with the residual: cpu-small 0.950 → 0.850; cpu-large 0.970 → 0.980" in j.ours


@pytest.mark.parametrize("small_cos, large_cos, verdict", [
    (([0.7] * 3, [0.1, 0.25, 0.65]), ([0.9] * 3, [0.3, 0.45, 0.85]), R),   # -0.05 ± 0.0: all lower
    (([0.7] * 3, [0.4, 0.2, 0.7]), ([0.9] * 3, [0.4, 0.6, 0.9]), I),     # +0.0 / ±0.1 mixed
    (([0.7] * 3, [0.3, 0.4, 0.8]), ([0.9] * 3, [0.5, 0.6, 1.0]), C),     # +0.1 everywhere: a rise
])
def test_regularizer_verdicts(small_cos, large_cos, verdict):
    assert page.judge_regularizer(_with_heldout(fig4_table(small_cos, large_cos))).verdict == verdict


def test_three_seeded_pairs_make_seeds_the_unit():
    t = _with_heldout(zoo_table({f"zoo:cpu-small-{v}{s}": (SMALL_BASE if v == "baseline" else SMALL_COS)
                                 for s in ("", "-s1", "-s2") for v in ("baseline", "cos0.5")}))
    j = page.judge_regularizer(t)
    assert j.test is page.BY_SEEDS and j.evidence.n == 3 and j.evidence.effect == pytest.approx(-0.1)


def test_without_a_baseline_cosine_pair_the_regularizer_is_not_run():
    t = zoo_table({**OTHERS, "zoo:cpu-large-cos0.5": LARGE_COS})  # a cosine model without its baseline
    assert page.pairs(t, "cos0.5") == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice" on the page either
        assert page.effects(t) == dict(n_sizes=0, n_pairs=0, seeds="no zoo models", frac_lower=pytest.approx(np.nan,
                                                                                                          nan_ok=True))
    j = page.judge_regularizer(t)
    assert (j.ours, j.verdict) == ("no baseline / cosine pair in the table", NOT_RUN)
