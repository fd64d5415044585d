"""Scans: run a model over a corpus and score its blocks, from one frozen configuration.

:class:`ScanConfig` is the single description of a scan, shared by the CLI
(``lin-utils profile``), the figure computations and the result cache key: the same
parameters give the same rows whichever way they are run.

The loops here run models (:func:`profile_model`, :func:`token_errors`); the math they feed
lives in :mod:`lin_utils.linearity`, which knows nothing of models.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from .arch import hidden_size, is_encoder, n_blocks
from .data import text_chunks
from .errors import LinUtilsError
from .extract import iter_block_states, normalize_blocks
from .linearity import PRECISIONS, LinearityAccumulator, LinearMap, check_token_count
from .models import load_model

__all__ = [
    "model_key",
    "DTYPES", "ScanConfig", "describe_model", "load_scan_inputs", "profile_model", "scan_blocks",
    "token_errors", "with_description",
]

DTYPES = ("float32", "float64", "bfloat16", "float16")


def model_key(spec: str) -> dict:
    """What identifies a model spec's weights in a result-cache key: ``{"model": spec}``, plus
    ``"weights"`` (:func:`lin_utils.zoo.key`) for a ``zoo:NAME[@STEP]`` spec, so that results are
    recomputed when the zoo entry's training configuration changes."""
    out = {"model": spec}
    if spec.startswith("zoo:"):
        from . import zoo  # heavy and optional: the zoo pulls in the training code; only for zoo: specs

        out["weights"] = zoo.key(spec[len("zoo:"):].partition("@")[0])
    return out


@dataclass(frozen=True)
class ScanConfig:
    """Everything that determines the rows of a linearity scan of one model.

    Attributes:
        model: a :func:`lin_utils.models.load_model` spec.
        dataset, split: a corpus of :func:`lin_utils.data.load_text` (or a path to a .txt file).
        seq_len: tokens per row (clamped to the model's context length).
        max_tokens: real tokens scanned (BOS included).
        batch_size: rows per forward pass.
        dtype: the model's dtype name (``float32``, ``bfloat16``, ...).
        device: ``cpu``, ``cuda``, ``cuda:1``...
        seed: seeds random-init models (``random:SPEC``).
        add_bos: start every row with BOS (the tokenizer's, or EOS when it has none).
        exclude_bos: leave position 0 out of the statistics.
        precision: the accumulator's Gram precision (see :class:`~lin_utils.linearity.LinearityAccumulator`).
        blocks: block indices to score; ``None`` = all.
    """

    model: str
    dataset: str = "tinystories"
    split: str = "validation"
    seq_len: int = 256
    max_tokens: int = 16384
    batch_size: int = 8
    dtype: str = "float32"
    device: str = "cpu"
    seed: int = 0
    add_bos: bool = True
    exclude_bos: bool = False
    precision: str = "float64"
    blocks: tuple[int, ...] | None = None

    def __post_init__(self):
        for name in ("model", "dataset", "split", "device"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise LinUtilsError(f"{name} must be a non-empty string, got {value!r}")
        for name in ("seq_len", "max_tokens", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise LinUtilsError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise LinUtilsError(f"seed must be an integer, got {self.seed!r}")
        for name in ("add_bos", "exclude_bos"):
            if not isinstance(getattr(self, name), bool):
                raise LinUtilsError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.dtype not in DTYPES:
            raise LinUtilsError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.precision not in PRECISIONS:
            raise LinUtilsError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.blocks is not None:
            if isinstance(self.blocks, (str, bytes)) or not isinstance(self.blocks, Iterable):
                raise LinUtilsError(f"blocks must be a list of block indices, got {self.blocks!r}")
            blocks = tuple(self.blocks)
            if not all(isinstance(b, int) and not isinstance(b, bool) for b in blocks):
                raise LinUtilsError(f"blocks must be a list of block indices, got {self.blocks!r}")
            object.__setattr__(self, "blocks", blocks)

    def replace(self, **changes) -> "ScanConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def key(self) -> dict:
        """The parameters as plain JSON types: the result cache's key for this scan.

        A ``zoo:NAME[@STEP]`` model also contributes its weight key (:func:`lin_utils.zoo.key`),
        so a scan is recomputed when the zoo entry's training configuration changes.
        """
        out = dataclasses.asdict(self)
        # stored as "layers", the field's name when the committed tables were keyed: same hashes
        out["layers"] = None if out.pop("blocks") is None else list(self.blocks)
        out.update(model_key(self.model))
        return out

    @classmethod
    def from_params(cls, model: str, params: Mapping, **overrides) -> "ScanConfig":
        """A config for ``model`` from a parameter dict that may hold other keys too."""
        names = {f.name for f in dataclasses.fields(cls)} - {"model"}
        return cls(model=model, **{k: v for k, v in {**params, **overrides}.items() if k in names})


def load_scan_inputs(cfg: ScanConfig):
    """Load the model and cut the corpus into rows no longer than its context.

    Returns:
        ``(model, tokenizer, chunks)``; ``chunks`` is a :class:`lin_utils.data.TokenChunks`.
    """
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise LinUtilsError(f"device {cfg.device!r}: CUDA is not available on this machine")
    model, tokenizer = load_model(cfg.model, dtype=getattr(torch, cfg.dtype), device=cfg.device, seed=cfg.seed)
    limit = getattr(model.config, "max_position_embeddings", None) or cfg.seq_len
    chunks = text_chunks(cfg.dataset, cfg.split, tokenizer, min(cfg.seq_len, limit),
                         max_tokens=cfg.max_tokens, add_bos=cfg.add_bos)
    return model, tokenizer, chunks


def describe_model(spec: str, model) -> dict:
    """Labels of a model for tables and plots: ``model``, ``arch``, ``trained``, ``n_blocks``.

    ``arch`` is ``"decoder"`` or ``"encoder"``; ``trained`` is False for ``random:`` specs.
    """
    return dict(model=spec, arch="encoder" if is_encoder(model) else "decoder",
                trained=not spec.startswith("random:"), n_blocks=n_blocks(model))


def with_description(table: pd.DataFrame, info: dict) -> pd.DataFrame:
    """``table`` with the :func:`describe_model` columns first and ``depth`` = block / (n_blocks - 1)."""
    table = table.copy()
    for k, v in reversed(info.items()):
        table.insert(0, k, v)
    table["depth"] = table.block / max(info["n_blocks"] - 1, 1)
    return table


def scan_blocks(cfg: ScanConfig, *, progress: bool = True, model=None, chunks=None) -> tuple[pd.DataFrame, LinearityAccumulator]:
    """Load, check n > d before any forward pass, stream, score.

    ``model`` and ``chunks`` may be passed when already loaded by :func:`load_scan_inputs`.

    Returns:
        ``(table, accumulator)``: one row per scored block, with the :func:`describe_model`
        columns, the columns of :meth:`LinearityAccumulator.result` and ``depth``; and the
        filled accumulator.
    """
    if model is None or chunks is None:
        model, _, chunks = load_scan_inputs(cfg)
    n = chunks.n_tokens - (len(chunks) if cfg.exclude_bos and chunks.has_bos else 0)
    check_token_count(n, hidden_size(model), f"model {cfg.model}", warn=False)
    acc = profile_model(model, chunks.batches(cfg.batch_size), blocks=cfg.blocks, exclude_bos=cfg.exclude_bos,
                        device=cfg.device, progress=progress, total=chunks.n_batches(cfg.batch_size),
                        precision=cfg.precision)
    return with_description(acc.result(), describe_model(cfg.model, model)), acc


def profile_model(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    blocks: Sequence[int] | None = None,
    exclude_bos: bool = False,
    device: torch.device | str | None = None,
    progress: bool = True,
    total: int | None = None,
    precision: str = "float64",
) -> LinearityAccumulator:
    """Stream ``model`` over ``batches`` and accumulate linearity statistics for its blocks.

    Args:
        batches: iterable of ``(input_ids, attention_mask)``, each (B, T); see
            :meth:`lin_utils.data.TokenChunks.batches`.
        blocks: block indices to score; ``None`` = all.
        precision: see :class:`~lin_utils.linearity.LinearityAccumulator`.

    Returns:
        The filled accumulator; call ``.result()`` for the table.
    """
    acc = LinearityAccumulator(blocks=normalize_blocks(blocks, n_blocks(model)), precision=precision)
    for states, mask in iter_block_states(
        model, batches, blocks=blocks, exclude_bos=exclude_bos, device=device, progress=progress, total=total, desc="linearity"
    ):
        acc.update(states, mask)
    return acc


def token_errors(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    maps: Mapping[int, LinearMap],
    *,
    exclude_bos: bool = False,
    device: torch.device | str | None = None,
    progress: bool = True,
    total: int | None = None,
) -> pd.DataFrame:
    """Second pass for Fig 9: per-token relative L2 error of each block's fitted map.

    Returns:
        Tidy frame with columns ``block``, ``position`` (index within the sequence) and
        ``error`` (= ||y_hat - y|| / rms_y; mean of its square is 1 - R^2 on the fitted tokens).
    """
    parts = []
    for states, mask in iter_block_states(
        model, batches, blocks=sorted(maps), exclude_bos=exclude_bos, device=device, progress=progress, total=total, desc="token errors"
    ):
        positions = torch.arange(mask.shape[1]).expand_as(mask)[mask.cpu()].numpy()
        for i, m in maps.items():
            err = m.relative_error(states[i][mask], states[i + 1][mask])
            parts.append(pd.DataFrame({"block": i, "position": positions, "error": err}))
    return pd.concat(parts, ignore_index=True)
