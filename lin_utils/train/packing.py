"""Training and validation tokens: stories packed into fixed-length rows, in a seeded order.

Each story becomes ``<s> story </s>``; the stories are concatenated in corpus order and cut into
non-overlapping rows of ``seq_len`` tokens (the tail that does not fill a row is dropped), so
rows have no padding and a story may span two rows. The order in which rows are drawn is a
fresh ``torch.randperm`` per epoch, seeded by ``(seed, epoch)``: the rows of step ``s`` are a
pure function of ``(seed, s)``, so the data position of a resumed run is just its step.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data import load_stories
from ..paths import cache_dir as default_cache
from .tokenizer import heldout_texts, training_texts

__all__ = ["pack_stories", "PackedRows", "training_rows", "validation_rows", "validation_texts", "heldout_rows"]


def pack_stories(stories: Sequence[str], tokenizer) -> np.ndarray:
    """Token stream ``<s> story </s> <s> story </s> ...`` of ``stories``: 1-D int array."""
    bos, eos = _bos_eos(tokenizer)
    ids = tokenizer(list(stories), add_special_tokens=False, verbose=False)["input_ids"]
    dtype = np.uint16 if len(tokenizer) <= 65_535 else np.int32
    out = np.empty(sum(len(x) + 2 for x in ids), dtype=dtype)
    pos = 0
    for x in ids:
        out[pos] = bos
        out[pos + 1:pos + 1 + len(x)] = x
        out[pos + 1 + len(x)] = eos
        pos += len(x) + 2
    return out


def _bos_eos(tokenizer) -> tuple[int, int]:
    eos = tokenizer.eos_token_id
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    if eos is None:
        raise ValueError("the tokenizer needs an EOS token to separate stories")
    return bos, eos


class PackedRows:
    """Rows ``(n_rows, seq_len)`` of a token stream, drawn in a seeded order, epoch after epoch."""

    def __init__(self, stream: np.ndarray, seq_len: int, seed: int):
        n_rows = len(stream) // seq_len
        if n_rows < 1:
            raise ValueError(f"the token stream ({len(stream)} tokens) is shorter than one row of {seq_len}")
        self.rows = torch.from_numpy(stream[: n_rows * seq_len].astype(np.int64)).view(n_rows, seq_len)
        self.seed = seed
        self._perms: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return self.rows.shape[0]

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms = {epoch: torch.randperm(len(self), generator=g)}  # keep one epoch
        return self._perms[epoch]

    def batch(self, step: int, batch_size: int, *, rank: int = 0, world: int = 1) -> torch.Tensor:
        """The rows of optimizer step ``step`` (this process's share when ``world > 1``)."""
        idx = []
        for k in range(step * batch_size + rank, (step + 1) * batch_size, world):
            epoch, pos = divmod(k, len(self))
            idx.append(int(self._perm(epoch)[pos]))
        return self.rows[idx]


def training_rows(tokenizer, tokenizer_key: str, n_stories: int | None, seq_len: int, seed: int,
                  cache_dir: Path | None = None) -> PackedRows:
    """:class:`PackedRows` of the training stories, the token stream cached as ``.npy`` under
    ``<cache>/tokens/`` (keyed by tokenizer and story count)."""

    root = Path(cache_dir or default_cache()) / "tokens"
    path = root / f"train-{tokenizer_key}-{'all' if n_stories is None else n_stories}.npy"
    if path.is_file():
        stream = np.load(path)
    else:
        stream = pack_stories(list(training_texts(n_stories)), tokenizer)
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        np.save(tmp, stream)
        os.replace(tmp, path)
    return PackedRows(stream, seq_len, seed)


def validation_texts(max_chars: int | None = None) -> list[str]:
    """Stories of the clean TinyStories validation head (heuristic segments), up to ``max_chars``."""

    stories = load_stories("tinystories", "validation")
    if max_chars is None:
        return stories
    out, n = [], 0
    for s in stories:
        if n >= max_chars:
            break
        out.append(s)
        n += len(s)
    return out


def validation_rows(tokenizer, seq_len: int, max_tokens: int) -> torch.Tensor:
    """The first ``max(1, max_tokens // seq_len)`` packed rows of the validation head, in order."""
    n_rows = max(1, max_tokens // seq_len)
    stream = pack_stories(validation_texts(max_chars=8 * n_rows * seq_len + 4096), tokenizer)
    n_rows = min(n_rows, len(stream) // seq_len)
    return torch.from_numpy(stream[: n_rows * seq_len].astype(np.int64)).view(n_rows, seq_len)


def heldout_rows(tokenizer, seq_len: int, max_tokens: int) -> torch.Tensor:
    """The first ``max(1, max_tokens // seq_len)`` packed rows of the held-out training tail
    (:func:`~lin_utils.train.tokenizer.heldout_texts`, never trained on), in order: the text on
    which a training recipe is chosen."""

    n_rows = max(1, max_tokens // seq_len)
    stream = pack_stories(heldout_texts(), tokenizer)
    n_rows = min(n_rows, len(stream) // seq_len)
    return torch.from_numpy(stream[: n_rows * seq_len].astype(np.int64)).view(n_rows, seq_len)
