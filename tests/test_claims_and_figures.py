"""Verdict rules, the Fig 9 Gaussian reference, and the figure functions on synthetic tables."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import chi2

from lin_utils import claims, plots, report, results
from lin_utils.experiments import gaussian_norm_quantiles
from lin_utils.linearity import LinearityAccumulator


def profile_table(score, nores, ratio, kind="decoder, trained", model="m"):
    n = len(score)
    return pd.DataFrame(dict(
        model=model, kind=kind, n_blocks=n, block=range(n), n_tokens=5000, d=16, chance=16 / 4999,
        score=score, score_nores=nores, heldout=np.array(score) - 0.01, heldout_nores=np.array(nores) - 0.01,
        norm_ratio=ratio, norm_resid=10.0, norm_block=np.array(ratio) * 10, cosine=0.9, depth=np.linspace(0, 1, n),
    ))


@pytest.mark.parametrize("score, verdict", [
    ([0.99, 0.97, 0.995], claims.REPLICATED),
    ([0.99, 0.85, 0.95], claims.PARTLY),
    ([0.75, 0.8, 0.7], claims.NOT_REPLICATED),
])
def test_fig1_score_verdicts(score, verdict):
    assert claims.judge_score(profile_table(score, [0.5] * 3, [0.2] * 3))[1] == verdict


def test_only_trained_decoders_are_judged():
    t = pd.concat([profile_table([0.99] * 3, [0.4] * 3, [0.2] * 3),
                   profile_table([0.1] * 3, [0.1] * 3, [5.0] * 3, kind="decoder, random init", model="r"),
                   profile_table([0.1] * 3, [0.1] * 3, [5.0] * 3, kind="encoder, trained", model="e")])
    assert claims.judge_score(t)[1] == claims.REPLICATED
    assert claims.judge_norms(t)[1] == claims.REPLICATED
    n = claims.fig1_numbers(t)
    assert n["score_mean"] == pytest.approx(0.99) and n["random_score_mean"] == pytest.approx(0.1)
    assert n["drop"] == pytest.approx(0.59)


def test_norm_verdicts():
    assert claims.judge_norms(profile_table([0.9] * 3, [0.5] * 3, [0.5, 0.8, 1.2]))[1] == claims.PARTLY
    assert claims.judge_norms(profile_table([0.9] * 3, [0.5] * 3, [1.5, 0.8, 1.2]))[1] == claims.NOT_REPLICATED


def test_claims_table_reads_latest_results(tmp_path):
    t = profile_table([0.99, 0.97, 0.995], [0.5, 0.6, 0.4], [0.3, 0.2, 0.5])
    results.save_table(t, "fig1_linearity_profiles", "profiles", {"a": 1}, "test", root=tmp_path)
    table = claims.claims_table("test", root=tmp_path)
    row = table[table.claim.str.contains("almost perfectly")].iloc[0]
    assert row.verdict == claims.REPLICATED and "0.985" in row.ours
    assert (table[table.artifact == "Fig 3"].verdict == claims.NOT_RUN).all()


def test_gaussian_norm_quantiles_match_chi_distribution():
    d = 20
    q = gaussian_norm_quantiles(np.ones(d), q=(0.5, 0.99), draws=200_000, rng=np.random.default_rng(0))
    np.testing.assert_allclose(q, np.sqrt(chi2.ppf([0.5, 0.99], d)), rtol=0.01)


def test_residual_covariance_matches_direct_fit():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 6))
    Y = X @ rng.normal(size=(6, 6)) + rng.normal(size=(3000, 6)) * [1, 2, 3, 0.5, 0.1, 1]
    acc = LinearityAccumulator().update([torch.tensor(X[None]), torch.tensor(Y[None])])
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    R = Yc - Xc @ np.linalg.lstsq(Xc, Yc, rcond=None)[0]
    np.testing.assert_allclose(acc.residual_covariance()[0], R.T @ R / 3000, atol=1e-10)


def test_glued_text_is_unquoted_and_numbers_are_floats():
    glued = report.glue_numbers("t", {"x": np.float64(0.5), "verdict": "partly"})
    assert type(glued["t_x"]) is float and repr(glued["t_verdict"]) == "partly"


def test_figure_functions_draw_every_model():
    t = pd.concat([profile_table([0.99, 0.9, 0.95], [0.5, 0.3, 0.4], [0.3, 0.2, 0.5]),
                   profile_table([0.9] * 3, [-3.0, 0.2, 0.1], [1.3] * 3, kind="decoder, random init", model="r")])
    fig = plots.linearity_profiles(t)
    assert len(fig.axes[0].lines) >= 4
    assert fig.axes[1].get_ylim()[0] == pytest.approx(plots.Y_FLOOR)  # -3 is clipped, and said so
    assert any("clipped" in txt.get_text() for txt in fig.axes[1].texts)
    assert len(plots.block_norms(t).axes[0].lines) == 4
    rng = np.random.default_rng(0)
    sample = pd.DataFrame(dict(model="m", kind="decoder, trained", block=np.repeat([0, 1], 200),
                               position=np.tile(np.arange(100), 4), error=rng.lognormal(size=400)))
    sample["is_bos"] = sample.position == 0
    fig = plots.error_tails(sample)
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes[0].lines) == 4


def test_training_effect_sentence_follows_the_numbers():
    trained = profile_table([0.7] * 3, [0.3] * 3, [0.5] * 3)
    less = pd.concat([trained, profile_table([0.9] * 3, [0.4] * 3, [0.5] * 3, kind="decoder, random init", model="r")])
    more = pd.concat([trained, profile_table([0.5] * 3, [0.4] * 3, [0.5] * 3, kind="decoder, random init", model="r")])
    assert report.fig1_numbers(less)["training_effect"].startswith("less linear")
    assert report.fig1_numbers(more)["training_effect"].startswith("at least as linear")
    assert report.fig1_numbers(trained)["training_effect"].startswith("not measured")
