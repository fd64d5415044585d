"""Model shapes by name, and the one dataclass that says how a model is trained.

Model sizes (Mistral architecture: RMSNorm, SwiGLU MLP, rotary positions, grouped-query
attention, untied input and output embeddings, no biases, no sliding window):

=================  ======  ======  =====  ========  =======  ======================================
name               d       blocks  heads  kv heads  MLP      parameters
=================  ======  ======  =====  ========  =======  ======================================
``mistral-150m``   768     12      12     4         3072     152,980,224 at vocab 32,000
``mistral-650m``   1280    24      20     4         5120     648,213,760 at vocab 32,000
``gpu-small``      512     8       8      4         1536     33,563,136 at vocab 8,192
``cpu-large``      128     8       4      2         384      2,099,328 at vocab 2,048
``cpu-small``      128     4       4      2         384      1,311,872 at vocab 2,048
``smoke-large``    48      4       4      2         128      150,960 at vocab 512
``smoke-small``    32      2       2      1         64       51,360 at vocab 512
=================  ======  ======  =====  ========  =======  ======================================

The paper trains "150M" and "650M" Mistral models on TinyStories without giving shapes. The two
``mistral-*`` sizes are standard choices: GPT-2-small's width and depth (d=768, 12 blocks) and a
d=1280, 24-block model, both with 64-dimensional heads, 4 key/value heads (GQA) and a 4·d SwiGLU
MLP; at Mistral's own vocabulary of 32,000 they have the exact parameter counts above
(``tests/test_train.py`` recomputes every number in this table). Head dimension is 32 for the cpu
sizes, 16 and 12 for the smoke sizes, 64 otherwise.

:class:`TrainConfig` holds everything that determines a model's weights (architecture,
tokenizer, data, token budget, optimizer, schedule, seed, regularizer) plus a few fields that do
not (evaluation and checkpoint cadence); :meth:`TrainConfig.key` hashes only the former, so the
zoo rebuilds a model exactly when its weights would change.

The scaling study's grid sizes are not listed here: :func:`grid_size` names them by family, blocks
and width, and :func:`architecture` builds their shape from the name.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field

import torch
import transformers

from .tokenizer import TokenizerSpec, data_identity

__all__ = ["SIZES", "TrainConfig", "settable_fields", "zoo_config", "count_parameters", "TRAIN_CODE_VERSION",
           "GRID_FAMILIES", "grid_size", "architecture"]

#: bumped whenever the training loop changes what weights a given config produces
TRAIN_CODE_VERSION = 1

#: architecture of each named size: width, blocks, heads, key/value heads, MLP width
SIZES: dict[str, dict[str, int]] = {
    "smoke-small": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        num_key_value_heads=1, intermediate_size=64),
    "smoke-large": dict(hidden_size=48, num_hidden_layers=4, num_attention_heads=4,
                        num_key_value_heads=2, intermediate_size=128),
    "cpu-small": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=384),
    "cpu-large": dict(hidden_size=128, num_hidden_layers=8, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=384),
    "gpu-small": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8,
                      num_key_value_heads=4, intermediate_size=1536),
    "mistral-150m": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         num_key_value_heads=4, intermediate_size=3072),
    "mistral-650m": dict(hidden_size=1280, num_hidden_layers=24, num_attention_heads=20,
                         num_key_value_heads=4, intermediate_size=5120),
}

# Special-token ids of every tokenizer trained by lin_utils.train.tokenizer.
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2


# Grid sizes of the scaling study (its book page: lin_utils.pages), built from their name
# ``grid-<family>-L<blocks>-d<width>`` rather than listed: 32-dimensional heads (one head below
# d=32), half as many key/value heads (at least one), a 3·d SwiGLU MLP, as the cpu sizes have.
# ``mistral`` is pre-norm (RMSNorm before each sublayer, like Llama); ``olmo2`` has the same
# shapes with OLMo2's placement: RMSNorm on each sublayer's output before it is added to the
# stream (and on queries and keys), none on its input.
GRID_FAMILIES = ("mistral", "olmo2")
_GRID = re.compile(r"grid-(?P<family>[a-z0-9]+)-L(?P<blocks>[1-9][0-9]*)-d(?P<width>[1-9][0-9]*)")


def grid_size(blocks: int, width: int, family: str = "mistral") -> str:
    """The name of a scaling-study size: ``grid-<family>-L<blocks>-d<width>``."""
    for name, v in (("blocks", blocks), ("width", width)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if family not in GRID_FAMILIES:
        raise ValueError(f"family must be one of {', '.join(GRID_FAMILIES)}, got {family!r}")
    if width % 2 or (width > 32 and width % 32):
        raise ValueError(f"width {width} must be even, and a multiple of 32 above 32 (32-dim heads)")
    return f"grid-{family}-L{blocks}-d{width}"


def architecture(size: str) -> dict:
    """The architecture of a named size: :data:`SIZES`' entry (Mistral), or for a grid size
    (:func:`grid_size`) its shape plus ``family``."""
    if size in SIZES:
        return SIZES[size]
    m = _GRID.fullmatch(size) if isinstance(size, str) else None
    if m is None or m["family"] not in GRID_FAMILIES:
        raise ValueError(f"unknown model size {size!r}; expected one of {', '.join(SIZES)} or "
                         f"grid-<{'|'.join(GRID_FAMILIES)}>-L<blocks>-d<width>")
    blocks, width = int(m["blocks"]), int(m["width"])
    try:
        grid_size(blocks, width, m["family"])  # validates the shape
    except ValueError as exc:
        raise ValueError(f"model size {size!r}: {exc}") from None
    heads = max(1, width // 32)
    return dict(family=m["family"], hidden_size=width, num_hidden_layers=blocks, num_attention_heads=heads,
                num_key_value_heads=max(1, heads // 2), intermediate_size=3 * width)


def zoo_config(size: str, vocab_size: int, *, max_position_embeddings: int = 2048,
               initializer_range: float = 0.02):
    """A ``transformers.MistralConfig`` for a named size (see the table in the module docstring);
    an ``Olmo2Config`` for an ``olmo2`` grid size (:func:`grid_size`).

    Untied embeddings, no sliding window, rotary base 10,000, initializer std ``initializer_range``
    (default 0.02: every linear layer and the embeddings are drawn from N(0, std²)), pad/BOS/EOS
    ids 0/1/2 (those of :func:`lin_utils.train.tokenizer.train_tokenizer`).
    """
    arch = dict(architecture(size))
    family = arch.pop("family", "mistral")
    if vocab_size < 3:
        raise ValueError(f"vocab_size must be >= 3 (pad, BOS, EOS), got {vocab_size}")
    common = dict(vocab_size=vocab_size, max_position_embeddings=max_position_embeddings,
                  tie_word_embeddings=False, rope_theta=10_000.0,
                  initializer_range=initializer_range, rms_norm_eps=1e-5, hidden_act="silu",
                  attention_dropout=0.0, use_cache=True,
                  pad_token_id=PAD_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID, **arch)
    if family == "olmo2":
        return transformers.Olmo2Config(attention_bias=False, **common)
    return transformers.MistralConfig(sliding_window=None, **common)


def count_parameters(size: str, vocab_size: int) -> int:
    """Exact parameter count of a named size, from a model built on the meta device (no memory)."""
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(zoo_config(size, vocab_size))
    return sum(p.numel() for p in model.parameters())


#: weight fields added after the first models were trained, with the default at which they are
#: left out of :meth:`TrainConfig.weight_fields` (and so of the key)
_KEY_STABLE_DEFAULTS = {"init_std": 0.02}


@dataclass(frozen=True)
class TrainConfig:
    """How one model is pretrained on TinyStories.

    Weight-determining fields (hashed by :meth:`key`): ``size`` and ``vocab_size`` (the
    architecture), ``tokenizer_stories`` (how many training stories the BPE is trained on; None =
    all), ``data_stories`` (how many training stories form the token stream; None = all),
    ``seq_len``, ``batch_size`` (rows per optimizer step, all processes together),
    ``micro_batch_size`` (rows per forward pass; None = the whole batch), ``max_tokens`` (token
    budget; the run takes ``max_tokens // (batch_size * seq_len)`` steps), ``lr``,
    ``min_lr_ratio``, ``warmup_steps``, ``weight_decay``, ``betas``, ``grad_clip``, ``seed``,
    ``regularizer`` (``"none"``, ``"cosine"`` or ``"mse"``), ``reg_lambda``, ``reg_boundaries``
    (None = all boundaries ``0..L``; see :mod:`lin_utils.train.regularizers`) and ``precision``
    (``"fp32"``, or ``"bf16"``: bf16 autocast around fp32 master weights), ``init_std`` (the
    std of the normal initialisation of every matrix and embedding).

    A weight field added after models were trained is hashed only when it differs from its
    default (:data:`_KEY_STABLE_DEFAULTS`), so that the models trained before it keep their keys.

    Cadence fields (not hashed): ``eval_every`` (steps between validation losses; 0 = only at
    the end), ``val_tokens`` (validation tokens per evaluation), ``log_every`` and
    ``state_every_s`` (seconds between resume states, checked every ``log_every`` steps, besides
    the states written at every log-spaced checkpoint), and ``num_threads`` (torch CPU threads during the run; None = leave as is). The
    thread count can change the last bits of the weights (the order of float reductions), as the
    device can, but not what the model learns, so like the device it is not hashed.
    """

    size: str = "smoke-small"
    vocab_size: int = 512
    tokenizer_stories: int | None = None
    data_stories: int | None = None
    seq_len: int = 64
    batch_size: int = 8
    micro_batch_size: int | None = None
    max_tokens: int = 16_384
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 5
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    seed: int = 0
    regularizer: str = "none"
    reg_lambda: float = 0.0
    reg_boundaries: tuple[int, ...] | None = None
    precision: str = "fp32"
    init_std: float = 0.02
    # --- cadence only: never changes the weights ---
    eval_every: int = field(default=0, metadata={"cadence": True})
    val_tokens: int = field(default=8192, metadata={"cadence": True})
    log_every: int = field(default=10, metadata={"cadence": True})
    state_every_s: float = field(default=300.0, metadata={"cadence": True})
    num_threads: int | None = field(default=None, metadata={"cadence": True})

    def __post_init__(self):
        architecture(self.size)  # ValueError for an unknown size
        if self.regularizer not in ("none", "cosine", "mse"):
            raise ValueError(f"regularizer must be 'none', 'cosine' or 'mse', got {self.regularizer!r}")
        if self.regularizer == "none" and self.reg_lambda != 0:
            raise ValueError("reg_lambda must be 0 without a regularizer")
        if not self.init_std > 0:
            raise ValueError(f"init_std must be positive, got {self.init_std}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.steps < 1:
            raise ValueError(f"max_tokens={self.max_tokens} is less than one step of "
                             f"{self.batch_size}x{self.seq_len} tokens")
        mb = self.micro_batch_size
        if mb is not None and (mb < 1 or self.batch_size % mb):
            raise ValueError(f"micro_batch_size {mb} must divide batch_size {self.batch_size}")
        if self.reg_boundaries is not None:
            object.__setattr__(self, "reg_boundaries", tuple(self.reg_boundaries))
        object.__setattr__(self, "betas", tuple(self.betas))

    @property
    def steps(self) -> int:
        """Optimizer steps of the run."""
        return self.max_tokens // (self.batch_size * self.seq_len)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    def weight_fields(self) -> dict:
        """The fields that determine the weights, plus the training-code version."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if not f.metadata.get("cadence")}
        out["betas"] = list(out["betas"])
        if out["reg_boundaries"] is not None:
            out["reg_boundaries"] = list(out["reg_boundaries"])
        for name, default in _KEY_STABLE_DEFAULTS.items():
            if out[name] == default:
                del out[name]
        out["architecture"] = architecture(self.size)
        out["train_code_version"] = TRAIN_CODE_VERSION
        return out

    def key(self) -> str:
        """sha256 (hex, 16 chars) of :meth:`weight_fields` together with the tokenizer and data
        identities."""
        blob = {"train": self.weight_fields(),
                "tokenizer": TokenizerSpec(self.vocab_size, self.tokenizer_stories).identity(),
                "data": data_identity(self.data_stories)}
        text = json.dumps(blob, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(d["betas"])
        if d["reg_boundaries"] is not None:
            d["reg_boundaries"] = list(d["reg_boundaries"])
        return d

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def settable_fields(fixed=()) -> set[str]:
    """The :class:`TrainConfig` field names a caller may set, all but ``fixed`` (the zoo's
    ``$LIN_ZOO_OVERRIDE``, the scaling study's ``train_config``)."""
    return {f.name for f in dataclasses.fields(TrainConfig)} - set(fixed)
