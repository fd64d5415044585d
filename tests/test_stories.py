"""Story openings, sampled completions and the automatic proxies of Table 3, on stories260K."""
import math

import numpy as np
import pytest
import torch

from lin_utils.data import load_stories
from lin_utils.evaluate.stories import (complete, completion_nll, distinct_n, proxy_table, repetition_rate,
                                        story_openings)
from lin_utils.models import load_model


@pytest.fixture(scope="module")
def stories260k():
    return load_model("stories260K", dtype=torch.float32)


def test_openings_are_validation_prefixes_cut_mid_sentence():
    openings = story_openings(12, seed=3)
    assert openings == story_openings(12, seed=3) and openings != story_openings(12, seed=4)
    validation = load_stories("tinystories", "validation")
    for o in openings:
        assert any(s.startswith(o) for s in validation)
        assert o.rstrip()[-1] not in ".!?"


def test_completions_are_repeatable_per_seed(stories260k):
    model, tok = stories260k
    openings = story_openings(3, seed=0)
    a = complete(model, tok, openings, max_new_tokens=20, seed=7, progress=False)
    b = complete(model, tok, openings, max_new_tokens=20, seed=7, progress=False)
    c = complete(model, tok, openings, max_new_tokens=20, seed=8, progress=False)
    assert a == b and a != c and all(isinstance(t, str) and t for t in a)


def test_completion_nll_equals_a_direct_token_sum(stories260k):
    model, tok = stories260k
    opening, completion = "Once upon a time, there was a little", " girl named Lily. She liked to play."
    nll, k = completion_nll(model, tok, opening, completion)
    ids = [tok.bos_token_id] + tok(opening + completion, add_special_tokens=False)["input_ids"]
    n_open = 1 + len(tok(opening, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    direct = -sum(float(torch.log_softmax(logits[t - 1], -1)[ids[t]]) for t in range(n_open, len(ids)))
    assert k == len(ids) - n_open and nll == pytest.approx(direct, rel=1e-9)
    assert 0 < nll / k < 5  # stories260K knows this kind of text


def test_distinct_and_repetition_closed_forms():
    assert distinct_n("a b a b", 1) == 0.5 and distinct_n("a b a b", 2) == pytest.approx(2 / 3)
    assert repetition_rate("the cat sat on the cat sat on", 4) == pytest.approx(1 - 4 / 5)
    assert math.isnan(distinct_n("one", 2))


def test_proxy_table_has_a_row_per_completion(stories260k):
    model, tok = stories260k
    t = proxy_table(["Tom had a red", "The sun was"], [" ball. He liked it.", " hot and bright."], model, tok)
    assert len(t) == 2 and (t.scorer_tokens > 0).all() and np.isfinite(t.scorer_nll).all()


def test_batched_greedy_completion_equals_a_direct_loop_per_opening(stories260k):
    """Left padding, the cache and the position ids change nothing: greedy completions of a
    batch equal token-by-token argmax over each unpadded opening, without a cache."""
    model, tok = stories260k
    openings = ["Once upon a time", "Tom and his dog went to the park. They saw a big", "The sun"]
    got = complete(model, tok, openings, max_new_tokens=12, temperature=0, batch_size=3, progress=False)
    for opening, text in zip(openings, got):
        ids = [tok.bos_token_id] + tok(opening, add_special_tokens=False)["input_ids"]
        new = []
        for _ in range(12):
            with torch.no_grad():
                nxt = int(model(input_ids=torch.tensor([ids + new])).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            new.append(nxt)
        assert text == tok.decode(new, skip_special_tokens=True)


def test_a_completion_does_not_depend_on_its_batch(stories260k):
    model, tok = stories260k
    openings = story_openings(4, seed=1)
    together = complete(model, tok, openings, max_new_tokens=15, seed=3, batch_size=4, progress=False)
    alone = [complete(model, tok, [o], max_new_tokens=15, seed=3 + i, batch_size=1, progress=False)[0]
             for i, o in enumerate(openings)]
    assert together == alone
