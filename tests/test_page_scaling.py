"""The scaling page (beyond the paper): its numbers and claim rule on small tables, and the committed cpu study."""
from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lin_utils import claims
from lin_utils.pages import scaling as page

R, P, N, NOT_RUN = claims.REPLICATED, claims.PARTLY, claims.NOT_REPLICATED, claims.NOT_RUN



# ------------------------------------------------------------------------------------------------
# Beyond the paper: the scaling study


@pytest.mark.parametrize("name, key", [
    ("GPT-2-small", "gpt_2_small"),
    ("GPT-2-XL", "gpt_2_xl"),
    ("OPT-1.3B", "opt_1_3b"),
    ("GPT-2 small (12, 768)", "gpt_2_small__12__768"),
    ("(Llama 2)", "llama_2"),
])
def test_shape_key(name, key):
    assert page._shape_key(name) == key


G = 1_500_000  # the grid's token budget
# model, init, family, n_blocks, width, train_tokens, score, gm_one_minus_score, gm_one_minus_nores, gm_ratio_sq
MODELS = [
    ("m-L4-d32", "trained", "mistral", 4, 32, G, 0.97, 0.03, 0.4, 0.06),
    ("m-L2-d64", "trained", "mistral", 2, 64, G, 0.85, 0.125, 0.5, 0.0625),
    ("r-m-L2-d32", "random", "mistral", 2, 32, 0, 0.98, 0.02, 0.9, 0.02),
    ("o-L2-d64", "trained", "olmo2", 2, 64, G, 0.70, 0.25, 0.25, 0.25),
    ("m-L4-d64", "trained", "mistral", 4, 64, G, 0.95, 0.05, 0.45, 0.1),
    ("r-m-L2-d64", "random", "mistral", 2, 64, 0, 0.97, 0.0625, 0.5, 0.125),
    ("m-L2-d32", "trained", "mistral", 2, 32, G, 0.90, 0.1, 0.55, 0.18),
    ("o-L4-d128", "trained", "olmo2", 4, 128, G, 0.75, 0.5, 0.5, 0.5),
    ("m-L2-d64@500000", "trained", "mistral", 2, 64, 500_000, 0.80, 0.2, 0.3, 0.6),  # token sweep
    ("r-o-L2-d64", "random", "olmo2", 2, 64, 0, 0.60, 0.03125, 1.0, 0.0625),
    ("m-L8-d128@3000000", "trained", "mistral", 8, 128, 3_000_000, 0.99, 0.01, 0.2, 0.05),  # off the grid
    ("r-m-L4-d32", "random", "mistral", 4, 32, 0, 0.985, 0.015, 0.8, 0.02),
    ("r-m-L4-d64", "random", "mistral", 4, 64, 0, 0.975, 0.025, 0.7, 0.04),
]
MODEL_COLUMNS = ["model", "init", "family", "n_blocks", "width", "train_tokens", "score", "gm_one_minus_score",
                 "gm_one_minus_nores", "gm_ratio_sq"]

FIT = [  # fit, init, target, term, coef, se, r2
    ("tokens", "trained", "one_minus_score", "intercept", -18.9, 1.69, 0.965),
    ("tokens", "trained", "one_minus_score", "log_tokens", 1.14, 0.125, 0.965),
    ("tokens", "trained", "one_minus_nores", "intercept", -10.3, 1.37, 0.936),
    ("tokens", "trained", "one_minus_nores", "log_tokens", 0.67, 0.101, 0.936),
    ("tokens", "trained", "ratio_sq", "intercept", -8.5, 0.53, 0.98),
    ("tokens", "trained", "ratio_sq", "log_tokens", 0.47, 0.039, 0.98),
    ("depth-width", "random", "one_minus_score", "intercept", -6.9, 1.4, 0.66),
    ("depth-width", "random", "one_minus_score", "log_blocks", -0.53, 0.23, 0.66),
    ("depth-width", "random", "one_minus_score", "log_width", 1.1, 0.32, 0.66),
    ("depth-width", "random", "one_minus_nores", "intercept", 3.5, 0.64, 0.87),
    ("depth-width", "random", "one_minus_nores", "log_blocks", -0.61, 0.107, 0.87),
    ("depth-width", "random", "one_minus_nores", "log_width", -0.78, 0.146, 0.87),
    ("depth-width", "random", "ratio_sq", "intercept", -10.4, 0.83, 0.92),
    ("depth-width", "random", "ratio_sq", "log_blocks", 0.077, 0.139, 0.92),
    ("depth-width", "random", "ratio_sq", "log_width", 1.87, 0.19, 0.92),
    ("depth-width", "trained", "one_minus_score", "intercept", -3.0, 0.68, 0.95),
    ("depth-width", "trained", "one_minus_score", "log_blocks", -1.4, 0.11, 0.95),
    ("depth-width", "trained", "one_minus_score", "log_width", 0.5, 0.15, 0.95),
    ("depth-width", "trained", "one_minus_nores", "intercept", 0.2, 0.17, 0.86),
    ("depth-width", "trained", "one_minus_nores", "log_blocks", -0.15, 0.028, 0.86),
    ("depth-width", "trained", "one_minus_nores", "log_width", -0.18, 0.038, 0.86),
    ("depth-width", "trained", "ratio_sq", "intercept", -3.2, 0.54, 0.96),
    ("depth-width", "trained", "ratio_sq", "log_blocks", -1.25, 0.09, 0.96),
    ("depth-width", "trained", "ratio_sq", "log_width", 0.69, 0.12, 0.96),
]
FIT_COLUMNS = ["fit", "init", "target", "term", "coef", "se", "r2"]
COEFS = {  # key of scaling_numbers -> (coef, se): b and c per log(blocks) and log(width), e per log(tokens)
    "b": (-1.4, 0.11), "c": (0.5, 0.15), "b_nores": (-0.15, 0.028), "c_nores": (-0.18, 0.038),
    "b_ratio": (-1.25, 0.09), "c_ratio": (0.69, 0.12),
    "random_b": (-0.53, 0.23), "random_c": (1.1, 0.32), "random_b_nores": (-0.61, 0.107),
    "random_c_nores": (-0.78, 0.146), "random_b_ratio": (0.077, 0.139), "random_c_ratio": (1.87, 0.19),
    "e": (1.14, 0.125), "e_nores": (0.67, 0.101), "e_ratio": (0.47, 0.039),
}
# shape, score_pred, score_lo, score_hi, delta_log of one_minus_score, of one_minus_nores, of ratio_sq
SHAPES = [
    ("GPT-2-small", 0.996, 0.99, 0.998, 0.25, -0.25, 0.125),  # lower end exactly at 0.99
    ("GPT-2-XL", 0.99, 0.97, 0.995, -0.5, -0.5, 0.25),  # point estimate exactly at 0.99
    ("OPT-1.3B", 0.95, 0.9, 0.98, 0.375, -0.25, 0.375),
]


def extrapolation(shapes) -> pd.DataFrame:
    """Rows per target, then per shape (as the study writes them); only one_minus_score has scores."""
    rows = [dict(shape=s, init="trained", target="one_minus_score", delta_log=d, score_pred=p, score_lo=lo,
                 score_hi=hi) for s, p, lo, hi, d, _, _ in shapes]
    for target, i in (("one_minus_nores", 5), ("ratio_sq", 6)):
        rows += [dict(shape=s[0], init="trained", target=target, delta_log=s[i], score_pred=np.nan,
                      score_lo=np.nan, score_hi=np.nan) for s in shapes]
    return pd.DataFrame(rows, columns=["shape", "init", "target", "delta_log", "score_pred", "score_lo", "score_hi"])


def scaling_tables(models=MODELS, fit=FIT, shapes=SHAPES):
    return dict(models=pd.DataFrame(models, columns=MODEL_COLUMNS), fit=pd.DataFrame(fit, columns=FIT_COLUMNS),
                extrapolation=extrapolation(shapes),
                blocks=pd.DataFrame(dict(identity_gap=[2e-17, 5e-17, 0.0, 1e-17])))


def test_scaling_coefficients_by_fit_init_target_and_term():
    n = page.scaling_numbers(scaling_tables())
    for key, (coef, se) in COEFS.items():
        assert (n[key], n[f"{key}_se"]) == (coef, se), key
    assert (n["r2"], n["random_r2"]) == (0.95, 0.66)


def test_scaling_coefficients_missing_from_the_fit_are_nan():
    n = page.scaling_numbers(scaling_tables(fit=[f for f in FIT if f[:2] == ("depth-width", "trained")]))
    assert (n["b"], n["c_ratio_se"], n["r2"]) == (-1.4, 0.12, 0.95)
    missing = [k for k in COEFS if k.startswith(("random_", "e"))]
    assert all(math.isnan(n[k]) and math.isnan(n[f"{k}_se"]) for k in missing)
    assert math.isnan(n["random_r2"])


def test_scaling_grid_counts_and_extremes():
    n = page.scaling_numbers(scaling_tables())
    # The grid: mistral models trained on the most common budget, (2, 32), (2, 64), (4, 32), (4, 64).
    assert {k: n[k] for k in ("n_trained", "n_random", "grid_tokens", "depth_min", "depth_max", "width_min",
                              "width_max")} == dict(n_trained=8, n_random=5, grid_tokens=G, depth_min=2,
                                                    depth_max=4, width_min=32, width_max=64)
    # smallest (2, 32) and largest (4, 64) by (blocks, width); neither holds the extreme score.
    assert (n["score_smallest"], n["score_largest"], n["score_grid_min"], n["score_grid_max"]) == (0.90, 0.95, 0.85, 0.97)
    assert n["identity_gap_max"] == 5e-17


def test_scaling_smallest_and_largest_shape_order_blocks_before_width():
    n = page.scaling_numbers(scaling_tables(models=[m for m in MODELS if m[0] not in ("m-L2-d32", "m-L4-d64")]))
    # The grid is (4, 32) and (2, 64): the fewest blocks is the smallest shape, the most the largest.
    assert (n["score_smallest"], n["score_largest"]) == (0.85, 0.97)


def test_scaling_predictions_per_shape():
    n = page.scaling_numbers(scaling_tables())
    assert {k: n[k] for k in n if k.startswith(("pred_", "dlog_"))} == {
        "pred_gpt_2_small": 0.996, "pred_gpt_2_small_lo": 0.99, "pred_gpt_2_small_hi": 0.998,
        "dlog_gpt_2_small": 0.25, "dlog_nores_gpt_2_small": -0.25, "dlog_ratio_gpt_2_small": 0.125,
        "pred_gpt_2_xl": 0.99, "pred_gpt_2_xl_lo": 0.97, "pred_gpt_2_xl_hi": 0.995,
        "dlog_gpt_2_xl": -0.5, "dlog_nores_gpt_2_xl": -0.5, "dlog_ratio_gpt_2_xl": 0.25,
        "pred_opt_1_3b": 0.95, "pred_opt_1_3b_lo": 0.9, "pred_opt_1_3b_hi": 0.98,
        "dlog_opt_1_3b": 0.375, "dlog_nores_opt_1_3b": -0.25, "dlog_ratio_opt_1_3b": 0.375,
    }
    assert (n["n_shapes"], n["n_reached"], n["n_reached_lo"]) == (3, 2, 1)
    assert n["reaches"] == ("reaches 0.99 at 2 of the 3 shapes by its point estimate, and at 1 by the lower end "
                            "of its 95% interval")


NONLINEARITY = "the block's own nonlinearity (1 − score without residual)"
RELATIVE_SIZE = "the block's relative size (‖B_c‖²/‖Y_c‖²)"


@pytest.mark.parametrize("nores, ratio, bigger, sums", [
    ((-0.25, -0.5, -0.25), (0.125, 0.25, 0.375), NONLINEARITY, "-1.00 through the nonlinearity and +0.75"),
    ((-0.25, -0.25, -0.25), (0.25, 0.25, 0.25), RELATIVE_SIZE, "-0.75 through the nonlinearity and +0.75"),  # a tie
    ((0.25, 0.0, 0.0), (-0.5, 0.0, -0.25), RELATIVE_SIZE, "+0.25 through the nonlinearity and -0.75"),
], ids=["nonlinearity", "tie", "relative size"])
def test_scaling_change_is_carried_by_the_factor_with_the_larger_summed_log(nores, ratio, bigger, sums):
    shapes = [s[:5] + (a, b) for s, a, b in zip(SHAPES, nores, ratio)]
    n = page.scaling_numbers(scaling_tables(shapes=shapes))
    assert n["carried_by"] == f"{bigger}: summed over the shapes the log of 1 − score changes by {sums} through the relative size"


@pytest.mark.parametrize("preds, reached, reached_lo, verdict", [
    ([(0.996, 0.99), (0.995, 0.991), (0.999, 0.992)], 3, 3, P),  # an extrapolation: never more than partly
    ([(0.996, 0.99), (0.99, 0.97), (0.95, 0.9)], 2, 1, P),
    ([(0.98, 0.95), (0.99, 0.97), (0.95, 0.9)], 1, 0, P),
    ([(0.98, 0.95), (0.9899, 0.97), (0.95, 0.9)], 0, 0, claims.INCONCLUSIVE),
    ([], 0, 0, claims.INCONCLUSIVE),  # no shape: nothing reached
])
def test_scaling_verdicts(preds, reached, reached_lo, verdict):
    shapes = [(s[0], p, lo, s[3], *s[4:]) for s, (p, lo) in zip(SHAPES, preds)]
    tables = scaling_tables(shapes=shapes)
    n = page.scaling_numbers(tables)
    assert (n["n_shapes"], n["n_reached"], n["n_reached_lo"]) == (len(preds), reached, reached_lo)
    assert page.judge_scaling(tables)[1] == verdict


def test_scaling_without_shapes_measures_no_carrier():
    n = page.scaling_numbers(scaling_tables(shapes=[]))
    assert n["carried_by"] == "not measured"
    assert n["reaches"] == ("reaches 0.99 at 0 of the 0 shapes by its point estimate, and at 0 by the lower end "
                            "of its 95% interval")


def test_scaling_text():
    ours, verdict = page.judge_scaling(scaling_tables())[:2]
    assert ours == ("1 − score ∝ L^-1.40±0.11 · d^0.50±0.15 at 1,500,000 tokens; predicted score "
                    "GPT-2-small 0.996 [0.990, 0.998], GPT-2-XL 0.990 [0.970, 0.995], OPT-1.3B 0.950 [0.900, 0.980]; "
                    "reaches 0.99 at 2 of the 3 shapes by its point estimate, and at 1 by the lower end of its "
                    "95% interval")
    assert verdict == P


def test_judge_scaling_wants_the_dict_of_tables():
    with pytest.raises(TypeError, match=r"^judge_scaling takes the dict of tables of experiments\.scaling_study$"):
        page.judge_scaling(pd.DataFrame(dict(model=["m"], score=[0.9])))


TRAINED_NORM = dict(norm_x=2.0, norm_nores_x=0.5, norm_ratio_x=4.0, norm_score_mistral=0.85, norm_score_olmo2=0.70)
RANDOM_NORM = dict(random_norm_x=0.5, random_norm_nores_x=2.0, random_norm_ratio_x=0.5,
                   random_norm_score_mistral=0.97, random_norm_score_olmo2=0.60)
TRAINED_TEXT = ("trained: olmo2 / pre-norm = ×0.50 in 1 − score without residual and ×4.00 in ‖B_c‖²/‖Y_c‖², "
                "so mostly the relative size")
RANDOM_TEXT = ("random: olmo2 / pre-norm = ×2.00 in 1 − score without residual and ×0.50 in ‖B_c‖²/‖Y_c‖², "
               "so mostly the nonlinearity")  # a tie: |log 2| = |log 0.5|


@pytest.mark.parametrize("left_out, numbers, text", [
    ((), {**TRAINED_NORM, **RANDOM_NORM}, f"{TRAINED_TEXT}; {RANDOM_TEXT}"),
    (("r-o-L2-d64",), TRAINED_NORM, TRAINED_TEXT),
    (("o-L2-d64", "o-L4-d128"), RANDOM_NORM, RANDOM_TEXT),
    # mistral at (2, 64) only off the grid's budget (the token sweep): no pair to compare
    (("m-L2-d64", "r-m-L2-d64"), {}, "not measured"),
    (("o-L2-d64", "o-L4-d128", "r-o-L2-d64"), {}, "not measured"),  # mistral only
], ids=["both", "trained only", "random only", "no mistral partner", "no other family"])
def test_scaling_norm_placement_ratios(left_out, numbers, text):
    """olmo2 / mistral ratios of the geometric means at the first olmo2 model's shape (2, 64), for
    the trained models at the grid's budget and for the random ones, where both families have one."""
    n = page.scaling_numbers(scaling_tables(models=[m for m in MODELS if m[0] not in left_out]))
    assert {k: n[k] for k in n if "norm_" in k and k != "norm_text"} == pytest.approx(numbers)
    assert n["norm_text"] == text


def committed_scaling_tables() -> list[dict[str, pd.DataFrame]]:
    folder = Path(__file__).resolve().parents[1] / "data" / "results" / "cpu" / "scaling_study"
    hashes = sorted(p.stem.split("-", 1)[1] for p in folder.glob("models-*.csv"))
    return [{name: pd.read_csv(folder / f"{name}-{h}.csv") for name in ("models", "fit", "extrapolation", "blocks")}
            for h in hashes]


def test_committed_scaling_tables():
    """The committed cpu study, with every number recomputed here from the tables."""
    committed = committed_scaling_tables()
    assert committed
    for tables in committed:
        models, fit, extra = tables["models"], tables["fit"], tables["extrapolation"]
        n = page.scaling_numbers(tables)
        row = fit.set_index(["fit", "init", "target", "term"]).loc[("depth-width", "trained", "one_minus_score", "log_blocks")]
        assert (n["b"], n["b_se"], n["r2"]) == (row.coef, row.se, row.r2)
        trained = models[models.init == "trained"]
        tokens = Counter(trained.train_tokens).most_common(1)[0][0]
        grid = {(r.n_blocks, r.width): r.score for r in trained.itertuples() if r.family == "mistral" and r.train_tokens == tokens}
        assert (n["grid_tokens"], n["score_smallest"], n["score_largest"]) == (tokens, grid[min(grid)], grid[max(grid)])
        scores = extra[extra.target == "one_minus_score"]
        for r in scores.itertuples():
            k = re.sub("[^a-z0-9]", "_", r.shape.lower()).strip("_")
            assert (n[f"pred_{k}"], n[f"pred_{k}_lo"], n[f"pred_{k}_hi"]) == (r.score_pred, r.score_lo, r.score_hi)
        reached, reached_lo = int((scores.score_pred >= 0.99).sum()), int((scores.score_lo >= 0.99).sum())
        assert (n["n_shapes"], n["n_reached"], n["n_reached_lo"]) == (len(scores), reached, reached_lo)
        assert page.judge_scaling(tables)[1] == (P if reached else claims.INCONCLUSIVE)
        assert page.judge_depth(tables).evidence.effect == n["b"] and page.judge_width(tables).evidence.effect == n["c"]
        sums = extra.groupby("target").delta_log.sum()
        carrier = NONLINEARITY if abs(sums["one_minus_nores"]) > abs(sums["ratio_sq"]) else RELATIVE_SIZE
        assert n["carried_by"].startswith(carrier + ":")
        family = models[models.family != "mistral"].iloc[0]
        for init, pre in (("trained", ""), ("random", "random_")):
            at = models[(models.n_blocks == family.n_blocks) & (models.width == family.width) & (models.init == init)
                        & models.train_tokens.isin([0, tokens])].set_index("family")
            assert n[f"{pre}norm_ratio_x"] == pytest.approx(at.gm_ratio_sq[family.family] / at.gm_ratio_sq["mistral"])
            assert n[f"{pre}norm_nores_x"] == pytest.approx(at.gm_one_minus_nores[family.family] / at.gm_one_minus_nores["mistral"])


# ------------------------------------------------------------------------------------------------
# our findings: depth and width apart


@pytest.mark.parametrize("term, coef, se, verdict", [
    ("log_blocks", -1.4, 0.11, claims.REPLICATED),     # deeper: more linear
    ("log_blocks", -0.2, 0.11, claims.INCONCLUSIVE),
    ("log_blocks", 0.5, 0.11, claims.CONTRADICTED),
    ("log_width", 0.5, 0.15, claims.REPLICATED),       # wider: less linear
    ("log_width", 0.3, 0.15, claims.INCONCLUSIVE),     # exactly 2 SE is not beyond
    ("log_width", -0.31, 0.15, claims.CONTRADICTED),
])
def test_depth_and_width_are_judged_apart(term, coef, se, verdict):
    fit = [f for f in FIT if not (f[:3] == ("depth-width", "trained", "one_minus_score") and f[3] == term)]
    fit.append(("depth-width", "trained", "one_minus_score", term, coef, se, 0.9))
    judge = page.judge_depth if term == "log_blocks" else page.judge_width
    j = judge(scaling_tables(fit=fit))
    assert (j.evidence.effect, j.evidence.se, j.verdict) == (coef, se, verdict)


def test_our_findings_are_counted_apart_from_the_papers_claims():
    assert {c.kind for c in page.CLAIMS} == {claims.OURS}


def test_the_reach_of_the_extrapolation():
    r = page.reach(dict(models=pd.DataFrame(dict(init="trained", family="mistral", width=[32, 128], n_blocks=[16, 4])),
                        extrapolation=pd.DataFrame(dict(shape=["a", "b"], width=[768, 2048], blocks=[12, 48]))))
    assert r == dict(width_reach_min=6.0, width_reach_max=16.0, depth_reach_max=3.0)
