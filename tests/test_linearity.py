"""Linearity scores against closed forms and independent float64 computations."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

from lin_utils.linearity import (
    LinearityAccumulator,
    LinearityWarning,
    TooFewTokensError,
    heldout_linearity_score,
    linearity_score,
    procrustes_similarity,
)
from lin_utils.scan import profile_model


def reference_score(X, Y):
    """Independent float64 computation: R^2 via normal equations on centered data."""
    X = np.asarray(X, np.float64) - np.mean(X, 0)
    Y = np.asarray(Y, np.float64) - np.mean(Y, 0)
    A = np.linalg.solve(X.T @ X, X.T @ Y)
    return 1 - np.sum((X @ A - Y) ** 2) / np.sum(Y**2)


def noisy_chain(rng, n_rows, T, d, L, noise=0.3):
    """(L+1, B, T, d) states of a random residual-like chain: h_{i+1} = h_i W_i + noise."""
    h = rng.normal(size=(n_rows, T, d)) + rng.normal(size=d)
    out = [h]
    for _ in range(L):
        W = np.eye(d) + 0.3 * rng.normal(size=(d, d))
        h = np.tanh(h @ W) + noise * rng.normal(size=h.shape)
        out.append(h)
    return np.stack(out)


# --- closed forms -----------------------------------------------------------------------------

def test_exact_linear_map_scores_one():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 20))
    Y = X @ rng.normal(size=(20, 30)) + 5.0
    assert abs(linearity_score(X, Y) - 1) < 1e-9


@pytest.mark.parametrize("n,d", [(2000, 50), (5000, 100), (800, 16)])
def test_independent_noise_scores_near_chance(n, d):
    rng = np.random.default_rng(n + d)
    scores = [linearity_score(rng.normal(size=(n, d)), rng.normal(size=(n, d))) for _ in range(10)]
    # E[R^2] = d/(n-1); the spread of the mean of 10 draws is well under 15% of it.
    assert np.mean(scores) == pytest.approx(d / (n - 1), rel=0.15)


def test_independent_noise_heldout_is_near_zero():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(4000, 40)), rng.normal(size=(4000, 40))
    held = heldout_linearity_score(X[:2000], Y[:2000], X[2000:], Y[2000:])
    assert -0.06 < held < 0.005  # expected about -d/(n_fit) = -0.02


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    sx=st.floats(1e-3, 1e3),
    sy=st.floats(1e-3, 1e3),
    shift=st.floats(-100, 100),
)
def test_invariance_to_scale_rotation_and_shift(seed, sx, sy, shift):
    rng = np.random.default_rng(seed)
    n, d = 300, 8
    X = rng.normal(size=(n, d))
    Y = np.tanh(X @ rng.normal(size=(d, d))) + 0.2 * rng.normal(size=(n, d))
    Q = ortho_group.rvs(d, random_state=seed)
    base = linearity_score(X, Y)
    assert linearity_score(sx * X, Y) == pytest.approx(base, abs=1e-9)
    assert linearity_score(X, sy * Y) == pytest.approx(base, abs=1e-9)
    assert linearity_score(X @ Q, Y) == pytest.approx(base, abs=1e-9)
    assert linearity_score(X + shift, Y - shift) == pytest.approx(base, abs=1e-9)
    assert base == pytest.approx(reference_score(X, Y), abs=1e-9)


def test_procrustes_of_a_rotation_is_one_and_below_for_a_shear():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 10))
    Q = ortho_group.rvs(10, random_state=2)
    assert procrustes_similarity(X, 3 * X @ Q + 1) == pytest.approx(1.0, abs=1e-9)
    S = np.diag(np.linspace(0.1, 3, 10))
    assert procrustes_similarity(X, X @ S) < 0.95
    assert linearity_score(X, X @ S) == pytest.approx(1.0, abs=1e-9)


# --- bad input --------------------------------------------------------------------------------

def test_refuses_n_le_d_and_warns_below_ten_d():
    rng = np.random.default_rng(3)
    with pytest.raises(TooFewTokensError, match="n_tokens=20 <= d=20"):
        linearity_score(rng.normal(size=(20, 20)), rng.normal(size=(20, 20)))
    with pytest.warns(LinearityWarning, match="< 10\\*d"):
        linearity_score(rng.normal(size=(100, 20)), rng.normal(size=(100, 20)))


def test_nan_is_an_error_naming_the_boundary():
    states = torch.randn(3, 2, 50, 4, dtype=torch.float64)
    states[2, 1, 7, 0] = float("nan")
    with pytest.raises(ValueError, match="boundary 2"):
        LinearityAccumulator().update(list(states))
    with pytest.raises(ValueError, match="NaN"):
        linearity_score(states[2, 1], states[1, 1])


def test_half_precision_is_upcast():
    rng = np.random.default_rng(4)
    H = torch.tensor(noisy_chain(rng, 4, 64, 8, 2), dtype=torch.float16)
    acc = LinearityAccumulator().update(list(H))
    ref = [linearity_score(H[i].reshape(-1, 8), H[i + 1].reshape(-1, 8)) for i in range(2)]
    np.testing.assert_allclose(acc.result()["score"], ref, atol=1e-9)


def test_result_carries_warning_and_chance():
    rng = np.random.default_rng(5)
    H = torch.tensor(noisy_chain(rng, 2, 60, 16, 1))
    with pytest.warns(LinearityWarning):
        row = LinearityAccumulator().update(list(H)).result().iloc[0]
    assert row.n_tokens == 120 and row.d == 16
    assert row.chance == pytest.approx(16 / 119)
    assert "n_tokens=120" in row.note


# --- streaming agrees with exact ------------------------------------------------------------

@pytest.fixture(scope="module")
def chain():
    rng = np.random.default_rng(6)
    H = noisy_chain(rng, 12, 100, 16, 4)  # 1200 tokens, d=16, 4 blocks
    mask = rng.random(size=(12, 100)) > 0.2
    return H, mask


def test_streaming_equals_exact(chain):
    H, mask = chain
    acc = LinearityAccumulator()
    for rows in np.array_split(np.arange(12), 5):  # uneven batches
        acc.update({b: torch.tensor(H[b][rows]) for b in range(5)}, torch.tensor(mask[rows]))
    res = acc.result()
    for i in range(4):
        X, Y = H[i][mask], H[i + 1][mask]
        assert res.score[i] == pytest.approx(linearity_score(X, Y), abs=1e-8)
        assert res.score_nores[i] == pytest.approx(linearity_score(X, Y - X), abs=1e-8)
        assert res.procrustes[i] == pytest.approx(procrustes_similarity(X, Y), abs=1e-8)
        cos = np.sum(X * Y, 1) / np.linalg.norm(X, axis=1) / np.linalg.norm(Y, axis=1)
        assert res.cosine[i] == pytest.approx(cos.mean(), abs=1e-10)
        assert res.norm_resid[i] == pytest.approx(np.linalg.norm(X, axis=1).mean())
        assert res.norm_block[i] == pytest.approx(np.linalg.norm(Y - X, axis=1).mean())
    assert (res.n_tokens == mask.sum()).all()


def test_heldout_equals_direct_two_fold(chain):
    H, mask = chain
    acc = LinearityAccumulator()
    acc.update(list(torch.tensor(H[:, :7])), torch.tensor(mask[:7]))
    acc.update(list(torch.tensor(H[:, 7:])), torch.tensor(mask[7:]))
    res = acc.result()
    half = np.arange(12) % 2  # rows alternate between halves across batches: 7 rows, then 5
    for i in range(4):
        parts = [(H[i][half == h][mask[half == h]], H[i + 1][half == h][mask[half == h]]) for h in (0, 1)]
        sse = sst = sst_nores = 0.0
        for (Xf, Yf), (Xt, Yt) in ((parts[0], parts[1]), (parts[1], parts[0])):
            mx, my = Xf.mean(0), Yf.mean(0)
            A = np.linalg.lstsq(Xf - mx, Yf - my, rcond=None)[0]
            sse += np.sum(((Xt - mx) @ A + my - Yt) ** 2)
            sst += np.sum((Yt - Yt.mean(0)) ** 2)
            D = Yt - Xt
            sst_nores += np.sum((D - D.mean(0)) ** 2)
        assert res.heldout[i] == pytest.approx(1 - sse / sst, abs=1e-8)
        assert res.heldout_nores[i] == pytest.approx(1 - sse / sst_nores, abs=1e-8)
        # one fold matches the exact helper
        (Xf, Yf), (Xt, Yt) = parts
        ref = heldout_linearity_score(Xf, Yf, Xt, Yt)
        mx, my = Xf.mean(0), Yf.mean(0)
        A = np.linalg.lstsq(Xf - mx, Yf - my, rcond=None)[0]
        assert ref == pytest.approx(1 - np.sum(((Xt - mx) @ A + my - Yt) ** 2) / np.sum((Yt - Yt.mean(0)) ** 2), abs=1e-10)
        assert res.heldout[i] < res.score[i]


def test_merge_matches_single_pass(chain):
    H, mask = chain
    single = LinearityAccumulator().update(list(torch.tensor(H)), torch.tensor(mask)).result()
    a = LinearityAccumulator().update(list(torch.tensor(H[:, :6])), torch.tensor(mask[:6]))
    b = LinearityAccumulator().update(list(torch.tensor(H[:, 6:])), torch.tensor(mask[6:]))
    merged = a.merge(b).result()
    cols = ["score", "score_nores", "procrustes", "cosine", "norm_resid", "norm_block", "heldout"]
    np.testing.assert_allclose(merged[cols].to_numpy(), single[cols].to_numpy(), atol=1e-10)


def test_masked_tokens_never_count(chain):
    H, mask = chain
    poisoned = H.copy()
    poisoned[:, ~mask] = 1e6 * np.random.default_rng(7).normal(size=poisoned[:, ~mask].shape)
    clean = LinearityAccumulator().update(list(torch.tensor(H)), torch.tensor(mask)).result()
    dirty = LinearityAccumulator().update(list(torch.tensor(poisoned)), torch.tensor(mask)).result()
    cols = ["score", "score_nores", "heldout", "cosine", "norm_resid"]
    np.testing.assert_allclose(dirty[cols].to_numpy(), clean[cols].to_numpy(), atol=1e-12)


def test_fitted_map_relative_error_closed_form(chain):
    H, mask = chain
    acc = LinearityAccumulator().update(list(torch.tensor(H)), torch.tensor(mask))
    res, maps = acc.result(), acc.fitted_maps()
    for i, m in maps.items():
        err = m.relative_error(H[i][mask], H[i + 1][mask])
        assert np.mean(err**2) == pytest.approx(1 - res.score[i], abs=1e-9)


def test_subset_of_boundaries_scores_only_complete_pairs(chain):
    H, mask = chain
    acc = LinearityAccumulator().update({1: torch.tensor(H[1]), 2: torch.tensor(H[2]), 4: torch.tensor(H[4])}, torch.tensor(mask))
    assert acc.result().block.tolist() == [1]
    with pytest.raises(ValueError, match="boundaries"):
        acc.update({1: torch.tensor(H[1]), 2: torch.tensor(H[2])}, torch.tensor(mask))


def test_layernorm_hyperplane_does_not_blow_up_heldout():
    """MiniLM's block-0 input is a LayerNorm output: after centering it lies in a hyperplane and
    its Gram matrix is singular up to float32 rounding. Fitting that null direction multiplied
    rounding noise by ~1e12 in held-out predictions (held-out R^2 was -5e12 before the cut-off)."""
    from lin_utils.data import text_chunks
    from lin_utils.models import load_model

    model, tok = load_model("minilm")
    chunks = text_chunks("tinystories", "validation", tok, 128, max_tokens=1500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinearityWarning)
        acc = profile_model(model, chunks.batches(4), layers=[0], exclude_bos=True, progress=False)
        res = acc.result().iloc[0]
        G = acc._total().centered(0)[0]
    eig = np.linalg.eigvalsh(G)
    assert eig[0] < 1e-10 * eig[-1]  # the hyperplane: one (numerically) null direction
    assert res.score > 0.9
    assert -2 < res.heldout < res.score  # overfits at n/2 < 2d, but stays finite and sane


def test_statistics_memory_does_not_grow_with_tokens(chain):
    H, mask = chain
    acc = LinearityAccumulator().update(list(torch.tensor(H[:, :4])), torch.tensor(mask[:4]))
    before = acc.nbytes
    for _ in range(3):
        acc.update(list(torch.tensor(H[:, 4:])), torch.tensor(mask[4:]))
    # per half: sums (5, 16), Grams (5, 16, 16), cross products (4, 16, 16); per-token sums 5 + 4 + 4
    assert acc.nbytes == before == 2 * 8 * (5 * 16 + 5 * 16 * 16 + 4 * 16 * 16) + 8 * (5 + 4 + 4)
