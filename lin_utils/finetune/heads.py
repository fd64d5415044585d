"""Heads on a pretrained trunk: pooling, the classifier / reward model, losses and accuracy.

A decoder's head reads the last non-padding token (the only one that has seen the whole input);
an encoder's reads position 0 ([CLS]). The head is one linear layer on the trunk's final hidden
state (Hugging Face ``last_hidden_state``, i.e. after the final norm): ``n_outputs`` logits, one
for binary tasks and for the reward model's scalar.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..arch import is_encoder
from ..errors import LinUtilsError

__all__ = [
    "POOLS", "SequenceHead", "last_token_index", "pool", "trunk_of", "task_loss", "pairwise_loss",
    "predictions", "pairwise_accuracy",
]

POOLS = ("last", "first")


def trunk_of(model: torch.nn.Module) -> torch.nn.Module:
    """The transformer without its LM head: ``model.base_model`` (the model itself for a bare one)."""
    return getattr(model, "base_model", model)


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real token: (B, T) right-padded 0/1 mask -> (B,) long.

    Raises LinUtilsError for a row with no real token or with a gap (left padding).
    """
    mask = attention_mask.long()
    lengths = mask.sum(1)
    if bool((lengths == 0).any()):
        raise LinUtilsError("attention_mask has a row with no real token")
    expected = (torch.arange(mask.shape[1], device=mask.device)[None, :] < lengths[:, None]).long()
    if not torch.equal(mask, expected):
        raise LinUtilsError("attention_mask must be right-padded (real tokens first, then padding)")
    return lengths - 1


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str = "last") -> torch.Tensor:
    """One vector per row: (B, T, d) states, (B, T) mask -> (B, d).

    ``how="last"``: the state at the last non-padding token; ``"first"``: position 0 ([CLS]).
    """
    if how not in POOLS:
        raise LinUtilsError(f"pool must be one of {', '.join(POOLS)}, got {how!r}")
    if hidden.ndim != 3 or attention_mask.shape != hidden.shape[:2]:
        raise LinUtilsError(f"pool: hidden must be (B, T, d) and attention_mask (B, T), got "
                            f"{tuple(hidden.shape)} and {tuple(attention_mask.shape)}")
    if how == "first":
        return hidden[:, 0]
    idx = last_token_index(attention_mask.to(hidden.device))
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]


class SequenceHead(torch.nn.Module):
    """A trunk with a linear head on one pooled token.

    ``forward(input_ids, attention_mask)``: (B, T) long each -> (B, n_outputs) logits.

    Args:
        trunk: a Hugging Face base model (``LlamaModel``, ``BertModel``, ...); see :func:`trunk_of`.
        n_outputs: logits per sequence (1 for binary tasks and reward models).
        how: ``"last"`` / ``"first"``; ``None`` picks ``"first"`` for encoders, ``"last"`` otherwise.
        seed: initialises the head (normal, std = the config's ``initializer_range`` or 0.02; zero
            bias) without touching the caller's RNG.
    """

    def __init__(self, trunk: torch.nn.Module, n_outputs: int, *, how: str | None = None, seed: int = 0):
        super().__init__()
        if not isinstance(n_outputs, int) or isinstance(n_outputs, bool) or n_outputs < 1:
            raise LinUtilsError(f"n_outputs must be a positive integer, got {n_outputs!r}")
        self.trunk = trunk
        self.how = how or ("first" if is_encoder(trunk) else "last")
        if self.how not in POOLS:
            raise LinUtilsError(f"how must be one of {', '.join(POOLS)}, got {how!r}")
        p = next(trunk.parameters())
        # OPT-350m projects its last hidden state down to word_embed_proj_dim.
        d = int(getattr(trunk.config, "word_embed_proj_dim", None) or trunk.config.hidden_size)
        std = float(getattr(trunk.config, "initializer_range", 0.02) or 0.02)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            head = torch.nn.Linear(d, n_outputs)
            torch.nn.init.normal_(head.weight, std=std)
            torch.nn.init.zeros_(head.bias)
        self.head = head.to(device=p.device, dtype=p.dtype)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled final hidden states, (B, d)."""
        extra = {"use_cache": False} if getattr(self.trunk.config, "use_cache", None) is not None else {}
        hidden = self.trunk(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        return pool(hidden, attention_mask, self.how)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(input_ids, attention_mask))


def pairwise_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Mean of −log σ(r_chosen − r_rejected) over pairs; (N,) rewards each -> scalar.

    Computed as softplus(−(r_c − r_r)), which is exact for large margins of either sign.
    """
    return F.softplus(-(r_chosen - r_rejected)).mean()


def task_loss(kind: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The training loss of a batch.

    Args:
        kind: ``"binary"``: logits (B, 1), labels (B,) in {0, 1}, BCE with logits;
            ``"multiclass"``: logits (B, C), labels (B,), cross-entropy;
            ``"pairwise"``: logits (2B, 1), rows chosen/rejected alternating, :func:`pairwise_loss`.
    """
    if kind == "binary":
        return F.binary_cross_entropy_with_logits(logits[:, 0].float(), labels.float())
    if kind == "multiclass":
        return F.cross_entropy(logits.float(), labels)
    if kind == "pairwise":
        r = logits[:, 0].float().view(-1, 2)
        return pairwise_loss(r[:, 0], r[:, 1])
    raise LinUtilsError(f"kind must be binary, multiclass or pairwise, got {kind!r}")


def predictions(kind: str, logits: torch.Tensor) -> torch.Tensor:
    """Predicted class per example, (B,) long; for ``"pairwise"`` 0 when chosen scores higher
    than rejected (1 otherwise, ties included), so accuracy against label 0 is reward accuracy."""
    if kind == "binary":
        return (logits[:, 0] > 0).long()
    if kind == "multiclass":
        return logits.argmax(-1)
    if kind == "pairwise":
        r = logits[:, 0].view(-1, 2)
        return (r[:, 0] <= r[:, 1]).long()
    raise LinUtilsError(f"kind must be binary, multiclass or pairwise, got {kind!r}")


def pairwise_accuracy(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> float:
    """Share of pairs with r_chosen > r_rejected (ties count as wrong)."""
    return float((r_chosen > r_rejected).double().mean())
