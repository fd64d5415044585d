"""Perplexity of a causal LM on a corpus: exp(mean NLL) over windows of tokens.

Two conventions, one code path (:func:`perplexity_of_ids`):

- **non-overlapping** (``stride=None``; the book uses this one, as SLEB does): the token stream
  is cut into consecutive windows of ``seq_len`` tokens; within each window every token but the
  first is scored with the earlier tokens of that window as context. The final partial window is
  dropped (``drop_last``), as SLEB does, so all windows have the same length. SLEB reports
  Llama-2-7B WikiText-2 at ``seq_len=2048``.
- **sliding** (``stride < seq_len``; Hugging Face's "perplexity of fixed-length models"
  convention): windows of ``seq_len`` tokens start every ``stride`` tokens; each window scores
  only the tokens no earlier window scored, with up to ``seq_len - stride`` earlier tokens as
  context. Every token but the very first is scored exactly once; the last window may be short.
  Unlike HF's example loop (mean loss per window × window target count) the NLL here is summed
  token by token, so it is exact.

With ``add_bos`` each window starts with the BOS token (``seq_len - 1`` text tokens per window),
and the first text token of each window is scored too (given BOS).

Text (:func:`perplexity_text`): WikiText-2 is ``"\\n\\n".join(rows)`` of the Hugging Face
``wikitext-2-raw-v1`` rows (the string SLEB and most papers score), rebuilt from the mirror's
byte-exact ``wiki.*.raw`` file; ``raw=True`` scores the file itself. TinyStories ``validation``
is the mirror's validation head (stories separated by a blank line). A path to a ``.txt`` file
is read as is. Tokens come from :func:`lin_utils.data.tokenize_text` (no special tokens).
NLLs are accumulated in float64; log-softmax runs in float32 (float64 for float64 models).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm import tqdm

from lin_utils.data import load_text, tokenize_text

__all__ = ["PerplexityResult", "perplexity", "perplexity_of_ids", "perplexity_text", "windows"]


@dataclass
class PerplexityResult:
    """``ppl = exp(nll)``; ``nll``: mean negative log-likelihood (nats) per scored token;
    ``n_scored``: tokens scored; ``n_tokens``: tokens of the stream used (after ``max_tokens``);
    ``n_windows``; ``seq_len``, ``stride`` (= window length for non-overlapping) and
    ``convention`` (``"non-overlapping"`` or ``"sliding"``); ``text``: what was scored."""

    ppl: float
    nll: float
    n_scored: int
    n_tokens: int
    n_windows: int
    seq_len: int
    stride: int
    convention: str
    add_bos: bool
    text: str = ""


def perplexity_text(name: str = "wikitext-2", split: str = "test", *, raw: bool = False) -> str:
    """The text :func:`perplexity` scores for a corpus name (see the module docstring)."""
    text = load_text(name, split)
    if raw or name != "wikitext-2":
        return text
    # wiki.*.raw == "".join(row or " \n" for row in hub rows)  (see lin_utils.data.load_text)
    lines = text.split("\n")
    rows = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    return "\n\n".join("" if r == " \n" else r for r in rows)


def windows(n_tokens: int, seq_len: int, stride: int | None = None, *, add_bos: bool = False,
            drop_last: bool | None = None) -> list[tuple[int, int, int]]:
    """The windows over a stream of ``n_tokens``: ``(begin, end, first_scored)`` in token
    positions; the window holds text tokens ``[begin, end)`` (after BOS with ``add_bos``) and
    scores the tokens ``[first_scored, end)``.

    ``stride=None`` (or ``seq_len`` minus the BOS slot) is the non-overlapping convention, where
    ``drop_last`` defaults to True; a smaller stride is the sliding convention (``drop_last``
    must stay False/None: HF scores to the end).
    """
    nb = int(add_bos)
    width = seq_len - nb  # text tokens per window
    if width < 1 or (not add_bos and seq_len < 2):
        raise ValueError(f"seq_len must be >= 2 (got {seq_len})")
    sliding = stride is not None and stride != width
    if stride is None:
        stride = width
    if not 1 <= stride <= width:
        raise ValueError(f"stride must be in 1..{width} for seq_len={seq_len}"
                         f"{' with BOS' if add_bos else ''}, got {stride}")
    if drop_last is None:
        drop_last = not sliding
    if sliding and drop_last:
        raise ValueError("drop_last applies to non-overlapping windows only")
    out, prev_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + width, n_tokens)
        if drop_last and end - begin < width:
            break
        first = max(prev_end, begin + 1 - nb)
        if first < end:
            out.append((begin, end, first))
        prev_end = end
        if end == n_tokens:
            break
    return out


def _model_context(model) -> int | None:
    cfg = getattr(model, "config", None)
    for attr in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        v = getattr(cfg, attr, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


@torch.no_grad()
def perplexity_of_ids(model, ids: torch.Tensor, seq_len: int, *, stride: int | None = None,
                      max_tokens: int | None = None, bos_id: int | None = None,
                      drop_last: bool | None = None, batch_size: int = 8,
                      device: torch.device | str | None = None, progress: bool = True,
                      text: str = "") -> PerplexityResult:
    """Perplexity of ``model`` on the 1-D token stream ``ids`` (see the module docstring).

    Args:
        model: a Hugging Face causal LM (``model(input_ids, attention_mask).logits``).
        ids: LongTensor ``(n,)`` without special tokens.
        seq_len: window length in tokens (BOS included when ``bos_id`` is given).
        stride: ``None`` = non-overlapping windows; ``< seq_len`` = sliding window.
        max_tokens: use only the first ``max_tokens`` tokens of ``ids``.
        bos_id: prepend this token to every window.
        drop_last: drop a final partial window (default: True for non-overlapping, False for
            sliding).
        batch_size: windows per forward pass (a short last window is right-padded and masked).
    """
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    if max_tokens is not None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        ids = ids[:max_tokens]
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    nb = int(bos_id is not None)
    wins = windows(ids.numel(), seq_len, stride, add_bos=bos_id is not None, drop_last=drop_last)
    if not wins:
        raise ValueError(f"{ids.numel()} tokens give no full window of seq_len={seq_len}; "
                         "pass drop_last=False or a shorter seq_len")
    if device is None:
        device = next(model.parameters()).device
    model.eval()
    stride_used = stride if stride is not None else seq_len - nb
    convention = "sliding" if stride_used < seq_len - nb else "non-overlapping"
    total, n_scored = 0.0, 0
    pad = 0
    batches = [wins[i:i + batch_size] for i in range(0, len(wins), batch_size)]
    for batch in tqdm(batches, desc="perplexity", disable=not progress, leave=False):
        width = max(e - b for b, e, _ in batch) + nb
        inp = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        target = torch.zeros((len(batch), width), dtype=torch.bool)  # positions scored
        for r, (b, e, f) in enumerate(batch):
            if nb:
                inp[r, 0] = bos_id
            inp[r, nb:nb + e - b] = ids[b:e]
            mask[r, :nb + e - b] = 1
            target[r, nb + f - b:nb + e - b] = True
        logits = model(input_ids=inp.to(device), attention_mask=mask.to(device)).logits
        if logits.dtype != torch.float64:
            logits = logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)  # position q predicts token q+1
        tok_lp = logp.gather(-1, inp[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
        sel = target[:, 1:].to(device)
        total -= float(tok_lp[sel].double().sum())
        n_scored += int(sel.sum())
    nll = total / n_scored
    return PerplexityResult(ppl=math.exp(nll), nll=nll, n_scored=n_scored,
                            n_tokens=int(ids.numel()), n_windows=len(wins), seq_len=seq_len,
                            stride=stride_used,
                            convention=convention,
                            add_bos=bool(nb), text=text)


def _prefix_ids(text: str, tokenizer, max_tokens: int | None) -> torch.Tensor:
    if max_tokens is None:
        return tokenize_text(text, tokenizer)
    n_chars = 8 * max_tokens + 4096  # grow a prefix until it yields enough tokens
    while True:
        ids = tokenize_text(text[:n_chars], tokenizer)
        if n_chars >= len(text) or ids.numel() >= max_tokens + 256:
            return ids[:max_tokens]
        n_chars *= 2


def perplexity(model, tokenizer, dataset: str = "wikitext-2", split: str = "test", *,
               seq_len: int | None = None, stride: int | None = None,
               max_tokens: int | None = None, batch_size: int = 8, add_bos: bool = False,
               raw: bool = False, drop_last: bool | None = None,
               device: torch.device | str | None = None,
               progress: bool = True) -> PerplexityResult:
    """Perplexity of ``model`` on a corpus split (``"wikitext-2"``, ``"tinystories"`` or a path
    to a ``.txt`` file); see the module docstring for the text and the two conventions.

    ``seq_len`` defaults to the model's context length, capped at 2048. The book uses the
    non-overlapping convention (``stride=None``), as SLEB. ``add_bos`` starts every window with
    the tokenizer's BOS (or EOS when it has none).
    """
    if seq_len is None:
        seq_len = min(_model_context(model) or 2048, 2048)
    bos = None
    if add_bos:
        bos = tokenizer.bos_token_id
        bos = tokenizer.eos_token_id if bos is None else bos
        if bos is None:
            raise ValueError("add_bos=True but the tokenizer has neither BOS nor EOS")
    text = perplexity_text(dataset, split, raw=raw)
    ids = _prefix_ids(text, tokenizer, max_tokens)
    return perplexity_of_ids(model, ids, seq_len, stride=stride, bos_id=bos, drop_last=drop_last,
                             batch_size=batch_size, device=device, progress=progress,
                             text=f"{dataset}:{split}" + (" (raw file)" if raw else ""))
