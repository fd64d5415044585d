"""lin_utils.finetune and Table 1: heads, losses, splits, the loop, before/after linearity.

Math is checked against math (direct indexing, float64 closed forms, exact least squares); the
loop runs for real on stories260K and tiny random models with real task data from the mirror.
"""
from __future__ import annotations

import copy
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch

from lin_utils.arch import from_config, tiny_config
from lin_utils.errors import LinUtilsError
from lin_utils.extract import capture
from lin_utils.finetune import (TASKS, EncodedSet, FineTuneConfig, LinearityProbe, SequenceHead, delta,
                                encode_examples, evaluate, finetune, last_token_index, learned, load_examples,
                                majority_baseline, pairwise_loss, pool, shuffle_labels, split_examples, step_indices,
                                task_loss, task_spec, trunk_of)
from lin_utils.finetune.loop import accuracy_from_features, pooled_features
from lin_utils.linearity import linearity_score
from lin_utils.models import load_model


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: bit-exact repeats on CPU


@pytest.fixture(scope="module")
def cb_split():
    return split_examples("cb", load_examples("cb"), 0.5)


# ------------------------------------------------------------------------------------------------
# heads and losses


def test_last_token_index_and_pool_match_direct_indexing():
    g = torch.Generator().manual_seed(0)
    B, T, d = 6, 9, 5
    lengths = torch.tensor([1, 9, 4, 7, 2, 5])
    mask = (torch.arange(T)[None] < lengths[:, None]).long()
    hidden = torch.randn(B, T, d, generator=g)
    assert torch.equal(last_token_index(mask), lengths - 1)
    direct = torch.stack([hidden[b, int(lengths[b]) - 1] for b in range(B)])
    assert torch.equal(pool(hidden, mask, "last"), direct)
    assert torch.equal(pool(hidden, mask, "first"), hidden[:, 0])


def test_pool_refuses_left_padding_empty_rows_and_bad_names():
    hidden = torch.zeros(2, 3, 4)
    with pytest.raises(LinUtilsError, match="right-padded"):
        pool(hidden, torch.tensor([[0, 1, 1], [1, 1, 1]]))
    with pytest.raises(LinUtilsError, match="no real token"):
        pool(hidden, torch.tensor([[0, 0, 0], [1, 1, 1]]))
    with pytest.raises(LinUtilsError, match="pool"):
        pool(hidden, torch.ones(2, 3), "mean")


def test_pairwise_loss_matches_float64_closed_form():
    rc = torch.tensor([0.3, -2.0, 40.0, -40.0, 1e-3], dtype=torch.float32)
    rr = torch.tensor([0.1, 1.5, -5.0, 5.0, 0.0], dtype=torch.float32)
    m = (rc - rr).double().numpy()
    closed = np.mean([math.log1p(math.exp(-x)) if x > -30 else -x + math.log1p(math.exp(x)) for x in m])
    assert float(pairwise_loss(rc, rr)) == pytest.approx(closed, rel=1e-6)
    # The task loss reads rewards as alternating (chosen, rejected) rows.
    logits = torch.stack([rc, rr], 1).reshape(-1, 1)
    assert float(task_loss("pairwise", logits, torch.zeros(5, dtype=torch.long))) == pytest.approx(closed, rel=1e-6)


def test_binary_and_multiclass_losses_match_closed_forms():
    z = torch.tensor([[0.5], [-1.2], [3.0]])
    y = torch.tensor([1, 0, 0])
    p = 1 / (1 + np.exp(-z[:, 0].double().numpy()))
    bce = -np.mean(np.where(y.numpy() == 1, np.log(p), np.log(1 - p)))
    assert float(task_loss("binary", z, y)) == pytest.approx(bce, rel=1e-6)
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    labels = torch.tensor([2, 2])
    lg = logits.double().numpy()
    ce = np.mean([np.log(np.exp(r).sum()) - r[c] for r, c in zip(lg, labels.numpy())])
    assert float(task_loss("multiclass", logits, labels)) == pytest.approx(ce, rel=1e-6)
    with pytest.raises(LinUtilsError, match="kind"):
        task_loss("regression", z, y)


def test_head_reads_last_real_token_of_a_decoder_and_cls_of_an_encoder():
    dec = trunk_of(from_config(tiny_config("llama"), seed=0))
    enc = trunk_of(from_config(tiny_config("bert"), seed=0))
    assert SequenceHead(dec, 1).how == "last" and SequenceHead(enc, 3).how == "first"
    net = SequenceHead(dec, 2, seed=1).eval()
    ids = torch.randint(3, 500, (3, 7), generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    with torch.no_grad():
        out = net(ids, mask)
        for b in range(3):  # each row alone, unpadded: the same logits
            n = int(mask[b].sum())
            alone = net.head(dec(input_ids=ids[b:b + 1, :n]).last_hidden_state[0, n - 1])
            assert torch.allclose(out[b], alone, atol=1e-5)
    with pytest.raises(LinUtilsError, match="n_outputs"):
        SequenceHead(dec, 0)


def test_head_init_is_seeded_and_leaves_the_global_rng_alone():
    trunk = trunk_of(from_config(tiny_config("llama"), seed=0))
    state = torch.get_rng_state()
    a, b, c = (SequenceHead(trunk, 1, seed=s).head.weight for s in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.get_rng_state(), state)


# ------------------------------------------------------------------------------------------------
# tasks, splits, encoding


@pytest.mark.parametrize("task", list(TASKS))
def test_splits_are_deterministic_disjoint_and_keep_groups_together(task):
    examples = load_examples(task)
    ft, ho, info = split_examples(task, examples, 0.5)
    ft2, ho2, info2 = split_examples(task, list(reversed(examples)), 0.5)  # file order does not matter
    assert {e.uid for e in ho} == {e.uid for e in ho2} and info == info2
    assert not {e.uid for e in ft} & {e.uid for e in ho}
    assert len(ft) + len(ho) == len(examples) == len({e.uid for e in examples})
    assert not {e.group for e in ft} & {e.group for e in ho}
    assert info["n_finetune"] == len(ft) and info["n_heldout"] == len(ho)
    assert info["n_heldout_groups"] == round(0.5 * info["n_groups"])
    json.dumps(info)  # goes into the provenance


def test_split_and_task_errors_name_the_argument():
    with pytest.raises(LinUtilsError, match="heldout_fraction"):
        split_examples("cb", load_examples("cb"), 1.0)
    with pytest.raises(LinUtilsError, match="task"):
        task_spec("rte")


def test_shuffled_labels_keep_the_inputs_and_class_counts_and_flip_pairs_by_a_coin(stories, cb_split):
    _, tok = stories
    data = encode_examples(cb_split[0], tok, 48)
    sh = shuffle_labels(data, "binary", seed=0)
    assert sh.seqs == data.seqs and sorted(sh.labels.tolist()) == sorted(data.labels.tolist())
    assert not torch.equal(sh.labels, data.labels)  # 28 labels, 12 of one class: a permutation moves some
    assert torch.equal(shuffle_labels(data, "binary", seed=0).labels, sh.labels)  # deterministic in the seed
    assert not torch.equal(shuffle_labels(data, "binary", seed=1).labels, sh.labels)
    assert data.labels.tolist() == encode_examples(cb_split[0], tok, 48).labels.tolist()  # input left alone
    hh = encode_examples(load_examples("hh-rlhf")[:40], tok, 32)
    flipped = shuffle_labels(hh, "pairwise", seed=3)
    assert torch.equal(flipped.labels, hh.labels)
    swapped = [flipped.seqs[2 * i] == hh.seqs[2 * i + 1] and flipped.seqs[2 * i + 1] == hh.seqs[2 * i]
               for i in range(40)]
    kept = [flipped.seqs[2 * i] == hh.seqs[2 * i] for i in range(40)]
    assert all(s or k for s, k in zip(swapped, kept)) and 5 < sum(swapped) < 35
    with pytest.raises(LinUtilsError, match="kind"):
        shuffle_labels(data, "ranking", seed=0)
    with pytest.raises(LinUtilsError, match="pairwise"):
        shuffle_labels(data, "pairwise", seed=0)


def test_tasks_read_the_mirror_in_the_papers_formatting():
    cb = load_examples("cb")
    assert len(cb) == 56 and {e.label for e in cb} == {0, 1}  # binary: entailment against the rest
    from lin_utils.data import load_eval
    rows = load_eval("cb", "validation")
    assert [e.label for e in cb] == [int(r["label"] == "entailment") for r in rows]
    assert task_spec("cb").kind == "binary" and task_spec("cb").n_outputs == 1
    boolq = load_examples("boolq")
    assert boolq[0].texts[0][0].text.startswith("question: ") and boolq[0].texts[0][1].text.startswith("passage: ")
    multirc = load_examples("multirc")
    assert len(multirc) == 4848 and multirc[0].texts[0][0].text.startswith("paragraph: ")
    hh = load_examples("hh-rlhf")
    assert len(hh) == 2354 and len(hh[0].texts) == 2 and hh[0].label == 0


def test_encoding_truncates_the_passage_and_keeps_question_and_answer(stories):
    _, tok = stories
    ex = load_examples("multirc")[:5]
    enc = encode_examples(ex, tok, 96)
    tail = tok(ex[0].texts[0][1].text, add_special_tokens=False)["input_ids"]
    passage = tok(ex[0].texts[0][0].text, add_special_tokens=False)["input_ids"]
    assert len(tail) < 95 < len(tail) + len(passage)  # only the paragraph has to give way
    for s in enc.seqs:
        assert len(s) <= 96 and s[0] == tok.bos_token_id
    assert len(enc.seqs[0]) == 96 and enc.seqs[0][-len(tail):] == tail
    assert enc.seqs[0][1:96 - len(tail)] == passage[:95 - len(tail)]  # the paragraph's start is kept
    hh = load_examples("hh-rlhf")[:2]
    enc = encode_examples(hh, tok, 40)
    full = tok(hh[0].texts[0][0].text, add_special_tokens=False)["input_ids"]
    assert enc.seqs[0] == [tok.bos_token_id] + full[-39:]  # the dialogue's end is kept
    ids, mask, labels = enc.batch([0, 1])
    assert ids.shape[0] == 4 and labels.tolist() == [0, 0]
    assert torch.equal(mask.sum(1), torch.tensor([len(s) for s in enc.seqs]))


def test_encoder_sequences_end_with_sep():
    _, tok = load_model("minilm")
    enc = encode_examples(load_examples("cb")[:3], tok, 32, encoder=True)
    assert all(s[0] == tok.cls_token_id and s[-1] == tok.sep_token_id and len(s) <= 32 for s in enc.seqs)


# ------------------------------------------------------------------------------------------------
# the loop


def test_step_indices_visit_every_example_once_per_epoch():
    n, b = 10, 4
    idx = [i for s in range(5) for i in step_indices(n, b, s, seed=7)]  # 20 = two epochs
    assert sorted(idx[:10]) == list(range(10)) and sorted(idx[10:]) == list(range(10))
    assert step_indices(n, b, 3, 7) == step_indices(n, b, 3, 7) and idx[:10] != [
        i for s in range(5) for i in step_indices(n, b, s, seed=8)][:10]


def _train_loss(net, data, kind):
    with torch.no_grad():
        ids, mask, labels = data.batch(range(len(data)))
        return float(task_loss(kind, net.eval()(ids, mask), labels))


@pytest.mark.parametrize("task", ["cb", "hh-rlhf"])
def test_a_few_real_steps_lower_the_training_loss(stories, task):
    model, tok = stories
    ft, _, _ = split_examples(task, load_examples(task), 0.5)
    data = encode_examples(ft[:16], tok, 64)
    net = SequenceHead(copy.deepcopy(trunk_of(model)), task_spec(task).n_outputs, seed=0)
    before = _train_loss(net, data, task_spec(task).kind)
    cfg = FineTuneConfig(kind=task_spec(task).kind, steps=12, batch_size=8, lr=2e-3, warmup_steps=2, seed=0)
    res = finetune(net, data, cfg, progress=False)
    assert len(res.history) == 12 and all(math.isfinite(h["loss"]) for h in res.history)
    assert _train_loss(net, data, task_spec(task).kind) < before


def test_seeds_repeat_exactly_and_differ_between_seeds(stories, cb_split):
    model, tok = stories
    data = encode_examples(cb_split[0][:12], tok, 48)

    def run(seed):
        net = SequenceHead(copy.deepcopy(trunk_of(model)), 3, seed=seed)
        res = finetune(net, data, FineTuneConfig(kind="multiclass", steps=4, batch_size=4, lr=1e-3, seed=seed),
                       progress=False)
        return net, res

    (a, ra), (b, rb), (c, _) = run(1), run(1), run(2)
    assert ra.history == rb.history
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.head.weight, c.head.weight)


class _Interrupt(Exception):
    pass


class _StopAfter(EncodedSet):
    """Real encoded data whose ``batch`` raises after ``calls`` batches: a run killed mid-way."""

    def __init__(self, data: EncodedSet, calls: int):
        super().__init__(data.seqs, data.labels, data.seqs_per_example, data.pad_id, data.uids)
        self.calls = calls

    def batch(self, indices):
        if self.calls == 0:
            raise _Interrupt
        self.calls -= 1
        return super().batch(indices)


def test_resume_from_an_atomic_state_is_exact_and_a_finished_run_is_loaded(stories, cb_split, tmp_path):
    model, tok = stories
    data = encode_examples(cb_split[0][:12], tok, 48)
    cfg = FineTuneConfig(kind="multiclass", steps=6, batch_size=4, lr=1e-3, seed=0, state_every=2)
    ref = SequenceHead(copy.deepcopy(trunk_of(model)), 3, seed=0)
    ref_res = finetune(ref, data, cfg, progress=False)

    net = SequenceHead(copy.deepcopy(trunk_of(model)), 3, seed=0)
    with pytest.raises(_Interrupt):
        finetune(net, _StopAfter(data, 5), cfg, run_dir=tmp_path, progress=False)
    assert (tmp_path / "state-000004").is_dir() and not (tmp_path / "final").exists()
    net = SequenceHead(copy.deepcopy(trunk_of(model)), 3, seed=0)
    res = finetune(net, data, cfg, run_dir=tmp_path, progress=False)
    assert res.resumed_from == 4 and res.history == ref_res.history
    assert all(torch.equal(p, q) for p, q in zip(ref.state_dict().values(), net.state_dict().values()))
    assert (tmp_path / "final" / "model.safetensors").is_file() and not list(tmp_path.glob("state-*"))
    again = SequenceHead(copy.deepcopy(trunk_of(model)), 3, seed=0)
    res2 = finetune(again, data, cfg, run_dir=tmp_path, progress=False)
    assert res2.resumed_from == 6 and torch.equal(again.head.weight, ref.head.weight)


def test_accuracy_does_not_depend_on_batching_and_baselines_are_closed_form(stories, cb_split):
    model, tok = stories
    data = encode_examples(cb_split[1], tok, 96)
    net = SequenceHead(trunk_of(model), 3, seed=5)
    a16, a1 = evaluate(net, data, "multiclass", batch_size=16), evaluate(net, data, "multiclass", batch_size=1)
    assert a16 == pytest.approx(a1)
    feats = pooled_features(net, data)
    assert accuracy_from_features(net.head, feats, data.labels, "multiclass") == pytest.approx(a16)
    ft_labels, ho_labels = torch.tensor([0, 1, 1, 2, 1]), torch.tensor([1, 1, 0, 2])
    assert majority_baseline("multiclass", ft_labels, ho_labels) == 0.5
    assert majority_baseline("pairwise", ft_labels, ho_labels) == 0.5
    assert learned(0.70, 0.5, 100) and not learned(0.59, 0.5, 100)  # 2 SE = 0.10
    with pytest.raises(LinUtilsError, match="kind"):
        FineTuneConfig(kind="ranking")
    with pytest.raises(LinUtilsError, match="steps"):
        FineTuneConfig(kind="binary", steps=0)


# ------------------------------------------------------------------------------------------------
# before / after linearity


def test_probe_matches_exact_least_squares_and_the_delta_uses_identical_tokens(stories, cb_split):
    model, tok = stories
    trunk = copy.deepcopy(trunk_of(model))
    probe = LinearityProbe.from_corpus(tok, seq_len=128, max_tokens=1024, exclude_bos=True)
    before = probe.measure(trunk)
    # The same number, block by block, from the captured states and an exact float64 solve.
    exact = []
    with torch.no_grad(), capture(trunk) as cap:
        states, masks = {}, []
        for ids, mask in probe.batches:
            trunk(input_ids=ids, attention_mask=mask)
            m = mask.bool().clone()
            m[:, 0] = False
            masks.append(m)
            for b in cap.boundaries:
                states.setdefault(b, []).append(cap[b][m])
    for i in range(len(cap.boundaries) - 1):
        X, Y = torch.cat(states[i]), torch.cat(states[i + 1])
        exact.append(linearity_score(X, Y - X))
    assert before.nores == pytest.approx(float(np.mean(exact)), abs=1e-6)
    assert before.n_tokens == sum(int(m.sum()) for m in masks) == probe.n_tokens

    data = encode_examples(cb_split[0][:8], tok, 48)
    net = SequenceHead(trunk, 3, seed=0)
    finetune(net, data, FineTuneConfig(kind="multiclass", steps=3, batch_size=4, lr=1e-3), progress=False)
    after = probe.measure(net.trunk)
    assert after.tokens_sha256 == before.tokens_sha256 and after.n_tokens == before.n_tokens
    d, dh = delta(before, after)
    assert d == after.nores - before.nores and dh == after.heldout_nores - before.heldout_nores
    assert d != 0  # fine-tuning moved the weights
    other = LinearityProbe.from_corpus(tok, seq_len=128, max_tokens=1024, exclude_bos=False).measure(net.trunk)
    with pytest.raises(LinUtilsError, match="same tokens"):
        delta(before, other)


# ------------------------------------------------------------------------------------------------
# the cached computation, claims, report and plot


SMOKE = dict(steps=2, batch_size=4, max_len=48, eval_examples=8, task_tokens=400, corpus_tokens=512, seq_len=64,
             num_threads=1)


def test_finetuning_deltas_caches_per_cell_with_the_split_in_the_provenance(tmp_path, monkeypatch):
    from lin_utils import experiments
    from lin_utils.experiments.finetuning import FINETUNING

    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path))
    cfg = experiments.FinetuningConfig(models=["stories260K"], tasks=["cb"], seeds=[0, 1], **SMOKE)
    runs = experiments.finetuning_deltas(cfg, profile="smoke", progress=False)
    assert list(runs.seed) == [0, 0, 1, 1] and (runs.task == "cb").all()
    assert list(runs.condition) == ["task", "shuffled"] * 2  # the control: shuffled labels, same seed
    assert runs.groupby("seed").acc_before.nunique().eq(1).all()  # the same head init per seed
    assert not np.allclose(runs.delta_corpus.iloc[0::2].to_numpy(), runs.delta_corpus.iloc[1::2].to_numpy())
    assert (runs.n_tokens_corpus > runs.d).all() and runs.tokens_sha256_corpus.nunique() == 1
    assert np.allclose(runs.delta_corpus, runs.nores_after_corpus - runs.nores_before_corpus)
    assert runs.nores_before_corpus.nunique() == 1  # before does not depend on the seed
    assert runs.n_finetune.iloc[0] + runs.n_heldout.iloc[0] == 56
    cached = experiments.finetuning_deltas(cfg, profile="smoke", cache_only=True)
    pd.testing.assert_frame_equal(cached, runs)
    assert experiments.finetuning_deltas(cfg.replace(seeds=[0, 1, 2]), profile="smoke", cache_only=True) is None
    assert experiments.finetuning_deltas(cfg.replace(control=False), profile="smoke", cache_only=True) is None
    [meta] = [json.loads(p.read_text()) for p in (tmp_path / "smoke" / FINETUNING).glob("*.json")]
    split = meta["extra"]["split"]
    assert split["task"] == "cb" and split["n_heldout"] == runs.n_heldout.iloc[0] and len(split["heldout_groups"]) == 28


@pytest.mark.parametrize("field, value, message", [
    ("tasks", ["cb", "squad"], "tasks must be one of multirc, boolq, cb, hh-rlhf, got 'squad'"),
    ("seeds", [], "seeds must be a non-empty list of integers >= 0"),
    ("steps", 0, "steps must be an integer positive, got 0"),
    ("heldout_fraction", 1.0, "heldout_fraction must be between 0 and 1, got 1.0"),
    ("dtype", "float64", "dtype must be one of float32, bfloat16, float16, got 'float64'"),
    ("num_threads", -1, "num_threads must be an integer >= 0 or null, got -1"),
])
def test_finetuning_config_names_a_bad_field(field, value, message):
    from lin_utils.experiments import FinetuningConfig

    with pytest.raises(LinUtilsError, match=re.escape(message)):
        FinetuningConfig(**{field: value})


def test_finetuning_cache_key_is_the_cells_parameters_and_the_device_kind():
    from lin_utils.experiments import FinetuningConfig

    cfg = FinetuningConfig(models=["stories260K"], seeds=(2, 0), device="cuda:1", num_threads=4, lr=3e-4)
    key = cfg.key("stories260K", "cb")
    assert key == dict(code=2, model="stories260K", weights=None, task="cb", seeds=[2, 0], control=True, steps=32,
                       batch_size=8,
                       lr=3e-4, warmup_steps=3, weight_decay=0.01, grad_clip=1.0, max_len=128, heldout_fraction=0.5,
                       eval_examples=128, task_tokens=4096, corpus="tinystories", corpus_split="validation",
                       corpus_tokens=4096, seq_len=256, exclude_bos=True, dtype="float32", device="cuda")
