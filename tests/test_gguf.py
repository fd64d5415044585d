"""lin_utils.gguf: GGUF -> HF Llama conversion and the SentencePiece tokenizer builder."""
import os
import shutil
from pathlib import Path

os.environ.setdefault("LIN_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lin_utils.errors import LinUtilsError, ModelNotFoundError  # noqa: E402
from lin_utils.gguf import convert_gguf_to_hf, read_gguf, sentencepiece_tokenizer, unpermute_rope  # noqa: E402
from lin_utils.models import load_model  # noqa: E402

from stories260k import GGUF, SENTENCE, STORIES, TOK512, mean_nll  # noqa: E402





def assert_same_weights(a, b):
    sb = b.state_dict()
    assert a.state_dict().keys() == sb.keys()
    for k, v in a.state_dict().items():
        assert torch.equal(v, sb[k]), k


# ---------------------------------------------------------------------------------- tokenizer


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


# ---------------------------------------------------------------------------------- conversion


def test_round_trip_through_local_dir(stories, tmp_path):
    model, tokenizer = stories
    convert_gguf_to_hf(GGUF, out_dir=tmp_path, tokenizer_model=TOK512, max_position_embeddings=512)
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


def test_context_and_tokenizer_come_from_the_caller_not_the_file_name(stories, tmp_path, sp):
    model, tokenizer = stories
    other = tmp_path / "other.gguf"
    shutil.copyfile(GGUF, other)
    told, told_tok = convert_gguf_to_hf(other, tokenizer_model=TOK512, max_position_embeddings=512)
    assert told.config.to_dict() == model.config.to_dict()
    assert_same_weights(told, model)
    s = "  Two  spaces,\ttab and <s> text "
    assert told_tok(s).input_ids == tokenizer(s).input_ids == [1] + sp.encode(s)

    plain, plain_tok = convert_gguf_to_hf(other)
    assert plain.config.max_position_embeddings == 2048  # the GGUF's llama.context_length
    diff = {k for k, v in plain.config.to_dict().items() if model.config.to_dict().get(k) != v}
    assert diff == {"max_position_embeddings"}
    assert_same_weights(plain, model)
    # Without tokenizer_model: the GGUF's own vocabulary (llama.cpp SPM, no whitespace collapsing).
    assert plain_tok(s).input_ids != [1] + sp.encode(s)
    text = "Once upon a time, there was a girl."
    assert plain_tok(text).input_ids == [1] + sp.encode(text)

    # A file named like the spec's gets no special treatment either.
    (tmp_path / "named").mkdir()
    named = tmp_path / "named" / "stories260K.gguf"
    shutil.copyfile(GGUF, named)
    shutil.copyfile(TOK512, tmp_path / "named" / "tok512.model")
    ckpt = read_gguf(named)
    assert ckpt.config.max_position_embeddings == 2048
    assert ckpt.tokenizer(s).input_ids == plain_tok(s).input_ids
    # The generic convention stays: a tokenizer.model next to the GGUF is used.
    shutil.copyfile(TOK512, tmp_path / "tokenizer.model")
    assert read_gguf(other).tokenizer(s).input_ids == [1] + sp.encode(s)


def test_unpermute_rope_turns_pair_rotation_into_half_rotation():
    rng = np.random.default_rng(0)
    n_heads, hd, d_in, theta = 3, 8, 5, 10000.0
    w = rng.standard_normal((n_heads * hd, d_in))
    x = rng.standard_normal((6, d_in))  # 6 positions
    ang = np.arange(6)[:, None] * theta ** (-np.arange(0, hd, 2) / hd)[None, :]
    cos, sin = np.cos(ang)[:, None], np.sin(ang)[:, None]

    def pairs(y):  # ggml / llama2.c: rotate (2i, 2i+1)
        y = y.reshape(6, n_heads, hd)
        out = np.empty_like(y)
        out[..., 0::2] = y[..., 0::2] * cos - y[..., 1::2] * sin
        out[..., 1::2] = y[..., 0::2] * sin + y[..., 1::2] * cos
        return out

    def halves(y):  # HF rotate_half: rotate (i, i + hd/2)
        y = y.reshape(6, n_heads, hd)
        a, b = y[..., : hd // 2], y[..., hd // 2:]
        return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)

    u = unpermute_rope(w, n_heads)
    perm = np.concatenate([np.arange(0, hd, 2), np.arange(1, hd, 2)])
    np.testing.assert_allclose(halves(x @ u.T), pairs(x @ w.T)[..., perm], rtol=1e-12, atol=1e-12)
    # llama.cpp's convert_hf_to_gguf.py permute (HF -> ggml) is undone exactly.
    ggml = u.reshape(n_heads, 2, hd // 2, d_in).swapaxes(1, 2).reshape(u.shape)
    assert np.array_equal(ggml, w)


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
    with pytest.raises(ModelNotFoundError, match="tokenizer model"):
        convert_gguf_to_hf(GGUF, tokenizer_model=tmp_path / "absent.model")
