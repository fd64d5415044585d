"""lin_utils.models against real models: stories260K (GGUF), MiniLM, tiny configs of every family."""
import os
from pathlib import Path

os.environ.setdefault("LIN_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from lin_utils.errors import LinUtilsError, ModelNotFoundError  # noqa: E402
from lin_utils.models import (  # noqa: E402
    FAMILIES,
    convert_gguf_to_hf,
    decoder_blocks,
    from_config,
    hidden_size,
    is_encoder,
    load_model,
    n_blocks,
    sentencepiece_tokenizer,
    tiny_config,
)

STORIES = Path(os.environ["LIN_DATA_DIR"]) / "stories260K"
GGUF = STORIES / "stories260K.gguf"
TOK512 = STORIES / "tok512.model"

# `expected_stdout` of llama2.c's test_all.py (karpathy/llama2.c): stories260K, greedy, 200 steps.
LLAMA2C_EXPECTED = (
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n"
    "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. "
    "She said, \"I want to play with your ball, but I can't find it.\"\n"
    "Lily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\n"
    "Lily didn't want to help her mom, so she"
)
SENTENCE = " Once upon a time, there was a little girl named Lily. She loved to play outside in the park."


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if not os.environ.get("LIN_DATA_DIR"):
        monkeypatch.setenv("LIN_DATA_DIR", str(STORIES.parent))


@pytest.fixture(scope="module")
def stories():
    return load_model("stories260K")


@pytest.fixture(scope="module")
def sp():
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=str(TOK512))


def mean_nll(model, ids: torch.Tensor) -> float:
    with torch.no_grad():
        logits = model(ids).logits
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)).item()


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
    model, tokenizer = stories
    ids = tokenizer(SENTENCE, return_tensors="pt").input_ids
    assert ids[0].tolist() == [1] + sp.encode(SENTENCE) and ids.shape[1] == 32
    assert mean_nll(model, ids) == pytest.approx(0.180, abs=0.005)


def test_stories260k_nll_tinystories_validation(stories):
    model, tokenizer = stories
    text = (STORIES.parent / "tinystories" / "tinystories_validation_head.txt").read_text()
    ids = tokenizer(text[:30_000], add_special_tokens=False).input_ids[: 16 * 255]
    body = torch.tensor(ids).view(16, 255)
    chunks = torch.cat([torch.ones(16, 1, dtype=torch.long), body], dim=1)  # BOS + 255 tokens
    assert mean_nll(model, chunks) == pytest.approx(1.486, abs=0.005)


def test_tok512_tokenizer_matches_sentencepiece(stories, sp):
    _, tok = stories
    assert (tok.bos_token_id, tok.eos_token_id, tok.unk_token_id, tok.pad_token_id) == (1, 2, 0, 0)
    assert len(tok) == 512
    lines = (STORIES.parent / "tinystories" / "tinystories_validation_head.txt").read_text().split("\n")
    edge = ["", " ", "   ", "x ", "  Once  upon", "a  \n  b", "\n x", "a\tb", " \t ", "héllo 😀",
            "<s> literal </s> markers", "tabs\tand\u00a0nbsp", "trailing \n"]
    for s in lines[:1500] + edge:
        ids = sp.encode(s)
        assert tok(s, add_special_tokens=False).input_ids == ids, repr(s)
        assert tok(s).input_ids == [1] + ids, repr(s)
        assert tok.decode(ids) == sp.decode(ids), repr(s)
    batch = tok(["Once upon", "a time, there was"], padding=True, return_tensors="pt")
    assert batch.input_ids[0, -1].item() == 0 and batch.attention_mask[0, -1].item() == 0


def test_sentencepiece_tokenizer_standalone(sp):
    tok = sentencepiece_tokenizer(TOK512)
    assert tok("Lily  likes cake. ").input_ids == [1] + sp.encode("Lily  likes cake. ")


# ---------------------------------------------------------------------------------- GGUF files


def test_round_trip_through_local_dir(stories, tmp_path):
    model, tokenizer = stories
    convert_gguf_to_hf(GGUF, out_dir=tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    loaded, loaded_tok = load_model(str(tmp_path))
    ids = tokenizer("Once upon a time, there was a big dog.", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    assert loaded.config.max_position_embeddings == 512 and loaded.config.tie_word_embeddings
    s = "  Two  spaces,\ttab and <s> text "
    assert loaded_tok(s).input_ids == tokenizer(s).input_ids
    half, _ = load_model(str(tmp_path), dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16


def _rewrite_gguf(dst: Path, arch: str = "llama", quantize: bool = False) -> None:
    """Write stories260K's tensors and hyperparameters into a new GGUF (optionally Q8_0)."""
    import gguf

    reader = gguf.GGUFReader(str(GGUF))

    def f(key):
        return reader.fields[key].contents()

    w = gguf.GGUFWriter(str(dst), arch)
    for key in ("context_length", "embedding_length", "feed_forward_length", "block_count",
                "attention.head_count", "attention.head_count_kv", "rope.dimension_count"):
        w.add_uint32(f"{arch}.{key}", f(f"llama.{key}"))
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", f("llama.attention.layer_norm_rms_epsilon"))
    w.add_tokenizer_model("llama")
    w.add_token_list(f("tokenizer.ggml.tokens"))
    w.add_token_scores(f("tokenizer.ggml.scores"))
    w.add_token_types(f("tokenizer.ggml.token_type"))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    for t in reader.tensors:
        data = np.array(t.data, dtype=np.float32)
        if quantize and data.ndim == 2 and data.shape[1] % 32 == 0:
            q = gguf.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(t.name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(t.name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_gguf_path_with_its_own_vocab(stories, tmp_path, sp):
    model, _ = stories
    path = tmp_path / "copy.gguf"
    _rewrite_gguf(path)
    other, tok = load_model(str(path))
    assert other.config.max_position_embeddings == 2048  # the file's own value, not stories260K's 512
    # The GGUF vocabulary gives llama.cpp's SPM tokenization (no whitespace collapsing).
    text = "Once upon a time, there was a girl."
    assert tok(text).input_ids == [1] + sp.encode(text)
    ids = torch.tensor([[1] + sp.encode(SENTENCE)])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, other(ids).logits)


def test_quantized_gguf_is_dequantized(stories, tmp_path, sp):
    model, _ = stories
    path = tmp_path / "q8.gguf"
    _rewrite_gguf(path, quantize=True)
    q8, _ = convert_gguf_to_hf(path, tokenizer_model=TOK512, max_position_embeddings=512)
    ids = torch.tensor([[1] + sp.encode(SENTENCE)])
    assert abs(mean_nll(q8, ids) - mean_nll(model, ids)) < 0.02
    assert not torch.equal(q8.model.layers[0].self_attn.q_proj.weight, model.model.layers[0].self_attn.q_proj.weight)


def test_gguf_errors(tmp_path):
    path = tmp_path / "gpt2ish.gguf"
    _rewrite_gguf(path, arch="gpt2")
    with pytest.raises(LinUtilsError, match="architecture 'gpt2'"):
        convert_gguf_to_hf(path)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    with pytest.raises(LinUtilsError, match="not a readable GGUF"):
        load_model(str(junk))
    with pytest.raises(ModelNotFoundError):
        convert_gguf_to_hf(tmp_path / "missing.gguf")


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


def test_from_config_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = from_config(tiny_config("llama"), seed=5)
    assert torch.equal(torch.rand(3), expected)
    b = from_config(tiny_config("llama"), seed=5, dtype=torch.float64)
    assert b.dtype == torch.float64
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va.double(), vb), k


# ---------------------------------------------------------------------------------- blocks


@pytest.mark.parametrize("family", FAMILIES)
def test_decoder_blocks_every_family(family):
    config = tiny_config(family)
    model = from_config(config, seed=0)
    d = hidden_size(model)
    assert d == 48
    assert is_encoder(model) == (family == "bert")
    assert isinstance(model, transformers.BertModel if family == "bert" else transformers.PreTrainedModel)
    blocks = decoder_blocks(model)
    assert isinstance(blocks, torch.nn.ModuleList) and len(blocks) == 3 == n_blocks(model)
    assert decoder_blocks(model.base_model) is blocks
    outs = []
    handles = [b.register_forward_hook(lambda m, i, o: outs.append(o[0] if isinstance(o, tuple) else o))
               for b in blocks]
    with torch.no_grad():
        model(input_ids=torch.randint(3, 500, (2, 7)))
    for h in handles:
        h.remove()
    assert [tuple(o.shape) for o in outs] == [(2, 7, d)] * 3
    assert all(torch.isfinite(o).all() for o in outs)
    assert n_blocks(from_config(tiny_config(family, num_hidden_layers=2))) == 2


def test_decoder_blocks_bert_heads_and_fallback():
    config = tiny_config("bert")
    mlm = transformers.BertForMaskedLM(config)
    assert len(decoder_blocks(mlm)) == 3 and decoder_blocks(mlm) is mlm.bert.encoder.layer

    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = torch.nn.ModuleList([torch.nn.Linear(2, 2)])
            self.stack = torch.nn.ModuleList([torch.nn.Linear(8, 8) for _ in range(4)])

    odd = Odd()
    assert decoder_blocks(odd) is odd.stack
    with pytest.raises(LinUtilsError, match="Linear"):
        decoder_blocks(torch.nn.Linear(2, 2))


def test_tiny_config_rejects_unknown_family():
    with pytest.raises(ValueError, match="unknown family"):
        tiny_config("t5")


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
