"""The pages of Figs 1 and 3 (one scan table, two pages): their numbers, texts and verdicts.

Every table here is built by hand so that the answer is known by construction; boundaries are
hit exactly (dyadic numbers, so that e.g. a difference of exactly 2 standard errors is exactly 2.0
in floating point) and just beyond, and the expected numbers are computed independently of
:mod:`lin_utils.claims` (``statistics`` / ``math``), never by calling it twice.
"""
from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest
from tables import profile_table

from lin_utils import claims
from lin_utils.pages import fig1_linearity_profiles as fig1
from lin_utils.pages import fig3_block_norms as fig3

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
    n = fig1.scores(t)
    expected = dict(random_score_mean=0.2, random_nores_mean=0.1, score_mean=statistics.mean(score), score_min=0.91,
                    score_max=0.99, nores_mean=statistics.mean(nores), heldout_nores_mean=statistics.mean(held),
                    chance_max=0.03, n_tokens_min=4000, d_max=32,
                    drop=statistics.mean(score) - statistics.mean(nores))
    assert set(n) == set(expected)
    for k, v in expected.items():
        assert n[k] == pytest.approx(v, abs=1e-12), k
    f3 = fig3.ratios(t)
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
    assert fig1.judge_score(_blocks(score=score))[1] == verdict


def test_fig1_score_text():
    ours, verdict = fig1.judge_score(_blocks(score=[0.875, 0.925, 0.9]))
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
    assert fig1.judge_nores(_blocks(score=[score], nores=[nores]))[1] == verdict


def test_fig1_nores_text():
    ours, _ = fig1.judge_nores(_blocks(score=[0.9, 0.95, 0.98], nores=[0.5, 0.625, 0.25],
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
    assert fig3.judge_norms(_blocks(ratio=ratio))[1] == verdict


def test_fig3_norm_text():
    ours, _ = fig3.judge_norms(_blocks(ratio=[0.5, 1.0, 0.75, 0.25, 2.0]))
    assert ours == "||block output|| / ||residual|| median 0.75 (0.25 to 2.00)"


def test_training_effect_sentence_follows_the_numbers():
    trained = profile_table([0.7] * 3, [0.3] * 3, [0.5] * 3)
    less = pd.concat([trained, profile_table([0.9] * 3, [0.4] * 3, [0.5] * 3, trained=False, model="r")])
    more = pd.concat([trained, profile_table([0.5] * 3, [0.4] * 3, [0.5] * 3, trained=False, model="r")])
    assert fig1.numbers(less)["training_effect"].startswith("less linear")
    assert fig1.numbers(more)["training_effect"].startswith("at least as linear")
    assert fig1.numbers(trained)["training_effect"].startswith("not measured")


def test_figure_numbers_carry_the_claims_verdicts():
    t = profile_table([0.99, 0.97, 0.995], [0.5, 0.6, 0.4], [0.3, 0.2, 1.5])
    n1 = fig1.numbers(t)
    assert n1["verdict_score"] == fig1.judge_score(t)[1] == claims.REPLICATED
    assert n1["score_mean"] == np.mean([0.99, 0.97, 0.995])
    n3 = fig3.numbers(t)
    assert n3["verdict_norms"] == claims.PARTLY and n3["ratio_max"] == 1.5 and n3["frac_below_one"] == 2 / 3
