"""GGUF (Llama architecture) -> Hugging Face ``LlamaForCausalLM``, and SentencePiece -> fast HF tokenizer.

The converter knows no model by name: whatever a file's metadata gets wrong (for
``stories260K.gguf``, its context length of 2048, a converter default for a model trained at 512)
the caller passes explicitly, as ``max_position_embeddings=`` and ``tokenizer_model=``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, normalizers
from tokenizers.models import BPE
from transformers.tokenization_utils_base import generate_merges

from .errors import LinUtilsError, ModelNotFoundError, one_line

__all__ = ["GGUFCheckpoint", "read_gguf", "convert_gguf_to_hf", "sentencepiece_tokenizer", "unpermute_rope"]


@dataclass
class GGUFCheckpoint:
    """A GGUF file read as far as its HF config and tokenizer; :meth:`model` builds the weights."""
    path: Path
    config: transformers.LlamaConfig
    tokenizer: transformers.PreTrainedTokenizerFast
    _reader: object = field(repr=False)

    def model(self) -> transformers.LlamaForCausalLM:
        """The HF Llama with the file's weights (dequantized), float32, eval mode."""
        return _gguf_model(self._reader, self.config)


def read_gguf(gguf_path, *, tokenizer_model=None, max_position_embeddings: int | None = None) -> GGUFCheckpoint:
    """Read a Llama-architecture GGUF's metadata and tokenizer, without building the model.

    The context length is the GGUF's ``llama.context_length`` unless ``max_position_embeddings``
    is given. The tokenizer is built from ``tokenizer_model`` (a SentencePiece ``.model``) when
    given, else from a ``tokenizer.model`` next to the GGUF, else from the GGUF's own vocabulary
    (llama.cpp's SPM tokenization: dummy prefix, no whitespace collapsing).
    """
    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise ModelNotFoundError(f"GGUF file {str(gguf_path)!r} does not exist")
    config, reader = _gguf_config(gguf_path, max_position_embeddings)
    tokenizer = _gguf_tokenizer(reader, gguf_path, Path(tokenizer_model) if tokenizer_model else None)
    return GGUFCheckpoint(gguf_path, config, tokenizer, reader)


def convert_gguf_to_hf(gguf_path, out_dir=None, tokenizer_model=None, *,
                       max_position_embeddings: int | None = None):
    """Convert a Llama-architecture GGUF file to ``(LlamaForCausalLM, tokenizer)``, float32, eval.

    Hyperparameters come from the GGUF metadata; q_proj/k_proj rows are permuted from ggml's
    interleaved RoPE pairs to HF's rotate-half layout (:func:`unpermute_rope`). The context
    length and the tokenizer are chosen as in :func:`read_gguf`.

    With ``out_dir`` both are written there with ``save_pretrained`` (safetensors), so
    ``load_model(out_dir)`` loads them back.
    """
    ckpt = read_gguf(gguf_path, tokenizer_model=tokenizer_model, max_position_embeddings=max_position_embeddings)
    model = ckpt.model()
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out_dir, safe_serialization=True)
        ckpt.tokenizer.save_pretrained(out_dir)
    return model, ckpt.tokenizer


def _gguf_field(reader, key: str, default=None):
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def _gguf_config(gguf_path: Path, context: int | None):
    import gguf  # heavy and optional: the PyPI package (absolute import), not this module

    try:
        reader = gguf.GGUFReader(str(gguf_path))
    except Exception as exc:
        raise LinUtilsError(f"{str(gguf_path)!r} is not a readable GGUF file: {one_line(exc)}") from exc
    arch = _gguf_field(reader, "general.architecture")
    if arch != "llama":
        raise LinUtilsError(f"GGUF {str(gguf_path)!r} has architecture {arch!r}; only 'llama' is supported")

    def meta(key, default=None):
        value = _gguf_field(reader, f"llama.{key}", default)
        if value is None:
            raise LinUtilsError(f"GGUF {str(gguf_path)!r} lacks metadata 'llama.{key}'")
        return value

    d, n_heads = int(meta("embedding_length")), int(meta("attention.head_count"))
    head_dim = d // n_heads
    rope_dims = int(meta("rope.dimension_count", head_dim))
    if rope_dims != head_dim:
        raise LinUtilsError(f"GGUF {str(gguf_path)!r}: partial RoPE "
                            f"({rope_dims} of {head_dim} dims) is unsupported")
    if _gguf_field(reader, "llama.rope.scaling.type") not in (None, "none"):
        raise LinUtilsError(f"GGUF {str(gguf_path)!r}: RoPE scaling is unsupported")
    tensors = {t.name: t for t in reader.tensors}
    if "token_embd.weight" not in tensors:
        raise LinUtilsError(f"GGUF {str(gguf_path)!r} has no token_embd.weight")
    vocab = int(tensors["token_embd.weight"].shape[-1])  # ggml shapes are (in, out)
    if context is None:
        context = int(meta("context_length"))
    # GGUF stores eps as float32 (1e-5 -> 9.99999975e-06); undo that rounding.
    eps = float(f"{float(meta('attention.layer_norm_rms_epsilon', 1e-5)):.7g}")
    tied = "output.weight" not in tensors or np.array_equal(
        _gguf_tensor(tensors["output.weight"]), _gguf_tensor(tensors["token_embd.weight"]))
    config = transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=d, intermediate_size=int(meta("feed_forward_length")),
        num_hidden_layers=int(meta("block_count")), num_attention_heads=n_heads,
        num_key_value_heads=int(meta("attention.head_count_kv", n_heads)),
        max_position_embeddings=int(context), rms_norm_eps=eps,
        rope_parameters={"rope_type": "default", "rope_theta": float(meta("rope.freq_base", 10000.0))},
        hidden_act="silu", tie_word_embeddings=tied, attention_bias=False, mlp_bias=False,
        bos_token_id=int(_gguf_field(reader, "tokenizer.ggml.bos_token_id", 1)),
        eos_token_id=int(_gguf_field(reader, "tokenizer.ggml.eos_token_id", 2)),
    )
    return config, reader


def _gguf_tensor(t) -> np.ndarray:
    import gguf  # heavy and optional: see _gguf_config

    if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
        return np.asarray(t.data, dtype=np.float32)
    return np.asarray(gguf.dequantize(t.data, t.tensor_type), dtype=np.float32)


def unpermute_rope(w: np.ndarray, n_heads: int) -> np.ndarray:
    """ggml's interleaved RoPE pairs -> HF's rotate-half halves, per head.

    ``w`` is a q or k projection, shape ``(n_heads * head_dim, in_features)``. This is the
    ``permute`` of HF's ``convert_llama_weights_to_hf.py`` and the inverse of the ``permute`` of
    llama.cpp's ``convert_hf_to_gguf.py``.
    """
    rows, cols = w.shape
    hd = rows // n_heads
    return w.reshape(n_heads, hd // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


_GGUF_BLOCK_NAMES = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def _gguf_model(reader, config) -> transformers.LlamaForCausalLM:
    state: dict[str, torch.Tensor] = {}
    for t in reader.tensors:
        w = _gguf_tensor(t)
        if t.name == "token_embd.weight":
            key = "model.embed_tokens.weight"
        elif t.name == "output_norm.weight":
            key = "model.norm.weight"
        elif t.name == "output.weight":
            key = "lm_head.weight"
        elif m := re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", t.name):
            layer, part = int(m.group(1)), m.group(2)
            if part not in _GGUF_BLOCK_NAMES:
                raise LinUtilsError(f"GGUF tensor {t.name!r} has no HF Llama counterpart")
            if part == "attn_q":
                w = unpermute_rope(w, config.num_attention_heads)
            elif part == "attn_k":
                w = unpermute_rope(w, config.num_key_value_heads)
            key = f"model.layers.{layer}.{_GGUF_BLOCK_NAMES[part]}.weight"
        else:
            raise LinUtilsError(f"GGUF tensor {t.name!r} has no HF Llama counterpart")
        state[key] = torch.from_numpy(np.array(w, dtype=np.float32))  # copy: the GGUF is a read-only memmap
    if config.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model = transformers.LlamaForCausalLM(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    bad_shape = [k for k in state if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or bad_shape:
        raise LinUtilsError(f"GGUF -> Llama conversion mismatch: missing {missing[:3]}, "
                            f"unexpected {unexpected[:3]}, wrong shape {bad_shape[:3]}")
    model.load_state_dict(state, strict=True)
    return model.eval()


def _gguf_tokenizer(reader, gguf_path: Path, tokenizer_model: Path | None):
    if tokenizer_model is None and (gguf_path.parent / "tokenizer.model").is_file():
        tokenizer_model = gguf_path.parent / "tokenizer.model"
    if tokenizer_model is not None:
        if not Path(tokenizer_model).is_file():
            raise ModelNotFoundError(f"tokenizer model {str(tokenizer_model)!r} does not exist")
        return sentencepiece_tokenizer(tokenizer_model)
    kind = _gguf_field(reader, "tokenizer.ggml.model")
    if kind != "llama":
        raise LinUtilsError(f"GGUF {str(gguf_path)!r}: tokenizer type {kind!r} is unsupported; "
                            f"pass tokenizer_model= (a SentencePiece .model)")
    pieces = list(_gguf_field(reader, "tokenizer.ggml.tokens"))
    scores = [float(s) for s in _gguf_field(reader, "tokenizer.ggml.scores")]
    ids = {k: _gguf_field(reader, f"tokenizer.ggml.{k}_token_id") for k in ("unknown", "bos", "eos")}
    special = {k: pieces[v] if v is not None and 0 <= v < len(pieces) else None for k, v in ids.items()}
    # llama.cpp's SPM tokenizer adds the dummy prefix but does not collapse whitespace.
    return _spm_fast_tokenizer(pieces, scores, unk=special["unknown"], bos=special["bos"],
                               eos=special["eos"], add_dummy_prefix=True, collapse_spaces=False)


# --------------------------------------------------------------------------------------------
# SentencePiece tokenizer as a fast (tokenizers-backed) HF tokenizer


def sentencepiece_tokenizer(model_file) -> transformers.PreTrainedTokenizerFast:
    """A fast HF tokenizer that reproduces ``SentencePieceProcessor(model_file).encode`` exactly.

    Built for SentencePiece BPE models with byte fallback (Llama-2 style, e.g. ``tok512``).
    Calling it prepends BOS (``add_special_tokens=False`` gives the plain SentencePiece ids);
    special-token strings in the text (e.g. a literal ``"<s>"``) are tokenized as plain text,
    as SentencePiece does. ``pad_token`` is ``<unk>`` (id 0): the model was trained without
    padding, so any id works as long as padded positions are masked.

    transformers 5's ``LlamaTokenizer(vocab_file=...)`` silently builds an empty vocabulary,
    and its SentencePiece conversion ignores ``remove_extra_whitespaces``; hence this builder.
    """
    # optional (sentencepiece, protobuf): only for GGUF files with a SentencePiece vocabulary
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(Path(model_file).read_bytes())
    if proto.trainer_spec.model_type != sentencepiece_model_pb2.TrainerSpec.BPE:
        raise LinUtilsError(f"{str(model_file)!r}: only SentencePiece BPE models are supported")
    if proto.normalizer_spec.precompiled_charsmap:
        raise LinUtilsError(f"{str(model_file)!r}: SentencePiece normalization rules are unsupported")
    sp = spm.SentencePieceProcessor(model_file=str(model_file))

    def piece(i):
        return sp.id_to_piece(i) if i >= 0 else None

    return _spm_fast_tokenizer(
        [sp.id_to_piece(i) for i in range(sp.get_piece_size())],
        [sp.get_score(i) for i in range(sp.get_piece_size())],
        unk=piece(sp.unk_id()), bos=piece(sp.bos_id()), eos=piece(sp.eos_id()),
        add_dummy_prefix=proto.normalizer_spec.add_dummy_prefix,
        collapse_spaces=proto.normalizer_spec.remove_extra_whitespaces,
    )


def _spm_fast_tokenizer(pieces, scores, *, unk, bos, eos, add_dummy_prefix, collapse_spaces):
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = generate_merges(vocab, dict(zip(pieces, scores)))
    backend = Tokenizer(BPE(vocab=vocab, merges=merges, unk_token=unk, fuse_unk=True, byte_fallback=True))
    norm = []
    if collapse_spaces:
        # SentencePiece's remove_extra_whitespaces: only ' ' counts, not tabs or newlines.
        norm += [normalizers.Replace(Regex(r"\A +| +\z"), ""), normalizers.Replace(Regex(" {2,}"), " ")]
    if add_dummy_prefix:
        norm.append(normalizers.Prepend("▁"))
    norm.append(normalizers.Replace(" ", "▁"))
    backend.normalizer = normalizers.Sequence(norm)
    dec = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    if add_dummy_prefix:
        dec.append(decoders.Strip(" ", 1, 0))
    backend.decoder = decoders.Sequence(dec)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=bos, eos_token=eos, unk_token=unk, pad_token=unk,
        add_bos_token=bos is not None, add_eos_token=False, split_special_tokens=True,
        clean_up_tokenization_spaces=False,
    )
