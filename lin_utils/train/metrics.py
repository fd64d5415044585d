"""Validation loss on packed rows, and bits per byte (comparable across tokenizers)."""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F

__all__ = ["eval_loss", "bits_per_byte"]


@torch.no_grad()
def eval_loss(model, rows: torch.Tensor, *, batch_size: int = 16, autocast_dtype=None) -> float:
    """Mean next-token cross-entropy (nats/token) of ``model`` over packed ``rows`` (N, T)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    try:
        for i in range(0, rows.shape[0], batch_size):
            x = rows[i:i + batch_size].to(device)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                logits = model(input_ids=x, use_cache=False).logits
            nll = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                  x[:, 1:].reshape(-1), reduction="sum")
            total += float(nll)
            count += x[:, 1:].numel()
    finally:
        model.train(was_training)
    return total / count


@torch.no_grad()
def bits_per_byte(model, tokenizer, texts: Iterable[str], *, seq_len: int | None = None,
                  batch_size: int = 8, autocast_dtype=None) -> float:
    """Bits per UTF-8 byte of ``texts`` under ``model``: Σ NLL / ln 2 / Σ bytes.

    Each text is encoded without special tokens and preceded by BOS (EOS when the tokenizer has
    no BOS, the GPT-2 convention), so every one of its tokens is predicted; no EOS is scored.
    Texts longer than ``seq_len`` are cut into windows that overlap by one token, so each token
    is predicted exactly once (a window's first position only gives context). The denominator
    is ``len(text.encode("utf-8"))``, whatever the tokenizer, so models with different
    vocabularies compare. ``seq_len`` defaults to the model's ``max_position_embeddings``
    (at most 1024).
    """
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if bos is None:
        raise ValueError("bits_per_byte needs a tokenizer with a BOS or EOS token")
    if seq_len is None:
        seq_len = min(int(getattr(model.config, "max_position_embeddings", 1024) or 1024), 1024)
    if seq_len < 2:
        raise ValueError(f"seq_len must be >= 2, got {seq_len}")
    windows: list[list[int]] = []
    n_bytes = 0
    for text in texts:
        n_bytes += len(text.encode("utf-8"))
        seq = [bos] + tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        start = 0
        while start < len(seq) - 1:
            windows.append(seq[start:start + seq_len])
            start += seq_len - 1
    if n_bytes == 0:
        raise ValueError("bits_per_byte: the texts are empty")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else bos
    windows.sort(key=len)  # less padding per batch
    nats = 0.0
    try:
        for i in range(0, len(windows), batch_size):
            chunk = windows[i:i + batch_size]
            width = max(len(w) for w in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, w in enumerate(chunk):
                ids[r, :len(w)] = torch.tensor(w)
                mask[r, :len(w)] = 1
            ids, mask = ids.to(device), mask.to(device)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), ids[:, 1:], reduction="none")
            nats += float((nll * mask[:, 1:]).sum())
    finally:
        model.train(was_training)
    return nats / math.log(2) / n_bytes
