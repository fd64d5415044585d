"""lin_utils.train: tokenizer, configs, packing, regularizers, the loop, checkpoints and resume.

Real tiny models and real TinyStories text throughout; no mocks.
"""
from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lin_utils import zoo
from lin_utils.arch import from_config, tiny_config
from lin_utils.data import load_stories, load_text
from lin_utils.extract import capture
from lin_utils.train import (SIZES, TrainConfig, bits_per_byte, cosine_regularizer, count_parameters,
                             log_spaced_steps, lr_at, mse_regularizer, train, train_tokenizer,
                             training_texts, zoo_config)
from lin_utils.train import configs as configs_module
from lin_utils.train.checkpoints import latest_state, list_checkpoints
from lin_utils.train.packing import PackedRows, pack_stories
from lin_utils.train.tokenizer import TokenizerSpec, load_or_train_tokenizer

REPO = Path(__file__).resolve().parents[1]
# A run of the loop small enough for tests: smoke-small, 64-token rows, 1 thread (bit-exact).
TINY_RUN = TrainConfig(size="smoke-small", vocab_size=512, tokenizer_stories=2000, data_stories=2000,
                       seq_len=64, batch_size=8, max_tokens=40 * 8 * 64, lr=3e-3, warmup_steps=4,
                       val_tokens=1024, log_every=5, num_threads=1)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: these models are tiny, and on a shared 2-core machine a second thread
    mostly waits for the first."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private $LIN_CACHE holding the smoke tokenizer (trained once for this module)."""
    root = tmp_path_factory.mktemp("lin_cache")
    load_or_train_tokenizer(TokenizerSpec(512, 2000), root)
    return root


@pytest.fixture(scope="module")
def tokenizer(cache):
    return load_or_train_tokenizer(TokenizerSpec(512, 2000), cache)


# ------------------------------------------------------------------------------------ tokenizer

def test_tokenizer_text_is_training_stories_only():
    """The tokenizer's text iterator is the training split, and none of it is validation text."""
    train_stories = load_stories("tinystories", "train")
    it = list(training_texts(3000))
    assert it == train_stories[:3000]
    assert len(train_stories) == 32_224
    val_text = load_text("tinystories", "validation")
    sample = it + train_stories[3000::25]  # the V1 head, the start of tinystories-more, a stride
    assert not any(s.strip() and s.strip() in val_text for s in sample)
    first_val = load_stories("tinystories", "validation")[0][:200]
    assert not any(first_val in s for s in it)


def test_the_heldout_tail_is_disjoint_from_every_trainable_slice():
    """The last HELDOUT_STORIES training stories: the sweep's runs (at most TRAINABLE_STORIES, data
    and tokenizer alike) never see them, and a run that did (the whole corpus, as the zoo trained
    before the tail was held out, whose keys stay) reports no held-out loss."""
    from lin_utils.train.tokenizer import HELDOUT_STORIES, TRAINABLE_STORIES, data_identity, heldout_texts, sees_heldout

    train_stories = load_stories("tinystories", "train")
    held = heldout_texts()
    assert held == train_stories[-HELDOUT_STORIES:] and HELDOUT_STORIES >= 100
    used = list(training_texts(TRAINABLE_STORIES))
    assert used == train_stories[:-HELDOUT_STORIES] and not set(held) & set(used)
    assert list(training_texts()) == train_stories  # None: every story (the legacy zoo's data and keys)
    assert not sees_heldout(TRAINABLE_STORIES) and sees_heldout(TRAINABLE_STORIES + 1) and sees_heldout(None)
    assert "heldout_tail" not in data_identity(None)
    for run in zoo.sweep_runs("cpu"):
        assert not sees_heldout(run["config"].data_stories) and not sees_heldout(run["config"].tokenizer_stories)


def test_tokenizer_specials_bos_and_round_trip():
    tok = train_tokenizer(list(training_texts(300)), 400)
    assert len(tok) == 400
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    text = "Lily’s dog said: “Héllo!”\n\nThe end. 🙂"
    ids = tok(text)["input_ids"]
    assert ids[0] == 1 and tok(text, add_special_tokens=False)["input_ids"] == ids[1:]
    assert tok.decode(ids, skip_special_tokens=True) == text  # byte-level: lossless


def test_tokenizer_cache_is_reused(cache):
    spec = TokenizerSpec(512, 2000)
    folder = cache / "tokenizers" / spec.key()
    mtime = (folder / "tokenizer.json").stat().st_mtime_ns
    tok = load_or_train_tokenizer(spec, cache)
    assert (folder / "tokenizer.json").stat().st_mtime_ns == mtime and len(tok) == 512
    assert TokenizerSpec(512, 2000).key() != TokenizerSpec(1024, 2000).key() != TokenizerSpec(512, None).key()


# ---------------------------------------------------------------------------------------- configs

def test_parameter_counts_in_the_docstring_are_exact():
    rows = re.findall(r"``([\w-]+)``\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d,]+) at vocab ([\d,]+)",
                      configs_module.__doc__)
    assert {r[0] for r in rows} == set(SIZES)
    for name, d, layers, heads, kv, ffn, count, vocab in rows:
        assert SIZES[name] == dict(hidden_size=int(d), num_hidden_layers=int(layers),
                                   num_attention_heads=int(heads), num_key_value_heads=int(kv),
                                   intermediate_size=int(ffn))
        assert count_parameters(name, int(vocab.replace(",", ""))) == int(count.replace(",", "")), name
    cfg = zoo_config("mistral-650m", 32000)
    assert cfg.model_type == "mistral" and cfg.num_key_value_heads < cfg.num_attention_heads  # GQA
    assert cfg.hidden_size // cfg.num_attention_heads == 64 and not cfg.tie_word_embeddings
    assert SIZES["cpu-large"]["num_hidden_layers"] >= 8


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(max_tokens=100 * 8 * 64, warmup_steps=10, lr=1e-3, min_lr_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(cfg.steps)]
    assert lrs[:10] == pytest.approx([1e-4 * (i + 1) for i in range(10)])
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[10] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-4, rel=1e-2)


def test_log_spaced_checkpoint_steps():
    assert log_spaced_steps(100) == [0, 1, 2, 4, 8, 16, 32, 64, 100]
    assert log_spaced_steps(64) == [0, 1, 2, 4, 8, 16, 32, 64]
    assert log_spaced_steps(1) == [0, 1] and log_spaced_steps(0) == [0]
    assert log_spaced_steps(10, per_octave=2) == [0, 1, 2, 3, 4, 6, 8, 10]


# ---------------------------------------------------------------------------------------- packing

def test_packing_is_eos_separated_and_the_order_is_seeded(tokenizer):
    stories = list(training_texts(40))
    stream = pack_stories(stories, tokenizer)
    assert stream[0] == tokenizer.bos_token_id and stream[-1] == tokenizer.eos_token_id
    assert (stream == tokenizer.eos_token_id).sum() == 40
    rows = PackedRows(stream, 32, seed=3)
    n = len(rows)
    drawn = torch.cat([rows.batch(s, 4) for s in range(n // 4)])  # one epoch: every row at most once
    perm = rows._perm(0)
    assert sorted(perm.tolist()) == list(range(n))
    assert torch.equal(drawn, rows.rows[perm[: (n // 4) * 4]])
    again = PackedRows(stream, 32, seed=3)
    assert all(torch.equal(rows.batch(s, 4), again.batch(s, 4)) for s in (0, 5, n))  # pure in (seed, step)
    assert not torch.equal(PackedRows(stream, 32, seed=4).batch(0, 4), rows.batch(0, 4))
    shares = [rows.batch(7, 4, rank=r, world=2) for r in (0, 1)]  # torchrun split of a step
    assert torch.equal(torch.stack([shares[0], shares[1]], 1).reshape(4, 32), rows.batch(7, 4))


# ----------------------------------------------------------------------------------- regularizers

def _numpy_regularizers(states: list[np.ndarray], mask: np.ndarray) -> tuple[float, float]:
    cos_total = mse_total = 0.0
    keep = mask.astype(bool)
    for prev, cur in zip(states[:-1], states[1:]):
        a, b = cur[keep].astype(np.float64), prev[keep].astype(np.float64)
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        cos_total += float(np.mean(1.0 - cos))
        mse_total += float(np.mean(((a - b) ** 2).sum(1)))
    return cos_total, mse_total


def test_regularizer_values_match_float64_numpy():
    model = from_config(zoo_config("smoke-large", 512))
    ids = torch.randint(3, 512, (3, 20))
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[1, 12:] = False  # padding
    mask[2, 5:] = False
    with torch.no_grad(), capture(model, None) as cap:
        model(input_ids=ids)
        states = [cap[b] for b in range(5)]
    ref_cos, ref_mse = _numpy_regularizers([s.numpy() for s in states], mask.numpy())
    assert float(cosine_regularizer(states, mask)) == pytest.approx(ref_cos, rel=1e-5)
    assert float(mse_regularizer(states, mask)) == pytest.approx(ref_mse, rel=1e-5)
    # padding is ignored: changing padded positions changes nothing
    noisy = [s.clone() for s in states]
    for s in noisy:
        s[~mask] = torch.randn_like(s[~mask]) * 100
    assert float(mse_regularizer(noisy, mask)) == pytest.approx(ref_mse, rel=1e-5)
    assert float(mse_regularizer(states)) != pytest.approx(ref_mse, rel=1e-3)  # mask=None: all tokens


def test_cosine_regularizer_and_its_gradient_equal_torch_cosine_similarity():
    import torch.nn.functional as F

    from lin_utils.train.regularizers import _cosine_fused

    torch.manual_seed(0)
    states = [torch.randn(2, 7, 16, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    ours = cosine_regularizer(states, mask)
    fused = _cosine_fused(states, mask, 1e-8)  # the GPU path, run here on the CPU
    ref = sum(((1 - F.cosine_similarity(b, a, dim=-1))[mask]).mean() for a, b in zip(states[:-1], states[1:]))
    g_ref = torch.autograd.grad(ref, states, retain_graph=True)
    for value in (ours, fused):
        assert float(value) == pytest.approx(float(ref), rel=1e-6)  # the function computes in float32
        for a, b in zip(torch.autograd.grad(value, states, retain_graph=True), g_ref):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def _rerun_last_block(model, family: str, x: torch.Tensor) -> torch.Tensor:
    """The raw output of the last block on input ``x`` (HF's last hidden state is final-norm'd)."""
    if family == "llama":
        pos = torch.arange(x.shape[1])[None]
        out = model.model.layers[-1](x, attention_mask=None, position_ids=pos,
                                     position_embeddings=model.model.rotary_emb(x, pos))
    else:
        out = model.transformer.h[-1](x)
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("fn", [cosine_regularizer, mse_regularizer], ids=["cosine", "mse"])
def test_regularizer_gradient_through_capture_equals_output_hidden_states(family, fn):
    model = from_config(tiny_config(family))
    params = [p for p in model.parameters()]
    ids = torch.randint(3, 500, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[1, 10:] = False
    with capture(model, None) as cap:  # the training path: states recorded in the one forward
        model(input_ids=ids)
        L = len(cap) - 1
        reg_a = fn([cap[b] for b in range(L + 1)], mask)
    grads_a = torch.autograd.grad(reg_a, params, allow_unused=True)

    hs = model(input_ids=ids, output_hidden_states=True).hidden_states  # independent path
    assert len(hs) == L + 1
    states = list(hs[:L]) + [_rerun_last_block(model, family, hs[L - 1])]
    reg_b = fn(states, mask)
    grads_b = torch.autograd.grad(reg_b, params, allow_unused=True)

    assert float(reg_a.detach()) == pytest.approx(float(reg_b.detach()), abs=1e-6)
    n_nonzero = 0
    for p, ga, gb in zip(params, grads_a, grads_b):
        ga = torch.zeros_like(p) if ga is None else ga
        gb = torch.zeros_like(p) if gb is None else gb
        torch.testing.assert_close(ga, gb, rtol=0, atol=1e-6)
        n_nonzero += bool(ga.abs().sum() > 0)
    assert n_nonzero > len(params) // 2  # the regularizer reaches most parameters


# -------------------------------------------------------------------------------- loop, metrics

def test_loss_falls_and_checkpoints_are_log_spaced(cache, tmp_path):
    res = train(TINY_RUN, tmp_path / "run", progress=False, cache_dir=cache)
    losses = [h["loss"] for h in res.history]
    assert len(losses) == TINY_RUN.steps == 40
    assert np.mean(losses[-5:]) < losses[0] - 0.8, losses
    assert res.val_history[-1]["val_loss"] < res.val_history[0]["val_loss"] - 0.5
    assert 0 < res.val_bpb < 8
    assert abs(res.heldout_loss - res.val_loss) < 1.0  # the held-out training tail: same distribution
    ckpts = list_checkpoints(tmp_path / "run")
    assert [s for s, _, _ in ckpts] == log_spaced_steps(40) == [0, 1, 2, 4, 8, 16, 32, 40]
    assert [t for _, t, _ in ckpts] == [s * 8 * 64 for s in log_spaced_steps(40)]
    assert latest_state(tmp_path / "run") is None  # resume states are dropped once final/ exists
    from transformers import AutoModelForCausalLM
    final = AutoModelForCausalLM.from_pretrained(res.final_dir, dtype=torch.float32)
    step0 = AutoModelForCausalLM.from_pretrained(ckpts[0][2], dtype=torch.float32)
    init = from_config(zoo_config("smoke-small", 512, max_position_embeddings=64), seed=TINY_RUN.seed)
    assert all(torch.equal(a, b) for a, b in zip(step0.state_dict().values(), init.state_dict().values()))
    assert not torch.equal(final.model.embed_tokens.weight, step0.model.embed_tokens.weight)
    meta = json.loads((res.final_dir / "meta.json").read_text())
    assert meta["key"] == TINY_RUN.key() and meta["steps"] == 40
    assert meta["heldout_loss"] == res.heldout_loss and meta["heldout_tokens"] == 1024


def test_bits_per_byte_matches_a_direct_computation(tokenizer):
    model = from_config(zoo_config("smoke-small", 512))
    texts = [s[:300] for s in load_stories("tinystories", "validation")[:3]]
    nats, n_bytes = 0.0, 0
    with torch.no_grad():
        for t in texts:
            ids = torch.tensor([[tokenizer.bos_token_id] + tokenizer(t, add_special_tokens=False)["input_ids"]])
            logits = model(input_ids=ids).logits
            nats += float(torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="sum"))
            n_bytes += len(t.encode("utf-8"))
    expected = nats / math.log(2) / n_bytes
    assert bits_per_byte(model, tokenizer, texts, seq_len=512, batch_size=1) == pytest.approx(expected, rel=1e-5)
    assert bits_per_byte(model, tokenizer, texts, seq_len=512, batch_size=3) == pytest.approx(expected, rel=1e-5)
    windowed = bits_per_byte(model, tokenizer, texts, seq_len=16)  # shorter context, same tokens
    assert windowed == pytest.approx(expected, rel=0.05) and windowed != pytest.approx(expected, rel=1e-7)


_KILLED_RUN = """
import sys, torch
from lin_utils.train import train, TrainConfig
cfg = TrainConfig(**{cfg!r})
train(cfg, sys.argv[1], progress=False, cache_dir=sys.argv[2])
"""


def test_a_run_killed_by_sigkill_resumes_to_bit_identical_weights(cache, tmp_path):
    cfg = TINY_RUN.replace(max_tokens=64 * 8 * 64, regularizer="cosine", reg_lambda=0.5,
                           state_every_s=0.3, eval_every=50)
    d = cfg.to_dict()
    d["betas"] = tuple(d["betas"])
    script = _KILLED_RUN.format(cfg=d)
    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", script, str(killed_dir), str(cache)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if latest_state(killed_dir) is not None:  # a resume state exists: kill it mid-run
            time.sleep(0.2)
            break
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = latest_state(killed_dir)
    assert state is not None and not (killed_dir / "final").exists()
    resumed = train(cfg, killed_dir, progress=False, cache_dir=cache)
    assert 0 < resumed.resumed_from < cfg.steps, state
    reference = train(cfg, tmp_path / "reference", progress=False, cache_dir=cache)
    assert reference.resumed_from == 0

    from safetensors.torch import load_file
    a = load_file(str(resumed.final_dir / "model.safetensors"))
    b = load_file(str(reference.final_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in reference.history]
    assert [s for s, _, _ in list_checkpoints(killed_dir)] == log_spaced_steps(cfg.steps)
