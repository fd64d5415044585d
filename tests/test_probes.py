"""lin_utils.evaluate.probes: features from capture(), probes on planted and real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lin_utils import data
from lin_utils.evaluate.probes import (
    ending_examples, fit_probe, linear_probes, story_ending_features,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def stories():
    from lin_utils.models import load_model

    return load_model("stories260K", dtype=torch.float64)


def test_ending_examples_pairs_right_and_wrong():
    rows = data.load_eval("xstorycloze-en", "train")[:5]
    ctx, end, y, g = ending_examples(rows)
    assert len(ctx) == 10 and y.sum() == 5 and list(g) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    r = rows[0]
    right = r[f"sentence_quiz{r['answer_right_ending']}"]
    assert end[list(y[:2]).index(1)] == right
    assert ctx[0] == " ".join(r[f"input_sentence_{k}"] for k in range(1, 5))


def test_features_are_means_over_ending_tokens(stories):
    model, tok = stories
    rows = data.load_eval("xstorycloze-en", "train")[:3]
    ctx, end, _, _ = ending_examples(rows)
    L = model.config.num_hidden_layers
    f1 = story_ending_features(model, tok, ctx, end, batch_size=1, progress=False)
    f4 = story_ending_features(model, tok, ctx, end, batch_size=4, progress=False)
    assert sorted(f1) == list(range(L + 1))
    for b in f1:  # right padding never changes a feature
        np.testing.assert_allclose(f1[b], f4[b], rtol=0, atol=1e-10)
    # independent check against HF hidden_states (0..L-1 are the raw boundaries)
    full = ctx[1] + " " + end[1]
    enc = tok(full, return_offsets_mapping=True)
    pos = [i for i, (s, e) in enumerate(enc["offset_mapping"]) if e > len(ctx[1])
           and enc["input_ids"][i] not in tok.all_special_ids]
    assert tok.decode([enc["input_ids"][i] for i in pos]).strip() == end[1].strip()
    with torch.no_grad():
        out = model(input_ids=torch.tensor([enc["input_ids"]]), output_hidden_states=True)
        hs = out.hidden_states
    for b in range(L):
        np.testing.assert_allclose(f1[b][1], hs[b][0, pos].mean(0).numpy(), rtol=1e-10, atol=1e-12)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(2, 32), n=st.integers(200, 400))
def test_planted_separable_feature_scores_one(seed, d, n):
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    Z = rng.normal(size=(n, d))
    Z[:, 0] = (2 * y - 1) * (1.0 + np.abs(Z[:, 0]))  # separable along one direction, margin 2
    X = Z @ np.linalg.qr(rng.normal(size=(d, d)))[0]  # ... hidden in a random rotation
    half = n // 2
    res = fit_probe(X[:half], y[:half], X[half:], y[half:], cv=5, seed=seed)
    assert res["test_acc"] >= 0.95 and res["cv_mean"] >= 0.95
    assert res["n_train"] == half and res["n_test"] == n - half
    assert res["chance"] == np.bincount(y[half:]).max() / (n - half)
    # the same features with shuffled labels: near chance
    y_rand = rng.permutation(y)
    rand = fit_probe(X[:half], y_rand[:half], X[half:], y_rand[half:], cv=5, seed=seed)
    assert rand["test_acc"] < 0.75


def test_linear_probes_on_stories260k(stories):
    model, tok = stories
    tab = linear_probes(model, tok, max_train=24, max_test=16, cv=3, progress=False)
    L = model.config.num_hidden_layers
    assert tab.boundary.tolist() == list(range(L + 1))
    for col in ("test_acc", "cv_mean"):
        assert tab[col].between(0, 1).all()
    assert (tab.cv_std >= 0).all()
    assert (tab.n_train == 48).all() and (tab.n_test == 32).all() and (tab.n_cv == 80).all()
    assert (tab.chance == 0.5).all() and (tab.d == model.config.hidden_size).all()
    only = linear_probes(model, tok, [0, -1], max_train=12, max_test=8, cv=0, progress=False)
    assert only.boundary.tolist() == [0, L] and only.cv_mean.isna().all()
