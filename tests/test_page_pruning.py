"""The pruning pages (Figs 6, 7 and 8): their configs, the committed cpu tables they read, their
claims' numbers, texts and verdicts, and the criteria's registry.

The claim tables are built by hand so that the answer is known by construction; boundaries are
hit exactly (dyadic numbers, so that e.g. a difference of exactly 2 standard errors is exactly 2.0
in floating point) and just beyond, and the expected numbers are computed independently of the
judges (``statistics`` / ``math``), never by calling them twice.
"""
from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pandas as pd
import pytest

from lin_utils import claims, pages, paths, plots, prune, results
from lin_utils.errors import LinUtilsError
from lin_utils.experiments.pruning import CRITERION, PruningConfig, criterion_key, study_key
from lin_utils.pages import _pruning

NOT_RUN = claims.NOT_RUN

PAGES = [n for n in pages.names() if isinstance(getattr(pages.get(n), "CONFIG", None), PruningConfig)]


def test_three_pruning_pages():
    assert len(PAGES) == 3 and all(n.startswith(("fig6_", "fig7_", "fig8_")) for n in PAGES)


# ---------------------------------------------------------------------------------------------
# configs and the committed cpu tables


@pytest.mark.parametrize("name", PAGES)
def test_the_cpu_profile_is_the_page_config(name):
    page = pages.get(name)
    assert pages.config(page, "cpu") == page.CONFIG


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu", "full"])
def test_fig8_reads_fig6_study_in_every_profile(profile):
    fig6, fig8 = (pages.config(n, profile) for n in PAGES if n.startswith(("fig6_", "fig8_")))
    assert fig6 == fig8


def _committed(model: str) -> dict:
    """The params of the committed cpu study of ``model`` (its shared per-block table's sidecar)."""
    folder = paths.REPO_ROOT / "data" / "results" / "cpu" / "pruning_study"
    metas = [json.loads(p.read_text()) for p in sorted(folder.glob("blocks-*.json"))]
    (meta,) = [m for m in metas if m["params"]["model"] == model]
    return meta["params"]


@pytest.mark.parametrize("name", PAGES)
def test_the_cache_key_is_the_committed_tables_key(name):
    """Today's key, field for field (the hash of the committed tables); the zoo's weight key is the
    zoo's, checked by the next test. Each criterion's rows are under the shared key and the criterion."""
    cfg = pages.config(name, "cpu")
    key, committed = study_key(cfg), _committed(cfg.model)
    assert set(key) == set(committed) and "criteria" not in key
    assert {k: v for k, v in key.items() if k != "weights"} == {k: v for k, v in committed.items() if k != "weights"}
    assert "threads" not in key and key["version"] == 1
    for c in cfg.criteria:
        assert criterion_key(cfg, c) == {**key, "criterion": c}
        side = paths.REPO_ROOT / "data" / "results" / "cpu" / CRITERION / f"results-{results.param_hash(criterion_key(cfg, c))}.json"
        assert side.is_file(), (c, side)


@pytest.mark.parametrize("name", PAGES)
def test_the_committed_tables_load_without_computing(name, monkeypatch):
    monkeypatch.delenv("LIN_RESULTS_DIR", raising=False)
    page = pages.get(name)
    cfg = pages.config(page, "cpu")
    committed = _committed(cfg.model)
    assert committed.get("weights") == cfg.key().get("weights"), "the committed study is of other weights: recompute it"
    assert results.param_hash(study_key(cfg)) == results.param_hash(committed)
    t = page.tables(cfg, profile="cpu", cache_only=True)
    assert t is not None and set(t) == {"results", "blocks", "distill", "sleb"}
    assert (t["results"].model == cfg.model).all()


def test_the_second_model_page_numbers_and_texts_from_its_committed_tables(monkeypatch):
    """The glue keys the prose places, and the k-by-k text, from the committed cpu study of Fig 7."""
    monkeypatch.delenv("LIN_RESULTS_DIR", raising=False)
    page = pages.get(PAGES[1])
    t = page.tables(page.CONFIG, profile="cpu", cache_only=True)
    values = _pruning.numbers(t["results"], t["distill"])
    assert list(values) == ["model", "n_blocks", "k_max", "calib_tokens", "ppl_tokens", "dense_wikitext",
                            "dense_tinystories", "n_models", "params_frac_remove", "speedup_remove", "speedup_linear",
                            "distill_steps", "distill_first", "distill_last", "verdict_ppl", "ours_ppl", "reason_ppl",
                            "effect_ppl", "se_ppl", "mde_ppl", "ppl_unit"]
    assert values["verdict_ppl"] == claims.REPLICATED and values["effect_ppl"] < -2 * values["se_ppl"]
    assert values["mde_ppl"] == pytest.approx(2.8 * values["se_ppl"])
    assert values["model"] == "stories260K" and values["k_max"] == 2 and values["distill_steps"] == 100
    text = _pruning.kbyk(t["results"])
    assert text.startswith("- **k = 1** (blocks ") and "(others: ShortGPT " in text and "random (mean over seeds)" in text
    s = _pruning.summary(t["results"])
    assert list(s.method) == ["paper: removed", "paper: linear", "paper: + distill", "shortgpt: removed",
                              "angular: removed", "sleb: removed", "last: removed", "random: removed",
                              "ReplaceMe span map"]
    assert set(_pruning.table(t["results"]).criterion) >= {"random 0", "random 1", "random 2", "linearity"}


def test_config_validates_each_field():
    base = dict(model="stories260K", k_max=2)
    assert PruningConfig(**base).criteria == ("linearity", "shortgpt", "angular", "sleb", "last", "random")
    cfg = PruningConfig(**base, criteria=["linearity"], random_seeds=[3])
    assert cfg.criteria == ("linearity",) and cfg.random_seeds == (3,)  # lists stored as tuples
    assert cfg.params()["criteria"] == ["linearity"]  # and given back as lists (the cache key's JSON)
    for bad, match in [(dict(k_max=0), "k_max"), (dict(k_max=True), "k_max"),
                       (dict(criteria=["bogus"]), "criteria must be some of linearity, linearity_rescored"),
                       (dict(criteria=[]), "criteria"), (dict(criteria="linearity"), "criteria"),
                       (dict(random_seeds=[]), "random_seeds: the random criterion needs at least one seed"),
                       (dict(linearity_metric="r2"), "linearity_metric"), (dict(calib_tokens=0), "calib_tokens"),
                       (dict(sleb_tokens=-1), "sleb_tokens"), (dict(distill_steps=-1), "distill_steps"),
                       (dict(arc_limit=-1), "arc_limit"), (dict(ridge=-0.1), "ridge"), (dict(exclude_bos=1), "exclude_bos"),
                       (dict(threads=0), "threads"), (dict(model=""), "model")]:
        with pytest.raises(LinUtilsError, match=match):
            PruningConfig(**{**base, **bad})
    assert PruningConfig(**base, random_seeds=[], criteria=["linearity"]).random_seeds == ()
    assert PruningConfig(**base, arc_limit=None).arc_limit is None and PruningConfig(**base, threads=None).threads is None
    with pytest.raises(LinUtilsError, match="unknown parameter.*k_maxx"):
        PruningConfig.from_params({**base, "k_maxx": 3})


def test_pruning_study_takes_a_config():
    from lin_utils.experiments import pruning_study

    with pytest.raises(LinUtilsError, match="PruningConfig"):
        pruning_study({"model": "stories260K", "k_max": 2}, profile="cpu", cache_only=True)


# ---------------------------------------------------------------------------------------------
# the criteria's registry


def test_the_registry_holds_every_criterion_once_with_its_figure_and_prose_names():
    assert list(prune.CRITERIA) == ["linearity", "linearity_rescored", "shortgpt", "angular", "sleb", "last", "random"]
    for name, c in prune.CRITERIA.items():
        assert c.name == name and c.label and c.prose and callable(c.rank)
    assert prune.CRITERIA["linearity"].prose == "the paper's (most linear first)"
    assert [n for n, c in prune.CRITERIA.items() if c.seeded] == ["random"]
    assert [n for n, c in prune.CRITERIA.items() if c.spans] == ["angular"]
    colours = [c.colour for c in prune.CRITERIA.values()]
    assert len(set(colours)) == len(colours)
    from matplotlib.colors import to_hex
    palette = [to_hex(c) for c in plots.PALETTE]
    assert all(c in palette for c in colours) and to_hex(plots.GREY) not in colours
    with pytest.raises(LinUtilsError, match="unknown criterion 'bogus'; expected one of linearity"):
        prune.criterion("bogus")


# ---------------------------------------------------------------------------------------------
# the Figs 6-7 claim reads every pruning page's study


def _claim(artifact: str):
    """The pruning pages' claim ``artifact``, bound to its page by :func:`lin_utils.pages.all_claims`."""
    (claim,) = [c for c in pages.all_claims() if c.artifact == artifact]
    return claim


def test_the_perplexity_claim_reads_every_pruning_study_in_page_order(monkeypatch):
    claim = _claim("Figs 6-7")
    assert claim.page == PAGES[0] and claim.order == 110
    seen = []

    def fake(cfg, *, profile, cache_only=False, **_):
        seen.append(cfg.model)
        return {"results": pd.DataFrame({"model": [cfg.model]})}

    monkeypatch.setattr(_pruning, "tables", fake)
    t = claim.tables("cpu")
    assert seen == ["zoo:cpu-large-baseline", "stories260K"]  # Fig 6's study, then Fig 7's (Fig 8's is Fig 6's)
    assert list(t.model) == seen
    monkeypatch.setattr(_pruning, "tables", lambda cfg, **kw: None if cfg.model == "stories260K" else fake(cfg, **kw))
    assert claim.tables("cpu") is None  # one missing study: not run


def test_the_arc_claim_is_judged_from_its_page_results():
    claim = _claim("Fig 8")
    assert claim.page == PAGES[2] and claim.order == 120 and claim.load is None
    t = _pruning_table({("m", 1): {"remove": (100, 10, 0.4, 0.02), "distill": (90, 9, 0.5, 0.02)}})
    assert claim.judge({"results": t}) == _pruning.judge_arc(t)


# ---------------------------------------------------------------------------------------------
# Figs 6-8: pruning

_PRUNE_COLS = ["model", "method", "criterion", "seed", "k", "blocks", "ppl_wikitext", "ppl_tinystories", "arc_acc",
               "arc_acc_se", "arc_chance", "arc_n"]


def _pruning_table(spec, dense=(0.5, 0.02, 0.25), noise=True, dense_methods=("remove", "linear", "distill")):
    """spec: {(model, k): {method: (ppl_wikitext, ppl_tinystories, arc_acc, arc_acc_se)}} for the
    paper's criterion; adds the dense rows (k = 0, one per method in ``dense_methods``; dense =
    (arc_acc, arc_acc_se, arc_chance) per model) and rows of other criteria that must be ignored
    (absurd values)."""
    rows = []
    models = list(dict.fromkeys(m for m, _ in spec))
    dense = dense if isinstance(dense, dict) else {m: dense for m in models}
    for m in models:
        acc, se, chance = dense[m]
        for method in dense_methods:
            rows.append((m, method, "linearity", -1, 0, "", 50.0, 5.0, acc, se, chance, 200))
    for (m, k), methods in spec.items():
        blocks = ",".join(str(b) for b in range(k, 0, -1))
        for method, (wiki, tiny, acc, se) in methods.items():
            rows.append((m, method, "linearity", -1, k, blocks, wiki, tiny, acc, se, dense[m][2], 200))
            if noise:
                for crit, seed in (("random", 0), ("shortgpt", -1)):
                    rows.append((m, method, crit, seed, k, "9", 1.0 if method != "remove" else 1e6, 1e6, 0.99, 0.001,
                                 dense[m][2], 200))
    return pd.DataFrame(rows, columns=_PRUNE_COLS)


def test_paper_rows_are_the_linearity_criterion_under_one_method():
    t = _pruning_table({("m", 1): {"remove": (100, 10, 0.4, 0.02), "distill": (60, 8, 0.45, 0.02)},
                  ("m", 2): {"remove": (200, 20, 0.3, 0.02), "distill": (90, 9, 0.35, 0.02)}})
    p = _pruning._paper_rows(t, "distill")
    assert p.index.names == ["model", "k"] and list(p.index) == [("m", 0), ("m", 1), ("m", 2)]
    assert (p.method == "distill").all() and (p.criterion == "linearity").all()
    assert list(p.ppl_wikitext) == [50.0, 60.0, 90.0]


# m1 k=1: ratios distilled / removed 0.5 and 2; k=2: 0.5 and 0.25; m2 k=1: 4 and 1 (a tie); m2 k=2 has no
# distilled model (its linear map would win); m2 k=3 has no linear map either
_PPL = {("m1", 1): {"remove": (100, 10, 0.4, 0.02), "linear": (150, 20, 0.3, 0.02), "distill": (50, 20, 0.45, 0.02)},
        ("m1", 2): {"remove": (200, 40, 0.3, 0.02), "linear": (100, 40, 0.3, 0.02), "distill": (100, 10, 0.35, 0.02)},
        ("m2", 1): {"remove": (300, 30, 0.4, 0.02), "linear": (200, 35, 0.3, 0.02), "distill": (1200, 30, 0.35, 0.02)},
        ("m2", 2): {"remove": (400, 40, 0.4, 0.02), "linear": (390, 30, 0.3, 0.02)},
        ("m2", 3): {"remove": (500, 50, 0.4, 0.02), "distill": (1, 1, 0.35, 0.02)}}


def test_pruning_comparisons_every_model_k_and_corpus():
    c = _pruning.ppl_comparisons(_pruning_table(_PPL))
    rows = []
    for (m, k), methods in _PPL.items():
        if "linear" not in methods:
            continue
        for i, corpus in enumerate(("wikitext", "tinystories")):
            rows.append(dict(model=m, k=k, corpus=corpus, blocks=",".join(str(b) for b in range(k, 0, -1)),
                             remove=float(methods["remove"][i]), linear=float(methods["linear"][i]),
                             distill=float(methods["distill"][i]) if "distill" in methods else np.nan))
    expected = pd.DataFrame(rows, columns=["model", "k", "corpus", "blocks", "remove", "linear", "distill"])
    assert len(expected) == 8
    pd.testing.assert_frame_equal(c, expected)


def test_pruning_comparisons_empty_without_a_removed_block():
    t = _pruning_table({("m", 1): {"remove": (100, 10, 0.4, 0.02)}})
    c = _pruning.ppl_comparisons(t)
    assert c.empty and list(c.columns) == ["model", "k", "corpus", "blocks", "remove", "linear", "distill"]
    a = _pruning.arc_comparisons(t)
    assert a.empty and list(a.columns) == ["model", "k", "remove", "distill", "diff", "se", "chance"]


def _log_ratios(spec):
    """ln(distilled / removed) of every (model, k, corpus) case of ``spec`` with a distilled and a linear model."""
    return [math.log(m["distill"][i] / m["remove"][i]) for m in spec.values() if "distill" in m and "linear" in m
            for i in (0, 1)]


def test_pruning_perplexity_text_and_evidence():
    j = _pruning.judge_ppl(_pruning_table(_PPL))
    r = _log_ratios(_PPL)
    assert [round(math.exp(x), 6) for x in r] == [0.5, 2, 0.5, 0.25, 4, 1]
    mean, se = statistics.mean(r), statistics.stdev(r) / math.sqrt(len(r))
    assert j.evidence.effect == pytest.approx(mean) and j.evidence.se == pytest.approx(se) and j.evidence.n == 6
    assert j.ours == (f"ln(distilled / removed) {mean:+.3f} ± {se:.3f} over 6 (model, k, corpus) cases (perplexity "
                      f"ratio {math.exp(mean):.2f}, geometric mean); linear + distillation below removal in 3 of 6, "
                      "linear maps alone in 2 of 6")
    assert j.verdict == claims.INCONCLUSIVE and "within 2 standard errors" in j.reason


def _ppl_spec(ratios):
    """k = 1.. with the given wikitext and tinystories ratios distilled / removed."""
    return {("m", k): {"remove": (100.0, 10.0, 0.4, 0.02), "linear": (1e4, 1e4, 0.4, 0.02),
                       "distill": (100.0 * a, 10.0 * b, 0.4, 0.02)} for k, (a, b) in enumerate(ratios, start=1)}


# log ratios ±0.1 around their mean: sample std 0.1 · sqrt(4/3) over 4 cases, so 2 se is B = 0.1 · sqrt(4/3)
B = 0.1 * math.sqrt(4 / 3)


def _ratios(mean):
    logs = [mean - 0.1, mean + 0.1, mean - 0.1, mean + 0.1]
    return [(math.exp(logs[0]), math.exp(logs[1])), (math.exp(logs[2]), math.exp(logs[3]))]


@pytest.mark.parametrize("mean, verdict, reason", [
    (-0.5, claims.REPLICATED, "standard errors in the paper's direction"),
    (-B - 1e-6, claims.REPLICATED, "2.0 standard errors"),      # just beyond 2 se (the paper's direction: down)
    (-B + 1e-6, claims.INCONCLUSIVE, "within 2 standard errors"),
    (0.0, claims.INCONCLUSIVE, "within 2"),
    (B - 1e-6, claims.INCONCLUSIVE, "within 2"),
    (B + 1e-6, claims.CONTRADICTED, "against the paper's direction"),  # distillation hurts more, beyond 2 se
])
def test_pruning_perplexity_verdict_classes_and_boundaries(mean, verdict, reason):
    spec = _ppl_spec(_ratios(mean))
    j = _pruning.judge_ppl(_pruning_table(spec))
    assert j.evidence.effect == pytest.approx(mean, abs=1e-9)
    assert j.evidence.se == pytest.approx(B / 2, rel=1e-6)  # sample std of ±0.1 over 4 cases / sqrt 4
    assert j.verdict == verdict and reason in j.reason


def test_pruning_perplexity_two_cases_are_too_few():
    j = _pruning.judge_ppl(_pruning_table(_ppl_spec([(0.5, 0.25)])))
    assert j.evidence.n == 2 and j.verdict == claims.INCONCLUSIVE and "fewer than 3" in j.reason


def test_pruning_perplexity_case_without_a_linear_map_result_still_counts():
    spec = {("m", 1): {"remove": (100, 10, 0.4, 0.02), "linear": (np.nan, 5, 0.4, 0.02), "distill": (90, 9, 0.4, 0.02)}}
    j = _pruning.judge_ppl(_pruning_table(spec))
    assert j.ours.endswith("linear + distillation below removal in 2 of 2, linear maps alone in 1 of 2")


def test_pruning_perplexity_without_distillation_is_not_run():
    t = _pruning_table({("m", 1): {"remove": (100, 10, 0.4, 0.02), "linear": (90, 9, 0.4, 0.02)}})
    j = _pruning.judge_ppl(t)
    assert (j.ours, j.verdict) == ("no distilled model in the table", NOT_RUN)


def test_the_pruning_claims_are_declared_tests():
    assert _claim("Figs 6-7").test is _pruning.PPL_TEST and _pruning.PPL_TEST.direction == -1
    assert _claim("Fig 8").test is _pruning.ARC_TEST and _pruning.ARC_TEST.direction == +1
    for c in (_claim("Figs 6-7"), _claim("Fig 8")):
        assert c.rule == "" and c.rule_text == c.test.rule() and c.test.paper_effect is None


# ARC-Easy: with standard errors 3/128 and 4/128 the joint one is exactly 5/128
ARC_SE = 5 / 128
ARC_DIFF = {"better": 2 * ARC_SE + 1 / 1024, "better_at": 2 * ARC_SE, "same": 0.0, "worse_at": -2 * ARC_SE,
            "worse": -2 * ARC_SE - 1 / 1024}


def _arc_for(kinds, dense=(0.5, 0.02, 0.25)):
    spec = {("m", k): {"remove": (100, 10, 0.5, 3 / 128), "distill": (90, 9, 0.5 + ARC_DIFF[kind], 4 / 128)}
            for k, kind in enumerate(kinds, start=1)}
    return _pruning_table(spec, dense=dense)


def test_pruning_arc_comparisons_rows():
    spec = {("m", 1): {"remove": (1, 1, 0.27, 0.02), "distill": (1, 1, 0.4, 0.03)},
            ("m", 2): {"remove": (1, 1, 0.26, 0.01), "linear": (1, 1, 0.9, 0.01), "distill": (1, 1, 0.25, 0.015)},
            ("m", 3): {"remove": (1, 1, np.nan, np.nan), "distill": (1, 1, 0.25, 0.01)},  # no ARC run: skipped
            ("m", 4): {"remove": (1, 1, 0.35, 0.005)}}  # no distilled model: skipped
    t = _pruning_table(spec, dense=(0.5, 0.02, 0.25))
    t.loc[t.method == "distill", "arc_chance"] = 0.3  # the chance column is the removal row's
    c = _pruning.arc_comparisons(t)
    expected = pd.DataFrame([dict(model="m", k=1, remove=0.27, distill=0.4, diff=0.4 - 0.27,
                                  se=math.sqrt(0.02**2 + 0.03**2), chance=0.25),
                             dict(model="m", k=2, remove=0.26, distill=0.25, diff=0.25 - 0.26,
                                  se=math.sqrt(0.01**2 + 0.015**2), chance=0.25)],
                            columns=["model", "k", "remove", "distill", "diff", "se", "chance"])
    pd.testing.assert_frame_equal(c, expected, rtol=1e-12)


def test_pruning_arc_text_and_evidence():
    spec = {("m", 1): {"remove": (1, 1, 0.27, 0.02), "distill": (1, 1, 0.4, 0.03)},    # better
            ("m", 2): {"remove": (1, 1, 0.26, 0.01), "distill": (1, 1, 0.24, 0.01)},   # neither
            ("m", 3): {"remove": (1, 1, 0.3, 0.05), "distill": (1, 1, 0.2, 0.04)},     # neither
            ("m", 4): {"remove": (1, 1, 0.35, 0.005), "distill": (1, 1, 0.3, 0.005)},  # worse
            ("m", 5): {"remove": (1, 1, 0.35, 0.005)}}
    j = _pruning.judge_arc(_pruning_table(spec, dense=(0.5, 0.02, 0.25)))
    diffs = [0.13, -0.02, -0.1, -0.05]
    ses = [math.hypot(0.02, 0.03), math.hypot(0.01, 0.01), math.hypot(0.05, 0.04), math.hypot(0.005, 0.005)]
    mean, se = statistics.mean(diffs), math.sqrt(sum(x * x for x in ses)) / 4
    assert j.evidence.effect == pytest.approx(mean) and j.evidence.se == pytest.approx(se)
    assert j.evidence.n == 200 and not j.evidence.at_chance
    assert j.ours == (f"accuracy difference distilled − removed {mean:+.3f} ± {se:.3f} on average over k = 1..4 (per k "
                      "-0.100 to +0.130); more than 2 SE better at 1 of 4 k, worse at 1")
    assert j.verdict == claims.INCONCLUSIVE


@pytest.mark.parametrize("kinds, verdict, reason", [
    (["better"] * 4, claims.REPLICATED, "paper's direction"),
    (["better_at"] * 4, claims.REPLICATED, "paper's direction"),     # each k at 2 se: the mean over 4 k is at 4 se
    (["same"] * 4, claims.INCONCLUSIVE, "within 2"),
    (["worse"] * 4, claims.CONTRADICTED, "against the paper's direction"),
    (["better", "worse", "same", "same"], claims.INCONCLUSIVE, "within 2"),
])
def test_pruning_arc_verdict_classes(kinds, verdict, reason):
    t = _arc_for(kinds)
    c = _pruning.arc_comparisons(t)
    assert (c.se == ARC_SE).all()
    assert list(c["diff"]) == pytest.approx([ARC_DIFF[k] for k in kinds], abs=1e-15)
    j = _pruning.judge_arc(t)
    assert j.evidence.se == pytest.approx(ARC_SE / 2)  # sqrt(4 se²) / 4
    assert j.verdict == verdict and reason in j.reason
    assert not j.ours.startswith("the dense model")


def test_pruning_arc_boundary_of_the_mean_over_k():
    # one k: the mean's se is the k's; 2 se + a bit is replicated, exactly 2 se is not
    assert _pruning.judge_arc(_arc_for(["better"])).verdict == claims.REPLICATED
    assert _pruning.judge_arc(_arc_for(["better_at"])).verdict == claims.INCONCLUSIVE
    assert _pruning.judge_arc(_arc_for(["worse"])).verdict == claims.CONTRADICTED
    assert _pruning.judge_arc(_arc_for(["worse_at"])).verdict == claims.INCONCLUSIVE


@pytest.mark.parametrize("dense, named", [
    ({"m1": (0.5, 0.02, 0.25), "m2": (0.5, 0.02, 0.25)}, []),
    ({"m1": (0.25 + 2 * ARC_SE, ARC_SE, 0.25), "m2": (0.5, 0.02, 0.25)}, []),            # exactly 2 SE above chance
    ({"m1": (0.25 + 2 * ARC_SE - 1 / 1024, ARC_SE, 0.25), "m2": (0.5, 0.02, 0.25)}, ["m1"]),  # just within
    ({"m1": (0.5, 0.02, 0.25), "m2": (0.25 - 2 * ARC_SE + 1 / 1024, ARC_SE, 0.25)}, ["m2"]),  # just within, below
    ({"m1": (0.5, 0.02, 0.25), "m2": (0.2, 0.02, 0.25)}, []),                  # beyond 2 SE below chance: not within
    ({"m1": (0.26, 0.02, 0.25), "m2": (0.25, 0.02, 0.25)}, ["m1", "m2"]),
])
@pytest.mark.parametrize("dense_last", [False, True])
def test_pruning_arc_dense_model_at_chance_is_inconclusive(dense, named, dense_last):
    spec = {(m, k): {"remove": (1, 1, 0.5, 3 / 128), "distill": (1, 1, 0.5 + ARC_DIFF["better"], 4 / 128)}
            for m in ("m1", "m2") for k in (1, 2)}
    t = _pruning_table(spec, dense=dense)
    if dense_last:  # one dense row per model, after the pruned ones
        t = _pruning_table(spec, dense=dense, dense_methods=("remove",)).iloc[::-1].reset_index(drop=True)
    j = _pruning.judge_arc(t)
    assert _pruning.dense_at_chance(t) == named
    assert j.evidence.at_chance is bool(named)
    assert j.ours.endswith("more than 2 SE better at 4 of 4 k, worse at 0")
    if named:
        assert j.ours.startswith(f"the dense model ({', '.join(named)}) answers ")
        assert "so ARC-Easy cannot separate the methods here" in j.ours
        assert (j.verdict, j.reason) == (claims.INCONCLUSIVE, "the dense model is within 2 standard errors of chance")
    else:
        assert j.verdict == claims.REPLICATED  # 4 k each beyond 2 se


def test_pruning_arc_without_arc_results_is_not_run():
    t = _pruning_table({("m", 1): {"remove": (100, 10, np.nan, np.nan), "distill": (90, 9, np.nan, np.nan)}},
                 dense=(np.nan, np.nan, np.nan))
    assert _pruning.arc_comparisons(t).empty
    j = _pruning.judge_arc(t)
    assert (j.ours, j.verdict) == ("no ARC-Easy result for a distilled model in the table", NOT_RUN)
    t = _pruning_table({("m", 1): {"remove": (100, 10, 0.4, 0.02), "linear": (90, 9, 0.45, 0.02)}})
    assert _pruning.judge_arc(t).verdict == NOT_RUN


def test_the_committed_fig8_verdict_is_inconclusive_at_chance():
    cfg = pages.config(PAGES[2], "cpu")
    t = _pruning.tables(cfg, profile="cpu", cache_only=True)["results"]
    j = _pruning.judge_arc(t)
    assert (j.verdict, j.reason) == (claims.INCONCLUSIVE, "the dense model is within 2 standard errors of chance")


def test_every_pruning_page_says_how_it_differs_from_the_paper():
    for name in PAGES:
        cfg = pages.config(name, "cpu")
        t = _pruning.tables(cfg, profile="cpu", cache_only=True)["results"]
        text = _pruning.differences(cfg, t)
        assert text.startswith("**How this differs from the paper.**") and "The paper: OPT-1.3B" in text
        assert f"{cfg.calib_tokens:,} tinystories train tokens" in text
        nb = json.loads((paths.notebooks_dir() / f"{name}.ipynb").read_text())
        md = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        assert md.index("{glue:md} differences") < md.index("## Reproduce this page")


def test_a_pruning_page_refuses_a_figure_it_does_not_draw():
    from lin_utils.pages import _pruning

    with pytest.raises(LinUtilsError, match="figure must be one of perplexity, arc, got 'arcc'"):
        _pruning.show("fig8_pruning_arc_easy", pages.config("fig8_pruning_arc_easy", "cpu"), profile="cpu", figure="arcc")
