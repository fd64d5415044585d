"""The pretraining loop, readable top to bottom (in the spirit of nanoGPT's ``train.py``).

``train(cfg, run_dir)`` does, in order:

1. tokenizer (cached BPE) and data (packed training rows; validation rows of the clean head);
2. model (``zoo_config`` + ``from_config`` under ``cfg.seed``) and AdamW (weight decay on
   matrices and embeddings only);
3. resume from the newest ``state-*`` folder of ``run_dir`` if there is one;
4. the loop: learning rate of the step (linear warmup, cosine decay to ``min_lr_ratio·lr``),
   the step's rows, forward under ``capture`` when a regularizer is on (same pass, no second
   forward), loss = cross-entropy + λ·regularizer, backward, gradient clipping, AdamW step;
   log-spaced checkpoints (+ validation loss), periodic validation, resume states;
5. final validation loss and bits per byte, the loss on the held-out training tail
   (:func:`~lin_utils.train.packing.heldout_rows`), ``final/`` (HF model + tokenizer + meta.json).

Resuming is exact: the state holds the model, the AdamW moments, the RNG states and the step;
the learning rate is a pure function of the step (the schedule has no other state), and so are
the rows of a step (:class:`~lin_utils.train.packing.PackedRows`). On CPU a run killed at any
point and resumed ends with bit-identical weights.

Scale-out: launched under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE > 1``) the model is
wrapped in ``DistributedDataParallel`` and each process takes every N-th row of the global batch;
rank 0 alone writes files. The single-process path is the default.
"""
from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from ..arch import from_config
from ..extract import capture, normalize_boundaries
from .checkpoints import (clean_tmp, latest_state, list_checkpoints, load_state, log_spaced_steps,
                          remove_states, save_hf, save_state)
from .configs import TrainConfig, zoo_config
from .metrics import bits_per_byte, eval_loss
from .packing import heldout_rows, training_rows, validation_rows, validation_texts
from .tokenizer import sees_heldout
from .regularizers import regularizer
from .tokenizer import TokenizerSpec, load_or_train_tokenizer, tokenizer_sha256

__all__ = ["train", "prepare", "TrainResult", "lr_at", "make_optimizer", "BPB_CHARS"]

#: characters of the validation head scored for the final bits per byte (same for every model)
BPB_CHARS = 65_536


@dataclass
class TrainResult:
    """What a run did. ``train_s`` is the wall time spent in optimizer steps (evaluations and
    checkpoint writes excluded); ``tokens_per_s`` is the training throughput over it;
    ``train_cpu_s`` is the process CPU time of the same steps (on a shared machine, tokens per
    CPU-second of a one-thread run is the steadier measure of speed)."""

    run_dir: Path
    final_dir: Path | None
    steps: int
    resumed_from: int
    tokens: int
    train_s: float
    wall_s: float
    tokens_per_s: float
    train_cpu_s: float = 0.0
    history: list[dict] = field(default_factory=list)
    val_history: list[dict] = field(default_factory=list)
    val_loss: float | None = None
    val_bpb: float | None = None
    heldout_loss: float | None = None


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warmup, then cosine decay."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    min_lr = cfg.lr * cfg.min_lr_ratio
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))) * (cfg.lr - min_lr)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on parameters of two or more dimensions only (nanoGPT)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    fused = next(model.parameters()).device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=fused or None)


def prepare(cfg: TrainConfig, *, tokenizer=None, cache_dir: str | Path | None = None):
    """The run's tokenizer (cached BPE, trained on first use) and training rows (token stream
    cached on first use): ``(tokenizer, PackedRows)``."""
    if tokenizer is None:
        tokenizer = load_or_train_tokenizer(TokenizerSpec(cfg.vocab_size, cfg.tokenizer_stories), cache_dir)
    if len(tokenizer) > cfg.vocab_size:
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens, more than vocab_size={cfg.vocab_size}")
    rows = training_rows(tokenizer, tokenizer_sha256(tokenizer)[:16], cfg.data_stories, cfg.seq_len,
                         cfg.seed, cache_dir)
    return tokenizer, rows


def _distributed() -> tuple[int, int]:
    """``(rank, world_size)``; initialises torch.distributed when launched by torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _result_from_meta(run_dir: Path) -> TrainResult:
    meta = json.loads((run_dir / "final" / "meta.json").read_text())
    return TrainResult(run_dir=run_dir, final_dir=run_dir / "final", steps=meta["steps"],
                       resumed_from=meta["steps"], tokens=meta["tokens"], train_s=0.0, wall_s=0.0,
                       tokens_per_s=meta.get("tokens_per_s", 0.0), history=meta["history"],
                       val_history=meta["val_history"], val_loss=meta.get("val_loss"),
                       val_bpb=meta.get("val_bpb"), heldout_loss=meta.get("heldout_loss"))


def train(cfg: TrainConfig, run_dir: str | Path, *, tokenizer=None, device: str | None = None,
          progress: bool = True, checkpoints: bool = True, evaluate: bool = True,
          cache_dir: str | Path | None = None) -> TrainResult:
    """Pretrain a model as ``cfg`` says, in ``run_dir``; resume if a previous run was cut off.

    Args:
        cfg: the run (see :class:`~lin_utils.train.configs.TrainConfig`).
        run_dir: folder of the run (created); a complete run (``final/``) is not redone.
        tokenizer: a tokenizer to use instead of the cached BPE of ``cfg`` (tests).
        device: ``"cuda"`` when available, else ``"cpu"``, unless given.
        progress: tqdm bar with loss and tokens/s.
        checkpoints: write log-spaced checkpoints and resume states (off for benchmarks only).
        evaluate: validation losses at checkpoints, every ``cfg.eval_every`` steps and at the end.
        cache_dir: where tokenizers and token streams are cached (default ``$LIN_CACHE``).
    """
    threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _train(cfg, Path(run_dir), tokenizer=tokenizer, device=device, progress=progress,
                      checkpoints=checkpoints, evaluate=evaluate, cache_dir=cache_dir)
    finally:
        torch.set_num_threads(threads)


def _train(cfg, run_dir, *, tokenizer, device, progress, checkpoints, evaluate, cache_dir) -> TrainResult:
    t_start = time.perf_counter()
    if (run_dir / "final" / "meta.json").is_file():
        return _result_from_meta(run_dir)
    rank, world = _distributed()
    main = rank == 0
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    if device is None:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    amp_dtype = torch.bfloat16 if cfg.precision == "bf16" else None
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else nullcontext

    # 1. tokenizer and data --------------------------------------------------------------------
    if main:
        tokenizer, data = prepare(cfg, tokenizer=tokenizer, cache_dir=cache_dir)
    _barrier(world)
    if not main:  # the others read what rank 0 cached
        tokenizer, data = prepare(cfg, tokenizer=tokenizer, cache_dir=cache_dir)
    val_rows = validation_rows(tokenizer, cfg.seq_len, cfg.val_tokens) if evaluate and main else None

    # 2. model and optimizer -------------------------------------------------------------------
    config = zoo_config(cfg.size, cfg.vocab_size, max_position_embeddings=cfg.seq_len,
                        initializer_range=cfg.init_std)
    raw_model = from_config(config, seed=cfg.seed, device=device).train()
    optimizer = make_optimizer(raw_model, cfg)
    boundaries = normalize_boundaries(cfg.reg_boundaries, config.num_hidden_layers)

    # 3. resume ---------------------------------------------------------------------------------
    run_dir.mkdir(parents=True, exist_ok=True)
    if main:
        clean_tmp(run_dir)
        (run_dir / "config.json").write_text(json.dumps({"key": cfg.key(), **cfg.to_dict()}, indent=1))
    _barrier(world)
    start, history, val_history = 0, [], []
    state_dir = latest_state(run_dir) if checkpoints else None
    if state_dir is not None:
        info = load_state(state_dir, raw_model, optimizer)
        start, history, val_history = info["step"], info["history"], info["val_history"]
    model = raw_model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            raw_model, device_ids=[device.index] if device.type == "cuda" else None)

    ckpt_steps = set(log_spaced_steps(cfg.steps)) if checkpoints else set()
    done_ckpts = {s for s, _, _ in list_checkpoints(run_dir)}
    local_rows = cfg.batch_size // world  # rows of a step on this process
    micro = min(cfg.micro_batch_size or local_rows, local_rows)
    if local_rows % micro:
        raise ValueError(f"micro_batch_size {micro} does not divide the {local_rows} rows per process")
    n_micro = local_rows // micro
    pending: list[tuple[int, torch.Tensor, torch.Tensor, float]] = []  # unlogged (step, loss, reg, lr)

    def flush() -> None:  # move pending per-step numbers to the history (one device sync)
        if pending:
            vals = torch.stack([torch.stack([l, r]) for _, l, r, _ in pending])
            if world > 1:  # the mean over processes = the loss of the whole batch
                torch.distributed.all_reduce(vals)
                vals /= world
            vals = vals.tolist()
            history.extend({"step": s, "loss": lv, "reg": rv, "lr": lr}
                           for (s, _, _, lr), (lv, rv) in zip(pending, vals))
            pending.clear()

    def validate(step: int) -> float | None:
        if val_rows is None:
            return None
        loss = eval_loss(raw_model, val_rows, autocast_dtype=amp_dtype)
        val_history.append({"step": step, "tokens_seen": step * cfg.tokens_per_step, "val_loss": loss})
        return loss

    def agree(flag: bool) -> bool:  # rank 0's decision, so that every process takes the same path
        if world == 1:
            return flag
        t = torch.tensor([int(flag)], device=device)
        torch.distributed.broadcast(t, 0)
        return bool(t.item())

    def at_step_end(step: int, state_due: bool, last_state_t: float) -> float:
        """Checkpoint / validate / save resume state after ``step`` steps; returns last_state_t."""
        is_ckpt = step in ckpt_steps
        if evaluate and (is_ckpt or (cfg.eval_every and step % cfg.eval_every == 0)) and main:
            if not val_history or val_history[-1]["step"] != step:
                validate(step)
        if is_ckpt and step not in done_ckpts and main:
            info = {"step": step, "tokens_seen": step * cfg.tokens_per_step, "key": cfg.key()}
            if val_history and val_history[-1]["step"] == step:
                info["val_loss"] = val_history[-1]["val_loss"]
            save_hf(raw_model, tokenizer, run_dir / "checkpoints" / f"step-{step:06d}", info, "ckpt.json")
            done_ckpts.add(step)
        if checkpoints and (is_ckpt or state_due) and 0 < step < cfg.steps:
            flush()
            if main:
                save_state(run_dir, step, raw_model, optimizer,
                           {"history": history, "val_history": val_history, "key": cfg.key()})
            last_state_t = time.perf_counter()
        _barrier(world)
        return last_state_t

    # 4. the loop -------------------------------------------------------------------------------
    other_s = other_cpu_s = 0.0  # wall and CPU time in evaluation and checkpoint writes
    t0, c0 = time.perf_counter(), time.process_time()
    last_state_t = t0
    if start == 0:
        last_state_t = at_step_end(0, False, last_state_t)
        other_s += time.perf_counter() - t0
        other_cpu_s += time.process_time() - c0
    bar = tqdm(total=cfg.steps, initial=start, disable=not (progress and main), unit="step",
               desc=f"train {cfg.size} {cfg.regularizer}", dynamic_ncols=True, leave=False)
    t_log, step_log = time.perf_counter(), start
    with capture(raw_model, boundaries) if cfg.regularizer != "none" else nullcontext() as cap:
        for step in range(start, cfg.steps):
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            rows = data.batch(step, cfg.batch_size, rank=rank, world=world).to(device, non_blocking=True)
            loss_sum = torch.zeros((), device=device)
            reg_sum = torch.zeros((), device=device)
            for x in rows.split(micro):
                with autocast():
                    loss = model(input_ids=x, labels=x, use_cache=False).loss
                    reg = (regularizer(cfg.regularizer, [cap[b] for b in boundaries], None, cfg.reg_lambda)
                           if cap is not None else torch.zeros((), device=device))
                ((loss + reg) / n_micro).backward()
                loss_sum += loss.detach() / n_micro
                reg_sum += reg.detach() / n_micro
                if cap is not None:
                    cap.states.clear()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip, foreach=True)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            pending.append((step + 1, loss_sum, reg_sum, lr))
            bar.update(1)

            done = step + 1
            log_point = done % cfg.log_every == 0 or done == cfg.steps
            if log_point:
                flush()
                now = time.perf_counter()
                rate = (done - step_log) * cfg.tokens_per_step / max(now - t_log, 1e-9)
                bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", tok_s=f"{rate:,.0f}", refresh=False)
                t_log, step_log = now, done
            state_due = log_point and agree(time.perf_counter() - last_state_t > cfg.state_every_s)
            if done in ckpt_steps or (cfg.eval_every and done % cfg.eval_every == 0) or state_due:
                _sync(device)
                t_other, c_other = time.perf_counter(), time.process_time()
                last_state_t = at_step_end(done, state_due, last_state_t)
                other_s += time.perf_counter() - t_other
                other_cpu_s += time.process_time() - c_other
                t_log += time.perf_counter() - t_other
    flush()
    _sync(device)
    bar.close()
    train_s = time.perf_counter() - t0 - other_s
    train_cpu_s = time.process_time() - c0 - other_cpu_s
    tokens = (cfg.steps - start) * cfg.tokens_per_step

    # 5. final evaluation and model -------------------------------------------------------------
    val_loss = val_bpb = heldout_loss = None
    heldout_tokens = 0
    if evaluate and main:
        if not (sees_heldout(cfg.data_stories) or sees_heldout(cfg.tokenizer_stories)):  # else not held out
            held = heldout_rows(tokenizer, cfg.seq_len, cfg.val_tokens)
            heldout_tokens = int(held.numel())
            heldout_loss = eval_loss(raw_model, held, autocast_dtype=amp_dtype)
        val_loss = val_history[-1]["val_loss"] if val_history and val_history[-1]["step"] == cfg.steps \
            else validate(cfg.steps)
        val_bpb = bits_per_byte(raw_model, tokenizer, validation_texts(BPB_CHARS), seq_len=cfg.seq_len,
                                autocast_dtype=amp_dtype)
    final_dir = None
    if checkpoints:
        final_dir = run_dir / "final"
        if main:
            meta = {"key": cfg.key(), "config": cfg.to_dict(), "weight_fields": cfg.weight_fields(),
                    "tokenizer_sha256": tokenizer_sha256(tokenizer), "steps": cfg.steps,
                    "tokens": cfg.steps * cfg.tokens_per_step, "val_loss": val_loss, "val_bpb": val_bpb,
                    "heldout_loss": heldout_loss, "heldout_tokens": heldout_tokens,
                    "bpb_chars": BPB_CHARS, "tokens_per_s": tokens / max(train_s, 1e-9),
                    "tokens_per_cpu_s": tokens / max(train_cpu_s, 1e-9),
                    "n_parameters": sum(p.numel() for p in raw_model.parameters()),
                    "torch": torch.__version__, "world_size": world, "device": str(device),
                    "history": history, "val_history": val_history}
            save_hf(raw_model, tokenizer, final_dir, meta, "meta.json")
            remove_states(run_dir)
        _barrier(world)
    return TrainResult(run_dir=run_dir, final_dir=final_dir, steps=cfg.steps, resumed_from=start,
                       tokens=tokens, train_s=train_s, wall_s=time.perf_counter() - t_start,
                       tokens_per_s=tokens / max(train_s, 1e-9), train_cpu_s=train_cpu_s, history=history,
                       val_history=val_history, val_loss=val_loss, val_bpb=val_bpb,
                       heldout_loss=heldout_loss)
