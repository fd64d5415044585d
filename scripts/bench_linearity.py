"""Benchmark: streaming linearity scoring against a bare forward pass and the authors' approach.

A GPT-2-small-shaped model (d=768, 12 blocks, random init, built from a config) runs over
random token ids on the CPU. Each measurement runs in its own subprocess so that its peak
resident memory (ru_maxrss) is its own.

    (a)  bare forward pass: the full LM (with LM head), and the trunk alone (what extraction runs)
    (b)  trunk forward + streaming scoring of every block, with and without residual
         (lin_utils.linearity.profile_model)
    (c)  the authors' approach (LLM-Microscope) on the same hidden states: keep every layer's
         states, then per pair an fp32 SVD pseudo-inverse, computed again for the no-residual
         variant. Only its scoring part is timed, after a forward pass that stores the states.

Targets: (b)/(a) <= 1.3; scoring part of (b) >= 5x faster than (c); peak memory of (b) flat in
the number of tokens.

    python scripts/bench_linearity.py [--tokens 16384] [--seq-len 1024] [--batch-size 4]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time


def _model():
    import torch
    import transformers

    from lin_utils.arch import from_config

    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_embd=768, n_layer=12, n_head=12, n_positions=1024, vocab_size=50257)
    return from_config(cfg, seed=0, dtype=torch.float32)


def _batches(tokens, seq_len, batch_size):
    import torch

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50257, (tokens // seq_len, seq_len), generator=g)
    mask = torch.ones_like(ids)
    return [(ids[i : i + batch_size], mask[i : i + batch_size]) for i in range(0, len(ids), batch_size)]


def _authors_score(X, Y):
    """LLM-Microscope's procedure: center, Frobenius-normalize, fp32 SVD pseudo-inverse."""
    import torch

    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    X = X / X.norm()
    Y = Y / Y.norm()
    U, S, Vh = torch.linalg.svd(X, full_matrices=False)
    A = Vh.T @ torch.diag(1 / S) @ U.T @ Y
    return 1 - float(((X @ A - Y) ** 2).sum())


def run_part(part, tokens, seq_len, batch_size):
    import torch

    torch.set_grad_enabled(False)
    model = _model()
    batches = _batches(tokens, seq_len, batch_size)
    out = {"part": part, "tokens": tokens}
    t0 = time.perf_counter()
    if part == "a_full":
        for ids, mask in batches:
            model(input_ids=ids, attention_mask=mask)
    elif part == "a_trunk":
        for ids, mask in batches:
            model.transformer(input_ids=ids, attention_mask=mask)
    elif part == "b":  # what lin_utils.linearity.profile_model does, with the scoring timed apart
        from lin_utils.extract import iter_block_states
        from lin_utils.linearity import LinearityAccumulator

        acc, scoring = LinearityAccumulator(), 0.0
        for states, mask in iter_block_states(model, batches, progress=False):
            t1 = time.perf_counter()
            acc.update(states, mask)
            scoring += time.perf_counter() - t1
        t1 = time.perf_counter()
        res = acc.result()
        out["result_s"] = time.perf_counter() - t1
        out["scoring_s"] = scoring + out["result_s"]
        out["state_mb"] = acc.nbytes / 2**20
        out["score_mean"] = float(res.score.mean())
    elif part == "c":
        from lin_utils.extract import iter_block_states

        kept: dict[int, list] = {}
        for batch_states, mask in iter_block_states(model, batches, progress=False):
            for b, h in batch_states.items():
                kept.setdefault(b, []).append(h[mask])
        states = {b: torch.cat(parts) for b, parts in kept.items()}
        out["state_mb"] = sum(h.numel() * h.element_size() for h in states.values()) / 2**20
        t1 = time.perf_counter()
        out["forward_s"] = t1 - t0
        scores = []
        for i in range(len(states) - 1):
            X, Y = states[i], states[i + 1]
            scores.append((_authors_score(X, Y), _authors_score(X, Y - X)))
        out["scoring_s"] = time.perf_counter() - t1
        out["score_mean"] = sum(s for s, _ in scores) / len(scores)
    out["wall_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=16384)
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--part", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.part:
        return run_part(args.part, args.tokens, args.seq_len, args.batch_size)

    def child(part, tokens):
        cmd = [sys.executable, __file__, "--part", part, "--tokens", str(tokens), "--seq-len", str(args.seq_len), "--batch-size", str(args.batch_size)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        kept = f"  kept for scoring {r['state_mb']:6.0f} MB" if "state_mb" in r else ""
        print(f"  {part:8s} {tokens:6d} tokens: {r['wall_s']:7.1f} s  peak RSS {r['peak_rss_mb']:7.0f} MB{kept}", flush=True)
        return r

    import torch

    print(f"# GPT-2-small shape (d=768, 12 blocks), random init, {args.tokens} tokens, seq_len {args.seq_len}, "
          f"batch {args.batch_size}; torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    a_full, a_trunk, b, c = (child(part, args.tokens) for part in ("a_full", "a_trunk", "b", "c"))
    b_scoring = b["scoring_s"]
    print(f"(b)/(a full LM forward)      = {b['wall_s'] / a_full['wall_s']:.2f}   target <= 1.3")
    print(f"(b)/(a trunk forward)        = {b['wall_s'] / a_trunk['wall_s']:.2f}")
    print(f"scoring, timed inside each run: (b) {b_scoring:.1f} s (incl. {b['result_s']:.2f} s solve) vs (c) {c['scoring_s']:.1f} s "
          f"-> {c['scoring_s'] / max(b_scoring, 1e-9):.1f}x   target >= 5x")
    print(f"mean score (b) {b['score_mean']:.6f}  (c, fp32 SVD) {c['score_mean']:.6f}")
    print(f"peak RSS: (b) {b['peak_rss_mb']:.0f} MB vs (c) {c['peak_rss_mb']:.0f} MB")
    print("peak memory of (b) against tokens:")
    for tokens in (args.tokens // 4, args.tokens // 2):
        child("b", tokens)
    print(f"  (b) {args.tokens} tokens: {b['peak_rss_mb']:.0f} MB (above)")


if __name__ == "__main__":
    main()
