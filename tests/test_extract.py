"""Extraction hooks on real models, and streaming scores on real hidden states."""
import numpy as np
import pytest
import torch

from lin_utils.arch import from_config, tiny_config
from lin_utils.data import text_chunks
from lin_utils.extract import boundaries_for_blocks, iter_block_states
from lin_utils.linearity import LinearityAccumulator, linearity_score
from lin_utils.models import load_model
from lin_utils.scan import profile_model


@pytest.fixture(scope="module")
def stories():
    model, tok = load_model("stories260K", dtype=torch.float32)
    chunks = text_chunks("tinystories", "validation", tok, seq_len=128, max_tokens=2000, add_bos=True)
    return model, tok, chunks


def test_boundaries_match_hf_hidden_states_except_the_final_norm(stories):
    model, _, chunks = stories
    ids, mask = next(chunks.batches(4))
    states, _ = next(iter_block_states(model, [(ids, mask)], progress=False))
    with torch.no_grad():
        hf = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    L = len(hf) - 1
    assert sorted(states) == list(range(L + 1))
    for b in range(L):  # HF entries 0..L-1 are the embedding output and raw block outputs
        torch.testing.assert_close(states[b], hf[b], rtol=0, atol=0)
    # HF's last entry has the final RMSNorm applied; our boundary L is the raw block output.
    assert not torch.allclose(states[L], hf[L])
    torch.testing.assert_close(model.model.norm(states[L]), hf[L])


def test_only_requested_boundaries_are_captured(stories):
    model, _, chunks = stories
    assert boundaries_for_blocks([1, -1], 5) == [1, 2, 4, 5]
    states, _ = next(iter_block_states(model, chunks.batches(4), blocks=[1], progress=False))
    assert sorted(states) == [1, 2]
    with pytest.raises(ValueError, match="out of range"):
        boundaries_for_blocks([5], 5)


def test_padding_and_bos_are_masked():
    ids = torch.tensor([[1, 5, 6, 7], [1, 8, 0, 0]])
    attn = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    model = from_config(tiny_config("llama"))
    _, mask = next(iter_block_states(model, [(ids, attn)], progress=False))
    assert mask.tolist() == [[True] * 4, [True, True, False, False]]
    _, mask = next(iter_block_states(model, [(ids, attn)], exclude_bos=True, progress=False))
    assert mask.tolist() == [[False, True, True, True], [False, True, False, False]]


@pytest.mark.parametrize("family", ["gpt2", "opt", "gpt_neox", "bloom", "qwen2", "phi", "gemma", "mistral", "bert"])
def test_every_family_yields_all_boundaries(family):
    from lin_utils.arch import decoder_blocks

    model = from_config(tiny_config(family))
    ids = torch.randint(3, 500, (2, 16))
    attn = torch.ones_like(ids)
    states, mask = next(iter_block_states(model, [(ids, attn)], progress=False))
    L = model.config.num_hidden_layers
    assert sorted(states) == list(range(L + 1))
    assert all(s.shape == (2, 16, model.config.hidden_size) for s in states.values())
    assert mask.all()
    # Values: HF entries 0..L-1 (embedding output, raw block outputs), bit for bit ...
    raw = []
    hook = decoder_blocks(model)[-1].register_forward_hook(
        lambda _m, _i, out: raw.append(out[0] if isinstance(out, tuple) else out))
    try:
        with torch.no_grad():
            hf = model(input_ids=ids, attention_mask=attn, output_hidden_states=True).hidden_states
    finally:
        hook.remove()
    assert len(hf) == L + 1
    for b in range(L):
        assert torch.equal(states[b], hf[b]), b
    # ... boundary L is the last block's raw output, and HF's last entry is its final norm of that.
    assert len(raw) == 1 and torch.equal(states[L], raw[0])
    # Each family's final norm, which HF applies to its last hidden_states entry (BERT has none).
    final_norm = {
        "gpt2": "transformer.ln_f", "opt": "model.decoder.final_layer_norm",
        "gpt_neox": "gpt_neox.final_layer_norm", "bloom": "transformer.ln_f", "qwen2": "model.norm",
        "phi": "model.final_layernorm", "gemma": "model.norm", "mistral": "model.norm", "bert": None,
    }[family]
    if final_norm is None:
        assert torch.equal(hf[L], states[L])
    else:
        norm = model
        for attr in final_norm.split("."):
            norm = getattr(norm, attr)
        assert isinstance(norm, torch.nn.Module) and "norm" in type(norm).__name__.lower()
        with torch.no_grad():
            assert torch.equal(norm(states[L]), hf[L])
        assert not torch.equal(states[L], hf[L])


def test_streaming_equals_exact_on_real_stories260k_states(stories):
    model, _, chunks = stories
    acc = profile_model(model, chunks.batches(3), exclude_bos=True, progress=False)
    res = acc.result()
    kept = {}
    for states, mask in iter_block_states(model, chunks.batches(5), exclude_bos=True, progress=False):
        for b, h in states.items():
            kept.setdefault(b, []).append(h[mask].double())
    H = {b: torch.cat(v).numpy() for b, v in kept.items()}
    assert res.n_tokens.iloc[0] == len(H[0]) == chunks.n_tokens - len(chunks)
    for i in range(5):
        assert res.score[i] == pytest.approx(linearity_score(H[i], H[i + 1]), abs=1e-8)
        assert res.score_nores[i] == pytest.approx(linearity_score(H[i], H[i + 1] - H[i]), abs=1e-8)
    # A trained small model is far above chance; held-out stays close to in-sample.
    assert (res.score > 10 * res.chance).all()
    assert np.all(np.abs(res.score - res.heldout) < 0.05)


def test_merge_of_shards_matches_single_pass_on_real_states(stories):
    model, _, chunks = stories
    batches = list(chunks.batches(2))
    whole = profile_model(model, batches, progress=False).result()
    a = profile_model(model, batches[: len(batches) // 2], progress=False)
    b = profile_model(model, batches[len(batches) // 2 :], progress=False)
    merged = LinearityAccumulator().merge(a).merge(b).result()
    np.testing.assert_allclose(merged.score, whole.score, atol=1e-10)
    np.testing.assert_allclose(merged.score_nores, whole.score_nores, atol=1e-10)
