"""Verdict rules on synthetic tables, and the claims table judged from exactly the profile's tables."""


from lin_utils import claims, pages
from lin_utils.pages import fig1_linearity_profiles as fig1


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
    assert t.notebook.tolist() == [c.page for c in pages.all_claims()]
    assert (t.rule.str.len() > 40).all()  # every rule is stated (generated from the claim's test when it has one)
    assert set(t.verdict) <= {claims.REPLICATED, claims.PARTLY, claims.CONTRADICTED, claims.INCONCLUSIVE, claims.NOT_RUN}
    assert (t.reason.str.len() > 0).all()  # every verdict says why
    assert t[t.verdict == claims.NOT_RUN].artifact.tolist() == ["Table 3"]
    assert t.set_index("artifact").loc["Table 3", "ours"].startswith("no judge configured, so no verdict")
    assert (t.ours != "—").all()
