"""Depth surgery on a Hugging Face decoder: remove blocks, or replace them by affine maps.

Three edits, each on the model's block list (:func:`lin_utils.arch.decoder_blocks`):

* **removal** (:func:`remove_blocks`): the blocks are dropped. The result is a model of the same
  class whose ``config.num_hidden_layers`` (``n_layer`` for GPT-2 / BLOOM) and per-layer
  ``config.layer_types`` match, and whose attention modules are renumbered (``layer_idx``), so
  generation with a KV cache, ``save_pretrained`` and ``from_pretrained`` work.
* **linear replacement** (:func:`replace_with_linear`): block ``i`` becomes a :class:`LinearBlock`,
  ``y = (x - mu_x) A + mu_y`` with the map of :meth:`lin_utils.linearity.LinearityAccumulator.fitted_maps`
  (d x d weight, d bias), called like the block it replaces.
* **span replacement** (:func:`replace_span`, ReplaceMe's variant): blocks ``[start, stop)`` become
  one :class:`LinearBlock` mapping h_start to h_stop.

A model holding :class:`LinearBlock` modules is for in-memory use (perplexity, lm-eval
log-likelihoods, full forward passes); ``from_pretrained`` cannot rebuild it, and generation must
run with ``use_cache=False`` when block 0 is replaced (the KV cache measures the sequence length
on layer 0, which a linear map does not fill).

:func:`pruned` applies any of these edits temporarily and restores the model afterwards: the
experiments evaluate dozens of variants of one model without copying it.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import torch

from ..arch import decoder_blocks
from ..errors import LinUtilsError
from ..linearity import LinearMap

__all__ = ["LinearBlock", "count_parameters", "pruned", "remove_blocks", "replace_span", "replace_with_linear"]


class LinearBlock(torch.nn.Module):
    """An affine stand-in for one decoder block (or a span of them): ``y = x W^T + b``.

    Called like a decoder block: ``block(hidden_states, *args, **kwargs)`` with ``hidden_states``
    (B, T, d); every other argument (masks, positions, cache) is accepted and ignored. Returns a
    (B, T, d) tensor, or a 1-tuple when the block it replaces returned a tuple.

    Attributes:
        proj: ``torch.nn.Linear(d, d)``; ``weight = A^T`` and ``bias = mu_y - mu_x A``.
        span: ``(start, stop)``, the original blocks it stands for.
    """

    def __init__(self, d: int, span: tuple[int, int], *, tuple_output: bool = False):
        super().__init__()
        self.proj = torch.nn.Linear(d, d)
        self.span = (int(span[0]), int(span[1]))
        self.tuple_output = tuple_output

    @classmethod
    def from_map(cls, m: LinearMap, span: tuple[int, int], *, tuple_output: bool = False,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> "LinearBlock":
        """The block computing ``m.predict`` (float64 map rounded to ``dtype``)."""
        A = torch.as_tensor(m.A, dtype=torch.float64)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise LinUtilsError(f"map of span {span}: A must be square (d, d), got shape {tuple(A.shape)}")
        bias = torch.as_tensor(m.mu_y, dtype=torch.float64) - torch.as_tensor(m.mu_x, dtype=torch.float64) @ A
        block = cls(A.shape[0], span, tuple_output=tuple_output)
        with torch.no_grad():
            block.proj.weight.copy_(A.T)
            block.proj.bias.copy_(bias)
        return block.to(dtype=dtype, device=device)

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        y = self.proj(hidden_states)
        return (y,) if self.tuple_output else y

    def extra_repr(self) -> str:
        return f"span={self.span}"


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def _returns_tuple(model, blocks) -> bool:
    """Whether the model's blocks return a tuple (older transformers) rather than a tensor."""
    seen = []
    handle = blocks[0].register_forward_hook(lambda _m, _a, out: seen.append(isinstance(out, tuple)))
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(input_ids=torch.zeros((1, 2), dtype=torch.long, device=device), use_cache=False)
    finally:
        handle.remove()
    return bool(seen and seen[0])


def _layout(model, remove: Iterable[int] = (), linear: Mapping[int, LinearMap] | None = None,
            span: tuple[int, int, LinearMap] | None = None) -> list[tuple[torch.nn.Module, int]]:
    """The new block list as ``(module, original index)`` pairs (the index a span starts at)."""
    blocks = decoder_blocks(model)
    L = len(blocks)
    remove = set(_check_indices(remove, L, "remove"))
    linear = dict(linear or {})
    _check_indices(linear, L, "linear")
    if remove & set(linear):
        raise LinUtilsError(f"remove and linear name the same blocks {sorted(remove & set(linear))}")
    if span is not None:
        start, stop, m = span
        if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start < stop <= L):
            raise LinUtilsError(f"span: ({start!r}, {stop!r}) is not a span of blocks 0 <= start < stop <= {L}")
        if set(range(start, stop)) & (remove | set(linear)):
            raise LinUtilsError("span overlaps blocks that remove or linear already name")
    if len(remove) >= L:
        raise LinUtilsError(f"remove: cannot remove all {L} blocks")
    param = next(model.parameters())
    tuple_output = _returns_tuple(model, blocks) if (linear or span) else False
    out = []
    for i, blk in enumerate(blocks):
        if span is not None and span[0] <= i < span[1]:
            if i == span[0]:
                out.append((LinearBlock.from_map(span[2], (span[0], span[1]), tuple_output=tuple_output,
                                                 dtype=param.dtype, device=param.device), i))
        elif i in linear:
            out.append((LinearBlock.from_map(linear[i], (i, i + 1), tuple_output=tuple_output,
                                             dtype=param.dtype, device=param.device), i))
        elif i not in remove:
            out.append((blk, i))
    return out


def _check_indices(idx: Iterable[int], L: int, name: str) -> list[int]:
    out = []
    for b in idx:
        if not isinstance(b, int) or isinstance(b, bool) or not 0 <= b < L:
            raise LinUtilsError(f"{name}: block index {b!r} out of range for a model with {L} blocks")
        out.append(b)
    return out


def _layer_idx_modules(block: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in block.modules() if isinstance(getattr(m, "layer_idx", None), int)]


def _apply(model, layout: list[tuple[torch.nn.Module, int]]) -> dict:
    """Install ``layout`` in place; returns what :func:`_restore` needs to undo it."""
    blocks = decoder_blocks(model)
    cfg = model.config
    saved = dict(blocks=list(blocks), n_layers=len(blocks), layer_types=getattr(cfg, "layer_types", None),
                 layer_idx=[(m, m.layer_idx) for blk in blocks for m in _layer_idx_modules(blk)])
    del blocks[:]
    for j, (module, _) in enumerate(layout):
        if not isinstance(module, LinearBlock):
            for m in _layer_idx_modules(module):
                m.layer_idx = j
        blocks.append(module)
    cfg.num_hidden_layers = len(layout)
    types = saved["layer_types"]
    if isinstance(types, (list, tuple)) and len(types) == saved["n_layers"]:
        cfg.layer_types = [types[src] for _, src in layout]
    return saved


def _restore(model, saved: dict) -> None:
    blocks = decoder_blocks(model)
    del blocks[:]
    for blk in saved["blocks"]:
        blocks.append(blk)
    for m, idx in saved["layer_idx"]:
        m.layer_idx = idx
    model.config.num_hidden_layers = saved["n_layers"]
    if saved["layer_types"] is not None:
        model.config.layer_types = saved["layer_types"]


@contextmanager
def pruned(model: torch.nn.Module, *, remove: Iterable[int] = (), linear: Mapping[int, LinearMap] | None = None,
           span: tuple[int, int, LinearMap] | None = None) -> Iterator[torch.nn.Module]:
    """Temporarily edit ``model`` in place; the original blocks and config come back on exit.

    Args:
        remove: original block indices to drop.
        linear: ``{block index: LinearMap}``, blocks replaced one by one by their affine maps.
        span: ``(start, stop, LinearMap)``: blocks ``[start, stop)`` replaced by one map.

    Yields:
        ``model`` itself, edited. Do not save it from inside the context; use
        :func:`remove_blocks` / :func:`replace_with_linear` for a lasting copy.
    """
    saved = _apply(model, _layout(model, remove, linear, span))
    try:
        yield model
    finally:
        _restore(model, saved)


def _edited_copy(model, inplace: bool, **edit):
    if not inplace:
        model = copy.deepcopy(model)
    _apply(model, _layout(model, **edit))
    return model


def remove_blocks(model: torch.nn.Module, blocks: Iterable[int], *, inplace: bool = False) -> torch.nn.Module:
    """A model of the same class without ``blocks`` (original indices); a deep copy unless ``inplace``.

    The config's layer count and per-layer types are updated and attention modules renumbered,
    so ``generate``, ``save_pretrained`` and ``from_pretrained`` work on the result.
    """
    return _edited_copy(model, inplace, remove=list(blocks))


def replace_with_linear(model: torch.nn.Module, maps: Mapping[int, LinearMap], *, inplace: bool = False) -> torch.nn.Module:
    """Each block ``i`` in ``maps`` replaced by ``LinearBlock.from_map(maps[i])``; a deep copy unless ``inplace``."""
    return _edited_copy(model, inplace, linear=dict(maps))


def replace_span(model: torch.nn.Module, start: int, stop: int, m: LinearMap, *, inplace: bool = False) -> torch.nn.Module:
    """Blocks ``[start, stop)`` replaced by one :class:`LinearBlock` (h_start -> h_stop)."""
    return _edited_copy(model, inplace, span=(start, stop, m))
