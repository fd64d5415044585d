"""Benchmark: streaming linearity scoring against a bare forward pass and the authors' approach.

A random-init model built from a config (default: GPT-2-small shape, d=768, 12 blocks) runs over
random token ids. Measurements:

    timing   one process, batch by batch in turn: the full LM forward (with LM head), the trunk
             forward that extraction runs, and the scoring of every block (both variants, held-out)
             by a float64 and by a mixed-precision accumulator (their order alternates per batch);
             then each accumulator's final solve. Ratios between these are taken under the same
             load, which matters on a shared machine.
    a_full, a_trunk, b:<precision>, c
             one subprocess each, for its own peak resident memory (ru_maxrss):
             (a) bare forward pass, full LM and trunk; (b) lin_utils.scan.profile_model;
             (c) the authors' approach (LLM-Microscope) on the same hidden states: keep every
             layer's states, then per pair an fp32 SVD pseudo-inverse, computed again for the
             no-residual variant (only its scoring part is timed).
    memory   (b) with the default precision at 1/4 and 1/2 of the tokens: peak memory is flat.

Targets (CPU): mixed scoring >= 1.7x faster than float64; (trunk + mixed scoring) <= 1.0x the full
LM forward; scoring >= 5x faster than (c).

    python scripts/bench_linearity.py [--tokens 16384] [--seq-len 1024] [--batch-size 4]
        [--shape gpt2-small|llama2-7b] [--layers N] [--device cpu|cuda] [--dtype float32|bfloat16]
        [--parts timing,a_full,a_trunk,b,c,memory]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

SHAPES = {
    # name: (transformers config class, fields)
    "gpt2-small": ("GPT2Config", dict(n_embd=768, n_layer=12, n_head=12, n_positions=1024, vocab_size=50257)),
    "llama2-7b": ("LlamaConfig", dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                      num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                                      max_position_embeddings=4096)),
}
LAYER_FIELD = {"gpt2-small": "n_layer", "llama2-7b": "num_hidden_layers"}
PRECISIONS = ("float64", "mixed")


def _config(args):
    import transformers

    cls, fields = SHAPES[args.shape]
    fields = dict(fields)
    if args.layers:
        fields[LAYER_FIELD[args.shape]] = args.layers
    return getattr(transformers, cls)(**fields)


def _model(args):
    import torch
    import transformers

    cfg = _config(args)
    dtype = getattr(torch, args.dtype)
    if args.device == "cpu":
        from lin_utils.arch import from_config

        return from_config(cfg, seed=0, dtype=dtype)
    # On a GPU, initialise in place (a 7B model initialised on the CPU in float32 takes minutes).
    torch.manual_seed(0)
    with torch.device(args.device):
        model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    return model.eval()


def _batches(args, tokens):
    import torch

    vocab = _config(args).vocab_size
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (tokens // args.seq_len, args.seq_len), generator=g)
    mask = torch.ones_like(ids)
    bs = args.batch_size
    return [(ids[i : i + bs], mask[i : i + bs]) for i in range(0, len(ids), bs)]


def _trunk(model):
    return getattr(model, "transformer", None) or model.model


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


class _Clock:
    """Wall-clock sections, synchronising the GPU around each."""

    def __init__(self, device):
        import torch

        self.sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
        self.total: dict[str, float] = {}

    def __call__(self, name, fn, *a, **kw):
        self.sync()
        t0 = time.perf_counter()
        out = fn(*a, **kw)
        self.sync()
        self.total[name] = self.total.get(name, 0.0) + time.perf_counter() - t0
        return out


def run_timing(args, out):
    """Everything in one process, interleaved batch by batch."""
    import warnings

    import numpy as np
    import torch

    from lin_utils.extract import iter_block_states
    from lin_utils.linearity import LinearityAccumulator, LinearityWarning

    warnings.simplefilter("ignore", LinearityWarning)
    if args.allow_tf32:  # measure what TF32 products would do to the "mixed" scores
        import lin_utils.linearity

        lin_utils.linearity._ALLOW_TF32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
        out["tf32"] = True
    model = _model(args)
    batches = _batches(args, args.tokens)
    device = args.device
    clock = _Clock(device)
    accs = {p: LinearityAccumulator(precision=p) for p in PRECISIONS}
    # Warm-up (kernels, allocator) on one short batch, not timed.
    ids, mask = batches[0]
    model(input_ids=ids[:1, :64].to(device), attention_mask=mask[:1, :64].to(device))
    for p in PRECISIONS:
        for states, m in iter_block_states(model, [(ids[:1, :64], mask[:1, :64])], device=device, progress=False):
            LinearityAccumulator(precision=p).update(states, m)
    S = torch.eye(64, dtype=torch.float64, device=device) * 2
    torch.cholesky_solve(S, torch.linalg.cholesky_ex(S)[0]), torch.linalg.solve_triangular(S, S, upper=False)
    torch.linalg.eigvalsh(S), torch.linalg.eigh(S)
    def trunk(batch):  # a generator run to its end: capture's hooks are gone before the next full forward
        return list(iter_block_states(model, [batch], device=device, progress=False))[0]

    for k, (ids, mask) in enumerate(batches):
        clock("full_forward", model, input_ids=ids.to(device), attention_mask=mask.to(device))
        states, m = clock("trunk_forward", trunk, (ids, mask))
        for p in (PRECISIONS if k % 2 == 0 else PRECISIONS[::-1]):
            clock(f"update_{p}", accs[p].update, states, m)
        del states
    res = {p: clock(f"solve_{p}", accs[p].result) for p in PRECISIONS}
    out.update({k: round(v, 4) for k, v in clock.total.items()})
    cols = ["score", "score_nores", "heldout", "heldout_nores", "procrustes", "cosine"]
    out["max_abs_diff"] = {c: float(np.max(np.abs(res["mixed"][c] - res["float64"][c]))) for c in cols}
    out["score_mean"] = float(res["float64"].score.mean())
    out["state_mb"] = {p: accs[p].nbytes / 2**20 for p in PRECISIONS}
    if device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name()
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20


def run_part(args):
    import torch

    torch.set_grad_enabled(False)
    part = args.part
    out = {"part": part, "tokens": args.tokens}
    t0 = time.perf_counter()
    if part == "timing":
        run_timing(args, out)
    else:
        model = _model(args)
        batches = _batches(args, args.tokens)
        t0 = time.perf_counter()
        if part == "a_full":
            for ids, mask in batches:
                model(input_ids=ids, attention_mask=mask)
        elif part == "a_trunk":
            for ids, mask in batches:
                _trunk(model)(input_ids=ids, attention_mask=mask)
        elif part.startswith("b:"):
            from lin_utils.scan import profile_model

            acc = profile_model(model, batches, progress=False, precision=part[2:])
            res = acc.result()
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
    p.add_argument("--shape", choices=sorted(SHAPES), default="gpt2-small")
    p.add_argument("--layers", type=int, default=0, help="override the number of blocks")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--parts", default="timing,a_full,a_trunk,b,c,memory")
    p.add_argument("--allow-tf32", action="store_true", help="let 'mixed' use TF32 products on a GPU (to measure fidelity)")
    p.add_argument("--part", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.part:
        return run_part(args)
    parts = args.parts.split(",")

    def child(part, tokens):
        cmd = [sys.executable, __file__, "--part", part, "--tokens", str(tokens)]
        for name in ("seq_len", "batch_size", "shape", "layers", "device", "dtype"):
            cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
        cmd += ["--allow-tf32"] if args.allow_tf32 else []
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{part} failed:\n{proc.stderr[-3000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        if part != "timing":
            kept = f"  kept for scoring {r['state_mb']:6.0f} MB" if "state_mb" in r else ""
            print(f"  {part:10s} {tokens:6d} tokens: {r['wall_s']:7.1f} s  peak RSS {r['peak_rss_mb']:7.0f} MB{kept}", flush=True)
        return r

    import torch

    cfg = _config(args)
    print(f"# {args.shape} shape (d={cfg.hidden_size}, {cfg.num_hidden_layers} blocks), random init, {args.dtype}, "
          f"{args.tokens} tokens, seq_len {args.seq_len}, batch {args.batch_size}, {args.device}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}", flush=True)
    if "timing" in parts:
        t = child("timing", args.tokens)
        full, trunk = t["full_forward"], t["trunk_forward"]
        print(f"timing (one process{', ' + t['gpu'] if 'gpu' in t else ''}{', TF32 allowed' if t.get('tf32') else ''}): "
              f"full LM forward {full:.2f} s, trunk forward {trunk:.2f} s")
        scoring = {}
        for prec in PRECISIONS:
            upd, solve = t[f"update_{prec}"], t[f"solve_{prec}"]
            scoring[prec] = upd + solve
            print(f"  {prec:8s} scoring {upd + solve:7.2f} s (update {upd:6.2f} s + final solve {solve:5.2f} s); "
                  f"profile = trunk + scoring = {(trunk + upd + solve) / full:.2f} x full LM forward "
                  f"[{(trunk + upd) / full:.2f} x without the final solve]", flush=True)
        print(f"  scoring speed-up mixed vs float64: {scoring['float64'] / scoring['mixed']:.2f}x   target >= 1.7x "
              f"(updates alone {t['update_float64'] / t['update_mixed']:.2f}x)")
        print("  max |mixed - float64|: " + ", ".join(f"{k} {v:.1e}" for k, v in t["max_abs_diff"].items()))
        if "peak_gpu_mb" in t:
            print(f"  peak GPU memory {t['peak_gpu_mb']:.0f} MB; statistics {t['state_mb']}")
    res = {part: child(part, args.tokens) for part in ("a_full", "a_trunk") if part in parts}
    if "b" in parts:
        for prec in PRECISIONS:
            res[f"b:{prec}"] = child(f"b:{prec}", args.tokens)
    if "c" in parts:
        res["c"] = child("c", args.tokens)
    if "a_full" in res:
        for prec in PRECISIONS:
            if f"b:{prec}" in res:
                print(f"(b {prec})/(a full LM forward), separate processes = {res[f'b:{prec}']['wall_s'] / res['a_full']['wall_s']:.2f}")
    if "c" in res:
        print(f"(c) scoring {res['c']['scoring_s']:.1f} s after a {res['c']['forward_s']:.1f} s forward pass; "
              f"mean score (c, fp32 SVD) {res['c']['score_mean']:.6f}")
    if "c" in res and "timing" in parts:
        print(f"scoring: (c) {res['c']['scoring_s']:.1f} s vs mixed {scoring['mixed']:.1f} s, float64 {scoring['float64']:.1f} s "
              f"(from different processes) -> {res['c']['scoring_s'] / scoring['mixed']:.1f}x and "
              f"{res['c']['scoring_s'] / scoring['float64']:.1f}x   target >= 5x")
        print(f"mean score (c, fp32 SVD) {res['c']['score_mean']:.6f}; float64 streaming {t['score_mean']:.6f}")
    if "memory" in parts:
        print("peak memory of (b mixed) against tokens:")
        for tokens in (args.tokens // 4, args.tokens // 2):
            child("b:mixed", tokens)
        if "b:mixed" in res:
            print(f"  b:mixed    {args.tokens} tokens: {res['b:mixed']['peak_rss_mb']:.0f} MB (above)")


if __name__ == "__main__":
    main()
