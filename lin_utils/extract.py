"""Stream residual-stream states at decoder-block boundaries.

Boundary numbering (the one every table in this project uses):

* boundary ``0`` is the input of block 0 (the embedding output, after any
  embedding scaling or embedding LayerNorm the architecture applies);
* boundary ``i + 1`` is the raw output of block ``i``.

So block ``i`` maps boundary ``i`` to boundary ``i + 1``; a model with ``L`` blocks has
``L + 1`` boundaries. This differs from Hugging Face ``output_hidden_states`` in one place:
HF's last entry ``hidden_states[L]`` has the final norm applied, whereas boundary ``L``
here is the raw output of the last block, captured with a forward hook.

:func:`capture` is the one mechanism: a context manager that records the requested boundaries
during any forward pass the caller runs, with or without autograd (training regularizers and
distillation use it with gradients). :func:`iter_block_states` is the no-grad streaming scan
built on it; it runs the trunk only and stops right after the last block needed.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
from tqdm import tqdm

from .arch import decoder_blocks

__all__ = [
    "Capture", "boundaries_for_blocks", "capture", "iter_block_states", "normalize_blocks",
    "normalize_boundaries", "token_mask",
]


class _StopForward(Exception):
    """Raised inside a hook once every requested boundary has been captured."""


def normalize_blocks(blocks: Iterable[int] | None, n_blocks: int) -> list[int]:
    """Sorted non-negative block indices; ``None`` means every block, negatives count from the end."""
    if blocks is None:
        return list(range(n_blocks))
    out: set[int] = set()
    for b in blocks:
        if not isinstance(b, int) or isinstance(b, bool):
            raise TypeError(f"blocks: block indices must be ints, got {b!r}")
        i = b + n_blocks if b < 0 else b
        if not 0 <= i < n_blocks:
            raise ValueError(f"blocks: block index {b} out of range for a model with {n_blocks} blocks")
        out.add(i)
    return sorted(out)


def boundaries_for_blocks(blocks: Iterable[int] | None, n_blocks: int) -> list[int]:
    """Boundaries needed to score ``blocks`` (block i needs boundaries i and i+1)."""
    return sorted({j for i in normalize_blocks(blocks, n_blocks) for j in (i, i + 1)})


def token_mask(attention_mask: torch.Tensor, exclude_bos: bool = False) -> torch.Tensor:
    """Tokens that enter statistics: real (non-padding) tokens, minus position 0 on request.

    Args:
        attention_mask: (B, T) 0/1 or bool.
        exclude_bos: drop position 0 of every row (BOS activations are known outliers).

    Returns:
        (B, T) bool.
    """
    mask = attention_mask.bool().clone()
    if exclude_bos:
        mask[:, 0] = False
    return mask


def _hidden(output) -> torch.Tensor:
    """A block's hidden-state output, whether the block returns a tensor or a tuple."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if hasattr(output, "last_hidden_state"):
        return output.last_hidden_state
    raise TypeError(f"cannot find hidden states in a block output of type {type(output).__name__}")


def _pre_hidden(args, kwargs) -> torch.Tensor:
    if args and isinstance(args[0], torch.Tensor):
        return args[0]
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"]
    raise TypeError("cannot find the hidden-state input of block 0")


class Capture:
    """Live view of the residual stream at the requested boundaries; see :func:`capture`.

    ``cap[b]`` is the (B, T, d) state at boundary ``b`` from the most recent forward pass
    (a new pass starts by clearing the previous one). Tensors are the model's own outputs, so
    they carry autograd history whenever the forward pass does.
    """

    def __init__(self, model: torch.nn.Module, boundaries: list[int], stop_early: bool):
        self.model = model
        self.boundaries = boundaries
        self.stop_early = stop_early
        self.states: dict[int, torch.Tensor] = {}

    def __getitem__(self, boundary: int) -> torch.Tensor:
        try:
            return self.states[boundary]
        except KeyError:
            raise KeyError(f"boundary {boundary} was not captured (captured: {sorted(self.states)}; "
                           f"requested: {self.boundaries})") from None

    def __contains__(self, boundary: int) -> bool:
        return boundary in self.states

    def __len__(self) -> int:
        return len(self.states)

    def stacked(self) -> torch.Tensor:
        """The captured states as one (n_boundaries, B, T, d) tensor, in boundary order."""
        return torch.stack([self[b] for b in self.boundaries])

    def trunk(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
        """Run the model's trunk (no LM head) on one batch and return the captured states.

        With ``stop_early`` the pass ends right after the last requested boundary.
        """
        trunk = getattr(self.model, "base_model", self.model)
        extra = {"use_cache": False} if getattr(self.model.config, "use_cache", None) is not None else {}
        try:
            trunk(input_ids=input_ids, attention_mask=attention_mask, **extra)
        except _StopForward:
            pass
        missing = [b for b in self.boundaries if b not in self.states]
        if missing:
            raise RuntimeError(f"boundaries {missing} were not captured; is the block list complete?")
        return dict(self.states)


@contextmanager
def capture(
    model: torch.nn.Module,
    boundaries: Iterable[int] | None = None,
    *,
    stop_early: bool = False,
) -> Iterator[Capture]:
    """Record the raw residual stream at block boundaries during forward passes the caller runs.

    TransformerLens-style hook points with a names filter: only the boundaries asked for are
    kept. Boundary ``0`` is the input of block 0 and boundary ``i + 1`` the raw output of block
    ``i`` (never Hugging Face's final-norm'd last hidden state). Works with or without autograd::

        with capture(model, [0, 1, 2]) as cap:
            out = model(input_ids, attention_mask=mask, labels=labels)   # any forward pass
            reg = cosine_regularizer([cap[b] for b in (0, 1, 2)], mask)  # has gradients

    Args:
        model: a Hugging Face causal LM or encoder.
        boundaries: boundary indices in ``0..L`` (negative count from the end); ``None`` = all.
        stop_early: abort each forward pass once the last requested boundary is recorded (for
            scans that need no logits; run them with :meth:`Capture.trunk`). A plain
            ``model(...)`` call under ``stop_early`` raises an internal exception: use ``trunk``.

    Yields:
        a :class:`Capture`; hooks are removed when the context exits.
    """
    blocks = decoder_blocks(model)
    n = len(blocks)
    wanted = normalize_boundaries(boundaries, n)
    last_block = max(wanted) - 1  # the block whose output is the last wanted boundary
    cap = Capture(model, wanted, stop_early)

    def pre_hook(_module, args, kwargs):
        cap.states.clear()  # a new forward pass starts
        if 0 in wanted:
            cap.states[0] = _pre_hidden(args, kwargs)
        if stop_early and last_block < 0:
            raise _StopForward

    def make_hook(i: int):
        def hook(_module, _args, output):
            if i + 1 in wanted:
                cap.states[i + 1] = _hidden(output)
            if stop_early and i == last_block:
                raise _StopForward
        return hook

    handles = [blocks[0].register_forward_pre_hook(pre_hook, with_kwargs=True)]
    handles += [blk.register_forward_hook(make_hook(i)) for i, blk in enumerate(blocks) if i <= last_block]
    try:
        yield cap
    finally:
        for h in handles:
            h.remove()


def normalize_boundaries(boundaries: Iterable[int] | None, n_blocks: int) -> list[int]:
    """Sorted boundary indices in ``0..n_blocks``; ``None`` means all, negatives count from the end."""
    if boundaries is None:
        return list(range(n_blocks + 1))
    out: set[int] = set()
    for b in boundaries:
        if not isinstance(b, int) or isinstance(b, bool):
            raise TypeError(f"boundaries: indices must be ints, got {b!r}")
        i = b + n_blocks + 1 if b < 0 else b
        if not 0 <= i <= n_blocks:
            raise ValueError(f"boundaries: index {b} out of range for a model with {n_blocks} blocks "
                             f"(boundaries 0..{n_blocks})")
        out.add(i)
    if not out:
        raise ValueError("boundaries: no boundary requested")
    return sorted(out)


@torch.no_grad()
def iter_block_states(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    blocks: Sequence[int] | None = None,
    exclude_bos: bool = False,
    device: torch.device | str | None = None,
    progress: bool = True,
    total: int | None = None,
    desc: str = "extract",
) -> Iterator[tuple[dict[int, torch.Tensor], torch.Tensor]]:
    """Run ``model`` over token batches and yield residual-stream states at block boundaries.

    The no-grad streaming scan built on :func:`capture`: the trunk only, stopped after the
    last block needed.

    Args:
        model: a Hugging Face causal LM or encoder; put in eval mode here.
        batches: iterable of ``(input_ids, attention_mask)``, each (B, T).
        blocks: block indices whose (input, output) pair is wanted; ``None`` = all blocks.
        exclude_bos: leave position 0 out of the returned mask.
        device: where to run; defaults to the model's device.
        progress: show a tqdm bar over batches.
        total: number of batches, for the bar.

    Yields:
        ``(states, mask)``: ``states`` maps boundary index -> (B, T, d) tensor in the model's
        dtype, on ``device``; ``mask`` is (B, T) bool, True for tokens to count.
        Padding is always False in ``mask``.
    """
    wanted = boundaries_for_blocks(blocks, len(decoder_blocks(model)))
    if device is None:
        device = next(model.parameters()).device
    model.eval()
    with capture(model, wanted, stop_early=True) as cap:
        for input_ids, attention_mask in tqdm(batches, total=total, desc=desc, disable=not progress, leave=False):
            attention_mask = attention_mask.to(device)
            states = cap.trunk(input_ids.to(device), attention_mask)
            yield states, token_mask(attention_mask, exclude_bos)
