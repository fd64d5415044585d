"""Benchmark: training throughput of lin_utils.train against a bare training step.

For one model size (default cpu-small: the cpu zoo's, 16 rows x 256 tokens per step) it times,
interleaved, ``--runs`` times each:

* ``bare``: forward with labels, backward, AdamW step, zero_grad, on the same rows, no capture,
  no regularizer, no clipping, no bookkeeping;
* ``train/none``: :func:`lin_utils.train.train` without a regularizer (learning-rate schedule,
  gradient clipping, loss history, progress bookkeeping; checkpoints and evaluation off);
* ``train/cosine`` and ``train/mse``: the same with the regularizer computed from ``capture``.

Targets: train/none >= 0.9 x bare tokens/s; a regularizer adds <= 10 % to the step time.

    python scripts/bench_train.py [--size cpu-small] [--steps 20] [--runs 3] [--threads 2]
    python scripts/bench_train.py --size gpu-small --device cuda --precision bf16 --batch-size 64 --seq-len 512

On a GPU the bare loop runs under the same bf16 autocast as the training loop, and each timing
ends with a device synchronisation.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lin_utils.arch import from_config  # noqa: E402
from lin_utils.train import TrainConfig, TokenizerSpec, load_or_train_tokenizer, train, zoo_config  # noqa: E402
from lin_utils.train.packing import training_rows  # noqa: E402
from lin_utils.train.tokenizer import tokenizer_sha256  # noqa: E402


def bare(cfg: TrainConfig, rows, steps: int, device: str = "cpu") -> tuple[float, float]:
    """(tokens/s, tokens/CPU-s) of the plainest loop over the same rows the training run sees."""
    from contextlib import nullcontext

    model = from_config(zoo_config(cfg.size, cfg.vocab_size, max_position_embeddings=cfg.seq_len),
                        seed=cfg.seed).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cfg.precision == "bf16" and device.startswith("cuda")
                else nullcontext())
    t0, c0 = time.perf_counter(), time.process_time()
    for step in range(steps):
        x = rows.batch(step, cfg.batch_size).to(device)
        with autocast:
            loss = model(input_ids=x, labels=x, use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    tokens = steps * cfg.tokens_per_step
    return tokens / (time.perf_counter() - t0), tokens / (time.process_time() - c0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="cpu-small")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=256)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    base = TrainConfig(size=args.size, vocab_size=2048, data_stories=2000, seq_len=args.seq_len,
                       batch_size=args.batch_size, max_tokens=args.steps * args.batch_size * args.seq_len, lr=2e-3,
                       warmup_steps=5, num_threads=args.threads, precision=args.precision)
    tok = load_or_train_tokenizer(TokenizerSpec(base.vocab_size, base.tokenizer_stories))
    rows = training_rows(tok, tokenizer_sha256(tok)[:16], base.data_stories, base.seq_len, base.seed)
    variants = {"bare": None, "train/none": base,
                "train/cosine": base.replace(regularizer="cosine", reg_lambda=0.5),
                "train/mse": base.replace(regularizer="mse", reg_lambda=0.5)}
    results: dict[str, list[float]] = {k: [] for k in variants}  # tokens per wall second
    per_cpu: dict[str, list[float]] = {k: [] for k in variants}  # tokens per CPU second
    print(f"{args.size}: {args.steps} steps of {base.batch_size}x{base.seq_len} tokens, "
          f"{args.threads} thread(s), {args.device} {args.precision}, torch {torch.__version__}", flush=True)
    for run in range(args.runs):
        for name, cfg in variants.items():
            if cfg is None:
                tps, tpc = bare(base, rows, args.steps, args.device)
            else:
                with tempfile.TemporaryDirectory() as d:
                    r = train(cfg, d, tokenizer=tok, device=args.device, progress=False, checkpoints=False,
                              evaluate=False)
                tps, tpc = r.tokens_per_s, r.tokens / r.train_cpu_s
            results[name].append(tps)
            per_cpu[name].append(tpc)
            print(f"  run {run + 1} {name:13s} {tps:9,.0f} tokens/s  {tpc:9,.0f} tokens/CPU-s", flush=True)
    for label, table in (("tokens/s (wall)", results), ("tokens/CPU-s", per_cpu)):
        med = {k: statistics.median(v) for k, v in table.items()}
        print(f"\nmedian {label}:", ", ".join(f"{k} {v:,.0f}" for k, v in med.items()))
        print(f"  train/none vs bare: {med['train/none'] / med['bare']:.3f}x (target >= 0.9)")
        for reg in ("cosine", "mse"):
            per_run = [n / r - 1 for n, r in zip(table["train/none"], table[f"train/{reg}"])]
            print(f"  {reg} regularizer step-time overhead: {med['train/none'] / med[f'train/{reg}'] - 1:+.1%} "
                  f"(per run {', '.join(f'{x:+.1%}' for x in per_run)}; target <= 10%)")


if __name__ == "__main__":
    main()
