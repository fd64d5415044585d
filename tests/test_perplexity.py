"""lin_utils.evaluate.perplexity against a direct token-by-token computation (float64)."""

from __future__ import annotations

import math

import pytest
import torch

from lin_utils.arch import from_config, tiny_config
from lin_utils.evaluate.perplexity import perplexity, perplexity_of_ids, perplexity_text, windows


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny64():
    return from_config(tiny_config("llama", vocab_size=640), seed=3, dtype=torch.float64)


def _nll_next(model, context: list[int], token: int) -> float:
    """-log p(token | context), one forward pass on exactly ``context``."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([context])).logits[0, -1].double()
    return -float(torch.log_softmax(logits, -1)[token])


def _reference(model, ids: list[int], seq_len: int, stride: int | None, bos: int | None):
    """Independent re-implementation of both conventions, one token at a time.

    Non-overlapping (SLEB): consecutive full windows; each token scored from the window's
    earlier tokens (with BOS: BOS + earlier tokens, the first text token included).
    Sliding (HF's loop): windows start every ``stride`` tokens and each scores only the
    tokens after the previous window's end.
    """
    pre = [bos] if bos is not None else []
    width = seq_len - len(pre)
    nlls = []
    if stride is None:
        for k in range(len(ids) // width):
            win = ids[k * width:(k + 1) * width]
            for p in range(0 if pre else 1, width):
                nlls.append(_nll_next(model, pre + win[:p], win[p]))
    else:
        prev_end = 0
        for begin in range(0, len(ids), stride):
            end = min(begin + width, len(ids))
            trg_len = end - prev_end
            for p in range(end - trg_len, end):
                if p - begin >= (0 if pre else 1):
                    nlls.append(_nll_next(model, pre + ids[begin:p], ids[p]))
            prev_end = end
            if end == len(ids):
                break
    return sum(nlls) / len(nlls), len(nlls)


@pytest.mark.parametrize("seq_len,stride,bos,batch", [
    (16, None, None, 3),   # non-overlapping, the book's convention
    (16, None, 1, 2),      # non-overlapping with BOS in every window
    (16, 5, None, 4),      # sliding, uneven last window
    (12, 12, None, 1),     # sliding with stride == seq_len is non-overlapping (HF keeps the tail)
    (16, 7, 1, 3),         # sliding with BOS
])
def test_matches_token_by_token(tiny64, seq_len, stride, bos, batch):
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 640, (50,), generator=gen)
    drop_last = False if stride == seq_len else None
    res = perplexity_of_ids(tiny64, ids, seq_len, stride=None if stride == seq_len else stride,
                            bos_id=bos, batch_size=batch, progress=False, drop_last=drop_last)
    nll, n = _reference(tiny64, ids.tolist(), seq_len, stride, bos)
    assert res.n_scored == n
    assert res.nll == pytest.approx(nll, rel=1e-10, abs=1e-10)
    assert res.ppl == pytest.approx(math.exp(nll), rel=1e-10)


def test_conventions_count_tokens():
    # non-overlapping drops the partial tail and cannot score each window's first token
    assert sum(e - f for _, e, f in windows(100, 10)) == 10 * 9
    # sliding scores every token but the first exactly once
    w = windows(100, 10, 3)
    scored = [t for _, e, f in w for t in range(f, e)]
    assert scored == list(range(1, 100))
    assert all(e - b <= 10 and f >= b + 1 for b, e, f in w)
    # with BOS every text token of the full windows is scored
    assert sum(e - f for _, e, f in windows(100, 11, add_bos=True)) == 100
    with pytest.raises(ValueError, match="stride"):
        windows(100, 10, 11)
    with pytest.raises(ValueError, match="drop_last"):
        windows(100, 10, 3, drop_last=True)


def test_batch_size_and_max_tokens(tiny64):
    ids = torch.randint(3, 640, (90,), generator=torch.Generator().manual_seed(1))
    a = perplexity_of_ids(tiny64, ids, 20, batch_size=1, progress=False)
    b = perplexity_of_ids(tiny64, ids, 20, batch_size=7, progress=False)
    assert a.nll == pytest.approx(b.nll, rel=1e-12)
    c = perplexity_of_ids(tiny64, ids, 20, max_tokens=40, progress=False)
    assert (c.n_tokens, c.n_windows, c.n_scored) == (40, 2, 38)
    with pytest.raises(ValueError, match="no full window"):
        perplexity_of_ids(tiny64, ids[:10], 20, progress=False)


def test_wikitext_text_is_joined_hub_rows():
    text = perplexity_text("wikitext-2", "test")
    raw = perplexity_text("wikitext-2", "test", raw=True)
    # HF rows of wikitext-2-raw-v1 are the raw file's lines, a blank line " \n" being "".
    rows = ["" if line == " \n" else line for line in raw.splitlines(keepends=True)]
    assert rows[:2] == ["", " = Robert Boulter = \n"]
    assert text == "\n\n".join(rows)
    assert text.startswith("\n\n = Robert Boulter = \n\n\n\n\n Robert Boulter is an English")


def test_end_to_end_on_a_text_file(tmp_path, tiny_bpe_tokenizer):
    model = from_config(tiny_config("gpt2", vocab_size=len(tiny_bpe_tokenizer), n_positions=64),
                        seed=0, dtype=torch.float64)
    src = tmp_path / "corpus.txt"
    src.write_text(perplexity_text("wikitext-2", "test", raw=True)[:6000], encoding="utf-8")
    res = perplexity(model, tiny_bpe_tokenizer, str(src), "test", seq_len=32, max_tokens=400,
                     batch_size=4, progress=False)
    ids = tiny_bpe_tokenizer(src.read_text(encoding="utf-8"), add_special_tokens=False)["input_ids"]
    ref = perplexity_of_ids(model, torch.tensor(ids[:400]), 32, progress=False)
    assert res.n_tokens == 400 and res.n_windows == 12 and res.convention == "non-overlapping"
    assert res.nll == pytest.approx(ref.nll, rel=1e-12)
    # a random model is near uniform over its vocabulary
    assert 0.3 * len(tiny_bpe_tokenizer) < res.ppl < 3 * len(tiny_bpe_tokenizer)
    slid = perplexity(model, tiny_bpe_tokenizer, str(src), "test", seq_len=32, stride=8,
                      max_tokens=400, progress=False)
    assert slid.convention == "sliding" and slid.n_scored == 399


@pytest.mark.slow
def test_stories260k_tinystories_validation():
    from lin_utils.models import load_model

    model, tok = load_model("stories260K")
    res = perplexity(model, tok, "tinystories", "validation", max_tokens=4096, seq_len=256,
                     progress=False)
    # a real pretrained TinyStories model: far below its 512-token vocabulary
    assert res.n_scored == 16 * 255 and 1.5 < res.ppl < 20
