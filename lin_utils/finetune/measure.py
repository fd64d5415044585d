"""Linearity before and after fine-tuning, on fixed tokens.

A :class:`LinearityProbe` holds one fixed set of token batches (a task's held-out inputs, or a
corpus) and the BOS rule. :meth:`LinearityProbe.measure` streams a trunk over exactly those
batches (:func:`lin_utils.scan.profile_model`) and averages linearity over blocks, as the paper's
Table 1 does; the batches' sha256 goes into the result, and :func:`delta` refuses to subtract
two measurements that did not see the same tokens, n and BOS rule.
"""
from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..arch import hidden_size
from ..data import text_chunks
from ..errors import LinUtilsError
from ..linearity import LinearityWarning, check_token_count
from ..scan import profile_model
from .tasks import pad_right

__all__ = ["LinearityProbe", "Measurement", "delta"]


@dataclass(frozen=True)
class Measurement:
    """Linearity of one model on one probe, averaged over its blocks.

    Attributes:
        nores: mean over blocks of the in-sample score without the residual (Y = h_{i+1} − h_i).
        heldout_nores: the same with the accumulator's 2-fold held-out R².
        score: mean in-sample score with the residual.
        n_tokens, d, chance: tokens scored, width, d / (n − 1).
        n_blocks: blocks averaged.
        tokens_sha256: fingerprint of the probe's token batches and BOS rule.
    """

    nores: float
    heldout_nores: float
    score: float
    n_tokens: int
    d: int
    chance: float
    n_blocks: int
    tokens_sha256: str


class LinearityProbe:
    """Fixed token batches and a BOS rule to score models on.

    Args:
        batches: ``(input_ids, attention_mask)`` pairs, each (B, T) long, right-padded; kept as given.
        exclude_bos: leave position 0 out of the statistics.
        name: a label for messages (``"tinystories"``, ``"boolq held-out"``).
    """

    def __init__(self, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], *, exclude_bos: bool, name: str):
        if not batches:
            raise LinUtilsError(f"probe {name}: no batches")
        self.batches = [(ids.detach().cpu().clone(), mask.detach().cpu().clone()) for ids, mask in batches]
        self.exclude_bos = bool(exclude_bos)
        self.name = name
        h = hashlib.sha256(f"exclude_bos={self.exclude_bos}".encode())
        for ids, mask in self.batches:
            h.update(ids.numpy().tobytes())
            h.update(mask.numpy().tobytes())
        self.sha256 = h.hexdigest()

    @property
    def n_tokens(self) -> int:
        """Tokens that enter the statistics (padding and, if excluded, BOS left out)."""
        n = sum(int(m.sum()) for _, m in self.batches)
        return n - (sum(int(m[:, 0].sum()) for _, m in self.batches) if self.exclude_bos else 0)

    @classmethod
    def from_corpus(cls, tokenizer, *, dataset: str = "tinystories", split: str = "validation", seq_len: int = 256,
                    max_tokens: int = 4096, batch_size: int = 8, exclude_bos: bool = True) -> "LinearityProbe":
        """The head of a corpus as rows of ``seq_len`` tokens starting with BOS
        (:func:`lin_utils.data.text_chunks`), ``max_tokens`` real tokens in all."""

        chunks = text_chunks(dataset, split, tokenizer, seq_len, max_tokens=max_tokens, add_bos=True)
        return cls(list(chunks.batches(batch_size)), exclude_bos=exclude_bos, name=f"{dataset} {split}")

    @classmethod
    def from_sequences(cls, seqs: Sequence[Sequence[int]], pad_id: int, *, max_tokens: int, batch_size: int = 8,
                       exclude_bos: bool = True, name: str = "task") -> "LinearityProbe":
        """The first sequences of ``seqs`` (each starting with BOS) up to ``max_tokens`` real
        tokens, right-padded into batches of ``batch_size``."""

        kept, total = [], 0
        for s in seqs:
            if total >= max_tokens:
                break
            kept.append(list(s))
            total += len(s)
        if not kept:
            raise LinUtilsError(f"probe {name}: no sequences")
        return cls([pad_right(kept[i:i + batch_size], pad_id) for i in range(0, len(kept), batch_size)],
                   exclude_bos=exclude_bos, name=name)

    def measure(self, trunk: torch.nn.Module, *, progress: bool = False) -> Measurement:
        """Stream ``trunk`` (a model or its :func:`~lin_utils.finetune.heads.trunk_of`) over the
        probe's batches and average linearity over every block."""

        device = next(trunk.parameters()).device
        check_token_count(self.n_tokens, hidden_size(trunk), f"probe {self.name}", warn=False)
        acc = profile_model(trunk, iter(self.batches), exclude_bos=self.exclude_bos, device=device,
                            progress=progress, total=len(self.batches))
        with warnings.catch_warnings():  # n < 10 d is reported through the chance column instead
            warnings.simplefilter("ignore", LinearityWarning)
            t = acc.result()
        return Measurement(nores=float(t.score_nores.mean()), heldout_nores=float(t.heldout_nores.mean()),
                           score=float(t.score.mean()), n_tokens=int(t.n_tokens.iloc[0]), d=int(t.d.iloc[0]),
                           chance=float(t.chance.iloc[0]), n_blocks=len(t), tokens_sha256=self.sha256)


def delta(before: Measurement, after: Measurement) -> tuple[float, float]:
    """``(after − before)`` of ``nores`` and of ``heldout_nores``.

    Raises LinUtilsError unless both saw the same tokens (sha256), the same n and width, and the
    same blocks.
    """
    for name in ("tokens_sha256", "n_tokens", "d", "n_blocks"):
        if getattr(before, name) != getattr(after, name):
            raise LinUtilsError(f"delta: before and after differ in {name} ({getattr(before, name)!r} vs "
                                f"{getattr(after, name)!r}); a delta needs the same tokens on both sides")
    return after.nores - before.nores, after.heldout_nores - before.heldout_nores
