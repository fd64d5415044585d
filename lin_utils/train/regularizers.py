"""Inter-layer regularizers of the paper's Section 4, on states recorded by ``capture``.

With ``h_0, ..., h_L`` the residual stream at the block boundaries of
:mod:`lin_utils.extract` (``h_0`` the embedding output = input of block 0, ``h_{i+1}`` the raw
output of block ``i``), and ``mean_tokens`` the mean over the tokens the mask keeps:

* cosine: ``λ · Σ_{i=1..L} mean_tokens(1 − cos(h_i, h_{i−1}))``
* MSE:    ``λ · Σ_{i=1..L} mean_tokens ‖h_i − h_{i−1}‖²`` (squared L2 norm over the width, not
  divided by d; ``torch.nn.MSELoss`` would be this divided by d)

**Which boundaries enter the sum.** All ``L + 1`` of them by default, so there is one term per
block (``L`` terms): the embedding output ``h_0`` is included, as the input of block 0, and the
last state is the raw output of block ``L − 1``, not Hugging Face's final-norm'd
``hidden_states[L]``. Why this is the reading of the paper: it adds the term over "the
embeddings of consecutive layers", the same per-layer embeddings its linearity analysis scores,
and that analysis (Fig 1, Fig 4) scores every block including the first, i.e. the pair
(embeddings, block 0 output); a sum that skipped ``h_0`` would leave block 0, the block the
Fig 4 profiles start with, unregularized. The final norm is not a layer: its output is the LM
head's input, and a cosine or distance against it would regularize the norm's per-channel gain
rather than the last block. (The paper, taken as its Hugging Face implementation would be, may
well have summed over ``output_hidden_states`` and so used the normed last entry; we deviate
there on purpose and say so. Pass other ``boundaries`` to reproduce any other reading.)

Both functions take the states as a list (or a ``(n, B, T, d)`` stack) in boundary order and a
``(B, T)`` mask of the tokens that count (padding excluded; packed training rows have none, and
``mask=None`` counts every token). They compute in float32 whatever the states' dtype, and
return the sum *without* λ; :func:`regularizer` multiplies.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["cosine_regularizer", "mse_regularizer", "regularizer", "REGULARIZERS"]


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` (B, T) over the tokens where ``mask`` (B, T) is true."""
    if mask is None:
        return values.mean()
    m = mask.to(device=values.device, dtype=values.dtype)
    return (values * m).sum() / m.sum().clamp_min(1.0)


def _pairs(states: Sequence[torch.Tensor] | torch.Tensor):
    if len(states) < 2:
        raise ValueError(f"a regularizer needs at least two boundaries, got {len(states)}")
    for prev, cur in zip(states[:-1], states[1:]):
        yield prev.float(), cur.float()


def cosine_regularizer(states: Sequence[torch.Tensor] | torch.Tensor,
                       mask: torch.Tensor | None = None, *, eps: float = 1e-8) -> torch.Tensor:
    """``Σ_i mean_tokens(1 − cos(h_i, h_{i−1}))`` over consecutive states (a scalar)."""
    total = 0.0
    for prev, cur in _pairs(states):
        total = total + _masked_mean(1.0 - F.cosine_similarity(cur, prev, dim=-1, eps=eps), mask)
    return total


def mse_regularizer(states: Sequence[torch.Tensor] | torch.Tensor,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """``Σ_i mean_tokens ‖h_i − h_{i−1}‖²`` over consecutive states (a scalar)."""
    total = 0.0
    for prev, cur in _pairs(states):
        total = total + _masked_mean((cur - prev).pow(2).sum(-1), mask)
    return total


REGULARIZERS = {"cosine": cosine_regularizer, "mse": mse_regularizer}


def regularizer(kind: str, states, mask: torch.Tensor | None = None, lam: float = 1.0) -> torch.Tensor:
    """``lam`` times the regularizer ``kind`` (``"cosine"`` or ``"mse"``)."""
    try:
        fn = REGULARIZERS[kind]
    except KeyError:
        raise ValueError(f"unknown regularizer {kind!r}; expected one of {', '.join(REGULARIZERS)}") from None
    return lam * fn(states, mask)
