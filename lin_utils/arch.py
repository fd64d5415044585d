"""Architecture introspection and tiny configs: where a model keeps its blocks, how wide it is.

No loading code here (that is :mod:`lin_utils.models`) and no GGUF (:mod:`lin_utils.gguf`).
"""

from __future__ import annotations

import torch
import transformers
from transformers import AutoModel, AutoModelForCausalLM

from .errors import LinUtilsError

__all__ = [
    "decoder_blocks", "n_blocks", "hidden_size", "is_encoder", "is_encoder_config", "auto_class",
    "tiny_config", "from_config", "FAMILIES",
]

# Bidirectional encoder families (unless their config says is_decoder=True).
ENCODER_TYPES = frozenset({
    "bert", "roberta", "xlm-roberta", "distilbert", "albert", "electra", "mpnet", "deberta",
    "deberta-v2", "camembert", "modernbert",
})

# Where each family keeps its blocks; tried in order on the model as given.
BLOCK_PATHS = (
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
# Model structure


def is_encoder_config(config) -> bool:
    """True when ``config`` describes a bidirectional encoder (BERT and kin)."""
    return getattr(config, "model_type", None) in ENCODER_TYPES and not getattr(config, "is_decoder", False)


def is_encoder(model) -> bool:
    """True for bidirectional encoders (BERT and kin), False for causal LMs."""
    return is_encoder_config(model.config)


def auto_class(config):
    """AutoModelForCausalLM for decoders; AutoModel for encoders or configs it does not map."""
    if is_encoder_config(config):
        return AutoModel
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    return AutoModelForCausalLM if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES else AutoModel


def decoder_blocks(model) -> torch.nn.ModuleList:
    """The ordered transformer blocks of ``model`` (wrapper or bare base model, any family)."""
    for path in BLOCK_PATHS:
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
    cls = auto_class(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls.from_config(config, dtype=torch.float32)
    return model.to(dtype=dtype, device=device).eval()
