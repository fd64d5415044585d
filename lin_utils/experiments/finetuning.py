"""Section 3.2 of the paper (Table 1): linearity without the residual before and after fine-tuning.

:func:`finetuning_deltas` fine-tunes every model on every task with every seed
(:mod:`lin_utils.finetune`) and measures, before and after, the mean over blocks of the linearity
score without the residual on two fixed sets of tokens:

* the **corpus** (the main number): the head of the TinyStories validation text, the same tokens
  for every task of a model, so that the deltas of different tasks compare;
* the task's **held-out inputs**: the first held-out examples of the task (both dialogues of an
  HH pair), never the fine-tune part.

The delta is after minus before on identical tokens (checked by their sha256). Before does not
depend on the seed (the head is not part of the trunk), so it is measured once per model and task.

**The control** (``control``): each decoder is fine-tuned a second time per seed with the same
steps, rate, seed (head init, example order) and inputs, but shuffled labels
(:func:`lin_utils.finetune.shuffle_labels`: labels permuted among the examples; for reward
modelling each pair's order flipped by a coin). Its delta is what any update of these sizes does
to linearity; the task's delta minus the control's, paired by seed, is what learning the task adds.
Encoders (the page's contrast, not the claim's subject) get no control.

Each (model, task) cell is one cached table (one row per seed and condition: ``task``, then
``shuffled`` for the control), with the task's split in the result's provenance
(``extra.split``); the function returns their concatenation.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from .. import results
from ..arch import is_encoder
from ..config import (StudyConfig, check_bool, check_choice, check_int, check_int_list, check_number, check_str,
                      check_str_list)
from ..errors import LinUtilsError
from ..finetune import (FineTuneConfig, LinearityProbe, SequenceHead, accuracy_from_features, delta, encode_examples,
                        evaluate, finetune, learned, load_examples, majority_baseline, pooled_features, shuffle_labels,
                        split_examples, task_spec, trunk_of)
from ..finetune.tasks import TASKS
from ..models import load_model
from ..scan import ScanConfig

__all__ = ["CONDITIONS", "FINETUNING", "FinetuningConfig", "finetuning_deltas", "finetune_cell"]

FINETUNING = "finetuning_deltas"
#: bumped whenever the code changes what a cell's numbers are for the same parameters
CODE_VERSION = 2  # 2: CB binary, the shuffled-label control, a condition column
#: the two conditions of a run: the task's labels, and the control's shuffled ones
CONDITIONS = ("task", "shuffled")


@dataclass(frozen=True)
class FinetuningConfig(StudyConfig):
    """Table 1: the models, tasks and seeds, the fine-tuning and the two linearity measurements.

    Attributes:
        models: :func:`lin_utils.models.load_model` specs.
        tasks: keys of :data:`lin_utils.finetune.TASKS` (``multirc``, ``boolq``, ``cb``, ``hh-rlhf``).
        seeds: one fine-tuning run per seed (head init, example order, dropout).
        control: also fine-tune each decoder with shuffled labels (same steps, rate and seeds).
        steps, batch_size, lr, warmup_steps, weight_decay, grad_clip: the fine-tuning
            (:class:`lin_utils.finetune.FineTuneConfig`); ``batch_size`` counts pairs for HH.
        max_len: tokens per input (clamped to the model's context).
        heldout_fraction: share of each task's groups held out (:func:`lin_utils.finetune.split_examples`).
        eval_examples: held-out examples scored for accuracy (the first ones of the held-out part).
        task_tokens: real tokens of held-out task inputs on which linearity is measured.
        corpus, corpus_split, corpus_tokens, seq_len: the fixed corpus of the main number.
        exclude_bos: leave position 0 out of every linearity statistic (both sides alike).
        dtype, device: the models' dtype and device.
        num_threads: torch CPU threads while computing (0 or None = leave as is; not in the cache key).
    """

    models: tuple[str, ...] = ("stories260K",)
    tasks: tuple[str, ...] = tuple(TASKS)
    seeds: tuple[int, ...] = (0,)
    control: bool = True
    steps: int = 32
    batch_size: int = 8
    lr: float = 1e-4
    warmup_steps: int = 3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    max_len: int = 128
    heldout_fraction: float = 0.5
    eval_examples: int = 128
    task_tokens: int = 4096
    corpus: str = "tinystories"
    corpus_split: str = "validation"
    corpus_tokens: int = 4096
    seq_len: int = 256
    exclude_bos: bool = True
    dtype: str = "float32"
    device: str = "cpu"
    num_threads: int | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "models", check_str_list("models", self.models))
        set_(self, "tasks", check_str_list("tasks", self.tasks))
        for t in self.tasks:
            check_choice("tasks", t, TASKS)
        set_(self, "seeds", check_int_list("seeds", self.seeds, minimum=0))
        for name in ("steps", "batch_size", "max_len", "eval_examples", "task_tokens", "corpus_tokens", "seq_len"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("warmup_steps", self.warmup_steps, minimum=0)
        check_int("num_threads", self.num_threads, minimum=0, none=True)
        for name in ("lr", "weight_decay", "grad_clip"):
            check_number(name, getattr(self, name), minimum=0)
        check_number("heldout_fraction", self.heldout_fraction, minimum=0)
        if not 0 < self.heldout_fraction < 1:
            raise LinUtilsError(f"heldout_fraction must be between 0 and 1, got {self.heldout_fraction!r}")
        for name in ("corpus", "corpus_split", "device"):
            check_str(name, getattr(self, name))
        check_choice("dtype", self.dtype, ("float32", "bfloat16", "float16"))
        check_bool("exclude_bos", self.exclude_bos)
        check_bool("control", self.control)

    def train(self) -> dict:
        """The fine-tuning fields (:class:`lin_utils.finetune.FineTuneConfig`)."""
        return dict(steps=self.steps, batch_size=self.batch_size, lr=self.lr, warmup_steps=self.warmup_steps,
                    weight_decay=self.weight_decay, grad_clip=self.grad_clip)

    def measure(self) -> dict:
        """The measurement fields (split, accuracy and the two linearity probes)."""
        return dict(max_len=self.max_len, heldout_fraction=self.heldout_fraction, eval_examples=self.eval_examples,
                    task_tokens=self.task_tokens, corpus=self.corpus, corpus_split=self.corpus_split,
                    corpus_tokens=self.corpus_tokens, seq_len=self.seq_len, exclude_bos=self.exclude_bos,
                    dtype=self.dtype)

    def key(self, model: str, task: str) -> dict:
        """The cache key of one (model, task) cell (every seed in one table)."""
        return dict(code=CODE_VERSION, **_spec_key(model), task=task, seeds=list(self.seeds), control=self.control,
                    **self.train(),
                    **self.measure(), device=self.device.split(":")[0])


def _spec_key(model: str) -> dict:
    """The model part of the cache key: the spec and, for ``zoo:`` models, the weights' key."""
    key = ScanConfig.from_params(model, {}).key()
    return {"model": key["model"], "weights": key.get("weights")}


def finetune_cell(model: str, task: str, seeds: Sequence[int], *, control: bool = False, steps: int, batch_size: int,
                  lr: float,
                  warmup_steps: int, weight_decay: float, grad_clip: float, max_len: int, heldout_fraction: float,
                  eval_examples: int, task_tokens: int, corpus: str, corpus_split: str, corpus_tokens: int,
                  seq_len: int, exclude_bos: bool, dtype: str, device: str, progress: bool = True) -> pd.DataFrame:
    """Fine-tune ``model`` on ``task`` once per seed (and, with ``control`` for a decoder, once more per
    seed on shuffled labels); one row per seed and condition (see :func:`finetuning_deltas`)."""
    spec = task_spec(task)
    base, tok = load_model(model, dtype=getattr(torch, dtype), device=device)
    trunk0 = trunk_of(base)
    encoder = is_encoder(trunk0)
    context = getattr(trunk0.config, "max_position_embeddings", None) or max_len
    length = min(max_len, context)
    ft, ho, _ = split_examples(task, load_examples(task), heldout_fraction)
    enc_ft = encode_examples(ft, tok, length, encoder=encoder)
    enc_all_ho = encode_examples(ho, tok, length, encoder=encoder)
    enc_ho = encode_examples(ho[:eval_examples], tok, length, encoder=encoder)
    baseline = majority_baseline(spec.kind, enc_ft.labels, enc_ho.labels)
    probes = {
        "corpus": LinearityProbe.from_corpus(tok, dataset=corpus, split=corpus_split, seq_len=min(seq_len, context),
                                             max_tokens=corpus_tokens, exclude_bos=exclude_bos),
        "task": LinearityProbe.from_sequences(enc_all_ho.seqs, enc_ho.pad_id,
                                              max_tokens=task_tokens, exclude_bos=exclude_bos,
                                              name=f"{task} held-out"),
    }
    before = {k: p.measure(trunk0) for k, p in probes.items()}
    # Before fine-tuning the trunk is the same for every seed: pool its features once.
    feats0 = pooled_features(SequenceHead(trunk0, spec.n_outputs), enc_ho, batch_size=batch_size)
    conditions = CONDITIONS if control and not encoder else CONDITIONS[:1]
    rows = []
    for seed in seeds:
        for condition in conditions:
            net = SequenceHead(copy.deepcopy(trunk0), spec.n_outputs, seed=seed)
            acc_before = accuracy_from_features(net.head, feats0, enc_ho.labels, spec.kind)
            cfg = FineTuneConfig(kind=spec.kind, steps=steps, batch_size=batch_size, lr=lr, warmup_steps=warmup_steps,
                                 weight_decay=weight_decay, grad_clip=grad_clip, seed=seed)
            data = enc_ft if condition == "task" else shuffle_labels(enc_ft, spec.kind, seed)
            t0 = time.perf_counter()
            res = finetune(net, data, cfg, progress=progress, desc=f"{model} {task} seed {seed} {condition}")
            acc_after = evaluate(net, enc_ho, spec.kind, batch_size=batch_size)
            after = {k: p.measure(net.trunk) for k, p in probes.items()}
            row = dict(model=model, arch="encoder" if encoder else "decoder", task=task, kind=spec.kind, seed=seed,
                       condition=condition, steps=steps, batch_size=batch_size, lr=lr, max_len=length,
                       n_finetune=len(enc_ft), n_heldout=len(ho), n_eval=len(enc_ho), acc_before=acc_before,
                       acc_after=acc_after, baseline=baseline, learned=learned(acc_after, baseline, len(enc_ho)),
                       loss_first=res.mean_loss(first=True), loss_last=res.mean_loss(first=False))
            for k in ("corpus", "task"):
                b, a = before[k], after[k]
                d_nores, d_held = delta(b, a)
                row.update({f"nores_before_{k}": b.nores, f"nores_after_{k}": a.nores, f"delta_{k}": d_nores,
                            f"heldout_nores_before_{k}": b.heldout_nores, f"heldout_nores_after_{k}": a.heldout_nores,
                            f"delta_heldout_{k}": d_held, f"n_tokens_{k}": b.n_tokens, f"chance_{k}": b.chance,
                            f"tokens_sha256_{k}": b.tokens_sha256[:16]})
            row.update(d=before["corpus"].d, n_blocks=before["corpus"].n_blocks, train_s=res.train_s,
                       cell_s=time.perf_counter() - t0)
            rows.append(row)
    return pd.DataFrame(rows)


def finetuning_deltas(config: FinetuningConfig, *, profile: str, force: bool = False, cache_only: bool = False,
                      progress: bool = True) -> pd.DataFrame | None:
    """Table 1: one row per (model, task, seed) of ``config`` (:class:`FinetuningConfig`).

    Each (model, task) cell is one cached table (:meth:`FinetuningConfig.key`); ``cache_only``
    returns the stored tables or None, never computing (the claims page).

    Returns:
        Columns: ``model, arch, task, kind, seed, condition`` (``task``, or ``shuffled`` for the
        control, :data:`CONDITIONS`); the run (``steps, batch_size, lr, max_len``);
        the split (``n_finetune, n_heldout, n_eval``); held-out accuracy ``acc_before,
        acc_after``, ``baseline`` (majority class of the fine-tune part, 0.5 for HH) and
        ``learned`` (:func:`lin_utils.finetune.learned`); ``loss_first, loss_last`` (training loss,
        mean of the first / last 5 steps); then for ``k`` in ``corpus`` (main) and ``task``:
        ``nores_before_k, nores_after_k, delta_k`` (mean over blocks of ``score_nores``),
        ``heldout_nores_before_k, heldout_nores_after_k, delta_heldout_k``, ``n_tokens_k,
        chance_k, tokens_sha256_k``; and ``d, n_blocks, train_s, cell_s``.
    """
    parts = []
    threads = torch.get_num_threads()
    try:
        if config.num_threads and not cache_only:
            torch.set_num_threads(config.num_threads)
        for model in config.models:
            for task in config.tasks:
                params = config.key(model, task)
                if cache_only:
                    t = results.load_table(FINETUNING, "runs", params, profile)
                    if t is None:
                        return None
                else:
                    _, _, split = split_examples(task, load_examples(task), config.heldout_fraction)
                    t = results.cached(
                        FINETUNING, "runs", params,
                        lambda m=model, k=task: finetune_cell(m, k, config.seeds, control=config.control,
                                                              **config.train(), **config.measure(),
                                                              device=config.device, progress=progress),
                        profile=profile, force=force, extra={"split": split, "num_threads": torch.get_num_threads()})
                parts.append(t)
    finally:
        torch.set_num_threads(threads)
    return pd.concat(parts, ignore_index=True)
