"""Story completions for Table 3: openings, sampling, and the automatic proxies.

The paper (following TinyStories) has each model complete held-out story beginnings and a GPT-4
judge grade them. Here the beginnings come from the clean TinyStories validation head, cut in the
middle of a sentence as in the TinyStories paper, and every model samples with the same settings
and seeds. :mod:`lin_utils.evaluate.judge` grades them when an endpoint is configured; otherwise
the book shows these automatic proxies, labelled as such and never as judge scores:

* ``scorer_ppl``: perplexity of the completion given its beginning under a fixed scorer model
  (the caller names it; the book uses stories260K, trained elsewhere on TinyStories and so
  independent of the zoo). Lower means more TinyStories-like text, not a better story.
* ``distinct_1`` / ``distinct_2``: unique n-grams over all n-grams of the completion (words).
* ``repetition_4``: fraction of the completion's word 4-grams that repeat an earlier one.
"""
from __future__ import annotations

import inspect
import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..data import load_stories

__all__ = ["complete", "completion_nll", "distinct_n", "proxy_table", "repetition_rate", "story_openings"]

_SENTENCE_END = re.compile(r"[.!?\"']$")


def story_openings(n: int, *, seed: int = 0, fraction: float = 0.4, min_words: int = 40) -> list[str]:
    """``n`` story beginnings from the TinyStories validation head, each cut mid-sentence.

    Stories with at least ``min_words`` words are drawn without replacement (``seed``); each is
    cut after about ``fraction`` of its words, moved forward to the first word that does not end
    a sentence, so the completion has to finish the sentence.
    """
    stories = [s for s in load_stories("tinystories", "validation") if len(s.split()) >= min_words]
    if n > len(stories):
        raise ValueError(f"n={n} openings requested, but only {len(stories)} stories have >= {min_words} words")
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(len(stories), size=n, replace=False):
        words = stories[i].split(" ")
        cut = max(int(len(words) * fraction), 5)
        while cut < len(words) - 1 and _SENTENCE_END.search(words[cut - 1].strip()):
            cut += 1
        out.append(" ".join(words[:cut]))
    return out


def _opening_ids(tokenizer, opening: str, max_new_tokens: int, limit: int | None) -> list[int]:
    """BOS + the opening's tokens, keeping only its last tokens when the context is too short."""
    bos = tokenizer.bos_token_id
    ids = tokenizer(opening, add_special_tokens=False)["input_ids"]
    if bos is not None:
        ids = [bos] + ids
    if limit is not None and len(ids) + max_new_tokens > limit:
        # A short-context model sees the end of the opening only (the smoke profile's tiny models).
        keep = limit - max_new_tokens - (bos is not None)
        if keep < 1:
            raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room for the opening in the "
                             f"model's context of {limit} tokens")
        ids = ([bos] if bos is not None else []) + ids[-keep:]
    return ids


def _sample(logits: torch.Tensor, temperature: float, top_k: int, generators: list[torch.Generator]) -> torch.Tensor:
    """One token per row of ``logits`` (B, V): top-k, then temperature, each row with its own generator.
    ``temperature == 0`` is greedy."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, -1).cpu()
    return torch.stack([torch.multinomial(p, 1, generator=g)[0] for p, g in zip(probs, generators)]).to(logits.device)


@torch.no_grad()
def complete(model, tokenizer, openings: Sequence[str], *, max_new_tokens: int = 120, temperature: float = 0.8,
             top_k: int = 50, seed: int = 0, batch_size: int = 25, progress: bool = True) -> list[str]:
    """Sample one completion per opening; opening ``i`` draws from its own generator seeded
    ``seed + i``, whatever the model and the batch.

    Openings are completed ``batch_size`` at a time, left-padded, with a key-value cache (one
    forward pass per new token for the whole batch). Each step keeps the ``top_k`` most likely
    tokens, divides by ``temperature`` (0: greedy) and samples. Returns the generated text only
    (the opening excluded), cut at the first EOS. When the opening and ``max_new_tokens`` do not
    fit the model's context, the model sees the opening's last tokens.
    """

    model.eval()
    device = next(model.parameters()).device
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos if eos is not None else 0)
    limit = getattr(model.config, "max_position_embeddings", None)
    takes_positions = "position_ids" in inspect.signature(model.forward).parameters
    out: list[str] = []
    bar = tqdm(total=len(openings), desc="complete", disable=not progress, leave=False)
    for lo in range(0, len(openings), batch_size):
        rows = [_opening_ids(tokenizer, o, max_new_tokens, limit) for o in openings[lo:lo + batch_size]]
        width = max(map(len, rows))
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
        generators = [torch.Generator().manual_seed(seed + lo + j) for j in range(len(rows))]
        new = torch.full((len(rows), max_new_tokens), pad, dtype=torch.long, device=device)
        done = torch.zeros(len(rows), dtype=torch.bool, device=device)
        past, step_ids = None, ids
        for t in range(max_new_tokens):
            kw = {"position_ids": (mask.cumsum(-1) - 1).clamp_min(0)[:, -step_ids.shape[1]:]} if takes_positions else {}
            res = model(input_ids=step_ids, attention_mask=mask, past_key_values=past, use_cache=True, **kw)
            past = res.past_key_values
            token = _sample(res.logits[:, -1], temperature, top_k, generators)
            token = torch.where(done, torch.full_like(token, pad), token)
            new[:, t] = token
            if eos is not None:
                done |= token == eos
            if bool(done.all()):
                break
            step_ids = token[:, None]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        for row in new.tolist():
            if eos is not None and eos in row:
                row = row[: row.index(eos)]
            out.append(tokenizer.decode(row, skip_special_tokens=True))
        bar.update(len(rows))
    bar.close()
    return out


@torch.no_grad()
def completion_nll(model, tokenizer, opening: str, completion: str) -> tuple[float, int]:
    """Summed NLL (nats) of the completion's tokens given BOS + opening, and their count.

    The completion's tokens are those of ``opening + completion`` after the longest common prefix
    with the tokens of ``opening`` alone (a BPE merge across the boundary moves it by a token).
    """
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    a = bos + tokenizer(opening, add_special_tokens=False)["input_ids"]
    full = bos + tokenizer(opening + completion, add_special_tokens=False)["input_ids"]
    start = next((k for k, (p, q) in enumerate(zip(a, full)) if p != q), len(a))
    start = max(start, 1)
    if start >= len(full):
        return 0.0, 0
    device = next(model.parameters()).device
    x = torch.tensor([full], device=device)
    logp = torch.log_softmax(model(input_ids=x).logits[0].double(), dim=-1)
    targets = x[0, start:]
    nll = -logp[start - 1:-1].gather(1, targets[:, None]).sum()
    return float(nll), int(targets.numel())


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z']+|[0-9]+|[^\sA-Za-z0-9]", text.lower())


def distinct_n(text: str, n: int) -> float:
    """Unique word n-grams over all word n-grams of ``text`` (NaN when it has none)."""
    w = _words(text)
    grams = [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else math.nan


def repetition_rate(text: str, n: int = 4) -> float:
    """Fraction of word n-grams of ``text`` that repeat an earlier one (NaN when it has none)."""
    d = distinct_n(text, n)
    return 1 - d if not math.isnan(d) else math.nan


def proxy_table(openings: Sequence[str], completions: Sequence[str], scorer, scorer_tokenizer) -> pd.DataFrame:
    """One row per completion: tokens scored, scorer NLL, distinct-1/2 and 4-gram repetition."""
    rows = []
    for i, (o, c) in enumerate(zip(openings, completions, strict=True)):
        nll, k = completion_nll(scorer, scorer_tokenizer, o, c)
        rows.append(dict(item=i, n_words=len(_words(c)), scorer_tokens=k, scorer_nll=nll,
                         distinct_1=distinct_n(c, 1), distinct_2=distinct_n(c, 2), repetition_4=repetition_rate(c, 4)))
    return pd.DataFrame(rows)
