"""The claims page's numbers, texts and verdicts for Figs 1/3, Table 1, Table 2 and Fig 5 (Figs 6-8: tests/test_page_pruning.py).

Every table here is built by hand so that the answer is known by construction; boundaries are
hit exactly (dyadic numbers, so that e.g. a difference of exactly 2 standard errors is exactly 2.0
in floating point) and just beyond, and the expected numbers are computed independently of
:mod:`lin_utils.claims` (``statistics`` / ``math``), never by calling it twice.
"""
from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from lin_utils import claims

REP, PART, NOT, NOT_RUN = claims.REPLICATED, claims.PARTLY, claims.NOT_REPLICATED, claims.NOT_RUN


def test_verdict_words():
    assert (REP, PART, NOT, NOT_RUN) == ("replicated", "partly", "not replicated", "not run")


# ---------------------------------------------------------------------------------------------
# Figs 1 and 3: linearity profiles


def _profile(rows):
    """rows: (model, arch, trained, score, nores, heldout_nores, chance, n_tokens, d, norm_ratio)."""
    cols = ["model", "arch", "trained", "score", "score_nores", "heldout_nores", "chance", "n_tokens", "d",
            "norm_ratio"]
    return pd.DataFrame(rows, columns=cols)


def _blocks(score=None, nores=None, ratio=None, heldout=None):
    """One trained decoder, one row per block; the columns not given are harmless constants."""
    n = len(score or nores or ratio)
    score, nores, ratio = score or [0.97] * n, nores or [0.5] * n, ratio or [0.5] * n
    heldout = heldout or [v - 0.125 for v in nores]
    return _profile([("m", "decoder", True, s, r, h, 0.003, 5000, 16, q)
                     for s, r, h, q in zip(score, nores, heldout, ratio)])


# the trained decoders (the paper's subject) and, with extreme values, what must be left out
_TRAINED = [("a", "decoder", True, 0.99, 0.5, 0.45, 0.01, 5000, 16, 0.2),
            ("a", "decoder", True, 0.97, 0.6, 0.55, 0.02, 5000, 16, 0.5),
            ("a", "decoder", True, 0.91, 0.4, 0.35, 0.03, 5000, 16, 1.0),
            ("b", "decoder", True, 0.98, 0.9, 0.85, 0.005, 4000, 32, 0.7),
            ("b", "decoder", True, 0.96, 0.3, 0.2, 0.004, 4000, 32, 1.3)]
_RANDOM = [("r", "decoder", False, 0.1, 0.05, 0.9, 0.5, 100, 64, 5.0),
           ("r", "decoder", False, 0.3, 0.15, 0.9, 0.5, 100, 64, 0.1)]
_ENCODER = [("e", "encoder", True, 0.2, 0.99, 0.99, 0.9, 10, 128, 0.01)]


def test_fig1_and_fig3_numbers_are_over_trained_decoders_only():
    t = _profile(_RANDOM[:1] + _TRAINED[:3] + _ENCODER + _TRAINED[3:] + _RANDOM[1:])
    score, nores, held, chance, ntok, d, ratio = ([r[i] for r in _TRAINED] for i in range(3, 10))
    n = claims.fig1_numbers(t)
    expected = dict(random_score_mean=0.2, random_nores_mean=0.1, score_mean=statistics.mean(score), score_min=0.91,
                    score_max=0.99, nores_mean=statistics.mean(nores), heldout_nores_mean=statistics.mean(held),
                    chance_max=0.03, n_tokens_min=4000, d_max=32,
                    drop=statistics.mean(score) - statistics.mean(nores))
    assert set(n) == set(expected)
    for k, v in expected.items():
        assert n[k] == pytest.approx(v, abs=1e-12), k
    f3 = claims.fig3_numbers(t)
    assert set(f3) == {"ratio_median", "ratio_max", "ratio_min", "frac_below_one"}
    assert (f3["ratio_median"], f3["ratio_max"], f3["ratio_min"]) == (0.7, 1.3, 0.2)
    assert f3["frac_below_one"] == pytest.approx(3 / 5)  # a ratio of exactly 1 is not below 1
    assert statistics.mean(ratio) != pytest.approx(0.7)  # the median, not the mean


@pytest.mark.parametrize("score, verdict", [
    ([0.95, 0.99], REP),        # every block >= 0.95, the lowest exactly at it
    ([0.9499, 0.99], PART),     # one block just below, the mean above 0.90
    ([0.875, 0.925], PART),     # the mean exactly 0.90
    ([0.9], PART),
    ([0.8999], NOT),
    ([0.5, 1.0], NOT),          # a high maximum does not rescue a low mean
])
def test_fig1_score_verdict_thresholds(score, verdict):
    assert claims.judge_score(_blocks(score=score))[1] == verdict


def test_fig1_score_text():
    ours, verdict = claims.judge_score(_blocks(score=[0.875, 0.925, 0.9]))
    assert ours == "0.900 mean, 0.875 to 0.925 over blocks (chance 0.003)"
    assert verdict == PART


@pytest.mark.parametrize("score, nores, verdict", [
    (0.2, 0.1, REP),          # drop exactly 0.10
    (0.2, 0.10001, PART),     # just below 0.10
    (0.04, 0.0199, PART),     # just above 0.02
    (0.04, 0.02, NOT),        # drop exactly 0.02
    (0.5, 0.6, NOT),          # a rise, not a drop
])
def test_fig1_nores_verdict_thresholds(score, nores, verdict):
    assert claims.judge_nores(_blocks(score=[score], nores=[nores]))[1] == verdict


def test_fig1_nores_text():
    ours, _ = claims.judge_nores(_blocks(score=[0.9, 0.95, 0.98], nores=[0.5, 0.625, 0.25],
                                         heldout=[0.125, 0.25, 0.1]))
    assert ours == "0.458 without vs 0.943 with (held-out 0.158)"


@pytest.mark.parametrize("ratio, verdict", [
    ([0.5, 0.99], REP),
    ([0.5, 1.0], PART),         # the largest exactly 1: not below; the median is
    ([0.5, 0.9, 1.5], PART),
    ([0.5, 1.0, 1.0], NOT),     # the median exactly 1
    ([1.2, 1.5], NOT),
])
def test_fig3_norm_verdict_thresholds(ratio, verdict):
    assert claims.judge_norms(_blocks(ratio=ratio))[1] == verdict


def test_fig3_norm_text():
    ours, _ = claims.judge_norms(_blocks(ratio=[0.5, 1.0, 0.75, 0.25, 2.0]))
    assert ours == "||block output|| / ||residual|| median 0.75 (0.25 to 2.00)"


# ---------------------------------------------------------------------------------------------
# Table 1: fine-tuning deltas, per (model, task) cell over seeds


def _runs(cells):
    """cells: (model, task, delta_corpus per seed, delta_task per seed, learned per seed[, arch]).

    Steps and batch size vary by seed so that their maximum differs from their minimum."""
    rows = []
    for model, task, dc, dt, learned, *arch in cells:
        for seed, (a, b, ok) in enumerate(zip(dc, dt, learned, strict=True)):
            rows.append(dict(model=model, arch=(arch or ["decoder"])[0], task=task, seed=seed, steps=10 * (seed + 1),
                             batch_size=16 if seed == 1 else 8, delta_corpus=a, delta_task=b, acc_before=0.5,
                             acc_after=0.75 if ok else 0.5, baseline=0.5, learned=ok))
    return pd.DataFrame(rows)


def test_table1_cells_columns_order_and_means():
    runs = _runs([("zoo:cpu-large-baseline", "cb", [0.0, 0.5, 1.0], [0.1, 0.2, 0.6], [True, False, True]),
                  ("b", "boolq", [0.25], [-0.25], [False], "encoder")])
    # acc_before / acc_after / baseline whose mean differs from their median and first value
    runs.loc[:2, "acc_before"] = [0.1, 0.2, 0.6]
    runs.loc[:2, "acc_after"] = [0.5, 0.6, 1.0]
    runs.loc[:2, "baseline"] = [0.3, 0.3, 0.45]
    c = claims.table1_cells(runs)
    assert list(c.columns) == ["model", "arch", "task", "n_seeds", "delta", "delta_std", "positive", "beyond_std",
                               "delta_task", "delta_task_std", "delta_task_positive", "delta_task_beyond_std",
                               "acc_before", "acc_after", "baseline", "learned_seeds", "learned"]
    # cells in the order of the runs, not sorted
    assert list(c.model) == ["zoo:cpu-large-baseline", "b"] and list(c.task) == ["cb", "boolq"]
    assert list(c.arch) == ["decoder", "encoder"] and list(c.n_seeds) == [3, 1]
    first = c.iloc[0]
    assert first.delta == 0.5 and first.delta_std == 0.5
    assert first.delta_task == pytest.approx(0.3)
    assert first.delta_task_std == pytest.approx(statistics.stdev([0.1, 0.2, 0.6]))
    assert first.acc_before == pytest.approx(0.3) and first.acc_after == pytest.approx(0.7)
    assert first.baseline == pytest.approx(0.35)
    assert first.learned_seeds == 2 and first.learned
    one = c.iloc[1]  # a single seed: its std is undefined, and it is never beyond it
    assert one.delta == 0.25 and math.isnan(one.delta_std) and math.isnan(one.delta_task_std)
    assert one.positive and not one.beyond_std and not one.delta_task_positive
    assert one.learned_seeds == 0 and not one.learned


@pytest.mark.parametrize("deltas, positive, beyond", [
    ([0.0, 0.5, 1.0], True, False),         # mean 0.5 exactly equal to its sample std 0.5
    ([0.01, 0.5, 1.0], True, True),          # mean just above its std
    ([0.125, 0.5, 0.875], True, True),
    ([-0.25, 0.0, 0.0, 0.25], False, False),  # mean exactly 0
    ([-0.5, -0.5, -0.5], False, False),      # std 0, mean negative
    ([0.5, 0.5, 0.5], True, True),           # std 0, mean positive
    ([0.5, 0.75], True, True),               # two seeds have a std
    ([0.3], True, False),                    # one seed has none
])
@pytest.mark.parametrize("column, prefix", [("delta_corpus", ""), ("delta_task", "delta_task_")])
def test_table1_positive_and_beyond_std(deltas, positive, beyond, column, prefix):
    other = [1.0] * len(deltas)
    dc, dt = (deltas, other) if column == "delta_corpus" else (other, deltas)
    cell = claims.table1_cells(_runs([("m", "cb", dc, dt, [True] * len(deltas))])).iloc[0]
    name = "delta" if column == "delta_corpus" else "delta_task"
    assert cell[name] == pytest.approx(statistics.mean(deltas), abs=1e-15)
    if len(deltas) > 1:
        assert cell[f"{name}_std"] == pytest.approx(statistics.stdev(deltas), abs=1e-15)  # ddof = 1
    assert bool(cell[f"{prefix}positive"]) is positive
    assert bool(cell[f"{prefix}beyond_std"]) is beyond


@pytest.mark.parametrize("learned, n, majority", [
    ([True, True, False, False], 2, False),  # exactly half is not a majority
    ([True, True, True, False], 3, True),
    ([True, False, False], 1, False),
    ([True, True, False], 2, True),
    ([True, False], 1, False),
    ([False], 0, False),
    ([True], 1, True),
])
def test_table1_learned_needs_a_majority_of_seeds(learned, n, majority):
    cell = claims.table1_cells(_runs([("m", "cb", [0.1] * len(learned), [0.1] * len(learned), learned)])).iloc[0]
    assert cell.learned_seeds == n and bool(cell.learned) is majority


# five cells; the comments say (corpus delta: positive, vs its std), (task delta: ...), learned by a majority
_FIVE = [
    ("zoo:cpu-large-baseline", "cb", [0.0, 0.5, 1.0], [0.125, 0.5, 0.875], [True, True, True]),  # (+, =), (+, >); y
    ("zoo:cpu-large-baseline", "boolq", [0.125, 0.5, 0.875], [0.0, 0.5, 1.0], [False, True, True]),  # (+, >), (+, =); y
    ("stories260K", "cb", [-0.5, -0.25, 0.0], [0.0, 0.5, 1.0], [True, False, False]),  # (-), (+, =); n
    ("stories260K", "boolq", [0.5, 0.75], [-0.5, 0.25], [True, False]),  # (+, >), (-); half: n
    ("zoo:cpu-small-cos0.5", "cb", [-0.25, 0.0, 0.0, 0.25], [-0.25, 0.25, 0.25, 0.25], [True, True, True, False]),
    # (mean exactly 0), (+, mean 0.125 below its std 0.25); y
]


def test_table1_numbers_count_the_cells():
    runs = _runs(_FIVE)
    n = claims.table1_numbers(runs)
    means = [statistics.mean(dc) for _, _, dc, _, _ in _FIVE]
    task_means = [statistics.mean(dt) for _, _, _, dt, _ in _FIVE]
    expected = dict(n_cells=5, n_models=3, n_tasks=2, n_seeds_min=2, steps=40, batch_size=16,
                    n_positive=3, n_beyond=2, n_positive_task=4, n_beyond_task=1,
                    n_learned=3, n_positive_learned=2, n_beyond_learned=1,
                    delta_min=-0.25, delta_max=0.625, delta_median=statistics.median(means),
                    delta_task_min=-0.125, delta_task_max=0.5,
                    not_positive="stories260K / cb, cpu-small-cos0.5 / cb",
                    not_learned="stories260K / cb, stories260K / boolq")
    assert set(n) == set(expected)
    for k, v in expected.items():
        assert n[k] == (pytest.approx(v, abs=1e-15) if isinstance(v, float) else v), k
    assert (min(means), max(means), min(task_means), max(task_means)) == (-0.25, 0.625, -0.125, 0.5)
    assert n["delta_median"] == 0.5 != pytest.approx(statistics.mean(means))


def test_table1_names_none_when_every_cell_is_positive_and_learned():
    n = claims.table1_numbers(_runs([("zoo:x-baseline", "cb", [0.5, 0.5], [0.5, 0.5], [True, True])]))
    assert n["not_positive"] == "none" and n["not_learned"] == "none"


def test_table1_cell_whose_model_learned_nothing_is_named_and_counts_alike():
    cells = [("zoo:cpu-large-baseline", "cb", [0.125, 0.5, 0.875], [0.1] * 3, [True] * 3),
             ("zoo:cpu-large-baseline", "boolq", [0.125, 0.5, 0.875], [0.1] * 3, [False] * 3)]
    n = claims.table1_numbers(_runs(cells))
    assert n["not_learned"] == "cpu-large-baseline / boolq" and n["n_learned"] == 1
    ours, verdict = claims.judge_finetuning(_runs(cells))
    assert verdict == REP  # it counts like the others
    assert ours.endswith("the model learned in 1 of 2 cells")


def test_table1_claim_text():
    ours, verdict = claims.judge_finetuning(_runs(_FIVE))
    assert ours == ("3 of 5 mean deltas positive, 2 beyond their std over seeds (on the fixed corpus; on the tasks' "
                    "held-out inputs 4 and 1); the model learned in 3 of 5 cells")
    assert verdict == PART


BEYOND, EQUAL, POS = [0.125, 0.5, 0.875], [0.0, 0.5, 1.0], [0.1, 0.2, 0.6]  # EQUAL: mean exactly its std
ZERO, NEG = [-0.25, 0.0, 0.25], [-0.5, -0.25, 0.0]


@pytest.mark.parametrize("deltas, verdict", [
    ([BEYOND] * 4, REP),
    ([BEYOND] * 3 + [EQUAL], PART),          # every mean positive, one exactly at its std
    ([BEYOND] * 3 + [ZERO], PART),           # 3 of 4 positive
    ([POS] * 3 + [NEG], PART),
    ([POS, POS, ZERO, NEG], NOT),            # exactly half positive
    ([POS, POS, NEG], PART),                 # 2 of 3
    ([POS, ZERO, NEG], NOT),                 # 1 of 3
    ([NEG] * 3, NOT),
    ([ZERO] * 2, NOT),
])
def test_table1_verdict_thresholds(deltas, verdict):
    cells = [(f"m{i}", "cb", d, [0.5] * 3, [True] * 3) for i, d in enumerate(deltas)]
    assert claims.judge_finetuning(_runs(cells))[1] == verdict


# ---------------------------------------------------------------------------------------------
# pairing the zoo's baselines with their regularized twins


@pytest.mark.parametrize("models, variant, pairs", [
    (["zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5"], "cos0.5",
     [("cpu-large", "zoo:cpu-large-baseline", "zoo:cpu-large-cos0.5")]),
    # in the baselines' order; duplicates once; no twin, not from the zoo, no "-": no pair
    (["zoo:b-cos0.5", "zoo:b-baseline", "zoo:a-baseline", "zoo:a-cos0.5", "zoo:c-baseline", "zoo:c-mse0.5",
      "hf:x-baseline", "hf:x-cos0.5", "zoo-z-baseline", "zoo-z-cos0.5", "zoo:ybaseline", "zoo:ycos0.5", "gpt2",
      "zoo:a-baseline", "zoo:b-cos0.5"],
     "cos0.5", [("b", "zoo:b-baseline", "zoo:b-cos0.5"), ("a", "zoo:a-baseline", "zoo:a-cos0.5")]),
    (["zoo:c-baseline", "zoo:c-mse0.5", "zoo:a-baseline", "zoo:a-cos0.5"], "mse0.5",
     [("c", "zoo:c-baseline", "zoo:c-mse0.5")]),
    (["zoo:a-baseline", "zoo:a-mse0.5"], "cos0.5", []),
    (pd.Series(["zoo:s-baseline"] * 3 + ["zoo:s-cos0.5"] * 3), "cos0.5", [("s", "zoo:s-baseline", "zoo:s-cos0.5")]),
])
def test_size_pairs(models, variant, pairs):
    assert claims._size_pairs(models, variant) == pairs


def test_size_pairs_default_is_the_cosine_model():
    models = ["zoo:a-baseline", "zoo:a-mse0.5", "zoo:a-cos0.5"]
    assert claims._size_pairs(models) == [("a", "zoo:a-baseline", "zoo:a-cos0.5")]
    assert claims._size_pairs(pd.Index(models)) == [("a", "zoo:a-baseline", "zoo:a-cos0.5")]


# ---------------------------------------------------------------------------------------------
# Table 2 and Fig 5: the cosine model against its baseline, in standard errors

# with standard errors 3/64 and 4/64 the joint one is exactly 5/64, so a difference of 10/64 is
# exactly 2 standard errors
SE_BASE, SE_COS, SE = 3 / 64, 4 / 64, 5 / 64
Z_DIFF = {"at": 2 * SE, "beyond": 2 * SE + 1 / 1024, "worse": -3 * SE, "zero": 0.0}


def _layout(rows):
    """A Table 2 layout: (model, mean, mean se) rows, another column, and the chance row."""
    t = pd.DataFrame([dict(model=m, cb=0.9, **{"cb se": 0.2, "mean": v, "mean se": s}) for m, v, s in rows])
    chance = pd.DataFrame([dict(model="chance", cb=1 / 3, **{"cb se": np.nan, "mean": 0.43, "mean se": np.nan})])
    return pd.concat([t, chance], ignore_index=True)


def _layout_for(kinds):
    rows = [("zoo:cpu-medium-mse0.5", 0.9, 0.001)]
    for i, kind in enumerate(kinds):
        rows += [(f"zoo:s{i}-baseline", 0.5, SE_BASE), (f"zoo:s{i}-cos0.5", 0.5 + Z_DIFF[kind], SE_COS)]
    return _layout(rows)


def test_table2_pairs_difference_and_joint_standard_error():
    t = _layout([("zoo:cpu-large-cos0.5", 0.62, 0.02), ("zoo:cpu-large-baseline", 0.55, 0.03),
                 ("zoo:cpu-large-mse2.0", 0.9, 0.001), ("zoo:cpu-small-baseline", 0.5, 0.01),
                 ("zoo:cpu-small-cos0.5", 0.45, 0.04), ("gpt2", 0.7, 0.01)])
    pairs = claims.table2_pairs(t)
    assert [p["size"] for p in pairs] == ["cpu-large", "cpu-small"]
    for p, (base, cos, se_b, se_c) in zip(pairs, [(0.55, 0.62, 0.03, 0.02), (0.5, 0.45, 0.01, 0.04)]):
        assert set(p) == {"size", "baseline", "cosine", "diff", "z"}
        assert (p["baseline"], p["cosine"]) == (base, cos)
        assert p["diff"] == pytest.approx(cos - base, abs=1e-15)
        assert p["z"] == pytest.approx((cos - base) / math.sqrt(se_b**2 + se_c**2), rel=1e-12)
    assert claims.judge_benchmarks(t)[0] == ("cpu-large: mean 0.550 baseline, 0.620 cosine (+0.070, z = +1.9); "
                                             "cpu-small: mean 0.500 baseline, 0.450 cosine (-0.050, z = -1.2)")


@pytest.mark.parametrize("zs, verdict", [
    ([2.0], NOT), ([2.001], REP), ([2.0, 2.001], PART), ([2.001, 2.5, 40.0], REP), ([-3.0, 2.5], PART),
    ([-3.0], NOT), ([0.0, 1.0, 2.0], NOT), ([1.9, 2.1, 1.0], PART),
])
def test_beyond_two_standard_errors(zs, verdict):
    assert claims._beyond_two_se([dict(z=z) for z in zs]) == verdict


KIND_CASES = [
    (["at"], NOT),                 # exactly 2 standard errors is not beyond them
    (["beyond"], REP),
    (["beyond", "beyond"], REP),
    (["beyond", "at"], PART),      # at one size of two
    (["at", "beyond"], PART),
    (["at", "at"], NOT),
    (["worse", "beyond"], PART),
    (["worse"], NOT),              # far worse is not better
    (["zero", "worse"], NOT),
]


@pytest.mark.parametrize("kinds, verdict", KIND_CASES)
def test_table2_verdict_two_standard_errors_at_every_size(kinds, verdict):
    t = _layout_for(kinds)
    pairs = claims.table2_pairs(t)
    assert [p["size"] for p in pairs] == [f"s{i}" for i in range(len(kinds))]
    for p, kind in zip(pairs, kinds):
        assert p["z"] == pytest.approx(Z_DIFF[kind] / SE, abs=1e-12)
        if kind == "at":
            assert p["z"] == 2.0
    assert claims.judge_benchmarks(t)[1] == verdict


def test_table2_text():
    ours, verdict = claims.judge_benchmarks(_layout_for(["at", "worse"]))
    assert ours == ("s0: mean 0.500 baseline, 0.656 cosine (+0.156, z = +2.0); "
                    "s1: mean 0.500 baseline, 0.266 cosine (-0.234, z = -3.0)")
    assert verdict == NOT


def test_table2_without_a_pair_is_not_run():
    t = _layout([("zoo:cpu-large-baseline", 0.5, 0.01), ("zoo:cpu-large-mse0.5", 0.6, 0.01), ("gpt2", 0.6, 0.01)])
    assert claims.table2_pairs(t) == []
    assert claims.judge_benchmarks(t) == ("no baseline / cosine pair in the table", NOT_RUN)


def _probe_table(rows):
    """rows: (model, boundary, test_acc, test_se), in any order, plus columns the rules ignore."""
    t = pd.DataFrame(rows, columns=["model", "boundary", "test_acc", "test_se"])
    return t.assign(n_blocks=8, cv_mean=0.99, cv_std=0.5, n_test=3000, chance=0.5)


# per-boundary differences (cosine - baseline) whose mean is exactly 10/64 (= 2 SE), just beyond, or far worse
PROBE_DIFFS = {"at": [0.3125, 0.0, 0.15625, 0.15625], "beyond": [0.3125, 0.0, 0.15625, 0.171875],
               "worse": [-0.234375] * 4, "zero": [0.0] * 4}
PROBE_BASE = [0.5, 0.25, 0.5, 0.25]


def _probes_for(kinds):
    rows = [("zoo:cpu-medium-mse0.5", b, 0.99, 0.001) for b in range(4)]
    for i, kind in enumerate(kinds):
        for b, (a, d) in enumerate(zip(PROBE_BASE, PROBE_DIFFS[kind])):
            rows += [(f"zoo:s{i}-cos0.5", b, a + d, SE_COS), (f"zoo:s{i}-baseline", b, a, SE_BASE)]
    return _probe_table(rows)


def test_fig5_pairs_over_the_common_boundaries():
    # over the common boundaries 1-3 the means differ from the medians
    base = {0: (0.9, 0.5), 1: (0.5, 0.01), 2: (0.6, 0.02), 3: (0.45, 0.03)}
    cos = {1: (0.52, 0.02), 2: (0.6, 0.02), 3: (0.65, 0.04), 4: (0.1, 0.5)}
    rows = ([("zoo:cpu-large-cos0.5", b, a, s) for b, (a, s) in reversed(cos.items())]
            + [("zoo:cpu-large-baseline", b, a, s) for b, (a, s) in base.items()]
            + [("zoo:cpu-large-mse0.5", b, 0.2, 0.001) for b in range(5)]
            + [("zoo:cpu-small-baseline", b, 0.5, 0.25) for b in range(2)]
            + [("zoo:cpu-small-cos0.5", b, 0.75, 0.25) for b in range(2)])
    pairs = claims.fig5_pairs(_probe_table(rows))
    assert [p["size"] for p in pairs] == ["cpu-large", "cpu-small"]
    p = pairs[0]
    assert set(p) == {"size", "baseline", "cosine", "diff", "z", "higher", "n"}
    common = [1, 2, 3]
    diffs = [cos[b][0] - base[b][0] for b in common]  # 0.02, 0.0 (not higher), 0.2
    se = statistics.mean(math.sqrt(base[b][1] ** 2 + cos[b][1] ** 2) for b in common)
    assert statistics.median(diffs) != pytest.approx(statistics.mean(diffs))
    assert p["n"] == 3 and p["higher"] == 2
    assert p["baseline"] == pytest.approx(statistics.mean(base[b][0] for b in common), abs=1e-15)
    assert p["cosine"] == pytest.approx(statistics.mean(cos[b][0] for b in common), abs=1e-15)
    assert p["diff"] == pytest.approx(statistics.mean(diffs), abs=1e-15)
    assert p["z"] == pytest.approx(statistics.mean(diffs) / se, rel=1e-12)
    small = pairs[1]
    assert (small["n"], small["higher"], small["diff"]) == (2, 2, 0.25)
    assert small["z"] == pytest.approx(0.25 / math.sqrt(2 * 0.25**2), rel=1e-12)


@pytest.mark.parametrize("kinds, verdict", KIND_CASES)
def test_fig5_verdict_two_standard_errors_at_every_size(kinds, verdict):
    t = _probes_for(kinds)
    pairs = claims.fig5_pairs(t)
    assert [p["size"] for p in pairs] == [f"s{i}" for i in range(len(kinds))]
    for p, kind in zip(pairs, kinds):
        assert p["z"] == pytest.approx(statistics.mean(PROBE_DIFFS[kind]) / SE, abs=1e-12)
        assert p["higher"] == sum(d > 0 for d in PROBE_DIFFS[kind]) and p["n"] == 4
        if kind == "at":
            assert p["z"] == 2.0
    assert claims.judge_probes(t)[1] == verdict


def test_fig5_text():
    ours, verdict = claims.judge_probes(_probes_for(["at", "worse"]))
    assert ours == ("s0: mean test accuracy 0.375 baseline, 0.531 cosine (+0.156, z = +2.0; higher at 3 of 4 "
                    "boundaries); s1: mean test accuracy 0.375 baseline, 0.141 cosine (-0.234, z = -3.0; higher at 0 "
                    "of 4 boundaries)")
    assert verdict == NOT


def test_fig5_without_a_pair_is_not_run():
    t = _probe_table([("zoo:cpu-large-baseline", 0, 0.5, 0.01), ("zoo:cpu-large-mse0.5", 0, 0.6, 0.01)])
    assert claims.fig5_pairs(t) == []
    assert claims.judge_probes(t) == ("no baseline / cosine pair in the table", NOT_RUN)
