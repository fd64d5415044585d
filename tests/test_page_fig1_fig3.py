"""The pages of Figs 1 and 3 (one scan table, two pages): their numbers, texts and verdicts.

Every table here is built by hand so that the answer is known by construction; boundaries are hit
exactly (dyadic numbers) and just beyond, and the expected numbers are computed independently of
the pages (``statistics`` / ``math``), never by calling them twice.
"""
from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from tables import profile_table

from lin_utils.claims import CONTRADICTED, INCONCLUSIVE, REPLICATED
from lin_utils.pages import fig1_linearity_profiles as fig1
from lin_utils.pages import fig3_block_norms as fig3


def _profile(rows):
    """rows: (model, arch, trained, score, nores, heldout_nores, chance, n_tokens, d, norm_ratio)."""
    cols = ["model", "arch", "trained", "score", "score_nores", "heldout_nores", "chance", "n_tokens", "d",
            "norm_ratio"]
    return pd.DataFrame(rows, columns=cols)


def _blocks(score=None, nores=None, d=16, heldout=None):
    """One trained decoder, one row per block; the columns not given are harmless constants."""
    n = len(score or nores)
    score, nores = score or [0.97] * n, nores or [0.5] * n
    heldout = heldout or [v - 0.125 for v in nores]
    return _profile([("m", "decoder", True, s, r, h, 0.003, 5000, d, 0.5) for s, r, h in zip(score, nores, heldout)])


# the trained decoders (the paper's subject) and, with extreme values, what must be left out
_TRAINED = [("a", "decoder", True, 0.99, 0.5, 0.45, 0.01, 5000, 16, 0.2),
            ("a", "decoder", True, 0.97, 0.6, 0.55, 0.02, 5000, 16, 0.5),
            ("a", "decoder", True, 0.91, 0.4, 0.35, 0.03, 5000, 16, 1.0),
            ("b", "decoder", True, 0.98, 0.9, 0.85, 0.005, 4000, 32, 0.7),
            ("b", "decoder", True, 0.96, 0.3, 0.2, 0.004, 4000, 32, 1.3)]
_RANDOM = [("r", "decoder", False, 0.1, 0.05, 0.9, 0.5, 100, 64, 5.0),
           ("r", "decoder", False, 0.3, 0.15, 0.9, 0.5, 100, 64, 0.1)]
_ENCODER = [("e", "encoder", True, 0.2, 0.99, 0.99, 0.9, 10, 128, 0.01)]


def test_fig1_numbers_are_over_trained_decoders_only():
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
    j = fig1.judge_nores(t)  # the drop per block, over trained decoders' blocks only
    drops = [s - r for s, r in zip(score, nores)]
    assert (j.evidence.effect, j.evidence.n) == (pytest.approx(statistics.mean(drops)), 5)
    assert j.evidence.se == pytest.approx(statistics.stdev(drops) / math.sqrt(5))


def test_fig1_level_is_not_judged_on_models_narrower_than_the_papers():
    j = fig1.judge_score(_blocks(score=[0.99, 0.998], d=128))
    assert j.verdict == INCONCLUSIVE and "ours are at most 128 wide" in j.reason
    assert j.ours == "0.994 mean, 0.990 to 0.998 over blocks (chance 0.003); widths up to 128"


@pytest.mark.parametrize("score, verdict", [
    ([0.95, 0.99], REPLICATED),       # every block >= 0.95, the lowest exactly at it
    ([0.9499, 0.99], INCONCLUSIVE),   # one block just below, the mean above 0.90
    ([0.875, 0.925], INCONCLUSIVE),   # the mean exactly 0.90: not below
    ([0.8999], CONTRADICTED),
    ([0.5, 1.0], CONTRADICTED),       # a high maximum does not rescue a low mean
])
def test_fig1_level_verdicts_at_the_papers_widths(score, verdict):
    assert fig1.judge_score(_blocks(score=score, d=768)).verdict == verdict


@pytest.mark.parametrize("score, nores, verdict", [
    ([0.5, 0.5, 0.5, 0.5], [0.25, 0.375, 0.25, 0.375], REPLICATED),   # drop 0.1875 ± 0.036: 5.2 SE
    ([0.5, 0.5], [0.25, 0.75], INCONCLUSIVE),                         # drop 0 ± 0.25
    ([0.25, 0.25, 0.25, 0.25], [0.5, 0.625, 0.5, 0.625], CONTRADICTED),  # a rise beyond 2 SE
])
def test_fig1_drop_verdicts(score, nores, verdict):
    assert fig1.judge_nores(_blocks(score=score, nores=nores)).verdict == verdict


def test_fig1_nores_text():
    j = fig1.judge_nores(_blocks(score=[0.9, 0.95, 0.98], nores=[0.5, 0.625, 0.25], heldout=[0.125, 0.25, 0.1]))
    assert j.ours.startswith("0.458 without vs 0.943 with (held-out 0.158); drop 0.485 ± 0.")


def test_training_effect_pairs_each_model_with_its_own_random_initialisation():
    trained = profile_table([0.7] * 3, [0.3] * 3, [0.5] * 3)
    less = pd.concat([trained, profile_table([0.9] * 3, [0.4] * 3, [0.5] * 3, trained=False, model="random:m")])
    other = pd.concat([trained, profile_table([0.9] * 3, [0.4] * 3, [0.5] * 3, trained=False, model="random:x")])
    assert fig1.training_effect(less).startswith("m 0.900 at initialisation → 0.700 trained (less linear)")
    assert fig1.training_effect(other).startswith("not measured here")  # another model's init is no pair
    n = fig1.numbers(less)
    assert n["verdict_nores"] == fig1.judge_nores(less).verdict and n["training_effect"] == fig1.training_effect(less)


# ---------------------------------------------------------------------------------------------
# Fig 3: the block's output against the stream it makes


def _norms(model, resid, block, arch="decoder", trained=True, out=None):
    t = pd.DataFrame(dict(model=model, arch=arch, trained=trained, block=range(len(resid)), norm_resid=resid,
                          norm_block=block, norm_ratio=np.array(block) / np.array(resid), cosine=0.9, score=0.9))
    if out is not None:
        t["norm_out"] = out
    return t


def test_the_output_norm_is_the_next_blocks_input_norm_or_the_scans_own():
    t = fig3.with_output_ratio(pd.concat([_norms("a", [1.0, 2.0, 4.0], [1.0, 2.0, 3.0]),
                                          _norms("b", [8.0, 16.0], [4.0, 4.0])], ignore_index=True))
    assert t.norm_out.tolist()[:2] == [2.0, 4.0] and math.isnan(t.norm_out[2])  # never across models
    assert t.ratio_out.tolist()[:2] == [0.5, 0.5] and t.norm_out[3] == 16.0 and math.isnan(t.norm_out[4])
    own = fig3.with_output_ratio(_norms("a", [1.0, 2.0, 4.0], [1.0, 2.0, 3.0], out=[2.5, np.nan, 8.0]))
    assert own.norm_out.tolist() == [2.5, 4.0, 8.0] and own.ratio_out.tolist() == [0.4, 0.5, 0.375]


def test_fig3_judges_blocks_after_the_first_of_trained_decoders():
    t = pd.concat([_norms("a", [1.0, 1.0, 4.0, 8.0, 16.0], [30.0, 2.0, 2.0, 4.0, 8.0], out=[1, 4, 8, 16, 20]),
                   _norms("r", [1.0, 1.0, 1.0], [9.0, 9.0, 9.0], trained=False, out=[1, 1, 1]),
                   _norms("e", [1.0, 1.0], [9.0, 9.0], arch="encoder", out=[1, 1])], ignore_index=True)
    t = fig3.with_output_ratio(t)
    j = fig3.judge_norms(t)
    gaps = [1 - 2 / 4, 1 - 2 / 8, 1 - 4 / 16, 1 - 8 / 20]  # block 0 (30 / 1) apart; r and e left out
    assert j.evidence.effect == pytest.approx(statistics.mean(gaps)) and j.evidence.n == 4
    assert j.evidence.se == pytest.approx(statistics.stdev(gaps) / 2) and j.verdict == REPLICATED
    n = fig3.ratios(t)
    assert (n["block0_ratio_max"], n["ratio_max"], n["ratio_min"]) == (30.0, 0.5, 0.25)


def test_fig3_outputs_as_large_as_their_stream_contradict():
    t = fig3.with_output_ratio(_norms("a", [1.0] * 5, [1.0, 1.5, 2.0, 1.5, 2.0], out=[1.0] * 5))
    assert fig3.judge_norms(t).verdict == CONTRADICTED
    assert fig3.judge_norms(fig3.with_output_ratio(
        _norms("a", [1.0] * 3, [1.0, 0.5, 1.5], out=[1.0] * 3))).verdict == INCONCLUSIVE


def test_training_effect_says_more_linear_when_training_raised_the_score():
    trained = profile_table([0.9] * 3, [0.3] * 3, [0.5] * 3)
    more = pd.concat([trained, profile_table([0.5] * 3, [0.4] * 3, [0.5] * 3, trained=False, model="random:m")])
    assert fig1.training_effect(more) == ("m 0.500 at initialisation → 0.900 trained (more linear) (the zoo models' "
                                          "own initialisations are their step 0 on the Fig 2 page)")


# ---------------------------------------------------------------------------------------------
# "How this differs from the paper" of the scan pages (Figs 1, 3, 9)


def _scan_config(exclude_bos=False):
    return fig1.CONFIG.with_params({"exclude_bos": exclude_bos})


def test_scan_differences_name_the_tokens_widths_and_how_much_narrower():
    from lin_utils.pages._scans import PAPER_SCAN, scan_differences

    t = pd.concat([_profile([("a", "decoder", True, 0.9, 0.5, 0.4, 0.01, 5000, 64, 0.3)]),
                   _profile([("b", "decoder", True, 0.9, 0.5, 0.4, 0.01, 4096, 256, 0.3)]),
                   _profile([("r", "decoder", False, 0.9, 0.5, 0.4, 0.01, 100, 2048, 0.3)])])
    cfg = _scan_config()
    text = scan_differences(cfg, t)
    assert text == ("**How this differs from the paper.** Here: the first 100 tokens of the "
                    f"{cfg.dataset} {cfg.split} split in rows of {cfg.seq_len} tokens, position 0 (BOS) included; "
                    "trained decoders 64, 256 wide, 3–64× narrower than the paper's; one training run per model "
                    f"(no seeds). The paper: {PAPER_SCAN}. Hidden states are the raw residual stream at block "
                    "boundaries (hooks), never Hugging Face's final-norm'd last hidden state.")
    assert "position 0 (BOS) excluded" in scan_differences(_scan_config(True), t)
    wide = _profile([("w", "decoder", True, 0.9, 0.5, 0.4, 0.01, 5000, 1024, 0.3)])
    assert "trained decoders 1024 wide; one training run" in scan_differences(cfg, wide)  # not narrower
    # a table without arch / trained (e.g. a summary) counts every row; none at all: no width
    bare = pd.DataFrame(dict(model=["x", "y"], d=[32, 16], n_tokens=[300, 200]))
    assert "the first 200 tokens" in scan_differences(cfg, bare)
    assert "trained decoders 16, 32 wide, 24–256× narrower" in scan_differences(cfg, bare)
    encoders = _profile([("e", "encoder", True, 0.9, 0.5, 0.4, 0.01, 500, 384, 0.3)])
    assert "trained decoders 384 wide, 2–11× narrower" in scan_differences(cfg, encoders)  # no decoder: every row
    assert "trained decoders  wide; one" in scan_differences(cfg, bare.iloc[0:0])
