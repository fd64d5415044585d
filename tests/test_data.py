"""lin_utils.data against the real local mirror (conftest points LIN_DATA_DIR at it)."""

from __future__ import annotations

import re
import time

import pytest
import torch

from lin_utils import data
from lin_utils.errors import DataNotFoundError


# ---------------------------------------------------------------- loaders: counts and formats

@pytest.mark.parametrize("name,split,n", [
    ("arc-easy", "test", 2376), ("arc-easy", "dev", 570), ("arc-easy", "validation", 570),
    ("arc-easy", "train", 2251), ("arc-challenge", None, 1172),
    ("boolq", "validation", 3270), ("cb", "val", 56), ("copa", None, 100),
    ("multirc", "validation", 83), ("rte", "validation", 277), ("wic", "validation", 638),
    ("wsc", "validation", 104), ("record", "train32", 32), ("cb", "fewglue", 32),
    ("xstorycloze-en", "eval", 1511), ("xstorycloze-en", "train", 360),
    ("hh-rlhf-helpful", "test", 2354), ("piqa", "validation", 1838),
    ("winogrande", "dev", 1267),
])
def test_eval_counts(name, split, n):
    rows = data.load_eval(name, split)
    assert len(rows) == n
    assert all(isinstance(r, dict) for r in rows)


def test_eval_original_formats():
    arc = data.load_eval("arc-easy", "dev")[0]
    assert arc["id"] == "MCAS_2000_4_6" and arc["answerKey"] == "A"
    assert arc["question"]["choices"][0] == {"text": "cellular telephone", "label": "A"}

    piqa = data.load_eval("piqa")
    assert piqa[0]["goal"].startswith("How do I ready a guinea pig cage")
    assert [r["label"] for r in piqa[:3]] == [0, 1, 1]
    assert set(r["label"] for r in piqa) == {0, 1}

    wg = data.load_eval("winogrande")
    assert wg[0]["label"] == 2 and wg[0]["option2"] == "Maria"
    assert all(r["label"] == int(r["answer"]) for r in wg)  # labels file agrees with rows

    xs = data.load_eval("xstorycloze-en")[0]
    assert list(xs) == ["story_id", *(f"input_sentence_{i}" for i in range(1, 5)),
                        "sentence_quiz1", "sentence_quiz2", "answer_right_ending"]
    hh = data.load_eval("hh-rlhf-helpful")[0]
    assert set(hh) == {"chosen", "rejected"} and hh["chosen"].startswith("\n\nHuman:")
    mrc = data.load_eval("multirc")
    assert sum(len(p["passage"]["questions"]) for p in mrc) == 953


def test_wikitext_text():
    test = data.load_text("wikitext-2", "test")
    assert test.startswith(" \n = Robert Boulter = \n \n Robert Boulter is an English film")
    assert len(test.encode("utf-8")) == 1290590  # byte-exact copy, see SOURCE.md
    assert test.count("\n") == 4358
    assert data.load_text("wikitext-2", "valid") == data.load_text("wikitext-2", "validation")


def test_tinystories():
    val = data.load_text("tinystories", "validation")
    assert val.startswith("Spot. Spot saw the shiny car")
    stories = data.load_stories("tinystories", "validation")
    assert "\n\n".join(stories) + "\n\n" == val  # segmentation is lossless
    assert 500 < len(stories) < 1000

    train = data.load_stories("tinystories", "train")
    assert len(train) == 1000 + 31224
    assert train[0].startswith("One day, a little girl named Lily found a needle")
    assert train[1].startswith("Once upon a time, there was a little car named Beep.")
    assert list(data.iter_stories("train"))[:2] == train[:2]
    # the first 1,000 are exactly the stories of tinystories_train_head.txt (modulo mojibake)
    key = lambda s: re.sub(r"[^a-z0-9]+", " ", s.lower().replace("â€™", "’")).strip()  # noqa
    head = key((data.data_dir() / "tinystories" / "tinystories_train_head.txt").read_text("utf-8"))
    assert key(train[999]) in head and head.endswith(key(train[999]))
    assert key(train[1000]) not in head
    text = data.load_text("tinystories", "train")
    assert text.startswith(train[0].strip() + "\n\nOnce upon a time, there was a little car")
    assert text.endswith(train[-1].strip() + "\n\n")
    assert not set(train).intersection(stories)


# ---------------------------------------------------------------- argument and missing-data errors

@pytest.mark.parametrize("call,bad", [
    (lambda: data.load_text("wikitext-3", "test"), "wikitext-3"),
    (lambda: data.load_text("wikitext-2", "dev"), "dev"),
    (lambda: data.load_eval("arc-medium"), "arc-medium"),
    (lambda: data.load_eval("record", "validation"), "validation"),
    (lambda: data.load_eval("hh-rlhf-helpful", "eval"), "eval"),
    (lambda: data.load_stories("wikitext-2", "test"), "wikitext-2"),
])
def test_bad_names_and_splits(call, bad):
    with pytest.raises(ValueError, match=repr(bad)) as err:
        call()
    assert "choose one of" in str(err.value)


@pytest.fixture
def empty_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("LIN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return tmp_path


@pytest.mark.parametrize("call,local,hub", [
    (lambda: data.load_text("wikitext-2", "test"), "wikitext-2-raw/wiki.test.raw", "wikitext"),
    (lambda: data.load_eval("arc-easy", "test"), "arc-easy/ARC-Easy-Test.jsonl",
     "allenai/ai2_arc"),
    (lambda: data.load_eval("boolq"), "superglue/BoolQ/val.jsonl", "aps/super_glue"),
    (lambda: data.load_eval("piqa"), "piqa/dev.jsonl", "ybisk/piqa"),
    (lambda: data.load_stories("tinystories", "train"), "tinystories_train_head_2MiB.txt",
     "roneneldan/TinyStories"),
])
def test_missing_data_names_local_path_and_hub(empty_mirror, call, local, hub):
    t0 = time.perf_counter()
    with pytest.raises(DataNotFoundError) as err:
        call()
    msg = str(err.value)
    assert str(empty_mirror) in msg and local in msg
    assert f"'{hub}" in msg and "failed (" in msg
    assert isinstance(err.value, FileNotFoundError)
    assert time.perf_counter() - t0 < 10  # offline mode: no network retries


def test_missing_data_dir_unset(monkeypatch):
    monkeypatch.delenv("LIN_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert data.data_dir() is None
    with pytest.raises(DataNotFoundError, match="LIN_DATA_DIR is not set") as err:
        data.load_eval("xstorycloze-en")
    assert "juletxara/xstory_cloze" in str(err.value)


def test_train_only_on_hub_fails_cleanly():
    # The mirror has no WikiText-2 train split; with the hub offline this is a clean error.
    with pytest.raises(DataNotFoundError, match="wiki.train.raw"):
        data.load_text("wikitext-2", "train")


# ---------------------------------------------------------------- chunking

def _check_lossless(ch: data.TokenChunks, ids: torch.Tensor, bos: int | None):
    body = ch.input_ids[:, 1:] if bos is not None else ch.input_ids
    bmask = ch.attention_mask[:, 1:] if bos is not None else ch.attention_mask
    real = body[bmask.bool()]  # row-major order = original order
    assert torch.equal(real, ids[: real.numel()])
    return real.numel()


@pytest.mark.parametrize("bos", [None, 7])
@pytest.mark.parametrize("n,seq_len,max_tokens", [
    (20, 4, None), (21, 4, None), (3, 4, None), (100, 8, 37), (100, 8, 33), (100, 8, 32),
    (100, 8, 1000), (0, 4, None), (10, 2, None), (50, 5, 1),
])
def test_chunk_tokens(bos, n, seq_len, max_tokens):
    ids = torch.arange(100, 100 + n)
    ch = data.chunk_tokens(ids, seq_len, max_tokens=max_tokens, bos_id=bos, pad_id=-1)
    assert ch.input_ids.shape == ch.attention_mask.shape == (len(ch), seq_len)
    assert ch.input_ids.dtype == ch.attention_mask.dtype == torch.long
    assert ch.has_bos == (bos is not None)
    n_text = _check_lossless(ch, ids, bos)
    nb = int(bos is not None)
    assert ch.n_tokens == n_text + nb * len(ch) == int(ch.attention_mask.sum())
    if max_tokens is None:
        assert n_text == n  # nothing lost
    else:
        assert ch.n_tokens <= max_tokens
        assert ch.n_tokens >= min(max_tokens - nb, n + nb * len(ch))  # cap reached (or data out)
    if len(ch):
        if bos is not None:
            assert (ch.input_ids[:, 0] == bos).all() and (ch.attention_mask[:, 0] == 1).all()
            assert (ch.attention_mask[:, 1:].sum(1) > 0).all()  # no BOS-only row
        # padding only at the right end of the last row, and padded ids are pad_id
        assert (ch.attention_mask[:-1] == 1).all()
        last = ch.attention_mask[-1]
        assert torch.equal(last, torch.sort(last, descending=True).values)
        assert (ch.input_ids[ch.attention_mask == 0] == -1).all()


def test_chunk_tokens_exact_example():
    ch = data.chunk_tokens(torch.arange(1, 8), 4, max_tokens=10, bos_id=0, pad_id=9)
    assert ch.input_ids.tolist() == [[0, 1, 2, 3], [0, 4, 5, 6], [0, 7, 9, 9]]
    assert ch.attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0]]
    ch = data.chunk_tokens(torch.arange(1, 8), 4, max_tokens=9, bos_id=0)  # drops BOS-only row
    assert ch.input_ids.tolist() == [[0, 1, 2, 3], [0, 4, 5, 6]] and ch.n_tokens == 8
    ch = data.chunk_tokens(torch.arange(1, 8), 3, max_tokens=5)
    assert ch.input_ids.tolist() == [[1, 2, 3], [4, 5, 0]] and ch.n_tokens == 5
    sizes = [b[0].shape[0] for b in data.chunk_tokens(torch.arange(25), 2).batches(5)]
    assert sizes == [5, 5, 3] and len(data.chunk_tokens(torch.arange(25), 2)) == 13


@pytest.mark.parametrize("kwargs,arg", [
    (dict(seq_len=1, bos_id=0), "seq_len"), (dict(seq_len=0), "seq_len"),
    (dict(seq_len=4, max_tokens=0), "max_tokens"), (dict(seq_len=4, max_tokens=-3), "max_tokens"),
])
def test_chunk_tokens_validation(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        data.chunk_tokens(torch.arange(10), **kwargs)
    with pytest.raises(ValueError, match="batch_size"):
        next(data.chunk_tokens(torch.arange(10), 4).batches(0))


# ---------------------------------------------------------------- tokenization

def test_tokenize_text(tiny_bpe_tokenizer, caplog):
    tok = tiny_bpe_tokenizer
    text = data.load_text("wikitext-2", "valid")[:50_000]
    ids = data.tokenize_text(text, tok)
    assert ids.dtype == torch.long and ids.dim() == 1
    assert ids.tolist() == tok(text, add_special_tokens=False)["input_ids"]  # one exact call
    assert tok.bos_token_id not in ids.tolist()
    assert tok.decode(ids) == text
    # forced into line pieces: still lossless text, nearly identical ids
    pieces = data.tokenize_text(text, tok, max_chars_per_call=1000)
    assert tok.decode(pieces) == text and abs(pieces.numel() - ids.numel()) < 30
    assert data.tokenize_text("", tok).shape == (0,)
    tok.model_max_length = 64  # long input must not warn
    try:
        with caplog.at_level("WARNING"):
            data.tokenize_text(text, tok)
        assert "longer than the specified maximum" not in caplog.text
    finally:
        tok.model_max_length = int(1e30)


def test_text_chunks(tiny_bpe_tokenizer):
    tok = tiny_bpe_tokenizer
    ch = data.text_chunks("wikitext-2", "test", tok, seq_len=64, max_tokens=640)
    assert ch.input_ids.shape == (10, 64) and ch.n_tokens == 640
    assert (ch.input_ids[:, 0] == tok.bos_token_id).all()
    full = data.tokenize_text(data.load_text("wikitext-2", "test"), tok)
    _check_lossless(ch, full, tok.bos_token_id)  # prefix tokenization == full-text tokenization

    nobos = data.text_chunks("tinystories", "validation", tok, seq_len=32, max_tokens=100,
                             add_bos=False)
    assert nobos.n_tokens == 100 and not nobos.has_bos
    assert tok.decode(nobos.input_ids[0]).startswith("Spot. Spot saw")


# ---------------------------------------------------------------- SuperGLUE hub rows -> mirror layout

def _to_hub(task, rows, names):
    """The mirror's rows as aps/super_glue lays them out (integer labels; MultiRC flat)."""
    if task == "multirc":
        return [{"paragraph": p["passage"]["text"], "question": q["question"], "answer": a["text"],
                 "idx": {"paragraph": p["idx"], "question": q["idx"], "answer": a["idx"]}, "label": a["label"]}
                for p in rows for q in p["passage"]["questions"] for a in q["answers"]]
    index = {n.lower(): i for i, n in enumerate(names)}
    return [{**r, "label": index[str(r["label"]).lower()]} for r in rows]


@pytest.mark.parametrize("task,names", [
    ("multirc", ["False", "True"]), ("boolq", ["False", "True"]), ("wic", ["False", "True"]),
    ("cb", ["entailment", "contradiction", "neutral"]), ("rte", ["entailment", "not_entailment"]),
])
def test_superglue_hub_rows_take_the_mirror_layout(task, names):
    # the fine-tuning tasks (Table 1) read MultiRC, BoolQ and CB through load_eval from either source
    mirror = data.load_eval(task)[:40]
    back = data.superglue_rows_from_hub(task, _to_hub(task, mirror, names), names)
    if task == "multirc":
        assert back == [{"idx": p["idx"], "passage": p["passage"]} for p in mirror]
    else:
        assert back == mirror
