"""Calibration statistics: one streaming pass of a model over calibration text, shared by every
ranking criterion and every number of removed blocks.

The pass records, at every block boundary (numbering of :mod:`lin_utils.extract`: boundary ``i``
is the input of block ``i``, boundary ``i + 1`` its raw output):

* the float64 sufficient statistics of :class:`~lin_utils.linearity.LinearityAccumulator` for
  every block: linearity scores and the closed-form affine maps of the linear replacement;
* ``cos_sum[a, n]``: the sum over counted tokens of ``cos(h_a, h_{a+n})`` for spans of ``n``
  blocks (``n = 1`` gives ShortGPT's block influence);
* ``angle_sum[a, n]``: the sum over sequences of the angular distance
  ``arccos(cos(h_a, h_{a+n})) / pi`` at each sequence's last counted token (Gromov et al.).

Memory is O(L d^2) for the accumulator and O(L * max_span) for the rest, whatever the number of
tokens. :func:`fit_span_maps` is the one extra pass, for one affine map per contiguous span
(ReplaceMe's variant), run only for the spans a criterion picked.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..arch import n_blocks
from ..errors import LinUtilsError
from ..extract import iter_block_states
from ..linearity import LinearityAccumulator, LinearMap

__all__ = ["CalibrationStats", "calibrate", "fit_span_maps"]


@dataclass
class CalibrationStats:
    """Statistics of one calibration pass (see the module docstring).

    Attributes:
        n_blocks: L, the model's blocks.
        d: width of the residual stream.
        max_span: the longest span ``n`` for which cosines and angular distances were kept.
        n_tokens: tokens counted (padding never, BOS only if it was not excluded).
        n_sequences: rows counted (each contributes its last counted token to ``angle_sum``).
        acc: the float64 :class:`LinearityAccumulator` of every block.
        cos_sum: (L + 1, max_span + 1) float64; ``cos_sum[a, n]`` = sum over tokens of
            cos(h_a, h_{a+n}); NaN where ``a + n > L`` or ``n = 0``.
        angle_sum: (L + 1, max_span + 1) float64; ``angle_sum[a, n]`` = sum over sequences of
            arccos(cos(h_a, h_{a+n})) / pi at the last counted token.
    """

    n_blocks: int
    d: int
    max_span: int
    n_tokens: int
    n_sequences: int
    acc: LinearityAccumulator
    cos_sum: np.ndarray
    angle_sum: np.ndarray

    def linearity(self) -> pd.DataFrame:
        """One row per block: :meth:`LinearityAccumulator.result` (score, score_nores, heldout, ...)."""
        return self.acc.result()

    def mean_cosine(self, n: int = 1) -> np.ndarray:
        """(L - n + 1,) mean over tokens of cos(h_a, h_{a+n}) for a = 0..L-n."""
        self._check_span(n)
        return self.cos_sum[: self.n_blocks - n + 1, n] / self.n_tokens

    def block_influence(self) -> np.ndarray:
        """(L,) ShortGPT's BI_i = 1 - mean_tokens cos(h_i, h_{i+1})."""
        return 1.0 - self.mean_cosine(1)

    def angular_distance(self, n: int) -> np.ndarray:
        """(L - n + 1,) mean over sequences of arccos(cos(h_l, h_{l+n})) / pi at the last token."""
        self._check_span(n)
        return self.angle_sum[: self.n_blocks - n + 1, n] / self.n_sequences

    def block_maps(self, ridge: float = 0.0) -> dict[int, LinearMap]:
        """The affine map h_i -> h_{i+1} of every block (float64, closed form; optional ridge)."""
        return self.acc.fitted_maps(ridge=ridge)

    def _check_span(self, n: int) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= min(self.max_span, self.n_blocks):
            raise LinUtilsError(f"n (span length) must be an integer in 1..{min(self.max_span, self.n_blocks)}, got {n!r}")


def _unit(h: torch.Tensor) -> torch.Tensor:
    """(B, T, d) -> the same rows scaled to unit L2 norm, in float64 (zero rows stay zero)."""
    h = h.detach().to(torch.float64)
    return h / h.norm(dim=-1, keepdim=True).clamp_min(1e-300)


@torch.no_grad()
def calibrate(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, max_span: int | None = None,
              exclude_bos: bool = False, device: str | torch.device | None = None, progress: bool = True,
              total: int | None = None) -> CalibrationStats:
    """Stream ``model`` over calibration ``batches`` once and collect :class:`CalibrationStats`.

    Args:
        model: a Hugging Face causal LM.
        batches: iterable of ``(input_ids, attention_mask)``, each (B, T) (e.g.
            :meth:`lin_utils.data.TokenChunks.batches` of TinyStories train text).
        max_span: the longest span kept for cosines / angular distances (default: L).
        exclude_bos: leave position 0 out of every statistic.
    """
    L = n_blocks(model)
    max_span = L if max_span is None else max_span
    if not isinstance(max_span, int) or isinstance(max_span, bool) or not 1 <= max_span <= L:
        raise LinUtilsError(f"max_span must be an integer in 1..{L}, got {max_span!r}")
    acc = LinearityAccumulator(precision="float64")
    cos_sum = np.full((L + 1, max_span + 1), np.nan)
    angle_sum = np.full((L + 1, max_span + 1), np.nan)
    for n in range(1, max_span + 1):
        cos_sum[: L - n + 1, n] = 0.0
        angle_sum[: L - n + 1, n] = 0.0
    n_tokens = n_seq = 0
    for states, mask in iter_block_states(model, batches, blocks=None, exclude_bos=exclude_bos, device=device,
                                          progress=progress, total=total, desc="calibration"):
        acc.update(states, mask)
        m = mask.to(torch.float64)
        rows = mask.any(1)
        pos = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = torch.where(mask, pos, torch.full_like(pos, -1)).max(1).values  # (B,) last counted position
        units = [_unit(states[b]) for b in range(L + 1)]
        for a in range(L):
            for n in range(1, min(max_span, L - a) + 1):
                cos = (units[a] * units[a + n]).sum(-1)  # (B, T)
                cos_sum[a, n] += float((cos * m).sum())
                c_last = cos[rows, last[rows]].clamp(-1.0, 1.0)
                angle_sum[a, n] += float((torch.arccos(c_last) / math.pi).sum())
        n_tokens += int(mask.sum())
        n_seq += int(rows.sum())
    if n_tokens == 0:
        raise LinUtilsError("calibration counted no tokens (empty batches, or every token masked)")
    return CalibrationStats(n_blocks=L, d=acc.dim, max_span=max_span, n_tokens=n_tokens, n_sequences=n_seq,
                            acc=acc, cos_sum=cos_sum, angle_sum=angle_sum)


@torch.no_grad()
def fit_span_maps(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                  spans: Sequence[tuple[int, int]], *, ridge: float = 0.0, exclude_bos: bool = False,
                  device: str | torch.device | None = None, progress: bool = True,
                  total: int | None = None) -> dict[tuple[int, int], LinearMap]:
    """One affine map per contiguous span ``[start, stop)`` of blocks: h_start -> h_stop.

    ReplaceMe's training-free variant (one linear map replacing several consecutive blocks),
    fitted in closed form from float64 statistics accumulated batch by batch: one
    :class:`LinearityAccumulator` per span, fed the pair of boundaries ``(start, stop)`` as its
    block 0. One pass over ``batches`` for all spans.

    Returns:
        ``{(start, stop): LinearMap}`` with ``A`` (d, d) and means (d,) in float64.
    """
    L = n_blocks(model)
    spans = sorted({(int(a), int(b)) for a, b in spans})
    if not spans:
        raise LinUtilsError("spans: no span given")
    for a, b in spans:
        if not 0 <= a < b <= L:
            raise LinUtilsError(f"spans: ({a}, {b}) is not a span of blocks 0 <= start < stop <= {L}")
    blocks = sorted({i for a, b in spans for i in (a, b - 1)})
    accs = {s: LinearityAccumulator(precision="float64") for s in spans}
    for states, mask in iter_block_states(model, batches, blocks=blocks, exclude_bos=exclude_bos, device=device,
                                          progress=progress, total=total, desc="span maps"):
        for (a, b), acc in accs.items():
            acc.update({0: states[a], 1: states[b]}, mask)
    return {s: acc.fitted_maps(ridge=ridge)[0] for s, acc in accs.items()}
