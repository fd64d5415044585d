"""lin_utils.prune: criteria against direct float64 computations, surgery that keeps a working model,
closed-form linear replacement, ridge, distillation; and the pruning study end to end on a tiny budget.

Real tiny models (random-init tiny configs and stories260K), no mocks.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from lin_utils import prune
from lin_utils.arch import decoder_blocks, from_config, tiny_config
from lin_utils.errors import LinUtilsError
from lin_utils.extract import capture
from lin_utils.linearity import LinearityWarning, LinearMap

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinearityWarning)
        yield


def _model(family="llama", layers=4, seed=0):
    return from_config(tiny_config(family, num_hidden_layers=layers), seed=seed)


def _batches(n=8, rows=2, T=32, seed=0, pad=False):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(3, 500, (rows, T), generator=g)
        mask = torch.ones_like(ids)
        if pad:
            mask[0, T - 5:] = 0
        out.append((ids, mask))
    return out


def _states(model, batches):
    """Every boundary's (B, T, d) float64 states per batch, captured directly."""
    L = len(decoder_blocks(model))
    out = []
    with torch.no_grad(), capture(model, list(range(L + 1)), stop_early=True) as cap:
        for ids, mask in batches:
            out.append(({b: v.double() for b, v in cap.trunk(ids, mask).items()}, mask.bool()))
    return out


# ---------------------------------------------------------------------------------------------
# criteria


def test_shortgpt_block_influence_matches_direct_cosines():
    model, batches = _model(), _batches(pad=True)
    stats = prune.calibrate(model, batches, progress=False)
    L = 4
    cos_sum, n = np.zeros(L), 0
    for st, m in _states(model, batches):
        for i in range(L):
            cos_sum[i] += float(torch.nn.functional.cosine_similarity(st[i], st[i + 1], dim=-1)[m].sum())
        n += int(m.sum())
    bi = 1 - cos_sum / n
    assert stats.n_tokens == n
    np.testing.assert_allclose(stats.block_influence(), bi, rtol=1e-10, atol=1e-12)
    assert prune.shortgpt_order(stats) == [int(i) for i in np.argsort(bi, kind="stable")]


def test_angular_distance_closed_form_on_last_token():
    model, batches = _model(), _batches(pad=True)
    stats = prune.calibrate(model, batches, max_span=3, progress=False)
    L, span = 4, 2
    dist, rows = np.zeros(L - span + 1), 0
    for st, m in _states(model, batches):
        for r in range(m.shape[0]):
            last = int(torch.nonzero(m[r])[-1])
            for a in range(L - span + 1):
                x, y = st[a][r, last], st[a + span][r, last]
                dist[a] += math.acos(float(x @ y / (x.norm() * y.norm()))) / math.pi
            rows += 1
    np.testing.assert_allclose(stats.angular_distance(span), dist / rows, rtol=1e-9)
    best = int(np.argmin(dist))
    assert prune.angular_spans(stats, [0, span]) == {0: (), span: tuple(range(best, best + span))}


def test_linearity_order_is_most_linear_first_and_sets_are_nested():
    model, batches = _model(), _batches()
    stats = prune.calibrate(model, batches, progress=False)
    scores = stats.linearity().set_index("block").score
    order = prune.linearity_order(stats)
    assert [scores[b] for b in order] == sorted(scores, reverse=True)
    sets = prune.removal_sets(order, [0, 1, 2, 3])
    assert sets[0] == () and all(set(sets[k - 1]) < set(sets[k]) for k in (1, 2, 3))
    with pytest.raises(LinUtilsError, match="metric"):
        prune.linearity_order(stats, "nonsense")


def test_baseline_orders():
    assert prune.last_order(4) == [3, 2, 1, 0]
    a, b = prune.random_order(6, 0), prune.random_order(6, 1)
    assert sorted(a) == list(range(6)) and a == prune.random_order(6, 0) and a != b
    with pytest.raises(LinUtilsError, match="k must be"):
        prune.removal_sets([0, 1], [3])


def test_sleb_first_step_is_the_cheapest_single_removal():
    model, batches = _model(), _batches(n=2)
    order, trials = prune.sleb_order(model, batches, 2, progress=False)
    single = []
    for b in range(4):
        with prune.pruned(model, remove=[b]):
            single.append(prune.calibration_nll(model, batches))
    assert order[0] == int(np.argmin(single))
    first = trials[trials.step == 0].set_index("block").nll
    np.testing.assert_allclose(first.sort_index().to_numpy(), single, rtol=1e-12)
    assert len(trials) == 4 + 3 and trials.chosen.sum() == 2 and len(set(order)) == 2


def test_rescored_linearity_removes_distinct_blocks():
    model, batches = _model(), _batches(n=4)
    order = prune.linearity_order_rescored(model, batches, 2, progress=False)
    assert len(order) == 2 and len(set(order)) == 2
    assert order[0] == prune.linearity_order(prune.calibrate(model, batches, progress=False))[0]


# ---------------------------------------------------------------------------------------------
# surgery


@pytest.mark.parametrize("family", ["llama", "gpt2", "opt"])
def test_removal_keeps_a_working_model(family, tmp_path):
    model = _model(family)
    ids = torch.randint(3, 500, (2, 12))
    small = prune.remove_blocks(model, [1, 2])
    assert type(small) is type(model)
    assert small.config.num_hidden_layers == 2 and len(decoder_blocks(small)) == 2
    assert len(decoder_blocks(model)) == 4 and model.config.num_hidden_layers == 4  # the original is untouched
    # the same function as running the kept blocks of the original
    with prune.pruned(model, remove=[1, 2]):
        ref = model(ids).logits
    torch.testing.assert_close(small(ids).logits, ref)
    # generation with a KV cache matches generation without one
    a = small.generate(ids[:1, :5], max_new_tokens=6, do_sample=False)
    b = small.generate(ids[:1, :5], max_new_tokens=6, do_sample=False, use_cache=False)
    assert a.shape == (1, 11) and torch.equal(a, b)
    small.save_pretrained(tmp_path)
    back = type(small).from_pretrained(tmp_path)
    assert back.config.num_hidden_layers == 2
    torch.testing.assert_close(back(ids).logits, small(ids).logits)


def test_pruned_context_restores_the_model():
    model = _model()
    ids = torch.randint(3, 500, (1, 10))
    before = model(ids).logits
    maps = prune.calibrate(model, _batches(), progress=False).block_maps()
    with prune.pruned(model, linear={0: maps[0]}, remove=[3]):
        assert len(decoder_blocks(model)) == 3 and isinstance(decoder_blocks(model)[0], prune.LinearBlock)
    assert len(decoder_blocks(model)) == 4 and model.config.num_hidden_layers == 4
    assert [blk.self_attn.layer_idx for blk in decoder_blocks(model)] == [0, 1, 2, 3]
    torch.testing.assert_close(model(ids).logits, before)


def test_surgery_errors_name_the_argument():
    model = _model()
    with pytest.raises(LinUtilsError, match="remove"):
        prune.remove_blocks(model, [0, 1, 2, 3])
    with pytest.raises(LinUtilsError, match="remove: block index 7"):
        prune.remove_blocks(model, [7])
    with pytest.raises(LinUtilsError, match="span"):
        prune.replace_span(model, 2, 1, None)


def _exact_linear(model, block: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Put an exactly affine block (A near identity, bias b) at ``block``; return (A, b)."""
    d = model.config.hidden_size
    g = torch.Generator().manual_seed(seed)
    A = torch.eye(d, dtype=torch.float64) + 0.1 * torch.randn(d, d, generator=g, dtype=torch.float64)
    bias = 0.05 * torch.randn(d, generator=g, dtype=torch.float64)
    m = LinearMap(A=A.numpy(), mu_x=np.zeros(d), mu_y=bias.numpy(), rms_y=1.0)
    decoder_blocks(model)[block] = prune.LinearBlock.from_map(m, (block, block + 1))
    return A.numpy(), bias.numpy()


def test_linear_replacement_recovers_an_exact_linear_block():
    model = _model()
    A, bias = _exact_linear(model, 1)
    batches = _batches(n=8)
    stats = prune.calibrate(model, batches, progress=False)
    m = stats.block_maps()[1]
    fitted_bias = m.mu_y - m.mu_x @ m.A
    np.testing.assert_allclose(m.A, A, atol=2e-4)
    np.testing.assert_allclose(fitted_bias, bias, atol=2e-4)
    ids = batches[0][0]
    with torch.no_grad():
        ref = model(ids).logits
        replaced = prune.replace_with_linear(model, {1: m})
        torch.testing.assert_close(replaced(ids).logits, ref, atol=1e-4, rtol=1e-4)


def test_span_map_of_two_exact_linear_blocks_is_their_composition():
    model = _model()
    A1, b1 = _exact_linear(model, 1, seed=1)
    A2, b2 = _exact_linear(model, 2, seed=2)
    batches = _batches(n=8)
    maps = prune.fit_span_maps(model, batches, [(1, 3)])
    m = maps[(1, 3)]
    np.testing.assert_allclose(m.A, A1 @ A2, atol=5e-4)
    np.testing.assert_allclose(m.mu_y - m.mu_x @ m.A, b1 @ A2 + b2, atol=5e-4)
    with torch.no_grad():
        ref = model(batches[0][0]).logits
        with prune.pruned(model, span=(1, 3, m)):
            assert len(decoder_blocks(model)) == 3
            torch.testing.assert_close(model(batches[0][0]).logits, ref, atol=1e-4, rtol=1e-4)


def test_ridge_to_zero_is_the_plain_fit_and_large_ridge_shrinks():
    stats = prune.calibrate(_model(), _batches(n=8), progress=False)
    plain, tiny, big = stats.block_maps(), stats.block_maps(ridge=1e-12), stats.block_maps(ridge=10.0)
    for i in plain:
        np.testing.assert_allclose(tiny[i].A, plain[i].A, rtol=1e-6, atol=1e-8)
        assert np.linalg.norm(big[i].A) < 0.5 * np.linalg.norm(plain[i].A)
    with pytest.raises(ValueError, match="ridge"):
        stats.block_maps(ridge=-1.0)


# ---------------------------------------------------------------------------------------------
# distillation


def test_distillation_lowers_the_layerwise_mse():
    teacher = _model(seed=3)
    batches = _batches(n=4, seed=5)
    maps = prune.calibrate(teacher, batches, progress=False).block_maps()
    # a deliberately poor start: the fitted maps scaled down, so there is something to learn
    poor = {i: LinearMap(A=0.5 * maps[i].A, mu_x=maps[i].mu_x, mu_y=maps[i].mu_y, rms_y=maps[i].rms_y) for i in (1, 2)}
    student = prune.replace_with_linear(teacher, poor)
    frozen = [p.clone() for n, p in student.named_parameters() if "proj" not in n]

    def loss(model):
        with torch.no_grad():
            total = 0.0
            for ids, mask in batches:
                t = {b: v for b, v in capture_all(teacher, ids, mask).items()}
                s = {b: v for b, v in capture_all(model, ids, mask).items()}
                total += float(prune.layerwise_loss(s, t, mask, [2, 3, 4]))
            return total / len(batches)

    before = loss(student)
    curve = prune.distill(student, teacher, batches, steps=40, lr=3e-3, progress=False)
    after = loss(student)
    assert list(curve.columns) == ["step", "loss"] and len(curve) == 40
    assert after < 0.8 * before
    assert curve.loss.iloc[-5:].mean() < curve.loss.iloc[:5].mean()
    still = [p for n, p in student.named_parameters() if "proj" not in n]
    assert all(torch.equal(a, b) for a, b in zip(frozen, still))  # only the linear maps moved
    assert all(p.requires_grad for p in teacher.parameters())  # flags restored


def capture_all(model, ids, mask):
    L = len(decoder_blocks(model))
    with capture(model, list(range(L + 1)), stop_early=True) as cap:
        return cap.trunk(ids, mask)


def test_distill_refuses_a_student_without_linear_blocks():
    teacher = _model()
    with pytest.raises(LinUtilsError, match="LinearBlock"):
        prune.distill(teacher, teacher, _batches(n=1), steps=1)
    with pytest.raises(LinUtilsError, match="one-for-one"):
        prune.distill(prune.remove_blocks(teacher, [1]), teacher, _batches(n=1), steps=1)


# ---------------------------------------------------------------------------------------------
# the study end to end (tiny budget, no ARC-Easy: lm-eval is tested in test_harness)


def test_pruning_study_end_to_end(tmp_path, monkeypatch):
    from lin_utils import claims, experiments, plots
    from lin_utils.experiments.pruning import PruningConfig
    from lin_utils.pages import _pruning

    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path))
    cfg = PruningConfig(model="stories260K", k_max=2,
                        criteria=["linearity", "linearity_rescored", "shortgpt", "angular", "last", "random"],
                        random_seeds=[0], calib_tokens=1024, seq_len=64, batch_size=4, distill_steps=3, ppl_tokens=512,
                        ppl_seq_len=64, arc_limit=0, speed_batch=1, speed_reps=1)
    tables = experiments.pruning_study(cfg, profile="smoke", progress=False)
    res = tables["results"]
    assert set(res.method) == {"remove", "linear", "distill"}
    assert set(res.criterion) == set(cfg.criteria)
    dense = res[res.k == 0]
    assert dense.ppl_wikitext.nunique() == 1 and (dense.speedup == 1).all()
    assert (res[(res.method == "remove") & (res.k == 2)].params_frac < 1).all()
    assert (res[(res.criterion == "angular") & (res.method == "linear") & (res.k > 0)].mapping == "span").all()
    assert set(tables["distill"].k) == {1, 2}
    # every ranking criterion (not the span one, not the seeded one) has its rank column
    ranked = {c[len("rank_"):] for c in tables["blocks"].columns if c.startswith("rank_")}
    assert ranked == {"linearity", "linearity_rescored", "shortgpt", "last"}
    # the cache answers with cache_only, and the judges and plots take the table
    again = experiments.pruning_study(cfg, profile="smoke", cache_only=True)
    assert again is not None and len(again["results"]) == len(res)
    ours, verdict = _pruning.judge_ppl(res)
    assert verdict in (claims.REPLICATED, claims.CONTRADICTED, claims.INCONCLUSIVE)
    assert _pruning.judge_arc(res)[1] == claims.NOT_RUN
    assert "k = 2" in _pruning.kbyk(res)
    _pruning.numbers(res, tables["distill"])
    plots.pruning_perplexity(res, tables["distill"])
    with pytest.raises(LinUtilsError, match="criteria"):
        cfg.replace(criteria=["bogus"])


def test_adding_a_criterion_computes_only_its_rows(tmp_path, monkeypatch):
    """The study is cached per criterion: a second run with one more criterion computes that
    criterion alone, and the assembled tables equal one run of all of them (timings aside)."""
    from lin_utils import experiments, results
    from lin_utils.experiments.pruning import CRITERION, PRUNING, PruningConfig, criterion_key, study_key

    small = dict(model="stories260K", k_max=2, random_seeds=[0], calib_tokens=512, seq_len=64, batch_size=4,
                 distill_steps=2, ppl_tokens=256, ppl_seq_len=64, arc_limit=0, speed_batch=1, speed_reps=1)
    first = PruningConfig(criteria=["linearity", "last"], **small)
    more = first.replace(criteria=["linearity", "last", "shortgpt"])

    def sidecar(computation, table, params) -> dict:
        return results.load_provenance(computation, table, params, "smoke")

    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path / "a"))
    experiments.pruning_study(first, profile="smoke", progress=False)
    before = {c: sidecar(CRITERION, "results", criterion_key(first, c)) for c in first.criteria}
    shared = sidecar(PRUNING, "blocks", study_key(first))
    assert experiments.pruning_study(more, profile="smoke", cache_only=True) is None  # shortgpt is missing
    grown = experiments.pruning_study(more, profile="smoke", progress=False)
    assert {c: sidecar(CRITERION, "results", criterion_key(more, c)) for c in first.criteria} == before  # not rewritten
    assert sidecar(PRUNING, "blocks", study_key(more)) == shared
    assert sidecar(CRITERION, "results", criterion_key(more, "shortgpt"))["extra"]["computed_with"] == ["shortgpt"]
    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path / "b"))
    once = experiments.pruning_study(more, profile="smoke", progress=False)
    for t in ("results", "blocks", "distill", "sleb"):
        timing = ["forward_s", "speedup", "eval_s"] if t == "results" else []
        pd.testing.assert_frame_equal(grown[t].drop(columns=timing), once[t].drop(columns=timing))
    assert list(grown["results"].criterion.unique()) == ["linearity", "last", "shortgpt"]
    assert {c for c in grown["blocks"].columns if c.startswith("rank_")} == {"rank_linearity", "rank_last", "rank_shortgpt"}
