"""The fine-tuning loop: full fine-tuning with AdamW, sharing the pretraining loop's pieces.

From :mod:`lin_utils.train` it takes the optimizer (:func:`~lin_utils.train.loop.make_optimizer`:
AdamW, weight decay on matrices only), the learning-rate schedule (:func:`~lin_utils.train.loop.lr_at`:
linear warmup, cosine decay), gradient clipping, the tqdm bar, and the checkpoint machinery
(:mod:`lin_utils.train.checkpoints`: atomic folders, resume states with the model, AdamW moments
and RNG states). As there, the rows of a step are a pure function of ``(seed, step)``, so a run
cut off and resumed from its state ends where an uninterrupted run would.

Repeatable seeds: ``seed`` initialises the head (:class:`~lin_utils.finetune.heads.SequenceHead`),
orders the fine-tune examples and seeds dropout (under ``torch.random.fork_rng``, so the caller's
RNG is left alone).
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from ..errors import LinUtilsError
from ..train.checkpoints import atomic_dir, clean_tmp, latest_state, load_state, remove_states, save_state
from ..train.loop import lr_at, make_optimizer
from .heads import SequenceHead, predictions, task_loss
from .tasks import EncodedSet

__all__ = ["FineTuneConfig", "FineTuneResult", "accuracy_from_features", "finetune", "evaluate", "learned",
           "majority_baseline", "pooled_features", "step_indices"]


@dataclass(frozen=True)
class FineTuneConfig:
    """How one model is fine-tuned on one task.

    Attributes:
        kind: the task's kind (``binary``, ``multiclass``, ``pairwise``).
        steps: optimizer steps.
        batch_size: examples per step (pairs for ``pairwise``: twice as many sequences).
        lr: peak learning rate; ``warmup_steps`` of linear warmup, then cosine decay to
            ``min_lr_ratio · lr`` (:func:`lin_utils.train.lr_at`).
        weight_decay, betas: AdamW's (decay on matrices and embeddings only).
        grad_clip: global gradient-norm clip (0 = off).
        seed: head init, example order, dropout.
        state_every: steps between resume states when a run folder is given (0 = none).
    """

    kind: str
    steps: int = 32
    batch_size: int = 8
    lr: float = 1e-4
    warmup_steps: int = 3
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    seed: int = 0
    state_every: int = 0

    def __post_init__(self):
        if self.kind not in ("binary", "multiclass", "pairwise"):
            raise LinUtilsError(f"kind must be binary, multiclass or pairwise, got {self.kind!r}")
        for name in ("steps", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise LinUtilsError(f"{name} must be a positive integer, got {v!r}")
        for name in ("warmup_steps", "state_every", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or (name != "seed" and v < 0):
                raise LinUtilsError(f"{name} must be a non-negative integer, got {v!r}")
        if not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise LinUtilsError(f"lr must be a positive number, got {self.lr!r}")
        object.__setattr__(self, "betas", tuple(self.betas))

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "betas": list(self.betas)}


@dataclass
class FineTuneResult:
    """What a run did: ``history`` holds ``{step, loss, lr}`` per step (``step`` counts steps
    done); ``train_s`` is the wall time of the optimizer steps; ``resumed_from`` the step a resume
    state restored (0 for a fresh run)."""

    steps: int
    history: list[dict] = field(default_factory=list)
    train_s: float = 0.0
    resumed_from: int = 0

    def mean_loss(self, first: bool, k: int = 5) -> float:
        """Mean training loss over the first (or last) ``k`` logged steps."""
        losses = [h["loss"] for h in self.history]
        part = losses[:k] if first else losses[-k:]
        return float(sum(part) / len(part)) if part else math.nan


def step_indices(n_examples: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Examples of optimizer step ``step``: consecutive slices of a per-epoch permutation.

    Epoch ``e`` is ``torch.randperm(n, generator=manual_seed(seed · 1_000_003 + e))``; a batch may
    straddle two epochs. A pure function of its arguments (exact resume).
    """
    if n_examples < 1:
        raise LinUtilsError("no fine-tune examples")
    out, pos = [], step * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(pos, n_examples)
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        perm = torch.randperm(n_examples, generator=g).tolist()
        take = perm[offset:offset + batch_size - len(out)]
        out += take
        pos += len(take)
    return out


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def finetune(model: SequenceHead, data: EncodedSet, cfg: FineTuneConfig, *, run_dir: str | Path | None = None,
             progress: bool = True, desc: str = "fine-tune") -> FineTuneResult:
    """Full fine-tuning of ``model`` (trunk and head) on ``data`` as ``cfg`` says, in place.

    Each step: the step's examples (:func:`step_indices`), forward, :func:`~lin_utils.finetune.heads.task_loss`,
    backward, gradient clipping, AdamW step at the scheduled learning rate.

    Args:
        run_dir: optional run folder. A finished run (``final/``) is loaded instead of trained; a
            resume state (``state-*``, every ``cfg.state_every`` steps) is resumed from; the final
            weights and history are written atomically to ``final/``.
        progress: tqdm bar with the loss.
    """
    if data.seqs_per_example != (2 if cfg.kind == "pairwise" else 1):
        raise LinUtilsError(f"data has {data.seqs_per_example} sequence(s) per example, but kind is {cfg.kind}")
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None and (run_dir / "final" / "meta.json").is_file():
        return _load_final(model, run_dir)
    device = _device(model)
    optimizer = make_optimizer(model, cfg)
    start, history = 0, []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            clean_tmp(run_dir)
            state = latest_state(run_dir)
            if state is not None:
                info = load_state(state, model, optimizer)
                start, history = info["step"], info["history"]
        model.train()
        bar = tqdm(total=cfg.steps, initial=start, desc=desc, unit="step", disable=not progress, leave=False,
                   dynamic_ncols=True)
        t0 = time.perf_counter()
        for step in range(start, cfg.steps):
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            ids, mask, labels = data.batch(step_indices(len(data), cfg.batch_size, step, cfg.seed))
            logits = model(ids.to(device), mask.to(device))
            loss = task_loss(cfg.kind, logits, labels.to(device))
            if not torch.isfinite(loss):
                raise LinUtilsError(f"{desc}: the loss is {float(loss)} at step {step}; lower lr (now {cfg.lr})")
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip, foreach=True)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            history.append({"step": step + 1, "loss": float(loss.detach()), "lr": lr})
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", refresh=False)
            if run_dir is not None and cfg.state_every and (step + 1) % cfg.state_every == 0 and step + 1 < cfg.steps:
                save_state(run_dir, step + 1, model, optimizer, {"history": history, "config": cfg.to_dict()})
        bar.close()
        train_s = time.perf_counter() - t0
    model.eval()
    result = FineTuneResult(steps=cfg.steps, history=history, train_s=train_s, resumed_from=start)
    if run_dir is not None:
        _save_final(model, run_dir, cfg, result)
    return result


def _save_final(model: torch.nn.Module, run_dir: Path, cfg: FineTuneConfig, result: FineTuneResult) -> None:
    with atomic_dir(run_dir / "final") as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
                  str(tmp / "model.safetensors"))
        (tmp / "meta.json").write_text(json.dumps({"config": cfg.to_dict(), "steps": result.steps,
                                                   "history": result.history, "train_s": result.train_s}, indent=1))
    remove_states(run_dir)


def _load_final(model: torch.nn.Module, run_dir: Path) -> FineTuneResult:
    final = run_dir / "final"
    model.load_state_dict(load_file(str(final / "model.safetensors"), device=str(_device(model))))
    model.eval()
    meta = json.loads((final / "meta.json").read_text())
    return FineTuneResult(steps=meta["steps"], history=meta["history"], train_s=0.0, resumed_from=meta["steps"])


@torch.no_grad()
def pooled_features(model: SequenceHead, data: EncodedSet, *, batch_size: int = 16,
                    progress: bool = False) -> torch.Tensor:
    """The head's inputs for every sequence of ``data``: (len(data) · seqs_per_example, d), in
    eval mode (no dropout). They depend on the trunk only, so the accuracy of several heads on one
    trunk (the seeds before fine-tuning) needs one pass."""
    was_training = model.training
    model.eval()
    device = _device(model)
    feats = []
    for i in tqdm(range(0, len(data), batch_size), desc="features", disable=not progress, leave=False):
        ids, mask, _ = data.batch(range(i, min(i + batch_size, len(data))))
        feats.append(model.features(ids.to(device), mask.to(device)))
    model.train(was_training)
    return torch.cat(feats)


@torch.no_grad()
def accuracy_from_features(head: torch.nn.Module, features: torch.Tensor, labels: torch.Tensor, kind: str) -> float:
    """Accuracy of ``head`` on :func:`pooled_features` ``features`` (N · k, d) against ``labels`` (N,)."""
    pred = predictions(kind, head(features)).cpu()
    if pred.shape != labels.shape:
        raise LinUtilsError(f"{len(pred)} predictions for {len(labels)} labels")
    return float((pred == labels).double().mean())


def evaluate(model: SequenceHead, data: EncodedSet, kind: str, *, batch_size: int = 16,
             progress: bool = False) -> float:
    """Held-out accuracy of ``model`` on ``data`` (reward accuracy for ``pairwise``: the share of
    pairs whose chosen answer gets the higher reward, ties counted wrong). Eval mode (no dropout)."""
    feats = pooled_features(model, data, batch_size=batch_size, progress=progress)
    return accuracy_from_features(model.head, feats, data.labels, kind)


def majority_baseline(kind: str, finetune_labels: torch.Tensor, heldout_labels: torch.Tensor) -> float:
    """Held-out accuracy of always answering the fine-tune part's most frequent class (ties: the
    lower index); 0.5 for ``pairwise`` (a constant reward ranks no pair right or wrong: chance)."""
    if kind == "pairwise":
        return 0.5
    counts = torch.bincount(finetune_labels)
    return float((heldout_labels == int(counts.argmax())).double().mean())


def learned(accuracy: float, baseline: float, n: int, z: float = 2.0) -> bool:
    """Whether held-out ``accuracy`` beats ``baseline`` by more than ``z`` binomial standard errors
    of the baseline, ``z · sqrt(b (1 − b) / n)`` (one-sided; about 2.3 % false positives at z = 2)."""
    if n < 1:
        raise LinUtilsError(f"n must be positive, got {n}")
    se = math.sqrt(max(baseline * (1 - baseline), 0.0) / n)
    return bool(accuracy - baseline > z * se)
