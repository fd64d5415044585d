"""Ranking criteria: which blocks to remove (or replace) first.

Each criterion turns calibration statistics (:class:`~lin_utils.prune.calibration.CalibrationStats`)
into an order of blocks, first-removed first; :func:`removal_sets` turns an order into the block
set of each ``k`` (nested: the set for ``k`` holds the set for ``k - 1``). Two criteria choose a
contiguous span per ``k`` instead (:func:`angular_spans`).

* **linearity** (the paper's, :func:`linearity_order`): remove the most linear block first. Our
  reading of "sequentially": the blocks are ranked once, by the dense model's linearity score
  (with the residual, the paper's), and removed in that order, so every ``k`` reuses the same
  calibration statistics. The other reading (re-score the pruned model after each removal and
  remove its most linear remaining block) is :func:`linearity_order_rescored`; it needs a
  calibration pass per removal (criterion name ``linearity_rescored`` in the experiments).
* **shortgpt** (:func:`shortgpt_order`): block influence BI_i = 1 - mean cos(h_i, h_{i+1}), lowest first.
* **angular** (Gromov et al., :func:`angular_spans`): for ``n`` blocks, the span ``[l, l + n)``
  with the smallest mean angular distance arccos(cos(h_l, h_{l+n})) / pi at the last token.
* **sleb** (:func:`sleb_order`): greedily remove the block whose removal raises the calibration
  loss least, re-evaluating the pruned model at every step.
* **last** (:func:`last_order`) and **random** (:func:`random_order`, one order per seed): baselines.

:data:`CRITERIA` is the registry: one :class:`Criterion` per name, with its label on the figures,
its name in the pages' prose, its colour and its ranking function (:class:`RankInputs` ->
:class:`Removal` list). The pruning study, the figures and the pages read it; a new criterion is one
entry there.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..arch import n_blocks
from ..errors import LinUtilsError
from .calibration import CalibrationStats, calibrate
from .surgery import pruned

__all__ = [
    "CRITERIA", "Criterion", "LINEARITY_METRICS", "RankInputs", "Removal", "angular_spans", "calibration_nll",
    "criterion", "last_order", "linearity_order", "linearity_order_rescored", "random_order", "removal_sets",
    "shortgpt_order", "sleb_order",
]

LINEARITY_METRICS = ("score", "score_nores", "heldout", "heldout_nores")


def _order(values: np.ndarray, descending: bool) -> list[int]:
    """Block indices sorted by ``values`` (stable: ties keep the lower index first)."""
    v = np.asarray(values, dtype=np.float64)
    if np.isnan(v).any():
        raise LinUtilsError("a ranking value is NaN (too few calibration tokens for a held-out score?)")
    return [int(i) for i in np.argsort(-v if descending else v, kind="stable")]


def linearity_order(stats: CalibrationStats, metric: str = "score") -> list[int]:
    """The paper's criterion: blocks by linearity score, most linear first (ranked once).

    ``metric``: a column of :meth:`LinearityAccumulator.result` (``score`` = the paper's score with
    the residual; ``score_nores``, ``heldout``, ``heldout_nores``).
    """
    if metric not in LINEARITY_METRICS:
        raise LinUtilsError(f"metric must be one of {', '.join(LINEARITY_METRICS)}, got {metric!r}")
    table = stats.linearity().sort_values("block")
    return [int(table.block.iloc[i]) for i in _order(table[metric].to_numpy(), descending=True)]


def shortgpt_order(stats: CalibrationStats) -> list[int]:
    """ShortGPT: blocks by block influence 1 - mean cos(h_i, h_{i+1}), lowest first."""
    return _order(stats.block_influence(), descending=False)


def last_order(n_blocks: int) -> list[int]:
    """The last block first, then the one before it, ..."""
    if not isinstance(n_blocks, int) or n_blocks < 1:
        raise LinUtilsError(f"n_blocks must be a positive integer, got {n_blocks!r}")
    return list(range(n_blocks - 1, -1, -1))


def random_order(n_blocks: int, seed: int) -> list[int]:
    """A uniformly random order of the blocks (numpy ``default_rng(seed)``)."""
    if not isinstance(n_blocks, int) or n_blocks < 1:
        raise LinUtilsError(f"n_blocks must be a positive integer, got {n_blocks!r}")
    return [int(i) for i in np.random.default_rng(seed).permutation(n_blocks)]


def removal_sets(order: Sequence[int], ks: Iterable[int]) -> dict[int, tuple[int, ...]]:
    """``{k: sorted first k blocks of order}`` for each k in ``ks``."""
    out = {}
    for k in ks:
        if not isinstance(k, int) or not 0 <= k <= len(order):
            raise LinUtilsError(f"k must be an integer in 0..{len(order)}, got {k!r}")
        out[k] = tuple(sorted(order[:k]))
    return out


def angular_spans(stats: CalibrationStats, ks: Iterable[int]) -> dict[int, tuple[int, ...]]:
    """Gromov et al.: for each ``n`` in ``ks``, the blocks ``[l*, l* + n)`` with
    ``l* = argmin_l`` mean arccos(cos(h_l, h_{l+n})) / pi (last token). ``n = 0`` gives ()."""
    out = {}
    for n in ks:
        if n == 0:
            out[n] = ()
            continue
        start = int(np.argmin(stats.angular_distance(n)))
        out[n] = tuple(range(start, start + n))
    return out


@torch.no_grad()
def calibration_nll(model: torch.nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
                    device: str | torch.device | None = None) -> float:
    """Mean next-token negative log-likelihood (nats) of ``model`` over ``batches`` (padding excluded)."""
    if device is None:
        device = next(model.parameters()).device
    total, count = 0.0, 0
    for ids, mask in batches:
        ids, mask = ids.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        sel = mask[:, 1:].bool() & mask[:, :-1].bool()
        total -= float(logp[sel].double().sum())
        count += int(sel.sum())
    if count == 0:
        raise LinUtilsError("calibration_nll: the batches hold no scored token")
    return total / count


def sleb_order(model: torch.nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], k: int, *,
               progress: bool = True) -> tuple[list[int], pd.DataFrame]:
    """SLEB: ``k`` greedy steps, each removing the block whose removal (given the blocks already
    removed) gives the lowest calibration NLL.

    Returns:
        ``(order, trials)``: the ``k`` blocks in removal order, and one row per evaluated
        candidate (``step``, ``block``, ``nll``, ``chosen``).
    """
    L = n_blocks(model)
    if not isinstance(k, int) or not 0 <= k < L:
        raise LinUtilsError(f"k must be an integer in 0..{L - 1}, got {k!r}")
    batches = list(batches)
    removed: list[int] = []
    rows = []
    bar = tqdm(total=sum(L - s for s in range(k)), desc="SLEB", disable=not progress, leave=False)
    for step in range(k):
        best, best_nll = None, math.inf
        for b in range(L):
            if b in removed:
                continue
            with pruned(model, remove=removed + [b]):
                nll = calibration_nll(model, batches)
            rows.append(dict(step=step, block=b, nll=nll, chosen=False))
            if nll < best_nll:
                best, best_nll = b, nll
            bar.update()
        removed.append(best)
        for r in rows:
            if r["step"] == step and r["block"] == best:
                r["chosen"] = True
    bar.close()
    return removed, pd.DataFrame(rows, columns=["step", "block", "nll", "chosen"])


def linearity_order_rescored(model: torch.nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], k: int, *,
                             metric: str = "score", exclude_bos: bool = False, progress: bool = True) -> list[int]:
    """The other reading of the paper's "sequentially": remove the most linear block, re-score the
    pruned model on the calibration batches, remove its most linear remaining block, ... ``k`` times.

    Returns the removed blocks (original indices) in removal order. One calibration pass per step.
    """
    L = n_blocks(model)
    if not isinstance(k, int) or not 0 <= k < L:
        raise LinUtilsError(f"k must be an integer in 0..{L - 1}, got {k!r}")
    batches = list(batches)
    removed: list[int] = []
    for _ in range(k):
        kept = [b for b in range(L) if b not in removed]
        with pruned(model, remove=removed):
            stats = calibrate(model, batches, max_span=1, exclude_bos=exclude_bos, progress=progress)
        removed.append(kept[linearity_order(stats, metric)[0]])
    return removed


# -------------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class RankInputs:
    """What a ranking function may read: the dense model, its calibration batches and statistics,
    and the study's settings that some criteria take."""

    model: torch.nn.Module
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]]
    stats: CalibrationStats
    n_blocks: int
    k_max: int
    linearity_metric: str = "score"
    exclude_bos: bool = False
    random_seeds: tuple[int, ...] = ()
    sleb_tokens: int = 4096  # calibration tokens SLEB's greedy search scores (a prefix of the batches)
    tokens_per_batch: int = 1  # rows x sequence length of one calibration batch
    progress: bool = False

    @property
    def ks(self) -> list[int]:
        return list(range(self.k_max + 1))


@dataclass(frozen=True)
class Removal:
    """One criterion's choice: the removed blocks of each ``k`` (``sets``), the random order's
    ``seed`` (-1 otherwise), the full ``order`` of a ranking criterion (the blocks table's rank
    column; None for span criteria and seeded ones) and SLEB's evaluated candidates (``trials``)."""

    sets: dict[int, tuple[int, ...]]
    seed: int = -1
    order: tuple[int, ...] | None = None
    trials: pd.DataFrame | None = None


@dataclass(frozen=True)
class Criterion:
    """One pruning criterion.

    Attributes:
        name: its key (the ``criterion`` column of the study's tables, the ``criteria`` parameter).
        label: its legend entry on the pruning figures.
        prose: its name in the pages' text.
        colour: its colour on every pruning figure.
        rank: :class:`RankInputs` -> list of :class:`Removal` (one, or one per seed).
        dodge: horizontal offset on the figures, so that criteria that pick the same blocks stay visible.
        seeded: one removal per random seed; figures show the mean and the min-max band.
        spans: contiguous spans; linear replacement fits one map per span (ReplaceMe's variant).
    """

    name: str
    label: str
    prose: str
    colour: str
    rank: Callable[[RankInputs], list[Removal]]
    dodge: float = 0.0
    seeded: bool = False
    spans: bool = False


def _ordered(order: Sequence[int], x: RankInputs, trials: pd.DataFrame | None = None) -> list[Removal]:
    return [Removal(removal_sets(order, x.ks), order=tuple(order), trials=trials)]


def _rank_sleb(x: RankInputs) -> list[Removal]:
    n = max(1, math.ceil(x.sleb_tokens / max(1, x.tokens_per_batch)))
    order, trials = sleb_order(x.model, list(x.batches)[:n], x.k_max, progress=x.progress)
    return _ordered(order, x, trials)


# seaborn's "colorblind" palette, as the figures use it (lin_utils.plots.PALETTE)
_C = ['#0173b2', '#de8f05', '#029e73', '#d55e00', '#cc78bc', '#ca9161', '#fbafe4', '#949494', '#ece133', '#56b4e9']

_REGISTRY = [
    Criterion("linearity", "most linear first (paper)", "the paper's (most linear first)", _C[0],
              lambda x: _ordered(linearity_order(x.stats, x.linearity_metric), x)),
    Criterion("linearity_rescored", "most linear first, re-scored after each removal", "most linear, re-scored", _C[9],
              lambda x: _ordered(linearity_order_rescored(x.model, x.batches, x.k_max, metric=x.linearity_metric,
                                                          exclude_bos=x.exclude_bos, progress=x.progress), x),
              dodge=0.09),
    Criterion("shortgpt", "ShortGPT block influence", "ShortGPT", _C[1], lambda x: _ordered(shortgpt_order(x.stats), x),
              dodge=-0.06),
    Criterion("angular", "angular distance (Gromov et al.)", "angular distance", _C[2],
              lambda x: [Removal(angular_spans(x.stats, x.ks))], dodge=0.06, spans=True),
    Criterion("sleb", "SLEB (greedy calibration loss)", "SLEB", _C[4], _rank_sleb, dodge=-0.12),
    Criterion("last", "last k", "last k", _C[3], lambda x: _ordered(last_order(x.n_blocks), x), dodge=0.12),
    Criterion("random", "random (mean, min–max over seeds)", "random (mean over seeds)", _C[5],
              lambda x: [Removal(removal_sets(random_order(x.n_blocks, s), x.ks), seed=s) for s in x.random_seeds],
              seeded=True),
]

#: every criterion by name, in the order error messages list them
CRITERIA: Mapping[str, Criterion] = MappingProxyType({c.name: c for c in _REGISTRY})


def criterion(name: str) -> Criterion:
    """The registered criterion ``name``; LinUtilsError naming the valid ones for any other."""
    if name not in CRITERIA:
        raise LinUtilsError(f"unknown criterion {name!r}; expected one of {', '.join(CRITERIA)}")
    return CRITERIA[name]
