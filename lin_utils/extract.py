"""Stream residual-stream states at decoder-block boundaries.

Boundary numbering (the one every table in this project uses):

* boundary ``0`` is the input of block 0 (the embedding output, after any
  embedding scaling or embedding LayerNorm the architecture applies);
* boundary ``i + 1`` is the raw output of block ``i``.

So block ``i`` maps boundary ``i`` to boundary ``i + 1``; a model with ``L`` blocks has
``L + 1`` boundaries. This differs from Hugging Face ``output_hidden_states`` in one place:
HF's last entry ``hidden_states[L]`` has the final norm applied, whereas boundary ``L``
here is the raw output of the last block, captured with a forward hook.

States are captured with hooks on the blocks (TransformerLens-style: only the boundaries
asked for are kept), and the forward pass stops right after the last block needed.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch
from tqdm import tqdm

from .models import decoder_blocks

__all__ = ["boundaries_for_blocks", "iter_block_states", "normalize_blocks", "token_mask"]


class _StopForward(Exception):
    """Raised inside a hook once every requested boundary has been captured."""


def normalize_blocks(blocks: Iterable[int] | None, n_blocks: int) -> list[int]:
    """Sorted non-negative block indices; ``None`` means every block, negatives count from the end."""
    if blocks is None:
        return list(range(n_blocks))
    out: set[int] = set()
    for b in blocks:
        if not isinstance(b, int) or isinstance(b, bool):
            raise TypeError(f"layers: block indices must be ints, got {b!r}")
        i = b + n_blocks if b < 0 else b
        if not 0 <= i < n_blocks:
            raise ValueError(f"layers: block index {b} out of range for a model with {n_blocks} blocks")
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


@torch.no_grad()
def iter_block_states(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    layers: Sequence[int] | None = None,
    exclude_bos: bool = False,
    device: torch.device | str | None = None,
    progress: bool = True,
    total: int | None = None,
    desc: str = "extract",
) -> Iterator[tuple[dict[int, torch.Tensor], torch.Tensor]]:
    """Run ``model`` over token batches and yield residual-stream states at block boundaries.

    Args:
        model: a Hugging Face causal LM or encoder; put in eval mode here.
        batches: iterable of ``(input_ids, attention_mask)``, each (B, T).
        layers: block indices whose (input, output) pair is wanted; ``None`` = all blocks.
        exclude_bos: leave position 0 out of the returned mask.
        device: where to run; defaults to the model's device.
        progress: show a tqdm bar over batches.
        total: number of batches, for the bar.

    Yields:
        ``(states, mask)``: ``states`` maps boundary index -> (B, T, d) tensor in the model's
        dtype, on ``device``; ``mask`` is (B, T) bool, True for tokens to count.
        Padding is always False in ``mask``.
    """
    blocks = decoder_blocks(model)
    wanted = boundaries_for_blocks(layers, len(blocks))
    last_block = max(wanted) - 1  # the block whose output is the last wanted boundary
    if device is None:
        device = next(model.parameters()).device
    model.eval()

    captured: dict[int, torch.Tensor] = {}

    def pre_hook(_module, args, kwargs):
        if 0 in wanted:
            captured[0] = _pre_hidden(args, kwargs)
        if last_block < 0:  # only boundary 0 requested
            raise _StopForward

    def make_hook(i: int):
        def hook(_module, _args, output):
            if i + 1 in wanted:
                captured[i + 1] = _hidden(output)
            if i == last_block:
                raise _StopForward
        return hook

    handles = [blocks[0].register_forward_pre_hook(pre_hook, with_kwargs=True)]
    handles += [blk.register_forward_hook(make_hook(i)) for i, blk in enumerate(blocks) if i <= last_block]
    # The LM head is never needed: run the base model when the wrapper exposes it.
    trunk = getattr(model, "base_model", model)
    extra = {"use_cache": False} if getattr(model.config, "use_cache", None) is not None else {}
    try:
        for input_ids, attention_mask in tqdm(batches, total=total, desc=desc, disable=not progress, leave=False):
            input_ids = input_ids.to(device)
            attention_mask = attention_mask.to(device)
            captured.clear()
            try:
                trunk(input_ids=input_ids, attention_mask=attention_mask, **extra)
            except _StopForward:
                pass
            missing = [b for b in wanted if b not in captured]
            if missing:
                raise RuntimeError(f"boundaries {missing} were not captured; is the block list complete?")
            yield dict(captured), token_mask(attention_mask, exclude_bos)
    finally:
        for h in handles:
            h.remove()
