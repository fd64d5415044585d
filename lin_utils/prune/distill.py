"""Distillation of linear replacements: train only the :class:`~lin_utils.prune.surgery.LinearBlock`
modules of a student so that its residual stream matches the original (teacher) model's,
boundary by boundary, as the paper does after linear replacement.

The loss of one batch is the layerwise normalised MSE over the boundaries ``b`` from the output of
the first replaced block to the last one::

    loss = mean_b  sum_t ||s_{b,t} - h_{b,t}||^2 / sum_t ||h_{b,t} - mean_t h_b||^2

with ``s`` the student's and ``h`` the teacher's states (both captured with
:func:`lin_utils.extract.capture`; the teacher's without gradients), over counted tokens only. The
normalisation (by the teacher's centered energy at that boundary) keeps late boundaries, whose
norms grow, from dominating; 1 means "no better than predicting the batch mean".
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from tqdm import tqdm

from ..arch import decoder_blocks
from ..errors import LinUtilsError
from ..extract import capture, token_mask
from .surgery import LinearBlock

__all__ = ["distill", "layerwise_loss"]


def layerwise_loss(student: dict[int, torch.Tensor], teacher: dict[int, torch.Tensor], mask: torch.Tensor,
                   boundaries: Sequence[int]) -> torch.Tensor:
    """The normalised layerwise MSE (module docstring) of one batch.

    Args:
        student, teacher: boundary -> (B, T, d) states (the same boundary numbering: the student has
            one block per teacher block).
        mask: (B, T) bool, tokens that count.
        boundaries: the boundaries averaged over.
    """
    m = mask.bool()
    losses = []
    for b in boundaries:
        s, t = student[b][m].float(), teacher[b][m].float()
        energy = ((t - t.mean(0)) ** 2).sum().clamp_min(1e-12)
        losses.append(((s - t) ** 2).sum() / energy)
    return torch.stack(losses).mean()


def distill(student: torch.nn.Module, teacher: torch.nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], *,
            steps: int, lr: float = 1e-3, seed: int = 0, exclude_bos: bool = False, progress: bool = True,
            device: str | torch.device | None = None) -> pd.DataFrame:
    """Train the student's :class:`LinearBlock` parameters (everything else frozen) on ``batches``.

    Args:
        student: the teacher with some blocks replaced one-for-one by :class:`LinearBlock`
            (:func:`~lin_utils.prune.surgery.replace_with_linear`), so boundaries correspond.
        teacher: the original model (not modified).
        batches: calibration ``(input_ids, attention_mask)`` pairs, (B, T) each; cycled in order
            for ``steps`` steps (training text only, never evaluation text).
        steps: optimizer steps (Adam, constant ``lr``).
        seed: torch seed for the duration (the caller's RNG state is restored).

    Returns:
        The loss curve: one row per step, ``step`` (1-based) and ``loss`` (before that step's update).
        The student is trained in place and left in eval mode.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise LinUtilsError(f"steps must be an integer >= 0, got {steps!r}")
    if not lr > 0:
        raise LinUtilsError(f"lr must be > 0, got {lr!r}")
    batches = list(batches)
    if not batches:
        raise LinUtilsError("batches: no calibration batch given")
    blocks = decoder_blocks(student)
    L = len(blocks)
    if L != len(decoder_blocks(teacher)):
        raise LinUtilsError(f"student has {L} blocks and teacher {len(decoder_blocks(teacher))}: distill needs "
                            "one-for-one replacements (replace_with_linear), not removals or spans")
    linear = [j for j, blk in enumerate(blocks) if isinstance(blk, LinearBlock)]
    if not linear:
        raise LinUtilsError("student has no LinearBlock to train")
    bounds = list(range(min(linear) + 1, L + 1))
    params = [p for j in linear for p in blocks[j].parameters()]
    frozen = [(p, p.requires_grad) for p in student.parameters()]
    if device is None:
        device = next(student.parameters()).device
    rows = []
    try:
        for p, _ in frozen:
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=lr)
        student.eval()  # no dropout: the maps are fitted to the deterministic teacher
        teacher.eval()
        with torch.random.fork_rng(devices=[]), capture(teacher, bounds, stop_early=True) as tcap, \
                capture(student, bounds, stop_early=True) as scap:
            torch.manual_seed(seed)
            for step in tqdm(range(steps), desc="distill", disable=not progress, leave=False):
                ids, am = batches[step % len(batches)]
                ids, am = ids.to(device), am.to(device)
                mask = token_mask(am, exclude_bos)
                with torch.no_grad():
                    t_states = {b: v.detach() for b, v in tcap.trunk(ids, am).items()}
                s_states = scap.trunk(ids, am)
                loss = layerwise_loss(s_states, t_states, mask, bounds)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                rows.append(dict(step=step + 1, loss=float(loss.detach())))
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
        student.eval()
    return pd.DataFrame(rows, columns=["step", "loss"])
