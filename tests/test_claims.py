"""Verdict rules on synthetic tables, and the claims table judged from exactly the profile's tables."""
import pandas as pd
import pytest

from tables import profile_table

from lin_utils import claims, pages
from lin_utils.pages import fig1_linearity_profiles as fig1
from lin_utils.pages import fig3_block_norms as fig3


@pytest.mark.parametrize("score, verdict", [
    ([0.99, 0.97, 0.995], claims.REPLICATED),
    ([0.99, 0.85, 0.95], claims.PARTLY),
    ([0.75, 0.8, 0.7], claims.NOT_REPLICATED),
])
def test_fig1_score_verdicts(score, verdict):
    assert fig1.judge_score(profile_table(score, [0.5] * 3, [0.2] * 3))[1] == verdict


def test_only_trained_decoders_are_judged():
    t = pd.concat([profile_table([0.99] * 3, [0.4] * 3, [0.2] * 3),
                   profile_table([0.1] * 3, [0.1] * 3, [5.0] * 3, trained=False, model="r"),
                   profile_table([0.1] * 3, [0.1] * 3, [5.0] * 3, arch="encoder", model="e")])
    assert fig1.judge_score(t)[1] == claims.REPLICATED
    assert fig3.judge_norms(t)[1] == claims.REPLICATED
    n = fig1.scores(t)
    assert n["score_mean"] == pytest.approx(0.99) and n["random_score_mean"] == pytest.approx(0.1)
    assert n["drop"] == pytest.approx(0.59)


def test_norm_verdicts():
    assert fig3.judge_norms(profile_table([0.9] * 3, [0.5] * 3, [0.5, 0.8, 1.2]))[1] == claims.PARTLY
    assert fig3.judge_norms(profile_table([0.9] * 3, [0.5] * 3, [1.5, 0.8, 1.2]))[1] == claims.NOT_REPLICATED


def test_claims_judge_exactly_the_tables_the_profile_selects(tmp_path, monkeypatch):
    from lin_utils import experiments

    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path))
    assert (claims.claims_table("smoke").verdict == claims.NOT_RUN).all()
    # A stray table computed with other parameters sits in the same folder; it is never judged.
    experiments.linearity_profiles(["stories260K"], {"max_tokens": 1400, "seq_len": 128, "batch_size": 4},
                                   profile="smoke", progress=False)
    assert (claims.claims_table("smoke").verdict == claims.NOT_RUN).all()
    cfg = pages.config(fig1, "smoke")
    table = fig1.tables(cfg, profile="smoke")
    t = claims.claims_table("smoke")
    rows = t[t.notebook == "fig1_linearity_profiles"]
    assert len(rows) == 2 and (rows.verdict != claims.NOT_RUN).all()
    assert f"{fig1.scores(table)['score_mean']:.3f}" in rows.iloc[0].ours
    assert (t[t.notebook == "fig9_error_distribution"].verdict == claims.NOT_RUN).all()


def test_the_committed_cpu_results_give_every_claim_its_table(monkeypatch):
    """Each claim's loader selects its committed cpu table: only Table 3 (no judge) has no verdict."""
    from pathlib import Path

    monkeypatch.setenv("LIN_RESULTS_DIR", str(Path(__file__).resolve().parents[1] / "data" / "results"))
    t = claims.claims_table("cpu")
    assert list(t.columns) == claims.COLUMNS
    assert t.artifact.tolist() == [c.artifact for c in pages.all_claims()]
    assert t.rule.tolist() == [c.rule_text for c in pages.all_claims()]
    assert t.notebook.tolist() == [c.page for c in pages.all_claims()]
    assert t[t.verdict == claims.NOT_RUN].artifact.tolist() == ["Table 3"]
    assert t.set_index("artifact").loc["Table 3", "ours"].startswith("no judge configured, so no verdict")
    assert (t.ours != "—").all()
